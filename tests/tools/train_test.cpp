// tapegrad train and evaluate as a user runs them: what a run writes, that it never destroys another
// run, that a resume continues the run it names and refuses to become another, that its log survives a
// kill, and that evaluate reports what train reported, from what the checkpoint records.
#include <fmt/format.h>

#include "cli.hpp"

using namespace cli;

TEST_CASE("train writes metrics.json, a numpy-loadable checkpoint and PNG figures") {
    // Every variant trains; vanilla and denoising also have to learn something in 3 epochs.
    for (const auto& variant : variants) {
        CAPTURE(variant);
        TempDir dir("tapegrad_cli_test");
        std::string out = dir / "run";
        std::vector<std::string> args = train_args(out, variant);
        if (variant == "denoising") {
            args.insert(args.end(), {"--options", R"({"level": 0.2})"});
        }
        Run r = run_cli(args, dir);
        check_ok(r);
        CAPTURE(r.out);

        // The header, the BLAS line, one line per epoch and the test line.
        CHECK(r.line_starting("tapegrad train: Autoencoder[" + variant + "](64-16-4").size() > 0);
        CHECK(r.line_starting("tapegrad train:").find("1437 train, 360 test, 64 features") != std::string::npos);
        std::string blas = r.line_starting("BLAS: ");
        CHECK(blas.find("1 thread") != std::string::npos);
        int epoch_lines = 0;
        for (const auto& line : lines_of(r.out)) {
            epoch_lines += line.rfind("epoch ", 0) == 0;
        }
        CHECK(epoch_lines == 3);
        for (int e = 1; e <= 3; ++e) {
            CHECK(std::regex_search(r.out, std::regex("(^|\n)epoch +" + std::to_string(e) + "/3 +train loss [0-9.]+")));
        }
        TestLine t = test_line(r);
        REQUIRE(t.found);
        CHECK(t.components == 4);
        CHECK(r.out.find("wrote " + out + "/metrics.json") != std::string::npos);
        CHECK((variant == "variational") == (r.line_starting("test ELBO per sample: ").size() > 0));

        // metrics.json agrees with what was printed.
        json m = read_json(out + "/metrics.json");
        CHECK(m.value("variant", "") == variant);
        CHECK(m.value("data", "") == "digits");
        CHECK(m.value("latent", 0) == 4);
        REQUIRE(finite_number(m, "test_mse"));
        REQUIRE(finite_number(m, "pca_test_mse"));
        REQUIRE(finite_number(m, "mean_image_test_mse"));
        double test_mse = m["test_mse"];
        double pca = m["pca_test_mse"];
        double mean = m["mean_image_test_mse"];
        CHECK(t.autoencoder == doctest::Approx(test_mse).epsilon(1e-5));
        CHECK(t.pca == doctest::Approx(pca).epsilon(1e-5));
        CHECK(t.mean == doctest::Approx(mean).epsilon(1e-5));
        CHECK(test_mse > 0);
        CHECK(pca < mean);  // 4 principal components beat the mean image
        CHECK(m.value("collapsed", false) == (test_mse >= 0.98 * mean));
        CHECK(m.value("collapsed", false) ==
              (r.out.find("warning: the autoencoder does no better than the mean image") != std::string::npos));
        if (variant == "vanilla" || variant == "denoising") {
            CHECK(test_mse < mean);
        }
        CHECK(m["model"]["variant"] == variant);
        CHECK(m["model"]["config"]["sizes"] == json::array({64, 16, 4}));
        if (variant == "denoising") {
            CHECK(m["model"]["options"]["level"].get<double>() == doctest::Approx(0.2));
        }
        // metrics.json sums the history up; history.csv has a line per epoch, as the log printed it.
        CHECK(m["history"]["epochs"] == 3);
        CHECK(m["history"]["best_epoch"].get<int>() >= 1);
        CHECK(m.value("history_csv", "") == out + "/history.csv");
        std::vector<std::vector<std::string>> rows = read_csv_rows(out + "/history.csv");
        REQUIRE(rows.size() == 4);
        std::vector<std::string> header = {"epoch", "train_loss", "validation_loss", "validation_mse", "seconds"};
        std::vector<std::string> terms = variant_terms.at(variant);
        header.insert(header.end(), terms.begin(), terms.end());
        CHECK(rows[0] == header);
        for (std::size_t e = 1; e <= 3; ++e) {
            CAPTURE(e);
            REQUIRE(rows[e].size() == header.size());
            CHECK(rows[e][0] == std::to_string(e));
            // The printed line rounds the CSV's value.
            CHECK(r.out.find(fmt::format("epoch {:3}/3  train loss {:.6f}", e, std::stod(rows[e][1]))) !=
                  std::string::npos);
        }
        CHECK(std::stod(rows[3][1]) < std::stod(rows[1][1]));
        // What the variant's penalty is doing, in the log, the CSV and metrics.json.
        for (const std::string& term : terms) {
            CAPTURE(term);
            CHECK(r.line_starting("epoch   3/3").find("  " + term + " ") != std::string::npos);
            REQUIRE(finite_number(m["train_loss_terms"], term.c_str()));
            CHECK(m["train_loss_terms"][term].get<double>() == doctest::Approx(std::stod(rows[3][5 + (&term - terms.data())])));
            CHECK(finite_number(m["test_loss_terms"], term.c_str()));
        }
        if (variant == "sparse") {  // a sigmoid code's mean activation lies in (0, 1)
            double activation = m["train_loss_terms"]["mean_code_activation"];
            CHECK(activation > 0);
            CHECK(activation < 1);
        }
        CHECK(m.value("checkpoint", "") == out + "/checkpoint.npz");

        // The figures exist, are PNGs and are the ones metrics.json names.
        for (const char* figure : {"loss", "reconstructions", "latent"}) {
            CAPTURE(figure);
            std::string path = out + "/" + figure + ".png";
            check_png(path);
            CHECK(m["figures"].value(figure, "") == path);
        }

        // The checkpoint loads with numpy and holds the weights and the model's description.
        check_with_numpy(dir, R"(
f = np.load(sys.argv[1])
assert f['encoder.0.weight'].shape == (64, 16), f['encoder.0.weight'].shape
assert f['encoder.0.weight'].dtype == np.float32
assert f['decoder.2.weight'].shape == (16, 64)
assert f['decoder.2.bias'].shape == (64,)
for k in f.files:
    if k != 'config':
        assert np.all(np.isfinite(f[k])), k
config = json.loads(str(f['config']))
assert 'model' in config, config.keys()
assert config['model']['variant'] == sys.argv[2], config['model']
assert config['model']['config']['sizes'] == [64, 16, 4]
)",
                         {out + "/checkpoint.npz", variant});
    }
}

