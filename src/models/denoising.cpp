#include "tapegrad/models/denoising.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tapegrad/nn/losses.hpp"

namespace tapegrad::models {

std::string_view to_string(Corruption c) {
    switch (c) {
    case Corruption::masking: return "masking";
    case Corruption::gaussian: return "gaussian";
    case Corruption::salt_and_pepper: return "salt_and_pepper";
    }
    return "unknown";
}

Corruption parse_corruption(std::string_view name) {
    for (Corruption c : {Corruption::masking, Corruption::gaussian, Corruption::salt_and_pepper}) {
        if (to_string(c) == name) {
            return c;
        }
    }
    tapegrad::detail::throw_value_error(
        fmt::format("denoising: unknown corruption \"{}\" (known: masking, gaussian, salt_and_pepper)", name));
}

template <class T>
DenoisingAutoencoder<T>::DenoisingAutoencoder(AutoencoderConfig config, DenoisingOptions options)
    : Autoencoder<T>(std::move(config)), options_(options), noise_(options.seed) {
    bool probability = options.corruption != Corruption::gaussian;
    if (!(options.level >= 0) || (probability && options.level > 1)) {
        tapegrad::detail::throw_value_error(fmt::format("denoising: {} level {} outside {}", to_string(options.corruption),
                                                        options.level, probability ? "[0, 1]" : "[0, inf)"));
    }
}

template <class T>
Array<T> DenoisingAutoencoder<T>::corrupt(const Array<T>& x) {
    std::mt19937_64& rng = noise_.draw();
    Array<T> out = x;
    std::uniform_real_distribution<double> u(0, 1);
    std::normal_distribution<double> normal(0, options_.level);
    for (T& v : out) {
        switch (options_.corruption) {
        case Corruption::masking:
            if (u(rng) < options_.level) {
                v = T(0);
            }
            break;
        case Corruption::gaussian: v += static_cast<T>(normal(rng)); break;
        case Corruption::salt_and_pepper:
            if (u(rng) < options_.level) {
                v = u(rng) < 0.5 ? T(0) : T(1);
            }
            break;
        }
    }
    return out;
}

template <class T>
Var<T> DenoisingAutoencoder<T>::loss(const Var<T>& x) {
    Var<T> noisy(corrupt(x.value()));
    return nn::mse(this->reconstruct(noisy), x);
}

template <class T>
std::string DenoisingAutoencoder<T>::options_json() const {
    return nlohmann::json{{"corruption", std::string(to_string(options_.corruption))},
                          {"level", options_.level},
                          {"seed", options_.seed}}
        .dump();
}

template class DenoisingAutoencoder<float>;
template class DenoisingAutoencoder<double>;

}  // namespace tapegrad::models
