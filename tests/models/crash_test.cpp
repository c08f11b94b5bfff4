// Crash safety. `tapegrad train` killed with SIGKILL at random moments, many of them in the middle of a
// checkpoint write, always leaves a checkpoint that loads; resuming from it continues the run where the
// checkpoint says, and a run broken many times ends with the parameters of one never broken, bit for
// bit. A checkpoint that cannot be written (the file size limit, as on a full disk) is a clear error
// that names the file and the reason, leaves the previous checkpoint whole and no temporary behind.
// And a noisy variant resumes bit for bit: the checkpoint holds its noise generator.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <numeric>
#include <random>
#include <regex>
#include <sstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "scratch.hpp"
#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/io/npz.hpp"

#ifndef TAPEGRAD_CLI
#error "TAPEGRAD_CLI must be the path of the tapegrad executable"
#endif

namespace fs = std::filesystem;
using nlohmann::json;
using namespace tapegrad;
using tapegrad::test::read_bytes;
using tapegrad::test::TempDir;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Starts the CLI with stdout and stderr going to files. With `file_limit` above 0 the child may write no
// file past that many bytes (RLIMIT_FSIZE), and ignores SIGXFSZ, so that such a write fails with EFBIG
// ("File too large") as a write to a full disk fails with ENOSPC, instead of killing the process.
pid_t spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err,
            rlim_t file_limit = 0) {
    std::vector<std::string> all{TAPEGRAD_CLI};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {  // only async-signal-safe calls from here to exec
        int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) {
            ::_exit(126);
        }
        if (file_limit > 0) {
            struct rlimit limit {
                file_limit, file_limit
            };
            struct sigaction ignore {};
            ignore.sa_handler = SIG_IGN;
            if (::setrlimit(RLIMIT_FSIZE, &limit) != 0 || ::sigaction(SIGXFSZ, &ignore, nullptr) != 0) {
                ::_exit(126);
            }
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    REQUIRE(pid > 0);
    return pid;
}

int wait_for(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

// The temporaries write_file_atomically makes beside `name`: .<name>.<pid>-<ticks>-<count>.tmp.
std::vector<std::string> temporaries(const fs::path& dir, const std::string& name, pid_t pid = 0) {
    std::string prefix = "." + name + "." + (pid > 0 ? std::to_string(pid) + "-" : "");
    std::vector<std::string> found;
    std::error_code error;
    for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
        std::string f = it->path().filename().string();
        if (f.starts_with(prefix) && f.ends_with(".tmp")) {
            found.push_back(f);
        }
    }
    return found;
}

struct Checkpoint {
    int epoch = 0;
    json history;           // the "epochs" records
    std::vector<nn::NpzEntry> entries;
    std::string noise;      // the noise generator's state, "" when there is none
};

// Loads a checkpoint as a user would: the model rebuilt from its description, Adam's state restored.
Checkpoint load(const std::string& path) {
    CAPTURE(path);
    Checkpoint c;
    json config;
    REQUIRE_NOTHROW(config = json::parse(nn::read_checkpoint_config(path)));
    auto model = models::model_from_description<float>(config.at("model").dump());
    nn::Adam<float> adam(model->named_parameters(), {});
    REQUIRE_NOTHROW(nn::load_checkpoint<float>(path, *model, &adam));
    c.epoch = config.at("extra").at("epoch").get<int>();
    c.history = json::parse(models::read_history(path).to_json()).at("epochs");
    c.noise = config.at("extra").value("noise", "");
    REQUIRE(c.history.size() == static_cast<std::size_t>(c.epoch));
    for (std::size_t e = 0; e < c.history.size(); ++e) {
        REQUIRE(c.history[e].at("epoch").get<int>() == static_cast<int>(e) + 1);
    }
    c.entries = nn::read_npz(path);
    return c;
}

// The losses of the first `epochs` records, which a resumed run must carry over and a run broken any
// number of times must share with the unbroken one, bit for bit (the seconds differ).
bool same_losses(const json& a, const json& b, std::size_t epochs) {
    if (a.size() < epochs || b.size() < epochs) {
        return false;
    }
    for (std::size_t e = 0; e < epochs; ++e) {
        for (const char* key : {"train_loss", "validation_loss", "validation_mse"}) {
            if (a[e].at(key).get<double>() != b[e].at(key).get<double>()) {
                return false;
            }
        }
    }
    return true;
}

// history.csv without its seconds column: the losses of each epoch, as text.
std::vector<std::string> csv_losses(const fs::path& path) {
    std::vector<std::string> rows;
    std::istringstream in(read_bytes(path));
    for (std::string line; std::getline(in, line);) {
        std::vector<std::string> cells;
        std::istringstream fields(line);
        for (std::string cell; std::getline(fields, cell, ',');) {
            cells.push_back(cell);
        }
        if (cells.size() >= 5) {
            cells.erase(cells.begin() + 4);  // seconds
        }
        rows.push_back(fmt::format("{}", fmt::join(cells, ",")));
    }
    return rows;
}

// Every array (parameters, optimizer state) equal, bit for bit.
void check_same_arrays(const Checkpoint& a, const Checkpoint& b) {
    REQUIRE(a.entries.size() == b.entries.size());
    for (std::size_t i = 0; i < a.entries.size(); ++i) {
        CAPTURE(a.entries[i].name);
        REQUIRE(a.entries[i].name == b.entries[i].name);
        if (const auto* x = std::get_if<Array<float>>(&a.entries[i].value)) {
            const auto* y = std::get_if<Array<float>>(&b.entries[i].value);
            REQUIRE(y != nullptr);
            CHECK(*x == *y);
        }
    }
}

}  // namespace

