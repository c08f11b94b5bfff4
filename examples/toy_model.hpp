// Tutorial 000's network, for examples/toy2d.cpp and its test: 2 -> 1 -> 1 -> 1 -> 2 with tanh after every
// layer, which is the library's Autoencoder with encoder sizes {2, 1, 1} and tanh for the hidden layers, the
// code and (in the tutorial) the output. Its parameters come in the tutorial's order, we1 be1 we2 be2 wd1
// bd1 wd2 bd2, each weight shaped (in, out) as its numpy arrays are.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "tapegrad/models/autoencoder.hpp"
#include "tapegrad/models/trainer.hpp"

namespace tapegrad::examples {

inline models::AutoencoderConfig toy_config(std::string output_activation, nn::Init init, std::uint64_t seed) {
    return {.sizes = {2, 1, 1}, .activation = "tanh", .latent_activation = "tanh",
            .output_activation = std::move(output_activation), .init = init, .seed = seed};
}

// The tutorial's initialisation: np.random.randn for every weight, and for the biases too in its untrained
// forward pass (cell 35), zeros in its training (cell 8).
template <class T>
void tutorial_init(models::Autoencoder<T>& model, std::mt19937_64& rng, bool random_biases) {
    std::normal_distribution<double> randn;
    for (auto& p : model.named_parameters()) {
        bool bias = p.name.ends_with(".bias");
        for (T& v : p.var.mutable_value()) {
            v = bias && !random_biases ? T(0) : static_cast<T>(randn(rng));
        }
    }
}

// The tutorial's training (cell 9): 1000 full-batch steps of lr 0.05 times its hand-written gradient,
// which is twice the true gradient of its loss (the loss is a mean over N * 2 elements, the gradient is
// divided by N only). Here: plain SGD at lr 2 * 0.05 on the engine's true gradient, the same steps.
constexpr double tutorial_lr = 0.05;
constexpr int tutorial_epochs = 1000;

inline models::TrainerOptions tutorial_training(std::size_t points, int epochs, std::uint64_t seed) {
    return {.epochs = epochs, .batch_size = points, .optimizer = "sgd", .lr = 2 * tutorial_lr, .momentum = 0,
            .validation_fraction = 0, .restore_best = false, .seed = seed};
}

}  // namespace tapegrad::examples
