// A user's own variant through the command line: tests/tools/user_variant.cpp registers "jitter" (the
// input plus Gaussian noise of a declared level, drawn from the model's noise source) and calls
// tapegrad::cli::main. Every verb works on it as on a built-in variant; a run resumed from its
// checkpoint goes on bit for bit, its noise included; the plain tapegrad refuses its checkpoint.
#include <csignal>
#include <thread>

#include "cli.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"

#ifndef TAPEGRAD_USER_CLI
#error "TAPEGRAD_USER_CLI must be the path of tests/tools/user_variant's executable"
#endif

using namespace cli;

namespace {

Run run_user(const std::vector<std::string>& args, const TempDir& dir) {
    return run_program(TAPEGRAD_USER_CLI, args, dir);
}

// The user's program names itself by its file name, as the plain one says "tapegrad".
const std::string user = "user_variant";

std::vector<std::string> jitter_args(const std::string& out, int epochs) {
    std::vector<std::string> args = train_args(out, "jitter", epochs);
    args.push_back("--no-figures");
    return args;
}

// history.csv without its seconds column, which no two runs share: epoch, losses, terms.
std::vector<std::vector<std::string>> history_without_seconds(const std::string& path) {
    std::vector<std::vector<std::string>> rows = read_csv_rows(path);
    REQUIRE_FALSE(rows.empty());
    auto seconds = std::find(rows[0].begin(), rows[0].end(), "seconds");
    REQUIRE(seconds != rows[0].end());
    auto column = static_cast<std::size_t>(seconds - rows[0].begin());
    for (auto& row : rows) {
        REQUIRE(row.size() > column);
        row.erase(row.begin() + static_cast<std::ptrdiff_t>(column));
    }
    return rows;
}

}  // namespace

TEST_CASE("variants and --help list the user's variant with its options, after the built-in ones") {
    TempDir dir("tapegrad_registry_test");
    Run r = run_user({"variants"}, dir);
    check_ok(r);
    for (const auto& variant : variants) {
        CAPTURE(variant);
        CHECK(r.line_starting(variant + ": ").size() > 0);
    }
    CHECK(r.line_starting("jitter: ") ==
          "jitter: MSE of the reconstruction of the input plus Gaussian noise, against the clean input");
    CHECK(r.out.find("\nvariational: ") < r.out.find("\njitter: "));
    for (const char* line : {
             "  trains with: relu hidden units, identity code, Adam lr 0.005 (unless --activation, --latent-activation, "
             "--lr say otherwise)\n  level (number, (0, 1], default 0.1): the noise's standard deviation\n",
             "  seed (integer, [0, 2^64), default the model's seed): seed of the noise\n",
             "  draws: the jitter, N(0, level^2) on each input value (from its seed; checkpointed, so that a resumed "
             "run draws the same)\n",
         }) {
        CAPTURE(line);
        CHECK(r.out.substr(r.out.find("\njitter: ")).find(line) != std::string::npos);
    }

    Run help = run_user({"train", "--help"}, dir);
    check_ok(help);
    CHECK(help.out.find("Usage: user_variant train [OPTIONS]") != std::string::npos);
    CHECK(help.out.find("vanilla, denoising, sparse, contractive, variational, jitter (their options: user_variant "
                        "variants)") != std::string::npos);
    CHECK(help.out.find("jitter: the jitter, N(0, level^2) on each input value") != std::string::npos);
    // The plain tapegrad knows the built-in five alone.
    Run plain = run_cli({"variants"}, dir);
    check_ok(plain);
    CHECK(plain.out.find("jitter") == std::string::npos);
}

