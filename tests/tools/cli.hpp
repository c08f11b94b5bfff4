// What the tests of the tapegrad command line share: running the real binary as a user runs it (each run
// in a fresh temporary folder, stdout and stderr captured), and checking what a user would: exit status,
// the lines printed, metrics.json, numpy-loadable .npz files, PNG figures, and that every error is one
// clear line and a non-zero exit, never an abort.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "scratch.hpp"

#ifndef TAPEGRAD_CLI
#error "TAPEGRAD_CLI must be the path of the tapegrad executable"
#endif

namespace cli {

namespace fs = std::filesystem;
using nlohmann::json;
using tapegrad::test::read_bytes;
using tapegrad::test::TempDir;

// Appends ` 'arg'` (a space, then arg quoted for the shell) to `command`. Appending rather than
// `" " + quote(arg)` keeps GCC 12's false -Wrestrict warning on `"literal" + std::string&&` away.
inline void append_quoted(std::string& command, const std::string& arg) {
    if (!command.empty()) {
        command += ' ';
    }
    command += tapegrad::test::shell_quoted(arg);
}

inline std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

struct Run {
    std::string command;
    int status = -1;        // the exit status, or -1 when killed by a signal
    int signal = 0;
    std::string out;
    std::string err;

    bool contains(const std::string& s) const {
        return out.find(s) != std::string::npos || err.find(s) != std::string::npos;
    }
    // The first stdout line that starts with `prefix`, or "".
    std::string line_starting(const std::string& prefix) const {
        for (const auto& line : lines_of(out)) {
            if (line.rfind(prefix, 0) == 0) {
                return line;
            }
        }
        return "";
    }
};

// Runs `program args...` through the shell with stdout and stderr captured to files in `dir`. `timeout`
// turns a hang into a failure rather than a stuck test.
inline Run run_program(const std::string& program, const std::vector<std::string>& args, const TempDir& dir) {
    static std::atomic<int> counter{0};
    int n = counter++;
    fs::path out = dir.path / ("stdout." + std::to_string(n));
    fs::path err = dir.path / ("stderr." + std::to_string(n));
    Run r;
    append_quoted(r.command, program);
    for (const auto& a : args) {
        append_quoted(r.command, a);
    }
    std::string shell = "timeout 300 ";
    shell += r.command;
    shell += " >";
    append_quoted(shell, out.string());
    shell += " 2>";
    append_quoted(shell, err.string());
    int raw = std::system(shell.c_str());
    if (raw != -1 && WIFEXITED(raw)) {
        r.status = WEXITSTATUS(raw);
    } else if (raw != -1 && WIFSIGNALED(raw)) {
        r.signal = WTERMSIG(raw);
    }
    r.out = read_bytes(out);
    r.err = read_bytes(err);
    return r;
}

// A program started in the background, its stdout and stderr sent to the files given: for tests that
// watch a run as it goes and stop it.
inline pid_t start_program(const std::string& program, const std::vector<std::string>& args, const std::string& out,
                           const std::string& err) {
    std::string command = "exec";
    append_quoted(command, program);
    for (const auto& a : args) {
        append_quoted(command, a);
    }
    command += " >";
    append_quoted(command, out);
    command += " 2>";
    append_quoted(command, err);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return pid;
}

// Once `file` exists (waiting at most 30 s), Ctrl-C to the program; its exit status once it has exited.
inline int interrupt_once_written(pid_t pid, const std::string& file) {
    for (int i = 0; i < 3000 && !fs::exists(file); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(fs::exists(file));
    ::kill(pid, SIGINT);
    int status = 0;
    ::waitpid(pid, &status, 0);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

// mpirun's options for `ranks` ranks here: as root, more ranks than cores, and no leak check in the ranks
// under AddressSanitizer, since OpenMPI leaves about 120 KB from its start-up (tests/meson.build).
inline std::vector<std::string> mpirun_options(int ranks) {
    const char* asan = std::getenv("ASAN_OPTIONS");
    return {"--allow-run-as-root",
            "--oversubscribe",
            "-x",
            "ASAN_OPTIONS=" + (asan != nullptr && *asan != '\0' ? std::string(asan) + ":" : "") + "detect_leaks=0",
            "-np",
            std::to_string(ranks)};
}

inline Run run_cli(const std::vector<std::string>& args, const TempDir& dir) {
    return run_program(TAPEGRAD_CLI, args, dir);
}

// No crash of any kind: an exit (not a signal, not timeout's 124 or a shell's 128 + signal) and none of
// the words a C++ runtime or shell prints when a program dies.
inline void check_no_crash(const Run& r) {
    CAPTURE(r.command);
    CAPTURE(r.out);
    CAPTURE(r.err);
    CHECK(r.signal == 0);
    CHECK(r.status >= 0);
    CHECK(r.status < 124);
    for (const char* word : {"terminate called", "Aborted", "Segmentation fault", "core dumped", "what():"}) {
        CAPTURE(word);
        CHECK_FALSE(r.contains(word));
    }
}

inline void check_ok(const Run& r) {
    CAPTURE(r.command);
    CAPTURE(r.out);
    CAPTURE(r.err);
    check_no_crash(r);
    REQUIRE(r.status == 0);
}

// An error as every command reports one: a non-zero exit and stderr exactly one line that starts with
// `prefix` and holds every one of `words`.
inline void check_one_line_error(const Run& r, const std::string& prefix, const std::vector<std::string>& words) {
    CAPTURE(r.command);
    CAPTURE(r.out);
    CAPTURE(r.err);
    check_no_crash(r);
    CHECK(r.status != 0);
    std::vector<std::string> lines = lines_of(r.err);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].rfind(prefix, 0) == 0);
    for (const auto& w : words) {
        CAPTURE(w);
        CHECK(lines[0].find(w) != std::string::npos);
    }
}

// One of our errors: "tapegrad: ...".
inline void check_error(const Run& r, const std::vector<std::string>& words) {
    check_one_line_error(r, "tapegrad: ", words);
}

// A usage error that CLI11 caught while parsing: "tapegrad[ verb]: ...", pointing to --help.
inline void check_usage_error(const Run& r, std::vector<std::string> words) {
    words.push_back("--help");
    check_one_line_error(r, "tapegrad", words);
}

inline json read_json(const std::string& path) {
    REQUIRE_MESSAGE(fs::exists(path), path);
    std::ifstream in(path);
    json j;
    REQUIRE_NOTHROW(j = json::parse(in));
    return j;
}

inline bool finite_number(const json& j, const char* key) {
    return j.contains(key) && j[key].is_number() && std::isfinite(j[key].get<double>());
}

// A PNG: the 8-byte signature, then an IHDR chunk with a width and a height above 0.
inline void check_png(const std::string& path) {
    CAPTURE(path);
    REQUIRE(fs::exists(path));
    std::string bytes = read_bytes(path);
    REQUIRE(bytes.size() > 33);
    CHECK(bytes.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
    CHECK(bytes.substr(12, 4) == "IHDR");
    auto be32 = [&](std::size_t at) {
        return (std::uint32_t(std::uint8_t(bytes[at])) << 24) | (std::uint32_t(std::uint8_t(bytes[at + 1])) << 16) |
               (std::uint32_t(std::uint8_t(bytes[at + 2])) << 8) | std::uint32_t(std::uint8_t(bytes[at + 3]));
    };
    CHECK(be32(16) > 0);
    CHECK(be32(20) > 0);
}

// Runs a Python script with the system's python3 and numpy; the paths are its argv[1:]. The script
// asserts; "ok" on the last line says it ran to the end.
inline void check_with_numpy(const TempDir& dir, const std::string& script, const std::vector<std::string>& paths) {
    static std::atomic<int> counter{0};
    fs::path file = dir.path / ("check_" + std::to_string(counter++) + ".py");
    std::ofstream(file) << "import json, sys\nimport numpy as np\n" << script << "\nprint('ok')\n";
    std::vector<std::string> args = {file.string()};
    args.insert(args.end(), paths.begin(), paths.end());
    Run r = run_program("/usr/bin/python3", args, dir);
    CAPTURE(script);
    CAPTURE(r.out);
    CAPTURE(r.err);
    REQUIRE_MESSAGE(r.status == 0, "python3 with numpy (Debian's python3-numpy, as `make deps` installs) failed");
    CHECK(r.out.find("ok") != std::string::npos);
}

// The numbers of "test MSE: autoencoder A | PCA with K components P | mean image M".
struct TestLine {
    bool found = false;
    std::string text;
    double autoencoder = 0;
    std::size_t components = 0;
    double pca = 0;
    double mean = 0;
};

inline TestLine test_line(const Run& r) {
    static const std::regex re(
        R"(^test MSE: autoencoder ([0-9.eE+-]+) \| PCA with ([0-9]+) components ([0-9.eE+-]+) \| mean image ([0-9.eE+-]+)$)");
    TestLine t;
    for (const auto& line : lines_of(r.out)) {
        std::smatch m;
        if (std::regex_match(line, m, re)) {
            t = {true, line, std::stod(m[1]), std::stoul(m[2]), std::stod(m[3]), std::stod(m[4])};
        }
    }
    return t;
}

// The loss terms each variant reports (models::VariantInfo::terms), in order.
inline const std::map<std::string, std::vector<std::string>> variant_terms = {
    {"vanilla", {}},
    {"denoising", {}},
    {"sparse", {"reconstruction_mse", "mean_code_activation", "sparsity_kl", "weight_decay"}},
    {"contractive", {"reconstruction_mse", "jacobian_sq_norm"}},
    {"variational", {"reconstruction", "kl", "elbo"}},
};

// The cells of a CSV file without quoting, a vector a line.
inline std::vector<std::vector<std::string>> read_csv_rows(const std::string& path) {
    std::vector<std::vector<std::string>> rows;
    for (const std::string& line : lines_of(read_bytes(path))) {
        std::vector<std::string> cells;
        std::istringstream fields(line);
        for (std::string cell; std::getline(fields, cell, ',');) {
            cells.push_back(cell);
        }
        rows.push_back(cells);
    }
    return rows;
}

inline const std::vector<std::string> variants = {"vanilla", "denoising", "sparse", "contractive", "variational"};

// A small, quick training run: 64-16-4 on digits for `epochs` epochs.
inline std::vector<std::string> train_args(const std::string& out, const std::string& model = "vanilla", int epochs = 3) {
    return {"train", "--data", "digits", "--model", model, "--hidden", "16", "--latent", "4", "--epochs",
            std::to_string(epochs), "--batch-size", "64", "--lr", "0.01", "--out", out};
}

}  // namespace cli
