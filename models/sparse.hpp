// Sparse autoencoder, the UFLDL objective (Ng, CS294A notes):
//   MSE + beta * sum_j KL(rho || rho_hat_j) + lambda / 2 * sum ||W||^2,
// where rho_hat_j is unit j's mean activation over the batch. The code must lie in (0, 1), so the latent
// activation is a sigmoid.
#pragma once

#include <array>

#include "tapegrad/models/autoencoder.hpp"

namespace tapegrad::models {

// The MSE here is a mean over features where UFLDL sums half the squares, so UFLDL's beta 3 and lambda
// 1e-4 weigh d / 2 times more here (as UFLDL's 1176 and 0.039 on 784 pixels): with them every unit sat
// at rho, and the model of the README did 6.4x worse than PCA on Fashion-MNIST. These defaults keep the
// penalties in proportion: the code's mean activation ends near rho (0.108 there), at 1.2x PCA.
struct SparseOptions {
    double rho = 0.1;      // target mean activation
    double beta = 3e-3;    // weight of the sparsity penalty
    double lambda = 1e-6;  // weight decay on the weights (not the biases)
};

template <class T>
class SparseAutoencoder : public Autoencoder<T> {
public:
    SparseAutoencoder(AutoencoderConfig config, SparseOptions options);
    Var<T> loss(const Var<T>& x) override;
    std::string variant() const override { return "sparse"; }
    std::string options_json() const override;
    std::span<const LossTerm> loss_terms() const override { return terms_; }

private:
    SparseOptions options_;
    std::vector<Var<T>> weights_;  // what the decay covers: every weight, no bias
    std::array<LossTerm, 4> terms_{{{"reconstruction_mse"}, {"mean_code_activation"}, {"sparsity_kl"}, {"weight_decay"}}};
};

extern template class SparseAutoencoder<float>;
extern template class SparseAutoencoder<double>;

}  // namespace tapegrad::models