TEST_CASE("train, evaluate, grad and gradcheck work on the user's variant, and its options are checked") {
    TempDir dir("tapegrad_registry_test");
    std::string out = dir / "run";
    Run train = run_user(jitter_args(out, 3), dir);
    check_ok(train);
    CHECK(train.line_starting("user_variant train: Autoencoder[jitter](64-16-4").size() > 0);
    TestLine trained = test_line(train);
    REQUIRE(trained.found);
    CHECK(trained.autoencoder < trained.mean);
    json metrics = read_json(out + "/metrics.json");
    CHECK(metrics["variant"] == "jitter");
    CHECK(metrics["model"]["options"] == json{{"level", 0.1}, {"seed", 0}});
    std::string checkpoint = out + "/checkpoint.npz";
    json config = json::parse(tapegrad::nn::read_checkpoint_config(checkpoint));
    CHECK(config["model"]["variant"] == "jitter");
    // The noise generator's state is in the checkpoint, for a resume to draw on from there.
    CHECK(config["extra"].contains("noise"));

    Run evaluate = run_user({"evaluate", "--checkpoint", checkpoint}, dir);
    check_ok(evaluate);
    CHECK(test_line(evaluate).text == trained.text);

    std::string grads = dir / "grad.npz";
    Run grad = run_user({"grad", "--checkpoint", checkpoint, "--batch", "8", "--dtype", "float64", "--out", grads}, dir);
    check_ok(grad);
    CHECK(grad.line_starting("loss ").find("in float64; wrote") != std::string::npos);
    check_with_numpy(dir, R"(
z = np.load(sys.argv[1])
assert z["x"].shape == (8, 64), z["x"].shape
assert np.isfinite(z["loss"]).all()
for name in ["encoder.0.weight", "encoder.0.bias", "decoder.2.weight"]:
    assert z["grad/" + name].shape == z["param/" + name].shape, name
    assert np.abs(z["grad/" + name]).sum() > 0, name
)",
                     {grads});

    Run check = run_user({"gradcheck", "--model", "jitter", "--dims", "16,6,3", "--batch", "4"}, dir);
    check_ok(check);
    CHECK(check.line_starting("Autoencoder[jitter](16-6-3").size() > 0);
    CHECK(check.line_starting("gradcheck passed: 8 inputs").size() > 0);
    Run level = run_user({"gradcheck", "--model", "jitter", "--options", R"({"level": 0.5, "seed": 3})", "--dims",
                          "16,6,3", "--batch", "4"},
                         dir);
    check_ok(level);
    CHECK(level.line_starting("gradcheck passed: 8 inputs").size() > 0);

    // Options checked against the declaration before anything runs or is written, named with their range.
    std::string refused = dir / "refused";
    std::vector<std::string> bad = jitter_args(refused, 1);
    bad.insert(bad.end(), {"--options", R"({"level": -1})"});
    check_one_line_error(run_user(bad, dir), user + ": ", {"jitter: option level must be a number in (0, 1], got -1"});
    bad.back() = R"({"lvl": 0.2})";
    check_one_line_error(run_user(bad, dir), user + ": ", {"jitter: unknown option {\"lvl\":0.2} (known: level, seed)"});
    CHECK_FALSE(fs::exists(refused + "/checkpoint.npz"));
    check_one_line_error(run_user({"train", "--model", "jiter", "--out", refused}, dir), user + " train: ",
                         {"jiter", "jitter", "--help"});
}

