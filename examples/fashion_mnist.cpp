// Experiment 3: vanilla, denoising (masking 0.3) and sparse autoencoders with a code of 64 on Fashion-MNIST
// (Debian's dataset-fashion-mnist, pixels / 255) for a few epochs of Adam, each with its test MSE beside PCA
// with 64 components and the mean image. Two architectures:
//   dense  784-256-64-256-784, ReLU
//   conv   Conv(1->16, 3x3, stride 2, pad 1) ReLU, Conv(16->32) ReLU, Linear(1568 -> 64), and back:
//          Linear(64 -> 1568) ReLU, ConvTranspose(32->16, output padding 1) ReLU, ConvTranspose(16->1) sigmoid
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
    std::vector<std::string> architectures = {"dense", "conv"};
    app.add_option("--epochs", epochs, "epochs per model");
    app.add_option("--variants", variants, "which variants")->delimiter(',');
    app.add_option("--architectures", architectures, "dense, conv or both")
        ->delimiter(',')
        ->check(CLI::IsMember({"dense", "conv"}));
    CLI11_PARSE(app, argc, argv);
    configure_blas(argv, 1);
    fmt::print("Fashion-MNIST, code size 64, Adam lr 1e-3, batch 128, {} epochs\nBLAS: {}\nconvolutions: {}\n", epochs,
               blas_summary(), conv_summary());

    nn::Dataset train = nn::load_dataset("fashion-mnist", "train");
    nn::Dataset test = nn::load_dataset("fashion-mnist", "test");
    train.x /= 255.0f;
    test.x /= 255.0f;
    Array<float> mean_image = xt::mean(train.x, {0});
    double mean_mse = xt::mean(xt::square(test.x - mean_image))();
    models::Pca<float> pca({.components = 64});
    double pca_mse = xt::mean(pca.fit(train.x).reconstruction_error(test.x))();

    for (const std::string& architecture : architectures) {
        for (const std::string& variant : variants) {
            bool conv = architecture == "conv";
            models::AutoencoderConfig config{.sizes = {784, 256, 64}, .activation = "relu",
                                             .latent_activation = variant == "sparse" ? "sigmoid" : "relu",
                                             .output_activation = "sigmoid", .seed = 1};
            if (conv) {
                config.sizes = {784, 64};
                config.channels = {16, 32};
                config.latent_activation = variant == "sparse" ? "sigmoid" : "identity";
            }
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
            fmt::print("{:<6} {:<10} test MSE {:.5f}  (PCA 64: {:.5f}, mean image: {:.5f})  {:.2f} s/epoch  {} "
                       "parameters\n",
                       architecture, variant, mse, pca_mse, mean_mse, seconds / epochs, model->parameter_count());
        }
    }
    return 0;
}