TEST_CASE("tapegrad train killed at random moments, mid-write too, always resumes from a whole checkpoint") {
    TempDir dir("tapegrad_crash");
    const int epochs = 30;
    auto args_for = [&](const std::string& out) {
        return std::vector<std::string>{"train",       "--model",      "denoising", "--data",  "digits",
                                        "--limit",     "200",          "--dims",    "64,16,4", "--batch-size",
                                        "32",          "--epochs",     std::to_string(epochs), "--train-seed",
                                        "3",           "--no-figures", "--checkpoint-every", "0",
                                        "--out",       out};
    };

    // The unbroken run, the reference for every checkpoint of the broken ones; its duration sets how long
    // a broken run lives before the kill.
    Clock::time_point t0 = Clock::now();
    pid_t reference_pid = spawn(args_for(dir / "reference"), dir / "reference.out", dir / "reference.err");
    int reference_status = wait_for(reference_pid);
    double reference_seconds = seconds_since(t0);
    INFO(read_bytes(dir / "reference.err"));
    REQUIRE(WIFEXITED(reference_status));
    REQUIRE(WEXITSTATUS(reference_status) == 0);
    Checkpoint reference = load(dir / "reference/checkpoint.npz");
    REQUIRE(reference.epoch == epochs);
    REQUIRE_FALSE(reference.noise.empty());
    const json reference_metrics = json::parse(read_bytes(dir.path / "reference/metrics.json"));
    MESSAGE(fmt::format("unbroken run: {} epochs in {:.2f} s", epochs, reference_seconds));

    const fs::path run = dir.path / "run";
    const std::string checkpoint = (run / "checkpoint.npz").string();
    std::mt19937_64 rng(20240607);
    std::uniform_real_distribution<double> uniform(0, 1);
    int kills = 0;
    int kills_mid_write = 0;
    int chains_completed = 0;
    int previous_epoch = 0;
    json previous_history = json::array();
    const int wanted_kills = 80;
    const int wanted_mid_write = 16;  // a kill lands mid-write by chance: under load, less often
    // Seconds for the kills (more under a sanitizer, where a run is slower); below half the kills wanted,
    // or fewer mid-write kills than wanted, the test fails.
    const double budget = std::max(40.0, 50 * reference_seconds);
    Clock::time_point start = Clock::now();

    // A completed run: exit 0, every epoch there, the parameters, optimizer state, noise and losses of
    // the unbroken run, and nothing but its own files in the folder.
    auto check_completed = [&](int status, const std::string& out, int resumed_after) {
        INFO(read_bytes(out));
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 0);
        Checkpoint done = load(checkpoint);
        CHECK(done.epoch == epochs);
        CHECK(same_losses(done.history, reference.history, epochs));
        CHECK(done.noise == reference.noise);
        check_same_arrays(done, reference);
        CHECK(test::listing(run) == std::vector<std::string>{"checkpoint.npz", "history.csv", "metrics.json"});
        // The history file holds every epoch once, the unbroken run's losses, whatever the kills cut off.
        CHECK(csv_losses(run / "history.csv") == csv_losses(dir.path / "reference/history.csv"));
        // The best epoch's weights come back at the end, as in the unbroken run: the test MSE is its.
        CHECK(json::parse(read_bytes(run / "metrics.json")).at("test_mse") == reference_metrics.at("test_mse"));
        std::string text = read_bytes(out);
        if (resumed_after > 0 && resumed_after < epochs) {
            CHECK(text.find(fmt::format("resumed from {} after epoch {}\n", checkpoint, resumed_after)) !=
                  std::string::npos);
        }
        if (resumed_after == epochs) {  // killed after its last checkpoint, before its report
            CHECK(text.find(fmt::format("the run has done all {} epochs but was stopped before its report", epochs)) !=
                  std::string::npos);
        }
        if (resumed_after < epochs) {
            CHECK(text.find(fmt::format("\nepoch {:3}/{}  train loss ", resumed_after + 1, epochs)) !=
                  std::string::npos);
        }
        ++chains_completed;
        fs::remove_all(run);
        previous_epoch = 0;
        previous_history = json::array();
    };

    for (int attempt = 0; (kills < wanted_kills || kills_mid_write < wanted_mid_write) && seconds_since(start) < budget;
         ++attempt) {
        CAPTURE(attempt);
        std::vector<std::string> args = args_for(run.string());
        bool resuming = fs::exists(checkpoint);
        if (resuming) {
            args.insert(args.end(), {"--resume", checkpoint});
        } else {
            // A run killed before its first checkpoint leaves its history.csv: train keeps it unless told.
            args.push_back("--overwrite");
        }
        std::string out = dir / ("run.out." + std::to_string(attempt % 4));
        pid_t pid = spawn(args, out, dir / "run.err");
        if (uniform(rng) < 0.5) {
            // Any moment: start-up, loading the checkpoint, training, writing.
            std::this_thread::sleep_for(std::chrono::duration<double>(uniform(rng) * reference_seconds / 2));
        } else {
            // Right after the n-th checkpoint write of this run began, give or take a few hundred microseconds.
            int writes = 1 + static_cast<int>(uniform(rng) * 4);
            std::set<std::string> seen;
            Clock::time_point waiting = Clock::now();
            while (static_cast<int>(seen.size()) < writes && seconds_since(waiting) < 2 * reference_seconds + 1) {
                for (const std::string& t : temporaries(run, "checkpoint.npz", pid)) {
                    seen.insert(t);
                }
                siginfo_t info{};
                if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                    info.si_pid == pid) {
                    break;  // it ended (left to wait_for to reap)
                }
                std::this_thread::sleep_for(std::chrono::microseconds(50));  // a write takes longer
            }
            std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int>(uniform(rng) * 300)));
        }
        ::kill(pid, SIGKILL);
        int status = wait_for(pid);
        if (WIFEXITED(status)) {  // it finished before the kill
            check_completed(status, out, resuming ? previous_epoch : 0);
            continue;
        }
        REQUIRE(WIFSIGNALED(status));
        REQUIRE(WTERMSIG(status) == SIGKILL);
        ++kills;
        if (!temporaries(run, "checkpoint.npz", pid).empty()) {
            ++kills_mid_write;
        }
        // Nothing in the folder but the checkpoint, the metrics of a run killed after its last epoch, and
        // the temporaries of killed writers.
        bool metrics = false;
        if (fs::exists(run)) {
            for (const std::string& f : test::listing(run)) {
                CAPTURE(f);
                metrics = metrics || f == "metrics.json";
                bool temporary = (f.starts_with(".checkpoint.npz.") || f.starts_with(".metrics.json.")) &&
                                 f.ends_with(".tmp");
                CHECK((f == "checkpoint.npz" || f == "metrics.json" || f == "history.csv" || temporary));
            }
        }
        if (!fs::exists(checkpoint)) {
            CHECK(previous_epoch == 0);  // a checkpoint, once there, is never lost
            continue;
        }
        // Loads, and continues the run: the epochs the last checkpoint had are there, unchanged, and every
        // epoch is the unbroken run's.
        Checkpoint c = load(checkpoint);
        CHECK(c.epoch >= previous_epoch);
        CHECK((!metrics || c.epoch == epochs));
        CHECK(same_losses(c.history, previous_history, previous_history.size()));
        CHECK(same_losses(c.history, reference.history, c.history.size()));
        if (c.epoch == epochs) {
            check_same_arrays(c, reference);
        }
        previous_epoch = c.epoch;
        previous_history = c.history;
        if (metrics) {
            // Killed after its report: the run is whole, and a resume would say there is nothing to
            // train. The next chain starts afresh.
            CHECK(json::parse(read_bytes(run / "metrics.json")).at("test_mse") == reference_metrics.at("test_mse"));
            ++chains_completed;
            fs::remove_all(run);
            previous_epoch = 0;
            previous_history = json::array();
        }
    }
    // The last chain, run to its end.
    std::string out = dir / "run.out.last";
    std::vector<std::string> args = args_for(run.string());
    int resumed_after = 0;
    if (fs::exists(checkpoint)) {
        args.insert(args.end(), {"--resume", checkpoint});
        resumed_after = previous_epoch;
    } else {
        args.push_back("--overwrite");
    }
    check_completed(wait_for(spawn(args, out, dir / "run.err")), out, resumed_after);

    MESSAGE(fmt::format("{} kills ({} mid-write) in {:.1f} s; {} broken runs completed, each equal to the unbroken "
                        "one bit for bit",
                        kills, kills_mid_write, seconds_since(start), chains_completed));
    CHECK(kills >= wanted_kills / 2);  // 40
    CHECK(kills_mid_write >= wanted_mid_write);
    CHECK(chains_completed >= 2);
}

