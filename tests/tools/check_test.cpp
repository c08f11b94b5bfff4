// tapegrad gradcheck and grad as a user runs them: every variant's gradients checked, the options that
// cannot check refused, and the gradients written for another framework to compare.
#include "cli.hpp"

using namespace cli;

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
    // float32 as trained, and float64 with the weights widened, where numpy's float64 backprop agrees to
    // rounding: the tolerance is argv[3].
    for (const std::string dtype : {"float32", "float64"}) {
    CAPTURE(dtype);
    std::string npz = dir / ("grad-" + dtype + ".npz");
    Run r = run_cli({"grad", "--checkpoint", out + "/checkpoint.npz", "--batch", "8", "--dtype", dtype, "--out", npz},
                    dir);
    check_ok(r);
    CHECK(std::regex_search(
        r.out, std::regex("^loss [0-9.eE+-]+ on the first 8 test rows of digits in " + dtype + "; wrote ")));
    // Every parameter of the checkpoint comes back with its value and a gradient of its shape; then the
    // loss and gradients of the 64-16-4 relu / identity / sigmoid model, recomputed in float64 by hand,
    // and a central difference on the decoder's last bias.
    check_with_numpy(dir, R"(
g = np.load(sys.argv[1])
c = np.load(sys.argv[2])
names = [k for k in c.files if k != 'config' and not k.startswith(('optimizer/', 'history/', 'best/'))]
assert len(names) == 8, names
assert g['loss'].shape == () and np.isfinite(g['loss'])
assert g['x'].shape == (8, 64), g['x'].shape
assert g['x'].min() >= 0 and g['x'].max() <= 1
tol = float(sys.argv[3])
wide = g['x'].dtype == np.float64
assert wide == (tol < 1e-6), (g['x'].dtype, tol)
for k in names:
    assert np.array_equal(g['param/' + k], c[k]), k
    assert g['grad/' + k].dtype == g['x'].dtype, k
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
assert abs(loss - float(g['loss'])) <= max(tol, 1e-13) * loss, (loss, float(g['loss']))
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
    assert err <= tol * 1e-2 + tol * np.abs(want[k]).max(), (k, err)

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
                     {npz, out + "/checkpoint.npz", dtype == "float64" ? "1e-10" : "1e-4"});
    }
}

TEST_CASE("gradcheck refuses options that cannot check: no pass after checking nothing, no nan") {
    TempDir dir("tapegrad_cli_test");
    // Each of these printed "gradcheck passed" or a report of nan before.
    for (const auto& bad : std::vector<std::vector<std::string>>{
             {"--fast", "--directions", "0"}, {"--eps", "0"}, {"--eps", "-1e-6"}, {"--eps", "nan"},
             {"--atol", "-1"}, {"--rtol", "-0.001"}}) {
        std::vector<std::string> args = {"gradcheck", "--dims", "16,6,3", "--batch", "4"};
        args.insert(args.end(), bad.begin(), bad.end());
        Run r = run_cli(args, dir);
        check_usage_error(r, {bad[bad.size() - 2]});
        CHECK(r.out.find("passed") == std::string::npos);
    }
}

TEST_CASE("grad and evaluate keep the file an earlier run wrote unless told to replace it") {
    TempDir dir("tapegrad_cli_test");
    std::string out = dir / "run";
    check_ok(run_cli(train_args(out, "vanilla", 1), dir));
    std::string npz = dir / "grad.npz";
    std::vector<std::string> grad = {"grad", "--checkpoint", out + "/checkpoint.npz", "--batch", "4", "--out", npz};
    check_ok(run_cli(grad, dir));
    std::string first = read_bytes(npz);
    check_error(run_cli(grad, dir), {"grad: " + dir.path.string() + " already holds a run (grad.npz)", "--overwrite"});
    CHECK(read_bytes(npz) == first);
    grad.push_back("--overwrite");
    check_ok(run_cli(grad, dir));
    std::string json_path = dir / "e.json";
    std::vector<std::string> evaluate = {"evaluate", "--checkpoint", out + "/checkpoint.npz", "--out", json_path};
    check_ok(run_cli(evaluate, dir));
    check_error(run_cli(evaluate, dir), {"evaluate: ", "(e.json)", "--overwrite"});
}
