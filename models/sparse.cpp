#include "tapegrad/models/sparse.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/nn/losses.hpp"

namespace tapegrad::models {

template <class T>
SparseAutoencoder<T>::SparseAutoencoder(AutoencoderConfig config, SparseOptions options)
    : Autoencoder<T>(std::move(config)), options_(options) {
    if (this->config().latent_activation != "sigmoid") {
        tapegrad::detail::throw_value_error(fmt::format(
            "sparse: the KL penalty needs codes in (0, 1): latent_activation must be sigmoid, not {}",
            this->config().latent_activation));
    }
    if (!(options.beta >= 0) || !(options.lambda >= 0)) {
        tapegrad::detail::throw_value_error(
            fmt::format("sparse: beta {} and lambda {} must not be negative", options.beta, options.lambda));
    }
    weights_ = nn::weights_of(this->named_parameters());
}

template <class T>
Var<T> SparseAutoencoder<T>::loss(const Var<T>& x) {
    Var<T> code = this->encode(x);
    Var<T> error = nn::mse(this->decode(code), x);
    Var<T> activation = this->batch_mean(code);  // rho_hat, one per unit, over the whole batch
    Var<T> sparsity = nn::kl_bernoulli(options_.rho, activation);
    Var<T> decay = nn::l2_penalty<T>(weights_);
    terms_[0].value = error.item();
    terms_[1].value = static_cast<double>(xt::mean(activation.value())());
    terms_[2].value = sparsity.item();
    terms_[3].value = options_.lambda / 2 * decay.item();
    return error + static_cast<T>(options_.beta) * sparsity + static_cast<T>(options_.lambda / 2) * decay;
}

template <class T>
std::string SparseAutoencoder<T>::options_json() const {
    return nlohmann::json{{"rho", options_.rho}, {"beta", options_.beta}, {"lambda", options_.lambda}}.dump();
}

template class SparseAutoencoder<float>;
template class SparseAutoencoder<double>;

}  // namespace tapegrad::models
