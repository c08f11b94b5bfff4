#include "tapegrad/models/contractive.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/autodiff/tape.hpp"
#include "tapegrad/nn/losses.hpp"

namespace tapegrad::models {

template <class T>
ContractiveAutoencoder<T>::ContractiveAutoencoder(AutoencoderConfig config, ContractiveOptions options)
    : Autoencoder<T>(std::move(config)), options_(options) {
    if (!(options.lambda >= 0)) {
        tapegrad::detail::throw_value_error(fmt::format("contractive: lambda {} must not be negative", options.lambda));
    }
}

template <class T>
Var<T> ContractiveAutoencoder<T>::jacobian_penalty(const Var<T>& x) {
    // Each sample's code depends on that sample alone, so the gradient of the batch sum of unit j is
    // row i of J_i for every sample i at once: one backward per unit gives the whole Jacobian.
    GradMode on(true);
    Var<T> input(x.value(), true, "input");
    Var<T> code = this->encode(input);
    std::vector<Var<T>> wrt = {input};
    Var<T> total = Var<T>::scalar(T(0));
    std::size_t units = code.shape()[1];
    for (std::size_t j = 0; j < units; ++j) {
        Var<T> row = grad(sum(slice(code, 1, j, j + 1)), std::span<const Var<T>>(wrt), {.create_graph = true})[0];
        total = total + sum(row * row);
    }
    return total / static_cast<T>(x.shape()[0]);
}

template <class T>
Var<T> ContractiveAutoencoder<T>::loss(const Var<T>& x) {
    Var<T> error = nn::mse(this->reconstruct(x), x);
    Var<T> penalty = jacobian_penalty(x);
    terms_[0].value = error.item();
    terms_[1].value = penalty.item();
    return error + static_cast<T>(options_.lambda) * penalty;
}

template <class T>
std::string ContractiveAutoencoder<T>::options_json() const {
    return nlohmann::json{{"lambda", options_.lambda}}.dump();
}

template class ContractiveAutoencoder<float>;
template class ContractiveAutoencoder<double>;

}  // namespace tapegrad::models
