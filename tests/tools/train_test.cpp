// tapegrad train and evaluate as a user runs them: what a run writes, that it never destroys another
// run, that a resume continues the run it names and refuses to become another, that its log survives a
// kill, and that evaluate reports what train reported, from what the checkpoint records.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "cli.hpp"
#include "tapegrad/autodiff/distributed.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"

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
        for (const char* figure : {"loss", "reconstructions", "latent", "interpolation"}) {
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

namespace {

// 1000 points of a 2-D standard normal, the 2-1-1-1-2 toy's data as a CSV.
std::string write_toy(const TempDir& dir) {
    std::string path = dir / "toy.csv";
    std::mt19937_64 rng(7);
    std::normal_distribution<double> normal;
    std::ofstream out(path);
    for (int i = 0; i < 1000; ++i) {
        out << fmt::format("{:.6f},{:.6f}\n", normal(rng), normal(rng));
    }
    return path;
}

std::vector<std::string> toy_args(const std::string& data, const std::string& out, int epochs) {
    return {"train", "--data", data, "--dims", "2,1,1", "--activation", "tanh", "--latent-activation", "tanh",
            "--scale", "standard", "--batch-size", "1000", "--lr", "0.01", "--epochs", std::to_string(epochs),
            "--no-figures", "--out", out};
}

}  // namespace

TEST_CASE("train keeps the run an --out holds: it refuses, names what is there and the ways on") {
    TempDir dir("tapegrad_train_test");
    std::string out = dir / "run";
    check_ok(run_cli(train_args(out, "vanilla", 1), dir));
    std::string checkpoint = read_bytes(out + "/checkpoint.npz");
    std::string metrics = read_bytes(out + "/metrics.json");
    Run again = run_cli(train_args(out, "sparse", 1), dir);
    check_error(again, {"train: " + out + " already holds a run (checkpoint.npz, metrics.json, history.csv",
                        "--resume " + out + "/checkpoint.npz", "--overwrite"});
    CHECK(read_bytes(out + "/checkpoint.npz") == checkpoint);
    CHECK(read_bytes(out + "/metrics.json") == metrics);

    std::vector<std::string> replace = train_args(out, "sparse", 1);
    replace.push_back("--overwrite");
    Run replaced = run_cli(replace, dir);
    check_ok(replaced);
    CHECK(replaced.out.find("note: --overwrite: removed checkpoint.npz, metrics.json, history.csv") != std::string::npos);
    CHECK(read_json(out + "/metrics.json")["variant"] == "sparse");
}

// `mpirun -np 2 tapegrad train`: the run of one process, split across two. Skipped, as doctest counts it,
// in a build without MPI or on a machine without mpirun.
namespace {

std::vector<std::string> with_mpirun(int ranks, const std::vector<std::string>& args) {
    std::vector<std::string> all = mpirun_options(ranks);
    all.push_back(TAPEGRAD_CLI);
    all.insert(all.end(), args.begin(), args.end());
    return all;
}

std::size_t count_lines_starting(const std::string& text, const std::string& prefix) {
    std::size_t n = 0;
    for (const std::string& line : lines_of(text)) {
        n += line.starts_with(prefix);
    }
    return n;
}

}  // namespace

TEST_CASE("mpirun -np 2 tapegrad train trains each variant to the test MSE of one process; rank 0 alone "
          "prints and writes" * doctest::skip(std::string_view(TAPEGRAD_MPIRUN).empty())) {
    for (const auto& variant : variants) {
        CAPTURE(variant);
        TempDir dir("tapegrad_train_test");
        Run alone = run_cli(train_args(dir / "alone", variant), dir);
        check_ok(alone);
        Run split = run_program(TAPEGRAD_MPIRUN, with_mpirun(2, train_args(dir / "split", variant)), dir);
        CAPTURE(split.out);
        CAPTURE(split.err);
        REQUIRE(split.status == 0);
        CHECK(split.err.empty());
        CHECK(split.line_starting("data-parallel: Open MPI v").find(", 2 ranks, each batch of 64 split across them") !=
              std::string::npos);
        // One header, one line per epoch, one report: rank 1 printed nothing.
        CHECK(count_lines_starting(split.out, "tapegrad train: ") == 1);
        CHECK(count_lines_starting(split.out, "epoch ") == 3);
        CHECK(count_lines_starting(split.out, "wrote ") == 1);
        TestLine a = test_line(alone);
        TestLine b = test_line(split);
        REQUIRE(a.found);
        REQUIRE(b.found);
        // float32 training: the sums' order alone differs, within float rounding after 3 epochs.
        CHECK(b.autoencoder == doctest::Approx(a.autoencoder).epsilon(1e-4));
        json ma = read_json(dir / "alone/metrics.json");
        json mb = read_json(dir / "split/metrics.json");
        CHECK(mb.at("test_mse").get<double>() == doctest::Approx(ma.at("test_mse").get<double>()).epsilon(1e-4));
        CHECK(read_csv_rows(dir / "split/history.csv").size() == 4);  // the header and 3 epochs, once
    }
}

// A build without MPI under `mpirun -np 2`: each process would train the whole run into the same --out.
// Run only in such a build (elsewhere the environment below would make the CLI join an MPI job that is not
// there), as mpirun starts it: OMPI_COMM_WORLD_SIZE in the environment.
TEST_CASE("train in a build without MPI, started by mpirun as 2 processes, refuses before it writes anything" *
          doctest::skip(tapegrad::distributed::built_with_mpi())) {
    TempDir dir("tapegrad_train_test");
    std::string out = dir / "run";
    std::vector<std::string> args = {"OMPI_COMM_WORLD_SIZE=2", TAPEGRAD_CLI};
    for (const std::string& a : train_args(out)) {
        args.push_back(a);
    }
    Run r = run_program("env", args, dir);
    check_one_line_error(r, "tapegrad: train: started by mpirun as one of 2 processes, but this build has no MPI",
                         {"each would train the whole run into the same --out"});
    CHECK_FALSE(fs::exists(out));
}

TEST_CASE("a rank killed mid-run stops the job within seconds, and the last checkpoint resumes" *
          doctest::skip(std::string_view(TAPEGRAD_MPIRUN).empty())) {
    TempDir dir("tapegrad_train_test");
    std::string out = dir / "run";
    std::string checkpoint = out + "/checkpoint.npz";
    std::vector<std::string> args = train_args(out, "vanilla", 100000);
    args.insert(args.end(), {"--checkpoint-every", "1", "--no-figures"});
    pid_t job = start_program(TAPEGRAD_MPIRUN, with_mpirun(2, args), dir / "out.txt", dir / "err.txt");
    for (int i = 0; i < 6000 && !fs::exists(checkpoint); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(fs::exists(checkpoint));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // some epochs more, mid-epoch at the kill
    // Rank 1: the child of mpirun whose environment says so.
    pid_t rank1 = 0;
    for (const auto& entry : fs::directory_iterator("/proc")) {
        std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        std::string stat = read_bytes(entry.path() / "stat");
        std::string environ = read_bytes(entry.path() / "environ");
        std::size_t close = stat.rfind(')');
        if (close == std::string::npos) {
            continue;
        }
        std::istringstream fields(stat.substr(close + 2));
        char state = 0;
        pid_t parent = 0;
        fields >> state >> parent;
        std::replace(environ.begin(), environ.end(), '\0', '\n');
        if (parent == job && std::ranges::count(lines_of(environ), "OMPI_COMM_WORLD_RANK=1") == 1) {
            rank1 = static_cast<pid_t>(std::stol(name));
        }
    }
    REQUIRE(rank1 > 0);
    auto killed = std::chrono::steady_clock::now();
    ::kill(rank1, SIGKILL);
    int status = 0;
    pid_t done = 0;
    while ((done = ::waitpid(job, &status, WNOHANG)) == 0 &&
           std::chrono::steady_clock::now() - killed < std::chrono::seconds(60)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
    if (done == 0) {
        ::kill(job, SIGKILL);
        ::waitpid(job, &status, 0);
    }
    MESSAGE(fmt::format("the job stopped {:.1f} s after rank 1 was killed", seconds));
    REQUIRE(done == job);
    CHECK(seconds < 15);
    CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
    std::string err = read_bytes(dir / "err.txt");
    CAPTURE(err);
    CHECK(err.find("rank 1") != std::string::npos);
    CHECK(err.find("exited on signal 9 (Killed)") != std::string::npos);
    // The checkpoint is whole, and the run goes on from it, on 2 ranks as on 1.
    auto epochs = static_cast<int>(tapegrad::models::read_history(checkpoint).epochs.size());
    REQUIRE(epochs >= 1);
    std::vector<std::string> resume = {"train", "--resume", checkpoint, "--epochs", std::to_string(epochs + 1)};
    Run r = run_program(TAPEGRAD_MPIRUN, with_mpirun(2, resume), dir);
    CAPTURE(r.out);
    CAPTURE(r.err);
    CHECK(r.status == 0);
    CHECK(r.out.find(fmt::format("resumed from {} after epoch {}", checkpoint, epochs)) != std::string::npos);
    CHECK(static_cast<int>(tapegrad::models::read_history(checkpoint).epochs.size()) == epochs + 1);
}

TEST_CASE("train --resume refuses to become another run, naming each difference, and continues the one it names") {
    TempDir dir("tapegrad_train_test");
    std::string out = dir / "run";
    std::vector<std::string> first = train_args(out, "denoising", 2);
    first.insert(first.end(), {"--options", R"({"level": 0.2})", "--checkpoint-every", "1"});
    check_ok(run_cli(first, dir));
    std::string checkpoint = out + "/checkpoint.npz";
    std::string before = read_bytes(checkpoint);
    auto resume = [&](std::vector<std::string> extra) {
        std::vector<std::string> args = {"train", "--resume", checkpoint, "--epochs", "4"};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_cli(args, dir);
    };
    // A vanilla checkpoint resumed as sparse carried on as the new model before, and overwrote it.
    check_error(resume({"--model", "sparse"}), {"--model sparse (the checkpoint's: denoising)"});
    check_error(resume({"--hidden", "8"}), {"sizes 64-8-4 (the checkpoint's: 64-16-4)"});
    check_error(resume({"--dims", "64,16,2"}), {"sizes 64-16-2 (the checkpoint's: 64-16-4)"});
    check_error(resume({"--options", R"({"level": 0.5})"}), {"--options level: 0.5 (the checkpoint's: 0.2)"});
    check_error(resume({"--activation", "tanh"}), {"--activation tanh (the checkpoint's: relu)"});
    check_error(resume({"--seed", "9"}), {"--seed 9 (the checkpoint's: 0)"});
    check_error(resume({"--scale", "standard"}), {"--scale standard (the checkpoint's: minmax)"});
    check_error(resume({"--data-seed", "4"}), {"--data-seed 4 (the checkpoint's: 0)"});
    check_error(resume({"--limit", "100"}), {"--limit 100 (the checkpoint's: 0)"});
    check_error(resume({"--batch-size", "32"}), {"--batch-size 32 (the checkpoint's: 64)"});
    // Every difference at once, in one line.
    check_error(resume({"--model", "vanilla", "--latent", "2", "--data-seed", "1"}),
                {"--model vanilla", "sizes 64-16-2", "--data-seed 1"});
    CHECK(read_bytes(checkpoint) == before);

    // Options that say what the checkpoint says are no difference; the step size may change, with a note.
    Run same = resume({"--model", "denoising", "--hidden", "16", "--options", R"({"level": 0.2})", "--lr", "0.005"});
    check_ok(same);
    CHECK(same.out.find("note: train --resume: --lr 0.005 from here on, where the run had 0.01") != std::string::npos);
    CHECK(same.out.find("resumed from " + checkpoint + " after epoch 2") != std::string::npos);
    CHECK(read_csv_rows(out + "/history.csv").size() == 5);
}

TEST_CASE("train --resume alone continues the run as it was started, to the end an unbroken run reaches") {
    TempDir dir("tapegrad_train_test");
    std::string whole = dir / "whole";
    std::string broken = dir / "broken";
    check_ok(run_cli(train_args(whole, "denoising", 4), dir));
    check_ok(run_cli(train_args(broken, "denoising", 2), dir));
    // No model, data or training option: all from the checkpoint; --out is its folder; --resume takes
    // --out's checkpoint when given no path.
    Run r = run_cli({"train", "--out", broken, "--resume", "--epochs", "4"}, dir);
    check_ok(r);
    CHECK(test_line(r).text == test_line(run_cli({"evaluate", "--checkpoint", whole + "/checkpoint.npz"}, dir)).text);
    std::vector<std::vector<std::string>> a = read_csv_rows(whole + "/history.csv");
    std::vector<std::vector<std::string>> b = read_csv_rows(broken + "/history.csv");
    REQUIRE(a.size() == 5);
    REQUIRE(b.size() == 5);
    for (std::size_t e = 1; e < 5; ++e) {
        CAPTURE(e);
        CHECK(a[e][1] == b[e][1]);  // the same train loss, bit for bit
    }
}

TEST_CASE("train --resume with --epochs at or below the epochs done says there is nothing to train") {
    TempDir dir("tapegrad_train_test");
    std::string out = dir / "run";
    check_ok(run_cli(train_args(out, "vanilla", 3), dir));
    std::string before = read_bytes(out + "/checkpoint.npz");
    for (const char* epochs : {"3", "2"}) {
        CAPTURE(epochs);
        check_error(run_cli({"train", "--resume", out + "/checkpoint.npz", "--epochs", epochs}, dir),
                    {"the run has done 3 epochs and --epochs " + std::string(epochs) + " asks for no more: nothing to "
                     "train"});
    }
    CHECK(read_bytes(out + "/checkpoint.npz") == before);
}

TEST_CASE("the log reaches a file line by line; Ctrl-C stops, names the last checkpoint and exits 130") {
    TempDir dir("tapegrad_train_test");
    std::string toy = write_toy(dir);
    std::string out = dir / "run";
    std::string log = dir / "log";
    // A run long enough to be stopped in the middle: each epoch's line reaches the file when printed.
    std::vector<std::string> args = toy_args(toy, out, 10000000);
    args.insert(args.end(), {"--checkpoint-every", "100"});
    pid_t pid = start_program(TAPEGRAD_CLI, args, log, dir / "err");
    // Block buffering kept the file empty until 4 KB had gathered: the first epoch's line never came.
    bool line = false;
    for (int i = 0; i < 3000 && !line; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        line = read_bytes(log).find("\nepoch   1/10000000  train loss ") != std::string::npos;
    }
    CHECK(line);
    // Once a checkpoint is there, Ctrl-C.
    int status = interrupt_once_written(pid, out + "/checkpoint.npz");
    std::string err = read_bytes(dir / "err");
    CAPTURE(err);
    CHECK(status == 130);
    static const std::regex said(
        "^tapegrad: interrupted: trainer: stopped in epoch [0-9]+/10000000 after batch 0 of 1; the last checkpoint is "
        ".*/run/checkpoint.npz, after epoch ([0-9]+); continue with: tapegrad train --resume .*/run/checkpoint.npz\n$");
    std::smatch m;
    REQUIRE(std::regex_match(err, m, said));
    // The checkpoint it names is the one on disk, and it resumes.
    int epoch = std::stoi(m[1]);
    CHECK(epoch % 100 == 0);
    CHECK(json::parse(tapegrad::nn::read_checkpoint_config(out + "/checkpoint.npz"))["extra"]["epoch"] == epoch);
    CHECK_FALSE(fs::exists(out + "/metrics.json"));
}

TEST_CASE("20000 full-batch epochs of the 2-1-1-1-2 toy write a few checkpoints, not one an epoch") {
    TempDir dir("tapegrad_train_test");
    std::string toy = write_toy(dir);
    std::string out = dir / "run";
    std::vector<std::string> args = toy_args(toy, out, 20000);
    args.insert(args.end(), {"--log-every", "5000"});
    // Each checkpoint holds the whole history: written after every epoch, they made the run quadratic
    // (4000 epochs took 58 s). By time (every 10 s, and the last epoch) they are a handful.
    std::string trace = dir / "trace";
    // LeakSanitizer cannot run under ptrace: off for the traced program, in a sanitizer build.
    const char* asan = std::getenv("ASAN_OPTIONS");
    std::string no_leaks = std::string("ASAN_OPTIONS=") + (asan != nullptr ? std::string(asan) + ":" : "") + "detect_leaks=0";
    std::vector<std::string> traced = {no_leaks, "strace", "-f", "-qq", "-e", "trace=rename,renameat,renameat2", "-o",
                                       trace, TAPEGRAD_CLI};
    traced.insert(traced.end(), args.begin(), args.end());
    Run r = run_program("env", traced, dir);
    check_ok(r);
    int writes = 0;
    for (const std::string& line : lines_of(read_bytes(trace))) {
        writes += line.find("/run/checkpoint.npz\"") != std::string::npos;
    }
    double seconds = 0;
    std::vector<std::vector<std::string>> rows = read_csv_rows(out + "/history.csv");
    REQUIRE(rows.size() == 20001);
    for (std::size_t e = 1; e < rows.size(); ++e) {
        seconds += std::stod(rows[e][4]);
    }
    CAPTURE(seconds);
    CHECK(writes >= 1);
    CHECK(writes <= 1 + static_cast<int>(seconds / 10) + 1);
    // Epoch lines every 5000 epochs, the first and the last.
    int printed = 0;
    for (const std::string& line : lines_of(r.out)) {
        printed += line.rfind("epoch ", 0) == 0;
    }
    CHECK(printed == 5);
    CHECK(read_json(out + "/metrics.json")["history"]["epochs"] == 20000);
    CHECK(tapegrad::models::read_history(out + "/checkpoint.npz").epochs.size() == 20000);
}

TEST_CASE("evaluate takes the data, split, limit and fitted scaling from the checkpoint, as train had them") {
    TempDir dir("tapegrad_train_test");
    std::string out = dir / "run";
    std::vector<std::string> args = train_args(out, "vanilla", 3);
    args.insert(args.end(), {"--scale", "standard", "--data-seed", "3", "--limit", "500", "--test-fraction", "0.3"});
    Run train = run_cli(args, dir);
    check_ok(train);
    CHECK(train.line_starting("tapegrad train:").find("(500 train, 540 test, 64 features)") != std::string::npos);
    // Before, evaluate scaled with its own defaults (minmax): 0.1726 and a false "collapsed" warning for
    // a standardised model whose test MSE was 0.4017.
    Run evaluated = run_cli({"evaluate", "--checkpoint", out + "/checkpoint.npz"}, dir);
    check_ok(evaluated);
    CHECK(test_line(evaluated).text == test_line(train).text);
    CHECK(evaluated.out.find("collapsed") == std::string::npos);
    json record = json::parse(tapegrad::nn::read_checkpoint_config(out + "/checkpoint.npz"))["extra"]["run"]["data"];
    CHECK(record["data"] == "digits");
    CHECK(record["scale"] == "standard");
    CHECK(record["data_seed"] == 3);
    CHECK(record["limit"] == 500);
    CHECK(record["test_fraction"] == 0.3);
    CHECK(record["scaling"]["kind"] == "standard");
    CHECK(record["scaling"]["mean"]["values"].size() == 64);
    CHECK(record["train_rows"] == 500);
    // A data option given instead is used, and said.
    Run other = run_cli({"evaluate", "--checkpoint", out + "/checkpoint.npz", "--data-seed", "4"}, dir);
    check_ok(other);
    CHECK(other.out.find("note: evaluate: --data-seed 4 instead of the checkpoint's 3") != std::string::npos);
    CHECK(test_line(other).text != test_line(train).text);
}

TEST_CASE("--limit uses only the first N training rows") {
    TempDir dir("tapegrad_train_test");
    std::vector<std::string> limited = train_args(dir / "limited", "vanilla", 1);
    limited.insert(limited.end(), {"--limit", "100"});
    Run r = run_cli(limited, dir);
    check_ok(r);
    CHECK(r.line_starting("tapegrad train:").find("(100 train, 360 test, 64 features)") != std::string::npos);
    Run all = run_cli(train_args(dir / "all", "vanilla", 1), dir);
    CHECK(test_line(r).autoencoder != test_line(all).autoencoder);
    // The baselines are fitted on the same 100 rows: the mean image of 100 digits is another mean.
    CHECK(test_line(r).mean != test_line(all).mean);
}

TEST_CASE("evaluate reports the best and the last epoch's weights, named, to the digit train printed") {
    TempDir dir("tapegrad_train_test");
    std::string toy = write_toy(dir);
    std::string out = dir / "run";
    Run train = run_cli(toy_args(toy, out, 2000), dir);
    check_ok(train);
    std::smatch m;
    REQUIRE(std::regex_search(train.out, m, std::regex("\nweights: the best epoch's, ([0-9]+) of 2000 ")));
    CHECK(std::stoi(m[1]) < 2000);
    std::string last = train.line_starting("test MSE at the last epoch's weights (epoch 2000): autoencoder ");
    REQUIRE_FALSE(last.empty());
    Run evaluated = run_cli({"evaluate", "--checkpoint", out + "/checkpoint.npz", "--out", dir / "e.json"}, dir);
    check_ok(evaluated);
    for (const char* prefix : {"weights: ", "test MSE: ", "test MSE at the last epoch's weights"}) {
        CAPTURE(prefix);
        CHECK(evaluated.line_starting(prefix) == train.line_starting(prefix));
    }
    json e = read_json(dir / "e.json");
    CHECK(e["weights"]["best_epoch"] == std::stoi(m[1]));
    CHECK(e["weights"]["last_epoch"] == 2000);
    CHECK(e["test_mse"] != e["weights"]["test_mse_last_epoch"]);
    CHECK(read_json(out + "/metrics.json")["test_mse"] == e["test_mse"]);
}

TEST_CASE("--seed seeds the denoising and variational noise, and the checkpoint keeps that seed") {
    TempDir dir("tapegrad_train_test");
    for (const std::string variant : {"denoising", "variational"}) {
        CAPTURE(variant);
        std::vector<double> losses;
        for (const char* seed : {"5", "6"}) {
            std::string out = dir / (variant + seed);
            std::vector<std::string> args = train_args(out, variant, 1);
            args.insert(args.end(), {"--seed", seed, "--no-figures"});
            check_ok(run_cli(args, dir));
            json model = read_json(out + "/metrics.json")["model"];
            CHECK(model["options"]["seed"] == std::stoi(seed));
            losses.push_back(std::stod(read_csv_rows(out + "/history.csv")[1][1]));
        }
        CHECK(losses[0] != losses[1]);
        // An explicit noise seed in --options wins over --seed.
        std::string own = dir / (variant + "own");
        std::vector<std::string> args = train_args(own, variant, 1);
        args.insert(args.end(), {"--seed", "5", "--options", R"({"seed": 42})", "--no-figures"});
        check_ok(run_cli(args, dir));
        CHECK(read_json(own + "/metrics.json")["model"]["options"]["seed"] == 42);
    }
}

TEST_CASE("the output activation fits the scaling, and a run worse than PCA says so") {
    TempDir dir("tapegrad_train_test");
    // A sigmoid cannot reach standardised values: the default output there is the identity, which
    // beats the mean image (with a sigmoid it ended at 1.30 against the mean image's 1.10).
    Run r = run_cli({"train", "--dims", "64,32,8", "--scale", "standard", "--epochs", "20", "--no-figures", "--out",
                     dir / "standard"},
                    dir);
    check_ok(r);
    CHECK(r.line_starting("tapegrad train: Autoencoder[vanilla](64-32-8, relu, latent identity, output identity)")
              .size() > 0);
    TestLine t = test_line(r);
    REQUIRE(t.found);
    CHECK(t.autoencoder < 0.7 * t.mean);

    // One epoch at a tiny step: nowhere near PCA, and said so, in the log and in metrics.json.
    std::vector<std::string> args = {"train", "--hidden", "16", "--latent", "4", "--epochs", "1", "--lr", "1e-5",
                                     "--no-figures", "--out", dir / "short"};
    Run weak = run_cli(args, dir);
    check_ok(weak);
    json m = read_json(dir / "short/metrics.json");
    CHECK(m["worse_than_pca"] == true);
    bool warned = weak.out.find("warning: PCA with as many components reconstructs the test set better") !=
                  std::string::npos;
    bool collapsed = weak.out.find("warning: the autoencoder does no better than the mean image") != std::string::npos;
    CHECK((warned || collapsed));
}

TEST_CASE("each variant's defaults train a useful model on the digits, well below the mean image") {
    // Before, sparse with its defaults collapsed to the mean image (1.7x its MSE) and variational did no
    // better (1.1-1.3x); vanilla ended at 0.74-0.84x. Measured over seeds 0-2: at most 0.62x now.
    TempDir dir("tapegrad_train_test");
    for (const auto& variant : variants) {
        for (const std::vector<std::string>& sizes :
             std::vector<std::vector<std::string>>{{}, {"--hidden", "32", "--latent", "8"}}) {
            CAPTURE(variant);
            CAPTURE(sizes.size());
            std::vector<std::string> args = {"train", "--data", "digits", "--model", variant, "--no-figures", "--out",
                                             dir / (variant + std::to_string(sizes.size()))};
            args.insert(args.end(), sizes.begin(), sizes.end());
            Run r = run_cli(args, dir);
            check_ok(r);
            TestLine t = test_line(r);
            REQUIRE(t.found);
            CHECK(t.autoencoder < 0.7 * t.mean);
            CHECK(r.out.find("collapsed") == std::string::npos);
        }
    }
}

TEST_CASE("train --conv: a convolutional model from the command line, its figures, checkpoint and resume") {
    TempDir dir("tapegrad_train_test");
    auto conv_args = [](const std::string& out, int epochs) {
        std::vector<std::string> args = train_args(out, "denoising", epochs);
        args.insert(args.end(), {"--conv", "4,8", "--options", R"({"level": 0.2})"});
        return args;
    };
    std::string whole = dir / "whole";
    Run r = run_cli(conv_args(whole, 12), dir);
    check_ok(r);
    CAPTURE(r.out);
    CHECK(r.line_starting("tapegrad train: Autoencoder[denoising](conv 4-8 on 1x8x8, 64-16-4").size() > 0);
    json m = read_json(whole + "/metrics.json");
    CHECK(m["model"]["config"]["channels"] == json::array({4, 8}));
    CHECK(m["test_mse"].get<double>() < m["mean_image_test_mse"].get<double>());
    for (const char* figure : {"loss", "reconstructions", "latent", "interpolation"}) {
        CAPTURE(figure);
        check_png(whole + "/" + std::string(figure) + ".png");
    }
    check_with_numpy(dir, R"(
f = np.load(sys.argv[1])
assert f['encoder.1.weight'].shape == (4, 1, 3, 3), f['encoder.1.weight'].shape
assert f['encoder.3.weight'].shape == (8, 4, 3, 3), f['encoder.3.weight'].shape
assert f['encoder.6.weight'].shape == (32, 16), f['encoder.6.weight'].shape
assert f['decoder.5.weight'].shape == (8, 4, 3, 3), f['decoder.5.weight'].shape
assert f['decoder.7.weight'].shape == (4, 1, 3, 3), f['decoder.7.weight'].shape
config = json.loads(str(f['config']))
assert config['model']['config']['channels'] == [4, 8], config['model']['config']
)",
                     {whole + "/checkpoint.npz"});

    // Broken after 5 epochs and resumed: the unbroken run's losses, bit for bit, and its test line.
    std::string broken = dir / "broken";
    check_ok(run_cli(conv_args(broken, 5), dir));
    check_error(run_cli({"train", "--out", broken, "--resume", "--epochs", "12", "--conv", "4,16"}, dir),
                {"--conv 4,16 (the checkpoint's: [4,8])"});
    Run resumed = run_cli({"train", "--out", broken, "--resume", "--epochs", "12"}, dir);
    check_ok(resumed);
    CHECK(test_line(resumed).text == test_line(r).text);
    std::vector<std::vector<std::string>> a = read_csv_rows(whole + "/history.csv");
    std::vector<std::vector<std::string>> b = read_csv_rows(broken + "/history.csv");
    REQUIRE(a.size() == 13);
    REQUIRE(b.size() == 13);
    for (std::size_t e = 1; e < 13; ++e) {
        CAPTURE(e);
        CHECK(a[e][1] == b[e][1]);
        CHECK(a[e][3] == b[e][3]);
    }
    // An image that does not hold the rows, and --image without --conv, are refused in one line.
    check_error(run_cli({"train", "--data", "digits", "--conv", "4", "--image", "1,4,4", "--out", dir / "bad"}, dir),
                {"the image [1, 4, 4] does not hold the 64 input features"});
    check_error(run_cli({"train", "--data", "digits", "--image", "1,8,8", "--out", dir / "bad"}, dir),
                {"--image describes the input of a convolutional model: give --conv too"});
    // The architecture is not a variant: --model conv points to --conv.
    check_usage_error(run_cli({"train", "--data", "digits", "--model", "conv", "--out", dir / "bad"}, dir),
                {"--model: conv not in {vanilla,denoising,sparse,contractive,variational}; a convolutional model is "
                 "--conv CHANNELS (e.g. --conv 16,32) with any of them"});
}
