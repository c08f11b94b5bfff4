// A new autoencoder variant as a user writes one, outside the library: an L1 penalty on the code
// (activity regularisation, "sparse" by another route than the KL of the sparse variant). The variant is
// the thirty lines of the class; main proves its gradients right in double and trains it on the digits.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <xtensor/xview.hpp>

#include "tapegrad/autodiff.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/losses.hpp"

using namespace tapegrad;

// The variant: reconstruction MSE + alpha * mean |code|.
template <class T>
class L1CodeAutoencoder : public models::Autoencoder<T> {
public:
    L1CodeAutoencoder(models::AutoencoderConfig config, double alpha)
        : models::Autoencoder<T>(std::move(config)), alpha_(alpha) {}

    Var<T> loss(const Var<T>& x) override {
        Var<T> code = this->encode(x);
        Var<T> error = nn::mse(this->decode(code), x);
        return error + static_cast<T>(alpha_) * mean(abs(code));
    }
    std::string variant() const override { return "l1-code"; }
    std::string options_json() const override { return fmt::format(R"({{"alpha": {}}})", alpha_); }

private:
    double alpha_;
};

int main(int argc, char** argv) {
    CLI::App app{"a user-written autoencoder variant: gradient check, then training on the digits"};
    int epochs = 60;
    app.add_option("--epochs", epochs, "training epochs")->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    configure_blas(argv, 1);

    models::AutoencoderConfig config{.sizes = {64, 32, 8}, .activation = "relu", .latent_activation = "relu",
                                     .output_activation = "sigmoid", .init = nn::Init::xavier_uniform, .seed = 1};

    // 1. Its gradients, in double, over every parameter, on a small batch of real digits.
    nn::Dataset digits = nn::load_dataset("digits");
    auto [train, test] = nn::train_test_split(digits, 0.2, 0);
    train.x /= 16.0f;
    test.x /= 16.0f;
    L1CodeAutoencoder<double> checked(config, 1e-2);
    Var<double> batch(xt::cast<double>(Array<float>(xt::view(train.x, xt::range(0, 8), xt::all()))));
    GradcheckReport report = gradcheck([&] { return checked.loss(batch); }, checked.parameters());
    fmt::print("{}", report.str());
    if (!report.passed) {
        return 1;
    }

    // 2. Training it, in float, with the library's Trainer, beside PCA with as many components.
    L1CodeAutoencoder<float> model(config, 1e-2);
    models::Trainer<float>(model, {.epochs = epochs, .batch_size = 32, .lr = 3e-3}).fit(train);
    double mse = xt::mean(model.reconstruction_error(test.x))();
    models::Pca<float> pca({.components = 8});
    double pca_mse = xt::mean(pca.fit(train.x).reconstruction_error(test.x))();
    NoGrad off;
    Array<float> codes = model.encode(Var<float>(test.x)).value();
    double zeros = static_cast<double>(xt::sum(xt::equal(codes, 0.0f))()) / static_cast<double>(codes.size());
    fmt::print("l1-code autoencoder 64-32-8: test MSE {:.5f} (PCA with 8 components {:.5f}); {:.0f}% of code "
               "activations are exactly 0\n",
               mse, pca_mse, 100 * zeros);
    return 0;
}
