// The tapegrad command line as a whole: help, the experiments (compare, anomaly, pca), the variants'
// declarations, and usage errors that are one clear line and a non-zero exit.
#include <thread>

#include <fmt/format.h>

#include "cli.hpp"

using namespace cli;

TEST_CASE("--help of tapegrad and of each subcommand exits 0 and names its key options") {
    TempDir dir("tapegrad_cli_test");
    Run top = run_cli({"--help"}, dir);
    check_ok(top);
    for (const char* word :
         {"Usage:", "--threads", "train", "evaluate", "gradcheck", "grad", "compare", "anomaly", "pca", "variants"}) {
        CAPTURE(word);
        CHECK(top.out.find(word) != std::string::npos);
    }
    const std::vector<std::pair<std::string, std::vector<std::string>>> subcommands = {
        {"train", {"--data", "--model", "--dims", "--hidden", "--latent", "--options", "--epochs", "--batch-size",
                   "--lr", "--optimizer", "--resume", "--overwrite", "--checkpoint-every", "--out", "--no-figures",
                   "--threads", "tapegrad variants"}},
        {"evaluate", {"--checkpoint", "--data", "--test-fraction", "--out"}},
        {"gradcheck",
         {"--model", "--dims", "--input", "--batch", "--fast", "--eps", "--atol", "--rtol", "--json", "model's seed"}},
        {"grad", {"--checkpoint", "--data", "--batch", "--dtype", "--out", "variational: the sample"}},
        {"compare", {"--data", "--latents", "--hidden", "--epochs", "--out"}},
        {"anomaly", {"--data", "--normal", "--percentile", "--latent", "--epochs", "--out"}},
        {"pca", {"--data", "--components", "--out"}},
    };
    for (const auto& [sub, options] : subcommands) {
        CAPTURE(sub);
        Run r = run_cli({sub, "--help"}, dir);
        check_ok(r);
        CHECK(r.out.find("Usage:") != std::string::npos);
        CHECK(r.out.find(sub) != std::string::npos);
        for (const auto& option : options) {
            CAPTURE(option);
            CHECK(r.out.find(option) != std::string::npos);
        }
    }
}

TEST_CASE("compare prints a row per latent size and writes metrics.json and rate_distortion.png") {
    TempDir dir("tapegrad_cli_test");
    std::string out = dir / "compare";
    Run r = run_cli({"compare", "--data", "digits", "--latents", "2,4", "--hidden", "16", "--epochs", "2", "--out", out},
                     dir);
    check_ok(r);
    CHECK(r.line_starting("rate-distortion on digits: vanilla autoencoder (2 epochs each) beside PCA").size() > 0);
    CHECK(std::regex_search(r.out, std::regex("\n *latent +autoencoder MSE +PCA MSE +AE / PCA\n")));
    json m = read_json(out + "/metrics.json");
    REQUIRE(m["rows"].is_array());
    REQUIRE(m["rows"].size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        const json& row = m["rows"][i];
        std::size_t latent = i == 0 ? 2 : 4;
        CAPTURE(latent);
        CHECK(row.value("latent", 0) == latent);
        REQUIRE(finite_number(row, "autoencoder_test_mse"));
        REQUIRE(finite_number(row, "pca_test_mse"));
        // The printed row holds the same numbers.
        std::smatch match;
        REQUIRE(std::regex_search(r.out, match,
                                  std::regex("\n +" + std::to_string(latent) + " +([0-9.]+) +([0-9.]+) +([0-9.]+)\n")));
        CHECK(std::stod(match[1]) == doctest::Approx(row["autoencoder_test_mse"].get<double>()).epsilon(1e-5));
        CHECK(std::stod(match[2]) == doctest::Approx(row["pca_test_mse"].get<double>()).epsilon(1e-5));
    }
    // PCA's subspaces are nested: more components never reconstruct worse.
    CHECK(m["rows"][1]["pca_test_mse"].get<double>() < m["rows"][0]["pca_test_mse"].get<double>());
    CHECK(finite_number(m, "mean_image_test_mse"));
    CHECK(m.value("figure", "") == out + "/rate_distortion.png");
    check_png(out + "/rate_distortion.png");
}

