// Tutorial 002's data and its two recipes, which every experiment of examples/digits_tutorial.cpp trains
// with.
//
// Data: scikit-learn's digits divided by 16, split as train_test_split(X, y, test_size=0.2,
// random_state=42) splits them (1437 training rows, 360 test rows), in both protocols: the split is the
// one thing of the tutorial's random stream that C++ reproduces exactly. Its np.random.seed(42) stream
// also drives the weights, the shuffles and the noise, in an order we do not replay, so a tutorial run
// here is one draw of the same recipe, repeated over seeds.
//
// The model, in both protocols: 64-h-d-h-64 (h = 32 unless said), Xavier uniform weights, zero biases,
// ReLU hidden layers, a linear code, a sigmoid output.
//   tutorial:  per-sample SGD (batch 1, no momentum), lr 0.01, 30 epochs (50 for the denoising and the
//              anomaly models), the loss the mean of (x_hat - x)^2 over the 64 pixels, whose gradient
//              2 (x_hat - x) / 64 is the tutorial's backward; the last epoch's weights.
//   corrected: what `make demo` trains with (examples/digits_demo.cpp): Adam, lr 3e-3, batches of 32,
//              150 epochs, 10% of the training rows held out, ending with the weights of the epoch whose
//              held-out MSE was lowest.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include "tapegrad/autodiff.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/data.hpp"
#include "tutorial.hpp"

namespace tapegrad::examples::digits {

using models::Autoencoder;
using models::AutoencoderConfig;
using models::History;
using models::TrainerOptions;

struct Data {
    nn::Dataset train;
    nn::Dataset test;
};

inline Data load_data() {
    nn::Dataset digits = nn::load_dataset("digits");
    digits.x = digits.x / 16.0f;  // the tutorial's X = digits.data / 16.0
    auto [train, test] = nn::sklearn_train_test_split(digits, 0.2, 42);
    return {std::move(train), std::move(test)};
}

// A seed for one purpose of one run: the model's weights, the batch order, the corruption, the rows
// drawn for a figure, each from its own stream, so that adding a purpose changes no other.
inline std::uint64_t stream(std::uint64_t seed, std::uint64_t purpose) { return seed * 1000 + purpose; }

struct Recipe {
    Protocol protocol = Protocol::corrected;

    int epochs(int tutorial_epochs) const { return protocol == Protocol::tutorial ? tutorial_epochs : 150; }

    AutoencoderConfig config(std::size_t latent, std::uint64_t seed, std::size_t hidden = 32) const {
        return {.sizes = {64, hidden, latent}, .activation = "relu", .latent_activation = "identity",
                .output_activation = "sigmoid", .init = nn::Init::xavier_uniform, .seed = stream(seed, 1 + latent)};
    }

    TrainerOptions trainer(int tutorial_epochs, std::uint64_t seed) const {
        if (protocol == Protocol::tutorial) {
            return {.epochs = tutorial_epochs, .batch_size = 1, .optimizer = "sgd", .lr = 0.01, .momentum = 0,
                    .validation_fraction = 0, .restore_best = false, .seed = stream(seed, 500)};
        }
        return {.epochs = epochs(tutorial_epochs), .batch_size = 32, .optimizer = "adam", .lr = 3e-3,
                .validation_fraction = 0.1, .restore_best = true, .seed = stream(seed, 500)};
    }

    std::string describe(int tutorial_epochs) const {
        if (protocol == Protocol::tutorial) {
            return fmt::format("per-sample SGD, lr 0.01, {} epochs, last epoch's weights", tutorial_epochs);
        }
        return "Adam lr 3e-3, batches of 32, 150 epochs, weights of the best epoch on 10% held out";
    }
};

// A trained model with its history and the seconds its training took.
struct Trained {
    std::unique_ptr<Autoencoder<float>> model;
    History history;
    double seconds = 0;
};

template <class Model = Autoencoder<float>, class... Extra>
Trained train(const Recipe& recipe, const nn::Dataset& data, int tutorial_epochs, std::uint64_t seed,
              AutoencoderConfig config, Extra&&... extra) {
    auto model = std::make_unique<Model>(std::move(config), std::forward<Extra>(extra)...);
    auto start = std::chrono::steady_clock::now();
    History history = models::Trainer<float>(*model, recipe.trainer(tutorial_epochs, seed)).fit(data);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return {std::move(model), std::move(history), seconds};
}

inline double mean_of(const Array<float>& a) { return static_cast<double>(xt::mean(a)()); }

// The tutorial's test MSE: each sample's mean squared error over its pixels, averaged over the samples.
inline double test_mse(Autoencoder<float>& model, const Array<float>& x) {
    return mean_of(model.reconstruction_error(x));
}

inline double mse_between(const Array<float>& a, const Array<float>& b) {
    return static_cast<double>(xt::mean(xt::square(a - b))());
}

inline Array<float> reconstruct(Autoencoder<float>& model, const Array<float>& x) {
    NoGrad off;
    return model.reconstruct(Var<float>(x)).value();
}

inline Array<float> encode(Autoencoder<float>& model, const Array<float>& x) {
    NoGrad off;
    return model.encode(Var<float>(x)).value();
}

inline Array<float> rows(const Array<float>& x, std::size_t begin, std::size_t end) {
    return xt::view(x, xt::range(begin, end), xt::all());
}

// The digits of the rows `shown`, to label the columns of a figure of those rows.
inline std::vector<std::string> digit_names(const std::vector<std::int64_t>& labels,
                                            const std::vector<std::size_t>& shown) {
    std::vector<std::string> names;
    for (std::size_t i : shown) {
        names.push_back(fmt::format("{}", labels[i]));
    }
    return names;
}

inline std::vector<double> train_losses(const History& h) {
    std::vector<double> v;
    for (const auto& e : h.epochs) {
        v.push_back(e.train_loss);
    }
    return v;
}

inline std::vector<double> epoch_numbers(const History& h) {
    std::vector<double> v;
    for (const auto& e : h.epochs) {
        v.push_back(double(e.epoch));
    }
    return v;
}

}  // namespace tapegrad::examples::digits

namespace tapegrad::examples::digits {

// What an experiment runs with: the options, the recipe of the protocol, the data, its --out folder.
struct Context {
    TutorialArgs args;
    Recipe recipe;
    Data data;
    std::string out;
    std::vector<std::size_t> latents{};  // --latents: the only latent sizes to run, when not empty
    int epochs = 0;                      // --epochs: how long the `epochs` experiment trains; 0: its default

    // The experiment's latent sizes, or those of --latents.
    std::vector<std::size_t> latents_or(std::vector<std::size_t> all) const { return latents.empty() ? all : latents; }

    std::string path(const std::string& file) const { return out + "/" + file; }
    bool tutorial() const { return args.protocol == Protocol::tutorial; }
    // "tutorial protocol" or "corrected protocol", for figure titles.
    std::string protocol_name() const { return fmt::format("{} protocol", to_string(args.protocol)); }
};

}  // namespace tapegrad::examples::digits