TEST_CASE("every checkpoint write: temporary, fsync, rename, fsync of the folder (as strace sees it)") {
    TempDir dir("tapegrad_fsync");
    if (std::system("strace -V >/dev/null 2>&1") != 0) {
        MESSAGE("strace is not installed: skipped");
        return;
    }
    std::string trace = dir / "trace";
    // LeakSanitizer cannot run under ptrace: off for the traced program, in a sanitizer build.
    std::string command = "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" ";
    command += "strace -f -qq -e trace=openat,fsync,fdatasync,rename,renameat,renameat2 -o ";
    command += test::shell_quoted(trace) + " " + test::shell_quoted(TAPEGRAD_CLI);
    command += " train --data digits --limit 100 --dims 64,4 --epochs 3 --no-figures --checkpoint-every 1 --out ";
    command += test::shell_quoted(dir / "run") + " >" + test::shell_quoted(dir / "out") + " 2>&1";
    if (std::system(command.c_str()) != 0) {
        MESSAGE("strace could not trace the program (is ptrace allowed here?): skipped\n" << read_bytes(dir / "out"));
        return;
    }
    // Each write, in order: the temporary opened (fd t), fsync(t), the rename onto checkpoint.npz, the
    // folder opened (fd d), fsync(d).
    std::regex open_tmp(R"re(openat\(AT_FDCWD, "[^"]*/\.checkpoint\.npz\.[0-9]+-[0-9a-f]+-[0-9]+\.tmp", )re"
                        R"re(O_WRONLY\|O_CREAT\|O_EXCL.*\) = ([0-9]+))re");
    std::regex rename_tmp(
        R"re(rename(at2?)?\(.*"[^"]*/\.checkpoint\.npz\.[^"]*\.tmp", .*"[^"]*/run/checkpoint\.npz".*\) = 0)re");
    std::regex open_dir(R"re(openat\(AT_FDCWD, "[^"]*/run", O_RDONLY\|O_CLOEXEC\|O_DIRECTORY\) = ([0-9]+))re");
    std::regex fsync_fd(R"re(fsync\(([0-9]+)\) += 0)re");
    enum { idle, opened, synced, renamed, dir_opened } state = idle;
    std::string fd;
    int writes = 0;
    std::istringstream lines(read_bytes(trace));
    for (std::string line; std::getline(lines, line);) {
        std::smatch m;
        if (std::regex_search(line, m, open_tmp)) {
            CHECK(state == idle);
            state = opened;
            fd = m[1];
        } else if (std::regex_search(line, m, fsync_fd) && (state == opened || state == dir_opened) && m[1] == fd) {
            if (state == dir_opened) {
                ++writes;
            }
            state = state == opened ? synced : idle;
        } else if (std::regex_search(line, rename_tmp)) {
            CAPTURE(line);
            CHECK(state == synced);  // never renamed before its data is on disk
            state = renamed;
        } else if (state == renamed && std::regex_search(line, m, open_dir)) {
            state = dir_opened;
            fd = m[1];
        }
    }
    CAPTURE(read_bytes(trace));
    CHECK(state == idle);
    CHECK(writes == 3);  // one checkpoint an epoch, each with its folder fsynced after the rename
}