TEST_CASE("anomaly prints precision, recall, F1 and ROC-AUC and writes metrics.json and roc.png") {
    TempDir dir("tapegrad_cli_test");
    std::string out = dir / "anomaly";
    Run r = run_cli({"anomaly", "--data", "digits", "--normal", "1", "--latent", "4", "--hidden", "16", "--epochs", "3",
                      "--out", out},
                     dir);
    check_ok(r);
    CHECK(r.line_starting("anomaly detection on digits: trained on label 1 only").size() > 0);
    std::smatch match;
    REQUIRE(std::regex_search(
        r.out, match,
        std::regex("test: 360 samples, ([0-9]+) anomalies; precision ([0-9.]+) recall ([0-9.]+) F1 ([0-9.]+) "
                   "ROC-AUC ([0-9.]+)")));
    json m = read_json(out + "/metrics.json");
    REQUIRE(finite_number(m, "roc_auc"));
    double auc = m["roc_auc"];
    CHECK(auc >= 0);
    CHECK(auc <= 1);
    CHECK(auc > 0.5);  // trained on ones, it tells them from other digits better than chance
    CHECK(std::stod(match[5]) == doctest::Approx(auc).epsilon(1e-3));
    CHECK(m.value("normal_label", -1) == 1);
    const json& d = m["detection"];
    for (const char* key : {"precision", "recall", "f1"}) {
        CAPTURE(key);
        REQUIRE(finite_number(d, key));
        CHECK(d[key].get<double>() >= 0);
        CHECK(d[key].get<double>() <= 1);
    }
    CHECK(std::stod(match[2]) == doctest::Approx(d["precision"].get<double>()).epsilon(1e-3));
    CHECK(std::stod(match[3]) == doctest::Approx(d["recall"].get<double>()).epsilon(1e-3));
    CHECK(std::stod(match[4]) == doctest::Approx(d["f1"].get<double>()).epsilon(1e-3));
    int tp = d["true_positives"], fp = d["false_positives"], tn = d["true_negatives"], fn = d["false_negatives"];
    CHECK(tp + fp + tn + fn == 360);
    CHECK(tp + fn == std::stoi(match[1]));
    check_png(out + "/roc.png");
    CHECK(m.value("figure", "") == out + "/roc.png");
    // The threshold comes from a fifth of the 148 training 1s, held out of training; the line says how many
    // test 1s it flags, which are the false positives.
    CHECK(m.value("calibration_samples", 0) == 30);
    CHECK(m.value("training_samples", 0) == 118);
    CHECK(r.line_starting("test normals flagged: " + std::to_string(fp) + " of " + std::to_string(fp + tn)).size() > 0);
    CHECK(r.contains("percentile of the scores of 30 normal training samples held out of training"));

    Run own = run_cli({"anomaly", "--data", "digits", "--normal", "1", "--latent", "4", "--hidden", "16", "--epochs",
                       "3", "--calibration", "0", "--out", dir / "own"},
                      dir);
    check_ok(own);
    json m_own = read_json(dir / "own/metrics.json");
    CHECK(m_own.value("calibration_samples", -1) == 0);
    CHECK(m_own.value("training_samples", 0) == 148);
    CHECK(own.contains("percentile of the training samples' own scores (--calibration 0)"));
}

TEST_CASE("pca writes explained variance ratios that decrease and sum to below 1") {
    TempDir dir("tapegrad_cli_test");
    std::string out = dir / "pca";
    Run r = run_cli({"pca", "--data", "digits", "--components", "5", "--out", out}, dir);
    check_ok(r);
    CHECK(r.line_starting("PCA of digits with 5 components: explained variance ratio").size() > 0);
    json m = read_json(out + "/metrics.json");
    CHECK(m.value("components", 0) == 5);
    REQUIRE(m["explained_variance_ratio"].is_array());
    std::vector<double> ratio = m["explained_variance_ratio"];
    REQUIRE(ratio.size() == 5);
    double total = 0;
    for (std::size_t i = 0; i < ratio.size(); ++i) {
        CAPTURE(i);
        CHECK(ratio[i] > 0);
        if (i > 0) {
            CHECK(ratio[i] <= ratio[i - 1]);
        }
        total += ratio[i];
    }
    CHECK(total < 1);
    std::smatch match;
    REQUIRE(std::regex_search(r.out, match, std::regex("explained variance ratio ([0-9.]+) in all")));
    CHECK(std::stod(match[1]) == doctest::Approx(total).epsilon(1e-3));
    CHECK(m["explained_variance"].size() == 5);
    CHECK(finite_number(m, "train_mse"));
    CHECK(finite_number(m, "test_mse"));

    SUBCASE("all 64 components explain everything and reconstruct exactly") {
        std::string all = dir / "pca64";
        check_ok(run_cli({"pca", "--components", "64", "--out", all}, dir));
        json a = read_json(all + "/metrics.json");
        std::vector<double> r64 = a["explained_variance_ratio"];
        double sum = 0;
        for (double v : r64) {
            sum += v;
        }
        CHECK(sum == doctest::Approx(1).epsilon(1e-9));
        CHECK(a["train_mse"].get<double>() < 1e-12);
        CHECK(a["test_mse"].get<double>() < 1e-12);
    }

    SUBCASE("its test MSE is the PCA baseline train reports") {
        std::string four = dir / "pca4";
        std::string run = dir / "run";
        check_ok(run_cli({"pca", "--components", "4", "--out", four}, dir));
        check_ok(run_cli(train_args(run, "vanilla", 1), dir));
        CHECK(read_json(four + "/metrics.json")["test_mse"].get<double>() ==
              doctest::Approx(read_json(run + "/metrics.json")["pca_test_mse"].get<double>()).epsilon(1e-12));
    }
}

