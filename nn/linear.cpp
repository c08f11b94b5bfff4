#include "tapegrad/nn/linear.hpp"

#include <fmt/format.h>

#include "tapegrad/autodiff/ops.hpp"

namespace tapegrad::nn {

template <class T>
Linear<T>::Linear(std::size_t in, std::size_t out, LinearOptions options) : in_(in), out_(out) {
    std::mt19937_64 rng(options.seed);
    create(rng, options);
}

template <class T>
Linear<T>::Linear(std::size_t in, std::size_t out, std::mt19937_64& rng, LinearOptions options) : in_(in), out_(out) {
    create(rng, options);
}

template <class T>
void Linear<T>::create(std::mt19937_64& rng, const LinearOptions& options) {
    weight_ = this->register_parameter("weight", init_weight<T>(options.init, in_, out_, rng));
    if (options.bias) {
        bias_ = this->register_parameter("bias", init_bias<T>(options.init, in_, out_, rng));
    }
}

template <class T>
void Linear<T>::check_input(const Var<T>& x) const {
    if (x.ndim() != 2 || x.shape()[1] != in_) {
        detail::throw_shape_error(
            fmt::format("{}: input has shape {}, expected (batch, {})", describe(), tapegrad::to_string(x.shape()), in_));
    }
}

template <class T>
Var<T> Linear<T>::forward(const Var<T>& x) {
    check_input(x);
    return bias_.defined() ? linear(x, weight_, bias_) : matmul(x, weight_);
}

template <class T>
Var<T> Linear<T>::forward_activated(const Var<T>& x, Activation act) {
    if (!bias_.defined()) {
        return {};
    }
    check_input(x);
    return linear(x, weight_, bias_, act);
}

template <class T>
std::string Linear<T>::describe() const {
    return fmt::format("Linear({}, {}{})", in_, out_, bias_.defined() ? "" : ", bias=false");
}

template class Linear<float>;
template class Linear<double>;

}  // namespace tapegrad::nn