TEST_CASE("a checkpoint that cannot be written: the file and the reason, the previous one whole, no temporary") {
    TempDir dir("tapegrad_full_disk");
    const std::string path = dir / "model.npz";
    models::AutoencoderConfig config{.sizes = {64, 32, 8}, .seed = 1};
    auto model = models::make_autoencoder<float>("vanilla", config);
    nn::Adam<float> adam(model->named_parameters(), {});
    nn::save_checkpoint<float>(path, *model, &adam, models::describe_model(*model), R"({"epoch": 1})");
    const std::string before = read_bytes(path);
    REQUIRE(before.size() > 16384);
    std::vector<Array<float>> saved;
    for (auto& p : model->named_parameters()) {
        saved.push_back(p.var.value());
        p.var.mutable_value() += 1.0f;  // what the next save would hold
    }

    SUBCASE("in the library: FileError, the file size limit standing in for a full disk") {
        std::string message;
        {
            // No test output while the limit holds: the limit applies to every file this process writes.
            struct rlimit old {};
            REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
            struct sigaction ignore {}, previous {};
            ignore.sa_handler = SIG_IGN;
            ::sigaction(SIGXFSZ, &ignore, &previous);
            struct rlimit limit = old;
            limit.rlim_cur = 16384;
            ::setrlimit(RLIMIT_FSIZE, &limit);
            try {
                nn::save_checkpoint<float>(path, *model, &adam, models::describe_model(*model), R"({"epoch": 2})");
            } catch (const nn::FileError& e) {
                message = e.what();
            }
            ::setrlimit(RLIMIT_FSIZE, &old);
            ::sigaction(SIGXFSZ, &previous, nullptr);
        }
        std::string expected_start = "npz " + path + ": cannot write: write after 16384 of ";
        std::string expected_end = " bytes: File too large; " + path + " is as it was";
        CAPTURE(message);
        CHECK(message.starts_with(expected_start));
        CHECK(message.ends_with(expected_end));
    }
    SUBCASE("from tapegrad train: one line on stderr, a non-zero exit") {
        std::string out_dir = dir / "run";
        std::vector<std::string> args = {"train",    "--data",    "digits",       "--limit", "200",
                                         "--dims",   "64,32,8",   "--epochs",     "3",       "--no-figures",
                                         "--out",    out_dir};
        int status = wait_for(spawn(args, dir / "first.out", dir / "first.err"));
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 0);
        std::string ckpt = out_dir + "/checkpoint.npz";
        std::string first = read_bytes(ckpt);
        REQUIRE(first.size() > 16384);
        args[8] = "5";
        args.insert(args.end(), {"--resume", ckpt});
        status = wait_for(spawn(args, dir / "second.out", dir / "second.err", 16384));
        std::string err = read_bytes(dir / "second.err");
        CAPTURE(err);
        CAPTURE(read_bytes(dir / "second.out"));
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 1);
        CHECK(err.starts_with("tapegrad: npz " + ckpt + ": cannot write: write after 16384 of "));
        CHECK(err.ends_with(" bytes: File too large; " + ckpt + " is as it was\n"));
        CHECK(std::count(err.begin(), err.end(), '\n') == 1);
        CHECK(read_bytes(ckpt) == first);
        CHECK(load(ckpt).epoch == 3);
        CHECK(test::listing(out_dir) == std::vector<std::string>{"checkpoint.npz", "history.csv", "metrics.json"});
    }

    // Either way: the previous checkpoint as it was, and it loads.
    CHECK(read_bytes(path) == before);
    auto back = models::make_autoencoder<float>("vanilla", {.sizes = {64, 32, 8}, .seed = 2});
    nn::Adam<float> back_adam(back->named_parameters(), {});
    REQUIRE_NOTHROW(nn::load_checkpoint<float>(path, *back, &back_adam));
    auto params = back->named_parameters();
    for (std::size_t i = 0; i < params.size(); ++i) {
        CAPTURE(params[i].name);
        CHECK(params[i].var.value() == saved[i]);
    }
    CHECK(temporaries(dir.path, "model.npz").empty());
}