TEST_CASE("errors are one clear line and a non-zero exit") {
    TempDir dir("tapegrad_cli_test");
    std::string out = dir / "out";

    SUBCASE("unknown model") {
        check_usage_error(run_cli({"train", "--model", "stacked", "--out", out}, dir), {"stacked", "vanilla"});
        check_usage_error(run_cli({"gradcheck", "--model", "stacked"}, dir), {"stacked", "variational"});
    }
    SUBCASE("sizes that do not fit the data") {
        check_error(run_cli({"train", "--data", "digits", "--dims", "10,4", "--epochs", "1", "--out", out}, dir),
                    {"--dims", "10", "64 features"});
        check_usage_error(run_cli({"train", "--hidden", "0", "--latent", "4", "--epochs", "1", "--out", out}, dir),
                          {"--hidden", "whole number from 1, got 0"});
        check_error(run_cli({"gradcheck", "--dims", "16"}, dir), {"[16]"});
    }
    SUBCASE("missing or unreadable data") {
        check_error(run_cli({"train", "--data", "/nonexistent.csv", "--epochs", "1", "--out", out}, dir),
                    {"/nonexistent.csv", "No such file"});
        check_error(run_cli({"pca", "--data", "no-such-set", "--out", out}, dir), {"no-such-set", "digits"});
        std::string bad = dir / "bad.csv";
        std::ofstream(bad) << "a,b\n1,2\nx,3\n";
        check_error(run_cli({"train", "--data", bad, "--epochs", "1", "--out", out}, dir), {bad, "line 3", "\"x\""});
    }
    SUBCASE("missing, wrong or mismatched checkpoint") {
        std::string missing = dir / "none/checkpoint.npz";
        check_error(run_cli({"evaluate", "--checkpoint", missing}, dir), {missing});
        check_error(run_cli({"grad", "--checkpoint", missing, "--out", dir / "g.npz"}, dir), {missing});
        std::string not_npz = dir / "metrics.json";
        std::ofstream(not_npz) << "{}\n";
        check_error(run_cli({"evaluate", "--checkpoint", not_npz}, dir), {not_npz, "not a zip file"});
        check_usage_error(run_cli({"evaluate"}, dir), {"--checkpoint is required"});

        std::string run = dir / "run";
        check_ok(run_cli(train_args(run, "vanilla", 1), dir));
        std::string three = dir / "three.csv";
        std::ofstream(three) << "1,2,3\n4,5,6\n7,8,9\n1,1,1\n2,2,2\n";
        check_error(run_cli({"evaluate", "--checkpoint", run + "/checkpoint.npz", "--data", three}, dir), {"64"});
        // Resuming into a model of other sizes names the sizes that differ.
        check_error(run_cli({"train", "--resume", run + "/checkpoint.npz", "--hidden", "8", "--latent", "4",
                              "--epochs", "2", "--out", dir / "resumed"},
                             dir),
                    {"sizes 64-8-4 (the checkpoint's: 64-16-4)"});
    }
    SUBCASE("bad variant options") {
        check_error(run_cli({"train", "--options", R"({"level": 0.2})", "--epochs", "1", "--out", out}, dir),
                    {"vanilla", "unknown option", "level"});
        check_error(run_cli({"train", "--model", "denoising", "--options", "{bad", "--epochs", "1", "--out", out}, dir),
                    {"denoising", "bad options"});
    }
    SUBCASE("bad numbers") {
        check_error(run_cli({"pca", "--components", "100", "--out", out}, dir), {"100 components"});
        check_usage_error(run_cli({"train", "--epochs", "0", "--out", out}, dir), {"--epochs"});
        check_usage_error(run_cli({"--threads", "0", "pca", "--out", out}, dir), {"--threads"});
        check_usage_error(run_cli({"pca", "--threads", "0", "--out", out}, dir), {"--threads"});
        check_usage_error(run_cli({"train", "--scale", "log", "--out", out}, dir), {"--scale"});
    }
    SUBCASE("negative numbers that would wrap, values out of range, names that are never used") {
        // Each of these ran before: -5 became 2^64 - 5, momentum 5 diverged, an unknown activation with no
        // hidden layer to use it was never looked at.
        const std::vector<std::pair<std::vector<std::string>, std::string>> refused = {
            {{"train", "--limit", "-5"}, "--limit"},
            {{"train", "--seed", "-1"}, "--seed"},
            {{"train", "--data-seed", "-1"}, "--data-seed"},
            {{"train", "--train-seed", "-2"}, "--train-seed"},
            {{"train", "--patience", "-1"}, "--patience"},
            {{"train", "--clip-norm", "-1"}, "--clip-norm"},
            {{"train", "--weight-decay", "-0.1"}, "--weight-decay"},
            {{"train", "--momentum", "5"}, "--momentum"},
            {{"train", "--lr", "inf"}, "--lr"},
            {{"train", "--batch-size", "-64"}, "--batch-size"},
            {{"train", "--latent", "-4"}, "--latent"},
            {{"train", "--dims", "64,-8"}, "--dims"},
            {{"train", "--dims", "64,8", "--activation", "relux"}, "relux"},
            {{"train", "--output-activation", "sigmod"}, "sigmod"},
            {{"train", "--latent-activation", "gelu"}, "gelu"},
            {{"train", "--init", "glorot"}, "glorot"},
            {{"train", "--optimizer", "lbfgs"}, "--optimizer"},
            {{"compare", "--latents", "2,-4"}, "--latents"},
            {{"anomaly", "--epochs", "-1"}, "--epochs"},
            {{"gradcheck", "--batch", "-3"}, "--batch"},
            {{"pca", "--components", "-2"}, "--components"},
            {{"grad", "--checkpoint", "c.npz", "--batch", "0"}, "--batch"},
            {{"grad", "--checkpoint", "c.npz", "--dtype", "float16"}, "--dtype"},
        };
        for (const auto& [args, word] : refused) {
            std::vector<std::string> all = args;
            all.insert(all.end(), {"--out", out});
            check_usage_error(run_cli(all, dir), {word});
        }
        CHECK_FALSE(fs::exists(out));
    }
    SUBCASE("compare: a code as wide as the data or wider is refused, PCA that is exact gives no ratio") {
        check_error(run_cli({"compare", "--latents", "4,65", "--hidden", "16", "--epochs", "1", "--out", out}, dir),
                    {"--latents 65", "64 features"});
        Run r = run_cli({"compare", "--latents", "64", "--dims", "64,64", "--epochs", "1", "--out", dir / "full"}, dir);
        check_ok(r);
        CHECK(std::regex_search(r.out, std::regex("\n +64 +[0-9.]+ +[0-9.]+ +PCA exact\n")));
    }
    SUBCASE("a model larger than memory says what was asked for") {
        check_error(run_cli({"train", "--dims", "64,1000000000000", "--epochs", "1", "--out", out}, dir),
                    {"sizes 64-1000000000000 ask for", "parameters", "more than this machine's memory"});
        CHECK_FALSE(fs::exists(out + "/checkpoint.npz"));
    }
    SUBCASE("a sigmoid output cannot reach standardised data: refused, and not the default there") {
        check_error(run_cli({"train", "--scale", "standard", "--output-activation", "sigmoid", "--epochs", "1", "--out",
                             out},
                            dir),
                    {"sigmoid output cannot reach the data", "--output-activation identity"});
    }
    SUBCASE("unknown or missing subcommand, unknown option") {
        check_usage_error(run_cli({"frobnicate"}, dir), {});
        check_usage_error(run_cli({}, dir), {"subcommand"});
        check_usage_error(run_cli({"train", "--frobnicate", "--out", out}, dir), {"--frobnicate"});
    }
    SUBCASE("no label to train on") {
        // Not a helpful message yet (it names the trainer's validation split), but one line and no abort.
        check_error(
            run_cli({"anomaly", "--normal", "42", "--latent", "4", "--hidden", "16", "--epochs", "1", "--out", out}, dir),
            {});
    }
}

