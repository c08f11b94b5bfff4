// A two-layer autoencoder on scikit-learn's 8x8 digits, built from nn alone: Linear(64, 16) + sigmoid,
// Linear(16, 64) + sigmoid, trained with Adam on 80% of the digits. Halfway it saves a checkpoint; a
// fresh model and optimizer load it and finish the training. The resumed run must end exactly where an
// unbroken run does, and the example says whether it did, with the test MSE and the mean-image baseline.
#include <chrono>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tapegrad/autodiff.hpp"
#include "tapegrad/nn/activations.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/io/datasets.hpp"
#include "tapegrad/nn/linear.hpp"
#include "tapegrad/nn/losses.hpp"
#include "tapegrad/nn/optim.hpp"
#include "tapegrad/nn/scaling.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

namespace {

std::shared_ptr<Sequential<float>> make_model(std::size_t latent, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto model = std::make_shared<Sequential<float>>();
    model->add(std::make_shared<Linear<float>>(64, latent, rng, LinearOptions{.init = Init::xavier_uniform}));
    model->add(std::make_shared<Sigmoid<float>>());
    model->add(std::make_shared<Linear<float>>(latent, 64, rng, LinearOptions{.init = Init::xavier_uniform}));
    model->add(std::make_shared<Sigmoid<float>>());
    return model;
}

// Epochs [first, last) of Adam on mini-batches; the batch order depends only on (seed, epoch), so a
// resumed run sees the same batches as an unbroken one.
void train(Module<float>& model, Optimizer<float>& optimizer, const Dataset& data, int first, int last) {
    for (int epoch = first; epoch < last; ++epoch) {
        double total = 0;
        std::size_t seen = 0;
        for (const Batch& batch : Batches(data, {.batch_size = 64, .seed = 1}, static_cast<std::uint64_t>(epoch))) {
            Var<float> x(batch.x);
            optimizer.zero_grad();
            Var<float> loss = mse(model(x), x);
            loss.backward();
            optimizer.step();
            total += loss.item() * static_cast<double>(batch.x.shape(0));
            seen += batch.x.shape(0);
        }
        if ((epoch + 1) % 10 == 0) {
            fmt::print("epoch {:3}  train MSE {:.5f}\n", epoch + 1, total / static_cast<double>(seen));
        }
    }
}

double test_mse(Module<float>& model, const Dataset& test) {
    NoGrad off;
    Var<float> x(test.x);
    return mse(model(x), x).item();
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"two-layer autoencoder on the digits with nn alone, saved and resumed halfway"};
    std::string out_dir = "runs/digits_nn";
    int epochs = 60;
    std::size_t latent = 16;
    app.add_option("--out", out_dir, "folder for the checkpoint");
    app.add_option("--epochs", epochs, "training epochs")->check(CLI::Range(2, 100000));
    app.add_option("--latent", latent, "latent units")->check(CLI::PositiveNumber);
    bool overwrite = false;
    app.add_flag("--overwrite", overwrite, "replace the checkpoint an earlier run left in --out");
    CLI11_PARSE(app, argc, argv);
    try {
        claim_output_folder("digits_nn", out_dir, {"checkpoint.npz"}, overwrite);
    } catch (const tapegrad::Error& e) {
        fmt::print(stderr, "{}\n", e.what());
        return 1;
    }
    configure_blas(argv, 1);
    fmt::print("BLAS: {}\n", blas_summary());
    FlushDenormals ftz;
    fmt::print("flush-to-zero and denormals-are-zero: {}\n", denormals_flushed() ? "on" : "off");

    Dataset digits = load_dataset("digits");
    auto [train_set, test_set] = train_test_split(digits, 0.2, 0);
    MinMaxScaler scaler(MinMaxScaler::Scope::global);  // 0..16 -> 0..1, fitted on the training part
    train_set.x = scaler.fit_transform(train_set.x);
    test_set.x = scaler.transform(test_set.x);
    fmt::print("digits: {} train, {} test, 64 features\n", train_set.size(), test_set.size());

    auto start = std::chrono::steady_clock::now();
    int half = epochs / 2;
    std::filesystem::create_directories(out_dir);
    std::string path = out_dir + "/checkpoint.npz";

    // The unbroken run, checkpointed halfway.
    auto model = make_model(latent, 7);
    Adam<float> adam(model->named_parameters(), {.lr = 1e-2});
    train(*model, adam, train_set, 0, half);
    save_checkpoint<float>(path, *model, &adam, fmt::format(R"({{"sizes": [64, {}, 64]}})", latent),
                           fmt::format(R"({{"epoch": {}}})", half));
    fmt::print("saved {} after epoch {}\n", path, half);
    train(*model, adam, train_set, half, epochs);
    double unbroken = test_mse(*model, test_set);

    // A fresh model and optimizer, resumed from the checkpoint.
    auto resumed = make_model(latent, 12345);
    Adam<float> resumed_adam(resumed->named_parameters(), {.lr = 1e-2});
    load_checkpoint<float>(path, *resumed, &resumed_adam);
    fmt::print("resumed from {} at step {}\n", path, resumed_adam.steps());
    train(*resumed, resumed_adam, train_set, half, epochs);
    double after_resume = test_mse(*resumed, test_set);

    // The baseline: predict the training mean image for every test digit.
    Var<float> mean_image = mean(Var<float>(train_set.x), 0);
    Var<float> off_mean = Var<float>(test_set.x) - mean_image;
    double mean_baseline = mean(off_mean * off_mean).item();

    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("test MSE: resumed {:.6f}, unbroken {:.6f} ({}); mean-image baseline {:.6f}; {:.2f} s\n", after_resume,
               unbroken, after_resume == unbroken ? "identical" : "DIFFERENT", mean_baseline, seconds);
    return after_resume == unbroken && after_resume < mean_baseline ? 0 : 1;
}