TEST_CASE("a noisy variant resumed from its checkpoint ends where the unbroken run does, bit for bit") {
    set_threads(1);
    TempDir dir("tapegrad_noise_resume");
    nn::Dataset data = nn::load_dataset("digits");
    data.x = data.x / 16.0f;
    std::vector<std::size_t> rows(300);
    std::iota(rows.begin(), rows.end(), std::size_t{0});
    data = nn::select_rows(data, rows);
    // The third: a convolutional one (8x8 digits through 4 and 8 channels), resumed bit for bit as well.
    for (auto [variant, conv] : {std::pair{"denoising", false}, {"variational", false}, {"denoising", true}}) {
        CAPTURE(variant);
        CAPTURE(conv);
        models::AutoencoderConfig config{.sizes = {64, 16, 4}, .seed = 3};
        if (conv) {
            config.channels = {4, 8};
        }
        auto make = [&] { return models::make_autoencoder<float>(variant, config); };
        models::TrainerOptions options{.epochs = 4, .batch_size = 32, .restore_best = false, .seed = 5};

        auto unbroken = make();
        models::History whole = models::Trainer<float>(*unbroken, options).fit(data);

        auto first = make();
        models::TrainerOptions half = options;
        half.epochs = 2;
        half.checkpoint = dir / (std::string(variant) + (conv ? "_conv" : "") + ".npz");
        models::Trainer<float>(*first, half).fit(data);

        auto resumed = make();  // the same seeds: without the saved state, its noise would start over
        models::TrainerOptions rest = options;
        rest.resume = half.checkpoint;
        models::History h = models::Trainer<float>(*resumed, rest).fit(data);
        REQUIRE(h.epochs.size() == 4);
        for (std::size_t e = 0; e < 4; ++e) {
            CAPTURE(e);
            CHECK(h.epochs[e].train_loss == whole.epochs[e].train_loss);
            CHECK(h.epochs[e].validation_loss == whole.epochs[e].validation_loss);
        }
        auto a = unbroken->named_parameters();
        auto b = resumed->named_parameters();
        for (std::size_t i = 0; i < a.size(); ++i) {
            CAPTURE(a[i].name);
            CHECK(a[i].var.value() == b[i].var.value());
        }
    }
}