TEST_CASE("variants lists each variant's options with type, range, default and meaning, from the declarations") {
    TempDir dir("tapegrad_cli_test");
    Run r = run_cli({"variants"}, dir);
    check_ok(r);
    for (const auto& variant : variants) {
        CAPTURE(variant);
        CHECK(r.line_starting(variant + ": ").size() > 0);
    }
    for (const char* line : {
             "  rho (number, (0, 1), default 0.1): target mean activation of each code unit",
             "  trains with: tanh hidden units, sigmoid code, Adam lr 0.01 (unless --activation, --latent-activation, "
             "--lr say otherwise)",
             "  corruption (text, masking | gaussian | salt_and_pepper, default masking): ",
             "  seed (integer, [0, 2^64), default the model's seed): seed of the corruption's random numbers",
             "  lambda (number, [0, inf), default 0.0001): weight of the Jacobian penalty",
             "  reports: reconstruction_mse, mean_code_activation, sparsity_kl, weight_decay",
             "  reports: reconstruction, kl, elbo",
             "  draws: the corruption (from its seed; checkpointed, so that a resumed run draws the same)",
             "  draws: the sample eps ~ N(0, I) (from its seed; checkpointed, so that a resumed run draws the same)",
             "Give options as JSON: --model denoising --options '{\"corruption\": \"masking\", \"level\": 0.1}'",
         }) {
        CAPTURE(line);
        CHECK(r.out.find(line) != std::string::npos);
    }
}

