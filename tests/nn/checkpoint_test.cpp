// Checkpoints: numpy opens them and writes them back, a resumed run continues bit for bit, and a
// checkpoint that does not fit says exactly how, changing nothing.
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "scratch.hpp"
#include "tapegrad/nn/activations.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"
#include "tapegrad/nn/linear.hpp"
#include "tapegrad/nn/losses.hpp"
#include "tapegrad/nn/optim.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;
namespace fs = std::filesystem;
using test::TempDir;
using test::run_python;

namespace {

template <class T>
std::shared_ptr<Sequential<T>> make_model(std::size_t hidden, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto model = std::make_shared<Sequential<T>>();
    model->add(std::make_shared<Linear<T>>(6, hidden, rng)).add(std::make_shared<Tanh<T>>());
    model->add(std::make_shared<Linear<T>>(hidden, 6, rng)).add(std::make_shared<Sigmoid<T>>());
    return model;
}

}  // namespace

TEST_CASE("numpy opens a checkpoint, and a checkpoint numpy rewrote loads back") {
    TempDir scratch("tapegrad_checkpoint_test");
    auto model = make_model<float>(4, 1);
    Adam<float> adam(model->named_parameters(), {.lr = 0.01});
    Var<float> x(test::random_array<float>({8, 6}, 2, 0, 1));
    for (int i = 0; i < 3; ++i) {
        adam.zero_grad();
        mse((*model)(x), x).backward();
        adam.step();
    }
    std::string path = scratch / "numpy.npz";
    save_checkpoint<float>(path, *model, &adam, R"({"sizes": [6, 4, 6]})", R"({"epoch": 3})");
    // numpy reads every parameter by name, the optimizer's buffers and the JSON config; then it writes
    // the parameters back doubled, in a file of its own.
    run_python(scratch, fmt::format(
        "import json, numpy as np\n"
        "f = np.load(\"{0}\")\n"
        "assert f[\"0.weight\"].shape == (6, 4) and f[\"0.weight\"].dtype == np.float32, f[\"0.weight\"]\n"
        "assert f[\"optimizer/exp_avg.2.weight\"].shape == (4, 6)\n"
        "c = json.loads(str(f[\"config\"]))\n"
        "assert c[\"model\"][\"sizes\"] == [6, 4, 6] and c[\"extra\"][\"epoch\"] == 3, c\n"
        "assert c[\"optimizer\"][\"kind\"] == \"adam\" and c[\"optimizer\"][\"steps\"] == 3, c\n"
        "out = {{k: (f[k] * 2 if k in c[\"parameters\"] else f[k]) for k in f.files}}\n"
        "np.savez(\"{1}\", **out)\n",
        path, scratch / "doubled.npz"));
    auto again = make_model<float>(4, 99);
    Adam<float> adam_again(again->named_parameters(), {.lr = 0.01});
    load_checkpoint<float>(scratch / "doubled.npz", *again, &adam_again);
    auto original = model->named_parameters();
    auto loaded = again->named_parameters();
    for (std::size_t i = 0; i < original.size(); ++i) {
        CAPTURE(original[i].name);
        CHECK(loaded[i].var.value() == original[i].var.value() * 2.0f);
    }
    CHECK(adam_again.steps() == 3);
}

TEST_CASE_TEMPLATE("a resumed run continues exactly as the unbroken one", T, float, double) {
    TempDir scratch("tapegrad_checkpoint_test");
    Var<T> x(test::random_array<T>({16, 6}, 3, 0, 1));
    auto train = [&](Sequential<T>& model, Adam<T>& adam, int steps) {
        std::vector<T> losses;
        for (int i = 0; i < steps; ++i) {
            adam.zero_grad();
            Var<T> loss = mse(model(x), x);
            losses.push_back(loss.item());
            loss.backward();
            adam.step();
        }
        return losses;
    };
    auto model = make_model<T>(5, 4);
    Adam<T> adam(model->named_parameters(), {.lr = 0.02});
    train(*model, adam, 5);
    std::string path = scratch / "resume.npz";
    save_checkpoint<T>(path, *model, &adam);
    std::vector<T> unbroken = train(*model, adam, 7);

    auto resumed = make_model<T>(5, 123);  // other weights: all of them must come from the file
    Adam<T> resumed_adam(resumed->named_parameters(), {.lr = 0.02});
    load_checkpoint<T>(path, *resumed, &resumed_adam);
    CHECK(train(*resumed, resumed_adam, 7) == unbroken);  // bit for bit
}

TEST_CASE("a checkpoint that does not fit says how, and changes nothing") {
    TempDir scratch("tapegrad_checkpoint_test");
    auto model = make_model<float>(4, 5);
    Adam<float> adam(model->named_parameters(), {});
    std::string path = scratch / "mismatch.npz";
    save_checkpoint<float>(path, *model, nullptr);

    auto wider = make_model<float>(5, 6);
    Array<float> before = wider->named_parameters()[0].var.value();
    CHECK_THROWS_WITH_AS(load_checkpoint<float>(path, *wider),
                         fmt::format("checkpoint {}: 0.weight has shape (6, 5), file has (6, 4); 0.bias has shape (5,), "
                                     "file has (4,); 2.weight has shape (5, 6), file has (4, 6)",
                                     path)
                             .c_str(),
                         ValueError);
    CHECK(wider->named_parameters()[0].var.value() == before);

    auto in_double = make_model<double>(4, 5);
    CHECK_THROWS_WITH(load_checkpoint<double>(path, *in_double),
                      doctest::Contains("holds float32 parameters, the model is float64"));
    CHECK_THROWS_WITH(load_checkpoint<float>(path, *model, &adam), doctest::Contains("holds no optimizer state"));

    Sequential<float> smaller;
    smaller.add(std::make_shared<Linear<float>>(6, 4));
    CHECK_THROWS_WITH(load_checkpoint<float>(path, smaller),
                      doctest::Contains("2.weight is in the file but not in the model; 2.bias is in the file but not in "
                                        "the model"));
}

TEST_CASE("a failed save leaves the previous checkpoint whole; a foreign file is named") {
    TempDir scratch("tapegrad_checkpoint_test");
    auto model = make_model<float>(4, 7);
    fs::path dir = scratch / "a_folder";
    fs::create_directories(dir / "model.npz");  // a folder where the file should go: the rename fails
    CHECK_THROWS(save_checkpoint<float>((dir / "model.npz").string(), *model));
    CHECK(fs::is_directory(dir / "model.npz"));
    for (const auto& entry : fs::directory_iterator(dir)) {
        CHECK(entry.path().filename() == "model.npz");  // no temporary left behind
    }
    std::string path = scratch / "keep.npz";
    save_checkpoint<float>(path, *model);
    std::uintmax_t size = fs::file_size(path);
    CHECK_THROWS_AS(save_checkpoint<float>(path, *model, nullptr, "not json"), ValueError);
    CHECK(fs::file_size(path) == size);
    load_checkpoint<float>(path, *model);

    std::string foreign = scratch / "foreign.npz";
    run_python(scratch, fmt::format("import numpy as np; np.savez(\"{}\", a=np.zeros(3))", foreign));
    CHECK_THROWS_WITH_AS(load_checkpoint<float>(foreign, *model),
                         fmt::format("checkpoint {}: no config text: not a tapegrad checkpoint", foreign).c_str(),
                         FileError);
}
