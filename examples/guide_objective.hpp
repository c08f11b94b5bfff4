// The autoencoder of tutorial 004 (the general guide) trained as its code trains it.
//
// The guide's _backward_pass starts from delta = x_hat - x at the linear output and takes weight gradients
// a^T delta / m and bias gradients mean(delta) over the batch of m rows: the gradient of
//     sum((x_hat - x)^2) / (2 m),
// half the squared error summed over the n features, averaged over the batch. The loss its fit() prints
// is the MSE, mean((x_hat - x)^2), whose gradient is 2 / n times that: with n = 8 features its step is 4
// times its learning rate along the MSE's gradient, with the 64 pixels of the digits 32 times. This
// model's loss() is that objective, so that a plain SGD step on it is the guide's update; its loss term
// "mse" is what the guide prints.
#pragma once

#include <array>
#include <span>

#include "tapegrad/autodiff.hpp"
#include "tapegrad/models/autoencoder.hpp"

namespace tapegrad::examples {

class GuideAutoencoder : public models::Autoencoder<float> {
public:
    using models::Autoencoder<float>::Autoencoder;

    Var<float> loss(const Var<float>& x) override {
        Var<float> squared = sum_squares(reconstruct(x) - x);
        float rows = static_cast<float>(x.shape()[0]);
        terms_[0].value = static_cast<double>(squared.item()) / static_cast<double>(x.size());
        return squared * (0.5f / rows);
    }
    std::span<const models::LossTerm> loss_terms() const override { return terms_; }

private:
    std::array<models::LossTerm, 1> terms_{{{"mse"}}};
};

// The guide's network: ReLU on every hidden layer and on the code, a linear output, Xavier uniform
// weights and zero biases (its _initialize_network).
inline models::AutoencoderConfig guide_config(std::vector<std::size_t> sizes, std::uint64_t seed) {
    return {.sizes = std::move(sizes), .activation = "relu", .latent_activation = "relu",
            .output_activation = "identity", .init = nn::Init::xavier_uniform, .seed = seed};
}

}  // namespace tapegrad::examples