TEST_CASE("train --resume of the user's variant goes on bit for bit, its noise included, after a shorter run or "
          "Ctrl-C") {
    TempDir dir("tapegrad_registry_test");
    std::string whole = dir / "whole";
    check_ok(run_user(jitter_args(whole, 6), dir));
    std::vector<std::vector<std::string>> unbroken = history_without_seconds(whole + "/history.csv");
    REQUIRE(unbroken.size() == 7);

    // The noise counts: another seed of it gives other losses from the first epoch on, so that the runs
    // below could not agree if a resume drew it afresh.
    std::string reseeded = dir / "reseeded";
    std::vector<std::string> args = jitter_args(reseeded, 2);
    args.insert(args.end(), {"--options", R"({"seed": 1})"});
    check_ok(run_user(args, dir));
    CHECK(history_without_seconds(reseeded + "/history.csv")[1] != unbroken[1]);

    SUBCASE("a shorter run, continued") {
        std::string broken = dir / "broken";
        check_ok(run_user(jitter_args(broken, 3), dir));
        Run resumed = run_user({"train", "--out", broken, "--resume", "--epochs", "6"}, dir);
        check_ok(resumed);
        CHECK(resumed.out.find("after epoch 3") != std::string::npos);
        CHECK(history_without_seconds(broken + "/history.csv") == unbroken);
        CHECK(test_line(resumed).text ==
              test_line(run_user({"evaluate", "--checkpoint", whole + "/checkpoint.npz"}, dir)).text);
    }

    SUBCASE("a run stopped by Ctrl-C, continued") {
        std::string stopped = dir / "stopped";
        std::vector<std::string> long_run = jitter_args(stopped, 10000000);
        long_run.insert(long_run.end(), {"--checkpoint-every", "2", "--log-every", "1000"});
        pid_t pid = start_program(TAPEGRAD_USER_CLI, long_run, dir / "log", dir / "err");
        int status = interrupt_once_written(pid, stopped + "/checkpoint.npz");
        std::string err = read_bytes(dir / "err");
        CAPTURE(err);
        CHECK(status == 130);
        // The way on names the program that knows the variant.
        static const std::regex said("^user_variant: interrupted: .*after epoch ([0-9]+); continue with: user_variant "
                                     "train --resume .*/stopped/checkpoint.npz\n$");
        std::smatch m;
        REQUIRE(std::regex_match(err, m, said));
        int done = std::stoi(m[1]);
        CAPTURE(done);
        REQUIRE(done >= 2);
        // Continued two epochs past its checkpoint, it is the unbroken run of that length.
        std::string same = dir / "same";
        check_ok(run_user(jitter_args(same, done + 2), dir));
        Run resumed = run_user({"train", "--resume", stopped + "/checkpoint.npz", "--epochs", std::to_string(done + 2)},
                               dir);
        check_ok(resumed);
        CHECK(history_without_seconds(stopped + "/history.csv") == history_without_seconds(same + "/history.csv"));
    }
}

TEST_CASE("the plain tapegrad refuses the user's checkpoint, naming the variant and those it knows") {
    TempDir dir("tapegrad_registry_test");
    std::string out = dir / "run";
    check_ok(run_user(jitter_args(out, 1), dir));
    std::string checkpoint = out + "/checkpoint.npz";
    std::string before = read_bytes(checkpoint);
    const std::vector<std::string> words = {
        "checkpoint " + checkpoint + ": its model is the variant \"jitter\", which tapegrad does not know (known: "
        "vanilla, denoising, sparse, contractive, variational): run it with the program that registers that variant"};
    check_error(run_cli({"evaluate", "--checkpoint", checkpoint}, dir), words);
    check_error(run_cli({"grad", "--checkpoint", checkpoint, "--out", dir / "grad.npz"}, dir), words);
    check_error(run_cli({"train", "--resume", checkpoint, "--epochs", "2"}, dir), words);
    CHECK(read_bytes(checkpoint) == before);
    CHECK_FALSE(fs::exists(dir / "grad.npz"));
}

