#include "tapegrad/models/variational.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/nn/losses.hpp"

namespace tapegrad::models {

template <class T>
VariationalAutoencoder<T>::VariationalAutoencoder(AutoencoderConfig config, VariationalOptions options)
    : Autoencoder<T>(config, config.sizes.empty() ? 0 : 2 * config.latent_size()),
      options_(std::move(options)),
      noise_(options_.seed) {
    if (this->config().latent_activation != "identity") {
        tapegrad::detail::throw_value_error(fmt::format(
            "variational: the encoder gives a mean and a log-variance, unbounded: latent_activation must be "
            "identity, not {}",
            this->config().latent_activation));
    }
    if (this->config().tied) {
        tapegrad::detail::throw_value_error("variational: tied weights are not supported");
    }
    bool sigmoid = this->config().output_activation == "sigmoid";
    if (options_.reconstruction == "auto") {
        options_.reconstruction = sigmoid ? "bce" : "mse";
    }
    if (options_.reconstruction != "mse" && options_.reconstruction != "bce") {
        tapegrad::detail::throw_value_error(
            fmt::format("variational: unknown reconstruction \"{}\" (known: auto, mse, bce)", options_.reconstruction));
    }
    if (options_.reconstruction == "bce" && !sigmoid) {
        tapegrad::detail::throw_value_error(fmt::format(
            "variational: bce needs probabilities: a sigmoid output for data in [0, 1], not {}; use mse",
            this->config().output_activation));
    }
}

template <class T>
std::pair<Var<T>, Var<T>> VariationalAutoencoder<T>::posterior(const Var<T>& x) {
    Var<T> out = Autoencoder<T>::encode(x);
    std::size_t k = this->config().latent_size();
    return {slice(out, 1, 0, k), slice(out, 1, k, 2 * k)};
}

template <class T>
Var<T> VariationalAutoencoder<T>::encode(const Var<T>& x) {
    return posterior(x).first;
}

template <class T>
Var<T> VariationalAutoencoder<T>::loss(const Var<T>& x) {
    auto [mu, logvar] = posterior(x);
    Var<T> eps = detail::empty<T>(mu.shape());
    this->draw_over_batch(eps.mutable_value().data(), mu.shape()[0], mu.shape()[1], [this](T* e, std::size_t n) {
        std::normal_distribution<double> normal;
        std::mt19937_64& rng = noise_.draw();
        for (std::size_t i = 0; i < n; ++i) {
            e[i] = static_cast<T>(normal(rng));
        }
    });
    Var<T> z = mu + exp(logvar * T(0.5)) * eps;
    Var<T> r = this->decode(z);
    auto batch = static_cast<T>(x.shape()[0]);
    auto features = static_cast<T>(x.shape()[1]);
    // Both terms per sample: the elementwise means scaled back to sums over features.
    Var<T> reconstruction = options_.reconstruction == "bce" ? nn::binary_cross_entropy(r, x) * features
                                                             : nn::mse(r, x) * features;
    Var<T> kl = sum(T(1) + logvar - mu * mu - exp(logvar)) * (T(-0.5) / batch);
    Var<T> total = reconstruction + kl;
    last_kl_ = kl.item();
    last_elbo_ = -total.item();
    terms_[0].value = reconstruction.item();
    terms_[1].value = last_kl_;
    terms_[2].value = last_elbo_;
    return total;
}

template <class T>
std::string VariationalAutoencoder<T>::options_json() const {
    return nlohmann::json{{"reconstruction", options_.reconstruction}, {"seed", options_.seed}}.dump();
}

template class VariationalAutoencoder<float>;
template class VariationalAutoencoder<double>;

}  // namespace tapegrad::models
