// Experiment 3: vanilla, denoising (masking 0.3) and sparse 784-256-64-256-784 autoencoders on
// Fashion-MNIST (Debian's dataset-fashion-mnist, pixels / 255) for a few epochs of Adam, each with its
// test MSE beside PCA with 64 components and the mean image.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "tapegrad/autodiff.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/data.hpp"

using namespace tapegrad;

int main(int argc, char** argv) {
    CLI::App app{"vanilla, denoising and sparse autoencoders on Fashion-MNIST"};
    int epochs = 5;
    std::vector<std::string> variants = {"vanilla", "denoising", "sparse"};
    app.add_option("--epochs", epochs, "epochs per model");
    app.add_option("--variants", variants, "which variants")->delimiter(',');
    CLI11_PARSE(app, argc, argv);
    configure_blas(argv, 1);
    fmt::print("Fashion-MNIST, 784-256-64-256-784, Adam lr 1e-3, batch 128, {} epochs\nBLAS: {}\n", epochs,
               blas_summary());

    nn::Dataset train = nn::load_dataset("fashion-mnist", "train");
    nn::Dataset test = nn::load_dataset("fashion-mnist", "test");
    train.x /= 255.0f;
    test.x /= 255.0f;
    Array<float> mean_image = xt::mean(train.x, {0});
    double mean_mse = xt::mean(xt::square(test.x - mean_image))();
    models::Pca<float> pca({.components = 64});
    double pca_mse = xt::mean(pca.fit(train.x).reconstruction_error(test.x))();

    for (const std::string& variant : variants) {
        models::AutoencoderConfig config{.sizes = {784, 256, 64}, .activation = "relu",
                                         .latent_activation = variant == "sparse" ? "sigmoid" : "relu",
                                         .output_activation = "sigmoid", .seed = 1};
        std::string options = variant == "denoising" ? R"({"corruption": "masking", "level": 0.3})"
                              : variant == "sparse"  ? R"({"rho": 0.05, "beta": 0.1, "lambda": 1e-5})"
                                                     : "{}";
        auto model = models::make_autoencoder<float>(variant, config, options);
        models::Trainer<float> trainer(*model, {.epochs = epochs, .batch_size = 128, .lr = 1e-3,
                                                .validation_fraction = 0, .restore_best = false});
        models::History history = trainer.fit(train, nullptr);
        double seconds = 0;
        for (const auto& e : history.epochs) {
            seconds += e.seconds;
        }
        double mse = xt::mean(model->reconstruction_error(test.x))();
        fmt::print("{:<10} test MSE {:.5f}  (PCA 64: {:.5f}, mean image: {:.5f})  {:.2f} s/epoch\n", variant, mse,
                   pca_mse, mean_mse, seconds / epochs);
    }
    return 0;
}
