// Variational autoencoder (Kingma and Welling 2014): the encoder gives the mean and log-variance of a
// Gaussian code, z = mu + exp(logvar / 2) * eps with eps ~ N(0, I) (the reparameterisation), and the loss
// is the negative ELBO: reconstruction term + KL(q(z|x) || N(0, I)), both summed over features and
// averaged over the batch. encode() gives the mean, so reconstructions and codes are deterministic.
#pragma once

#include <array>

#include "tapegrad/models/autoencoder.hpp"

namespace tapegrad::models {

struct VariationalOptions {
    // The decoder's negative log-likelihood per sample, up to constants: "bce", a Bernoulli decoder
    // (binary cross-entropy summed over features: a sigmoid output and data in [0, 1]); "mse", the sum of
    // squared errors over features, a Gaussian decoder of variance 1/2 (Kingma and Welling's unit variance
    // would be half that sum: this one weighs the reconstruction twice as much against the KL); or
    // "auto": bce where the output is a sigmoid, mse otherwise. With mse the code of a 64-32 model on the digits collapsed to half its
    // units and the mean image; bce kept 31 of 32. The model reports the reconstruction it resolved.
    std::string reconstruction = "auto";
    std::uint64_t seed = 0;
};

template <class T>
class VariationalAutoencoder : public Autoencoder<T> {
public:
    VariationalAutoencoder(AutoencoderConfig config, VariationalOptions options);

    // The posterior's mean and log-variance, each (samples, latent).
    std::pair<Var<T>, Var<T>> posterior(const Var<T>& x);
    Var<T> encode(const Var<T>& x) override;
    Var<T> loss(const Var<T>& x) override;
    // The ELBO per sample of the last loss() (its negative is the loss), and its two parts.
    double last_elbo() const { return last_elbo_; }
    double last_kl() const { return last_kl_; }

    std::string variant() const override { return "variational"; }
    std::string options_json() const override;
    NoiseSource& noise() { return noise_; }
    NoiseSource* noise_source() override { return &noise_; }
    std::span<const LossTerm> loss_terms() const override { return terms_; }

private:
    VariationalOptions options_;
    NoiseSource noise_;
    double last_elbo_ = 0;
    double last_kl_ = 0;
    std::array<LossTerm, 3> terms_{{{"reconstruction"}, {"kl"}, {"elbo"}}};
};

extern template class VariationalAutoencoder<float>;
extern template class VariationalAutoencoder<double>;

}  // namespace tapegrad::models