TEST_CASE("--threads works before and after the verb, and more threads than cores is a warning that says why") {
    TempDir dir("tapegrad_cli_test");
    Run before = run_cli({"--threads", "2", "pca", "--components", "2", "--out", dir / "a"}, dir);
    Run after = run_cli({"pca", "--threads", "2", "--components", "2", "--out", dir / "b"}, dir);
    check_ok(before);
    check_ok(after);
    unsigned cores = std::thread::hardware_concurrency();
    REQUIRE(cores > 0);
    Run many = run_cli({"pca", "--threads", std::to_string(cores + 1), "--components", "2", "--out", dir / "c"}, dir);
    check_ok(many);
    CHECK(many.err == fmt::format("tapegrad: warning: --threads {} on a machine with {} cores: the threads take turns on "
                                  "the cores and every product waits for its slowest band, so each step runs slower "
                                  "than with --threads {} (4 threads on 2 cores made a Fashion-MNIST epoch 7 to 10 "
                                  "times as long as 2 did)\n",
                                  cores + 1, cores, cores));
    CHECK(before.err.empty());
    Run train = run_cli({"train", "--threads", "2", "--hidden", "16", "--latent", "4", "--epochs", "1", "--no-figures",
                         "--out", dir / "run"},
                        dir);
    check_ok(train);
    CHECK(train.line_starting("BLAS: ").find("2 threads") != std::string::npos);
}

TEST_CASE("pca, compare and anomaly keep what an earlier run wrote into --out unless told to replace it") {
    TempDir dir("tapegrad_cli_test");
    const std::vector<std::vector<std::string>> commands = {
        {"pca", "--components", "2"},
        {"compare", "--latents", "2", "--hidden", "8", "--epochs", "1"},
        {"anomaly", "--latent", "2", "--hidden", "8", "--epochs", "1"},
    };
    for (const auto& command : commands) {
        CAPTURE(command[0]);
        std::string out = dir / command[0];
        std::vector<std::string> args = command;
        args.insert(args.end(), {"--out", out});
        check_ok(run_cli(args, dir));
        std::string first = read_bytes(out + "/metrics.json");
        check_error(run_cli(args, dir), {command[0] + ": " + out + " already holds a run (metrics.json", "--overwrite"});
        CHECK(read_bytes(out + "/metrics.json") == first);
        args.push_back("--overwrite");
        Run replaced = run_cli(args, dir);
        check_ok(replaced);
        CHECK(replaced.out.find("note: --overwrite: removed metrics.json") != std::string::npos);
    }
}
