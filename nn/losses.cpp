#include "tapegrad/nn/losses.hpp"

#include <fmt/format.h>

#include "tapegrad/autodiff/ops.hpp"

namespace tapegrad::nn {

namespace {

template <class T>
void same_shape(std::string_view loss, const Var<T>& a, const Var<T>& b) {
    if (a.shape() != b.shape()) {
        detail::throw_shape_error(fmt::format("{}: prediction has shape {}, target {}", loss, tapegrad::to_string(a.shape()),
                                              tapegrad::to_string(b.shape())));
    }
}

}  // namespace

template <class T>
Var<T> mse(const Var<T>& prediction, const Var<T>& target) {
    same_shape("mse", prediction, target);
    return mean_squared_error(prediction, target);
}

template <class T>
Var<T> mse_per_sample(const Var<T>& prediction, const Var<T>& target) {
    same_shape("mse_per_sample", prediction, target);
    if (prediction.ndim() != 2) {
        detail::throw_shape_error(
            fmt::format("mse_per_sample: needs (batch, features), got {}", tapegrad::to_string(prediction.shape())));
    }
    Var<T> d = prediction - target;
    return mean(d * d, 1);
}

template <class T>
Var<T> binary_cross_entropy(const Var<T>& probability, const Var<T>& target) {
    same_shape("binary_cross_entropy", probability, target);
    Var<T> floor = Var<T>::scalar(T(-100));
    Var<T> log_p = maximum(log(probability), floor);
    Var<T> log_q = maximum(log(T(1) - probability), floor);
    return -mean(target * log_p + (T(1) - target) * log_q);
}

template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& target) {
    same_shape("binary_cross_entropy_with_logits", logits, target);
    return mean(softplus(logits) - target * logits);
}

template <class T>
Var<T> kl_bernoulli(double rho, const Var<T>& rho_hat, double eps) {
    if (!(rho > 0 && rho < 1)) {
        detail::throw_value_error(fmt::format("kl_bernoulli: target sparsity {} outside (0, 1)", rho));
    }
    if (!(eps > 0 && eps < 0.5)) {
        detail::throw_value_error(fmt::format("kl_bernoulli: clamp eps {} outside (0, 0.5)", eps));
    }
    Var<T> q = clamp(rho_hat, eps, 1 - eps);
    auto r = static_cast<T>(rho);
    // rho log(rho / q) + (1 - rho) log((1 - rho) / (1 - q)), with the constant parts folded.
    T constant = static_cast<T>(rho * std::log(rho) + (1 - rho) * std::log(1 - rho));
    return sum(constant - r * log(q) - (T(1) - r) * log(T(1) - q));
}

template <class T>
Var<T> l1_penalty(std::span<const Var<T>> parameters) {
    Var<T> total = Var<T>::scalar(T(0));
    for (const Var<T>& p : parameters) {
        total = total + sum(abs(p));
    }
    return total;
}

template <class T>
Var<T> l2_penalty(std::span<const Var<T>> parameters) {
    Var<T> total = Var<T>::scalar(T(0));
    for (const Var<T>& p : parameters) {
        total = total + sum_squares(p);
    }
    return total;
}

template <class T>
std::vector<Var<T>> weights_of(const ParameterList<T>& parameters) {
    std::vector<Var<T>> out;
    for (const auto& p : parameters) {
        if (p.name == "weight" || (p.name.size() > 7 && p.name.ends_with(".weight"))) {
            out.push_back(p.var);
        }
    }
    return out;
}

#define TAPEGRAD_INSTANTIATE(T)                                                            \
    template Var<T> mse<T>(const Var<T>&, const Var<T>&);                                  \
    template Var<T> mse_per_sample<T>(const Var<T>&, const Var<T>&);                       \
    template Var<T> binary_cross_entropy<T>(const Var<T>&, const Var<T>&);                 \
    template Var<T> binary_cross_entropy_with_logits<T>(const Var<T>&, const Var<T>&);     \
    template Var<T> kl_bernoulli<T>(double, const Var<T>&, double);                        \
    template Var<T> l1_penalty<T>(std::span<const Var<T>>);                                \
    template Var<T> l2_penalty<T>(std::span<const Var<T>>);                                \
    template std::vector<Var<T>> weights_of<T>(const ParameterList<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::nn
