// The tapegrad command line, run as a user runs it: the real binary on the bundled digits with tiny
// models, each run in a fresh temporary folder. Checks what a user would: exit status, the lines printed,
// metrics.json, numpy-loadable .npz files, PNG figures, and that every error is one clear line and a
// non-zero exit, never an abort.
#include <sys/wait.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "scratch.hpp"

#ifndef TAPEGRAD_CLI
#error "TAPEGRAD_CLI must be the path of the tapegrad executable"
#endif

namespace fs = std::filesystem;
using nlohmann::json;
using tapegrad::test::read_bytes;
using tapegrad::test::TempDir;

namespace {

// Appends ` 'arg'` (a space, then arg quoted for the shell) to `command`. Appending rather than
// `" " + quote(arg)` keeps GCC 12's false -Wrestrict warning on `"literal" + std::string&&` away.
void append_quoted(std::string& command, const std::string& arg) {
    if (!command.empty()) {
        command += ' ';
    }
    command += tapegrad::test::shell_quoted(arg);
}

std::vector<std::string> lines_of(const std::string& text) {
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
Run run_program(const std::string& program, const std::vector<std::string>& args, const TempDir& dir) {
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

Run run_cli(const std::vector<std::string>& args, const TempDir& dir) {
    return run_program(TAPEGRAD_CLI, args, dir);
}

// No crash of any kind: an exit (not a signal, not timeout's 124 or a shell's 128 + signal) and none of
// the words a C++ runtime or shell prints when a program dies.
void check_no_crash(const Run& r) {
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

void check_ok(const Run& r) {
    CAPTURE(r.command);
    CAPTURE(r.out);
    CAPTURE(r.err);
    check_no_crash(r);
    REQUIRE(r.status == 0);
}

// One of our errors: a non-zero exit and stderr exactly one line, "tapegrad: ...", holding every one of
// `words`.
void check_error(const Run& r, const std::vector<std::string>& words) {
    CAPTURE(r.command);
    CAPTURE(r.out);
    CAPTURE(r.err);
    check_no_crash(r);
    CHECK(r.status != 0);
    std::vector<std::string> lines = lines_of(r.err);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].rfind("tapegrad: ", 0) == 0);
    for (const auto& w : words) {
        CAPTURE(w);
        CHECK(lines[0].find(w) != std::string::npos);
    }
}

// A usage error that CLI11 caught while parsing: a non-zero exit, the problem and a pointer to --help.
void check_usage_error(const Run& r, const std::vector<std::string>& words) {
    CAPTURE(r.command);
    CAPTURE(r.out);
    CAPTURE(r.err);
    check_no_crash(r);
    CHECK(r.status != 0);
    CHECK(r.err.find("Run with --help for more information.") != std::string::npos);
    for (const auto& w : words) {
        CAPTURE(w);
        CHECK(r.err.find(w) != std::string::npos);
    }
}

json read_json(const std::string& path) {
    REQUIRE_MESSAGE(fs::exists(path), path);
    std::ifstream in(path);
    json j;
    REQUIRE_NOTHROW(j = json::parse(in));
    return j;
}

bool finite_number(const json& j, const char* key) {
    return j.contains(key) && j[key].is_number() && std::isfinite(j[key].get<double>());
}

// A PNG: the 8-byte signature, then an IHDR chunk with a width and a height above 0.
void check_png(const std::string& path) {
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
void check_with_numpy(const TempDir& dir, const std::string& script, const std::vector<std::string>& paths) {
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

TestLine test_line(const Run& r) {
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

const std::vector<std::string> variants = {"vanilla", "denoising", "sparse", "contractive", "variational"};

// A small, quick training run: 64-16-4 on digits for `epochs` epochs.
std::vector<std::string> train_args(const std::string& out, const std::string& model = "vanilla", int epochs = 3) {
    return {"train", "--data", "digits", "--model", model, "--hidden", "16", "--latent", "4", "--epochs",
            std::to_string(epochs), "--batch-size", "64", "--lr", "0.01", "--out", out};
}

}  // namespace

TEST_CASE("--help of tapegrad and of each subcommand exits 0 and names its key options") {
    TempDir dir("tapegrad_cli_test");
    Run top = run_cli({"--help"}, dir);
    check_ok(top);
    for (const char* word : {"Usage:", "--threads", "train", "evaluate", "gradcheck", "grad", "compare", "anomaly", "pca"}) {
        CAPTURE(word);
        CHECK(top.out.find(word) != std::string::npos);
    }
    const std::vector<std::pair<std::string, std::vector<std::string>>> subcommands = {
        {"train", {"--data", "--model", "--dims", "--hidden", "--latent", "--options", "--epochs", "--batch-size",
                   "--lr", "--optimizer", "--resume", "--out", "--no-figures"}},
        {"evaluate", {"--checkpoint", "--data", "--test-fraction", "--out"}},
        {"gradcheck", {"--model", "--dims", "--input", "--batch", "--fast", "--eps", "--atol", "--rtol", "--json"}},
        {"grad", {"--checkpoint", "--data", "--batch", "--out"}},
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
        REQUIRE(m["history"]["epochs"].is_array());
        const json& epochs = m["history"]["epochs"];
        REQUIRE(epochs.size() == 3);
        for (std::size_t e = 0; e < 3; ++e) {
            CAPTURE(e);
            CHECK(epochs[e]["epoch"] == e + 1);
            CHECK(finite_number(epochs[e], "train_loss"));
            CHECK(finite_number(epochs[e], "validation_mse"));
        }
        CHECK(epochs[2]["train_loss"].get<double>() < epochs[0]["train_loss"].get<double>());
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

TEST_CASE("gradcheck passes for every variant, writes JSON and has a fast mode") {
    TempDir dir("tapegrad_cli_test");
    SUBCASE("every variant, every parameter") {
        for (const auto& variant : variants) {
            CAPTURE(variant);
            Run r = run_cli({"gradcheck", "--model", variant, "--dims", "16,6,3", "--batch", "4"}, dir);
            check_ok(r);
            CHECK(r.line_starting("Autoencoder[" + variant + "](16-6-3").find("batch 4") != std::string::npos);
            CHECK(r.line_starting("gradcheck passed: 8 inputs").size() > 0);
            // One line per parameter tensor, each ending in "ok"; the encoder's first layer among them.
            static const std::regex param_line(R"(^  [a-z0-9_.]+ \([0-9, ]*\)  worst .*  ok$)");
            int params = 0;
            for (const auto& line : lines_of(r.out)) {
                params += std::regex_match(line, param_line);
            }
            CHECK(params == 8);
            CHECK(r.line_starting("  encoder.0.weight (16, 6)  worst ").size() > 0);
            CHECK(r.line_starting("  decoder.2.bias (16,)  worst ").size() > 0);
        }
    }

    SUBCASE("contractive with a penalty large enough to matter") {
        // The default lambda (1e-3) hides the Jacobian penalty's gradient, a second-order one, below the
        // reconstruction's; with lambda 1 it counts.
        Run r = run_cli({"gradcheck", "--model", "contractive", "--options", R"({"lambda": 1})", "--dims", "16,6,3",
                          "--batch", "4"},
                         dir);
        check_ok(r);
        CHECK(r.line_starting("gradcheck passed").size() > 0);
    }

    SUBCASE("--json") {
        std::string path = dir / "gradcheck.json";
        Run r = run_cli({"gradcheck", "--model", "variational", "--dims", "16,6,3", "--batch", "4", "--json", path},
                         dir);
        check_ok(r);
        json j = read_json(path);
        CHECK(j.value("passed", false));
        CHECK_FALSE(j.value("fast", true));
        REQUIRE(j["inputs"].is_array());
        bool named = false;
        for (const auto& input : j["inputs"]) {
            CHECK(input.value("passed", false));
            if (input.value("name", "") == "encoder.0.weight") {
                named = true;
                CHECK(input["shape"] == json::array({16, 6}));
                CHECK(input.value("checked", 0) == 16 * 6);
            }
        }
        CHECK(named);
    }

    SUBCASE("--fast") {
        std::string path = dir / "fast.json";
        Run r = run_cli({"gradcheck", "--model", "sparse", "--dims", "16,6,3", "--batch", "4", "--fast", "--json", path},
                         dir);
        check_ok(r);
        CHECK(r.line_starting("gradcheck passed").find("fast") != std::string::npos);
        CHECK(r.out.find("worst direction") != std::string::npos);
        json j = read_json(path);
        CHECK(j.value("passed", false));
        CHECK(j.value("fast", false));
    }

    SUBCASE("the input size comes from --input when --dims is not given") {
        Run r = run_cli({"gradcheck", "--input", "12", "--hidden", "5", "--latent", "2", "--batch", "3"}, dir);
        check_ok(r);
        CHECK(r.line_starting("Autoencoder[vanilla](12-5-2").find("batch 3") != std::string::npos);
        CHECK(r.line_starting("gradcheck passed").size() > 0);
    }

    SUBCASE("a failed check exits non-zero and says so") {
        // Tolerances of 0 fail every element: a script can tell from the exit status.
        Run r = run_cli({"gradcheck", "--dims", "16,6,3", "--batch", "4", "--atol", "0", "--rtol", "0"}, dir);
        check_no_crash(r);
        CHECK(r.status == 1);
        CHECK(r.line_starting("gradcheck failed: 8 of 8 inputs").size() > 0);
        CHECK(r.out.find("FAILED") != std::string::npos);
    }
}

TEST_CASE("grad writes the loss and every parameter's gradient, which numpy's own backprop agrees with") {
    TempDir dir("tapegrad_cli_test");
    std::string out = dir / "run";
    check_ok(run_cli(train_args(out), dir));
    std::string npz = dir / "grad.npz";
    Run r = run_cli({"grad", "--checkpoint", out + "/checkpoint.npz", "--data", "digits", "--batch", "8", "--out", npz},
                     dir);
    check_ok(r);
    CHECK(std::regex_search(r.out, std::regex("^loss [0-9.eE+-]+ on the first 8 test rows of digits; wrote ")));
    // Every parameter of the checkpoint comes back with its value and a gradient of its shape; then the
    // loss and gradients of the 64-16-4 relu / identity / sigmoid model, recomputed in float64 by hand,
    // and a central difference on the decoder's last bias.
    check_with_numpy(dir, R"(
g = np.load(sys.argv[1])
c = np.load(sys.argv[2])
names = [k for k in c.files if k != 'config' and not k.startswith('optimizer/')]
assert len(names) == 8, names
assert g['loss'].shape == () and np.isfinite(g['loss'])
assert g['x'].shape == (8, 64), g['x'].shape
assert g['x'].min() >= 0 and g['x'].max() <= 1
for k in names:
    assert np.array_equal(g['param/' + k], c[k]), k
    assert g['grad/' + k].shape == c[k].shape, k
    assert np.all(np.isfinite(g['grad/' + k])), k
assert sorted(g.files) == sorted(['loss', 'x'] + ['param/' + k for k in names] + ['grad/' + k for k in names])

p = {k: g['param/' + k].astype(np.float64) for k in names}
x = g['x'].astype(np.float64)
def forward(p):
    h1 = x @ p['encoder.0.weight'] + p['encoder.0.bias']
    a1 = np.maximum(h1, 0)
    z = a1 @ p['encoder.2.weight'] + p['encoder.2.bias']
    h2 = z @ p['decoder.0.weight'] + p['decoder.0.bias']
    a2 = np.maximum(h2, 0)
    o = 1 / (1 + np.exp(-(a2 @ p['decoder.2.weight'] + p['decoder.2.bias'])))
    return np.mean((o - x) ** 2), (h1, a1, z, h2, a2, o)
loss, (h1, a1, z, h2, a2, o) = forward(p)
assert abs(loss - float(g['loss'])) <= 1e-6 * loss, (loss, float(g['loss']))
d = 2 * (o - x) / o.size * o * (1 - o)
want = {'decoder.2.bias': d.sum(0), 'decoder.2.weight': a2.T @ d}
d = (d @ p['decoder.2.weight'].T) * (h2 > 0)
want.update({'decoder.0.bias': d.sum(0), 'decoder.0.weight': z.T @ d})
d = d @ p['decoder.0.weight'].T
want.update({'encoder.2.bias': d.sum(0), 'encoder.2.weight': a1.T @ d})
d = (d @ p['encoder.2.weight'].T) * (h1 > 0)
want.update({'encoder.0.bias': d.sum(0), 'encoder.0.weight': x.T @ d})
for k in names:
    got = g['grad/' + k].astype(np.float64)
    err = np.abs(got - want[k]).max()
    assert err <= 1e-6 + 1e-4 * np.abs(want[k]).max(), (k, err)

eps = 1e-6
b = p['decoder.2.bias']
numeric = np.empty_like(b)
for i in range(b.size):
    q = dict(p)
    q['decoder.2.bias'] = b.copy(); q['decoder.2.bias'][i] += eps
    plus = forward(q)[0]
    q['decoder.2.bias'] = b.copy(); q['decoder.2.bias'][i] -= eps
    numeric[i] = (plus - forward(q)[0]) / (2 * eps)
err = np.abs(numeric - g['grad/decoder.2.bias']).max()
assert err <= 1e-7 + 1e-4 * np.abs(numeric).max(), err
)",
                     {npz, out + "/checkpoint.npz"});
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
        check_error(run_cli({"train", "--hidden", "0", "--latent", "4", "--epochs", "1", "--out", out}, dir),
                    {"[64, 0, 4]"});
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
        // Resuming into a model of other sizes names the parameters that differ.
        check_error(run_cli({"train", "--resume", run + "/checkpoint.npz", "--hidden", "8", "--latent", "4",
                              "--epochs", "2", "--out", dir / "resumed"},
                             dir),
                    {"encoder.0.weight has shape (64, 8), file has (64, 16)"});
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
        check_usage_error(run_cli({"train", "--scale", "log", "--out", out}, dir), {"--scale"});
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
