#include "tapegrad/nn/activations.hpp"

#include <fmt/format.h>

#include "tapegrad/autodiff/ops.hpp"

namespace tapegrad::nn {

template <class T>
Var<T> ReLU<T>::forward(const Var<T>& x) {
    return relu(x);
}

template <class T>
Var<T> LeakyReLU<T>::forward(const Var<T>& x) {
    return leaky_relu(x, slope_);
}

template <class T>
std::string LeakyReLU<T>::describe() const {
    return fmt::format("LeakyReLU({:g})", slope_);
}

template <class T>
Var<T> Sigmoid<T>::forward(const Var<T>& x) {
    return sigmoid(x);
}

template <class T>
Var<T> Tanh<T>::forward(const Var<T>& x) {
    return tanh(x);
}

template <class T>
Var<T> Softplus<T>::forward(const Var<T>& x) {
    return softplus(x);
}

template <class T>
Dropout<T>::Dropout(double p, std::uint64_t seed) : p_(p), rng_(seed) {
    if (!(p >= 0 && p < 1)) {
        detail::throw_value_error(fmt::format("Dropout: probability {} outside [0, 1)", p));
    }
}

template <class T>
Var<T> Dropout<T>::forward(const Var<T>& x) {
    if (!this->training() || p_ == 0) {
        return x;
    }
    // The mask is a constant: dropped elements get no gradient, kept ones get it scaled like the value.
    Var<T> mask = detail::empty<T>(x.shape());
    std::bernoulli_distribution keep(1 - p_);
    T scale = static_cast<T>(1 / (1 - p_));
    for (T& m : mask.mutable_value()) {
        m = keep(rng_) ? scale : T(0);
    }
    return x * mask;
}

template <class T>
std::string Dropout<T>::describe() const {
    return fmt::format("Dropout({:g})", p_);
}

template <class T>
std::shared_ptr<Module<T>> make_activation(std::string_view name) {
    if (name == "identity") return std::make_shared<Identity<T>>();
    if (name == "relu") return std::make_shared<ReLU<T>>();
    if (name == "leaky_relu") return std::make_shared<LeakyReLU<T>>();
    if (name == "sigmoid") return std::make_shared<Sigmoid<T>>();
    if (name == "tanh") return std::make_shared<Tanh<T>>();
    if (name == "softplus") return std::make_shared<Softplus<T>>();
    detail::throw_value_error(fmt::format(
        "activation: unknown \"{}\" (known: identity, relu, leaky_relu, sigmoid, tanh, softplus)", name));
}

template class ReLU<float>;
template class ReLU<double>;
template class LeakyReLU<float>;
template class LeakyReLU<double>;
template class Sigmoid<float>;
template class Sigmoid<double>;
template class Tanh<float>;
template class Tanh<double>;
template class Softplus<float>;
template class Softplus<double>;
template class Identity<float>;
template class Identity<double>;
template class Dropout<float>;
template class Dropout<double>;
template std::shared_ptr<Module<float>> make_activation<float>(std::string_view);
template std::shared_ptr<Module<double>> make_activation<double>(std::string_view);

}  // namespace tapegrad::nn