TEST_CASE("restore_best across a resume: the best epoch before the break is the one that comes back") {
    set_threads(1);
    TempDir dir("tapegrad_best_resume");
    nn::Dataset data = nn::load_dataset("digits");
    data.x = data.x / 16.0f;
    auto make = [] { return models::make_autoencoder<float>("vanilla", {.sizes = {64, 16, 4}, .seed = 3}); };
    const int epochs = 8;
    // A learning rate high enough that the validation MSE stops improving before the end.
    models::TrainerOptions options{.epochs = epochs, .batch_size = 32, .optimizer = "sgd", .momentum = 0.9};
    models::History whole;
    std::shared_ptr<models::Autoencoder<float>> unbroken;
    for (double lr : {2.0, 5.0, 10.0, 20.0, 50.0}) {
        options.lr = lr;
        unbroken = make();
        whole = models::Trainer<float>(*unbroken, options).fit(data);
        if (whole.best_epoch >= 2 && whole.best_epoch <= epochs - 2) {
            break;
        }
    }
    CAPTURE(options.lr);
    REQUIRE(whole.best_epoch >= 2);
    REQUIRE(whole.best_epoch <= epochs - 2);

    // Broken right after the best epoch: no later epoch improves on it.
    models::TrainerOptions half = options;
    half.epochs = whole.best_epoch + 1;
    half.checkpoint = dir / "run.npz";
    auto first = make();
    models::Trainer<float>(*first, half).fit(data);
    CHECK(nn::read_checkpoint_arrays<float>(half.checkpoint, "best/").size() == first->named_parameters().size());

    models::TrainerOptions rest = options;
    rest.resume = half.checkpoint;
    auto resumed = make();
    models::History h = models::Trainer<float>(*resumed, rest).fit(data);
    CHECK(h.best_epoch == whole.best_epoch);
    auto a = unbroken->named_parameters();
    auto b = resumed->named_parameters();
    for (std::size_t i = 0; i < a.size(); ++i) {
        CAPTURE(a[i].name);
        CHECK(a[i].var.value() == b[i].var.value());
    }
}