TEST_CASE("train --no-figures writes no PNG, --threads shows in the BLAS line") {
    TempDir dir("tapegrad_cli_test");
    std::string out = dir / "run";
    std::vector<std::string> args = {"--threads", "2"};
    for (const auto& a : train_args(out, "vanilla", 1)) {
        args.push_back(a);
    }
    args.push_back("--no-figures");
    Run r = run_cli(args, dir);
    check_ok(r);
    CHECK(r.line_starting("BLAS: ").find("2 threads") != std::string::npos);
    CHECK(fs::exists(out + "/metrics.json"));
    CHECK(fs::exists(out + "/checkpoint.npz"));
    for (const auto& entry : fs::directory_iterator(out)) {
        CAPTURE(entry.path());
        CHECK(entry.path().extension() != ".png");
    }
}

TEST_CASE("evaluate reports the test MSE that train reported") {
    for (const std::string variant : {"vanilla", "denoising", "variational"}) {
        CAPTURE(variant);
        TempDir dir("tapegrad_cli_test");
        std::string out = dir / "run";
        Run train = run_cli(train_args(out, variant), dir);
        check_ok(train);
        TestLine trained = test_line(train);
        REQUIRE(trained.found);

        std::string metrics = dir / "evaluate.json";
        Run r = run_cli({"evaluate", "--checkpoint", out + "/checkpoint.npz", "--data", "digits", "--out", metrics},
                         dir);
        check_ok(r);
        TestLine evaluated = test_line(r);
        REQUIRE(evaluated.found);
        CHECK(evaluated.text == trained.text);

        json e = read_json(metrics);
        json t = read_json(out + "/metrics.json");
        CHECK(e.value("variant", "") == variant);
        CHECK(e.value("latent", 0) == 4);
        for (const char* key : {"test_mse", "pca_test_mse", "mean_image_test_mse"}) {
            CAPTURE(key);
            REQUIRE(finite_number(e, key));
            CHECK(e[key].get<double>() == doctest::Approx(t[key].get<double>()).epsilon(1e-12));
        }
    }
}