// examples/k_sparse.cpp: a k-sparse autoencoder in 40 lines, its op (top_k) included, through the same verbs.
TEST_CASE("the k-sparse example trains, resumes bit for bit, evaluates, and passes gradcheck and the audit") {
    TempDir dir("tapegrad_registry_test");
    auto k_sparse = [&](std::vector<std::string> args) { return run_program(TAPEGRAD_K_SPARSE, args, dir); };
    auto args = [](const std::string& out, int epochs) {
        std::vector<std::string> a = train_args(out, "k-sparse", epochs);
        a.insert(a.end(), {"--options", R"({"k": 3})", "--no-figures"});
        return a;
    };
    Run variants = k_sparse({"variants"});
    check_ok(variants);
    CHECK(variants.out.find("\nk-sparse: MSE of the reconstruction from the k largest code units\n") !=
          std::string::npos);
    CHECK(variants.out.find("  k (integer, [1, 2^64), default 4): code units kept per sample\n") != std::string::npos);

    std::string whole = dir / "whole";
    Run trained = k_sparse(args(whole, 4));
    check_ok(trained);
    std::string checkpoint = whole + "/checkpoint.npz";
    json config = json::parse(tapegrad::nn::read_checkpoint_config(checkpoint));
    CHECK(config["model"]["variant"] == "k-sparse");
    CHECK(config["model"]["options"] == json{{"k", 3}});
    std::string part = dir / "part";
    check_ok(k_sparse(args(part, 2)));
    check_ok(k_sparse({"train", "--resume", part + "/checkpoint.npz", "--epochs", "4"}));
    CHECK(history_without_seconds(part + "/history.csv") == history_without_seconds(whole + "/history.csv"));
    Run evaluate = k_sparse({"evaluate", "--checkpoint", checkpoint});
    check_ok(evaluate);
    CHECK(test_line(evaluate).text == test_line(trained).text);

    // At most k of each row's code units are non-zero: the op runs inside the model's encode.
    std::string grads = dir / "grad.npz";
    check_ok(k_sparse({"grad", "--checkpoint", checkpoint, "--batch", "8", "--dtype", "float64", "--out", grads}));

    Run check = k_sparse({"gradcheck", "--model", "k-sparse", "--options", R"({"k": 3})", "--dims", "16,8,6",
                          "--batch", "4", "--audit"});
    check_ok(check);
    CHECK(check.line_starting("gradcheck passed: 8 inputs").size() > 0);
    CHECK(check.line_starting("audit passed: the backward of each of 6 tape entries agrees").size() > 0);
    CHECK(check.out.find("    #2 top_k -> (4, 6)  ok\n") != std::string::npos);

    // A k above the code's size is the op's shape error, one line.
    check_one_line_error(k_sparse({"gradcheck", "--model", "k-sparse", "--options", R"({"k": 7})", "--dims", "16,8,6"}),
                         "k_sparse: ", {"top_k: k = 7 for (8, 6)"});
}

TEST_CASE("the k-sparse example with its op's backward broken: gradcheck fails and the audit names top_k") {
    TempDir dir("tapegrad_registry_test");
    Run check = run_program("/usr/bin/env", {"TAPEGRAD_FAULT=top_k", TAPEGRAD_K_SPARSE, "gradcheck", "--model",
                                             "k-sparse", "--options", R"({"k": 3})", "--dims", "16,8,6", "--batch",
                                             "4", "--json", dir / "report.json"},
                            dir);
    CHECK(check.status == 1);
    CHECK(check.line_starting("gradcheck failed: ").size() > 0);
    CHECK(check.line_starting("audit failed: 1 of 6 tape entries disagree").size() > 0);
    CHECK(check.line_starting("  first wrong: #2 top_k -> (4, 6)") == "  first wrong: #2 top_k -> (4, 6)");
    CHECK(check.out.find("    input 0 (computed from \"encoder.2.bias\", \"encoder.2.weight\") (4, 6)  worst [") !=
          std::string::npos);
    json report = read_json(dir / "report.json");
    CHECK(report["audit"]["first_failure"] == 2);
    CHECK(report["audit"]["entries"][2]["op"] == "top_k");
    for (std::size_t i : {0, 1, 3, 4, 5}) {
        CHECK(report["audit"]["entries"][i]["passed"] == true);
    }
}

// Under mpirun the user's variant trains data-parallel like the built-in ones: its noise, drawn through
// draw_over_batch, is what one process draws, so 2 ranks end at one process's test MSE.
TEST_CASE("mpirun -np 2 trains the user's variant to the test MSE of one process" *
          doctest::skip(std::string_view(TAPEGRAD_MPIRUN).empty())) {
    TempDir dir("tapegrad_registry_test");
    Run alone = run_user(jitter_args(dir / "alone", 3), dir);
    check_ok(alone);
    std::vector<std::string> args = mpirun_options(2);
    args.push_back(TAPEGRAD_USER_CLI);
    for (const std::string& a : jitter_args(dir / "split", 3)) {
        args.push_back(a);
    }
    Run split = run_program(TAPEGRAD_MPIRUN, args, dir);
    CAPTURE(split.err);
    REQUIRE(split.status == 0);
    TestLine a = test_line(alone);
    TestLine b = test_line(split);
    REQUIRE(a.found);
    REQUIRE(b.found);
    CHECK(b.autoencoder == doctest::Approx(a.autoencoder).epsilon(1e-4));
}
