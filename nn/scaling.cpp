#include "tapegrad/nn/scaling.hpp"

#include <algorithm>
#include <cmath>
#include <string_view>

#include <fmt/format.h>

namespace tapegrad::nn {

namespace {

template <class T>
void check_matrix(const Array<T>& x, std::string_view op) {
    if (x.dimension() != 2) {
        detail::throw_shape_error(fmt::format("{}: x must be (N, D), found {}", op, to_string(x.shape())));
    }
}

template <class T>
void check_fit_input(const Array<T>& x, std::string_view op) {
    check_matrix(x, op);
    if (x.shape(0) == 0) {
        detail::throw_value_error(fmt::format("{}: no rows to fit on: x is {}", op, to_string(x.shape())));
    }
    std::size_t d = x.shape(1);
    for (std::size_t i = 0; i < x.size(); ++i) {
        T v = x.data()[i];
        if (!std::isfinite(v)) {
            detail::throw_value_error(fmt::format("{}: not finite: x[{}, {}] is {}", op, i / d, i % d,
                                                  std::isnan(v) ? "nan"
                                                  : v > 0       ? "inf"
                                                                : "-inf"));
        }
    }
}

// forward: (x - shift) / scale, column by column; backward: x * scale + shift. In double, whatever T.
// One shift and scale for all columns when `global`.
template <class T>
Array<T> affine(const Array<T>& x, const Array<double>& shift, const Array<double>& scale, bool global, bool forward,
                std::string_view op) {
    check_matrix(x, op);
    std::size_t n = x.shape(0);
    std::size_t d = x.shape(1);
    if (!global && shift.size() != d) {
        detail::throw_shape_error(
            fmt::format("{}: fitted on {} features, x is {}", op, shift.size(), to_string(x.shape())));
    }
    Array<T> y = xt::empty<T>(x.shape());
    const T* in = x.data();
    T* out = y.data();
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < d; ++j) {
            std::size_t k = global ? 0 : j;
            double v = static_cast<double>(in[i * d + j]);
            v = forward ? (v - shift.data()[k]) / scale.data()[k] : v * scale.data()[k] + shift.data()[k];
            out[i * d + j] = static_cast<T>(v);
        }
    }
    return y;
}

[[noreturn]] void throw_not_fitted(std::string_view op) {
    detail::throw_value_error(fmt::format("{}: not fitted: call fit or load_state first", op));
}

const Array<double>& find(const ScalerState& state, std::string_view key, std::string_view op) {
    for (const auto& [name, value] : state) {
        if (name == key) {
            return value;
        }
    }
    detail::throw_value_error(fmt::format("{}: no \"{}\" in the state", op, key));
}

// max - min, or 1 where they are equal, so that a constant feature maps to 0 rather than NaN.
Array<double> ranges(const Array<double>& min, const Array<double>& max) {
    Array<double> r = max - min;
    for (double& v : r) {
        v = v > 0 ? v : 1.0;
    }
    return r;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// MinMaxScaler

template <class T>
MinMaxScaler& MinMaxScaler::fit(const Array<T>& x) {
    check_fit_input(x, "min_max_scaler.fit");
    std::size_t n = x.shape(0);
    std::size_t d = x.shape(1);
    if (scope_ == Scope::global) {
        auto [lo, hi] = std::minmax_element(x.data(), x.data() + x.size());
        // 0-d arrays: one min and max for every feature.
        min_ = Array<double>(static_cast<double>(*lo));
        max_ = Array<double>(static_cast<double>(*hi));
    } else {
        min_ = xt::empty<double>(Shape{d});
        max_ = xt::empty<double>(Shape{d});
        for (std::size_t j = 0; j < d; ++j) {
            min_(j) = max_(j) = static_cast<double>(x.data()[j]);
        }
        for (std::size_t i = 1; i < n; ++i) {
            for (std::size_t j = 0; j < d; ++j) {
                auto v = static_cast<double>(x.data()[i * d + j]);
                min_(j) = std::min(min_(j), v);
                max_(j) = std::max(max_(j), v);
            }
        }
    }
    fitted_ = true;
    return *this;
}

template <class T>
Array<T> MinMaxScaler::transform(const Array<T>& x) const {
    if (!fitted_) {
        throw_not_fitted("min_max_scaler.transform");
    }
    return affine(x, min_, ranges(min_, max_), scope_ == Scope::global, true, "min_max_scaler.transform");
}

template <class T>
Array<T> MinMaxScaler::inverse_transform(const Array<T>& x) const {
    if (!fitted_) {
        throw_not_fitted("min_max_scaler.inverse_transform");
    }
    return affine(x, min_, ranges(min_, max_), scope_ == Scope::global, false, "min_max_scaler.inverse_transform");
}

ScalerState MinMaxScaler::state() const {
    if (!fitted_) {
        throw_not_fitted("min_max_scaler.state");
    }
    return {{"min", min_}, {"max", max_}};
}

void MinMaxScaler::load_state(const ScalerState& state) {
    constexpr std::string_view op = "min_max_scaler.load_state";
    const Array<double>& min = find(state, "min", op);
    const Array<double>& max = find(state, "max", op);
    if (min.shape() != max.shape() || min.dimension() > 1) {
        detail::throw_shape_error(fmt::format("{}: min and max must both be 0-d (global) or (D,), found {} and {}", op,
                                              to_string(min.shape()), to_string(max.shape())));
    }
    for (std::size_t j = 0; j < min.size(); ++j) {
        if (!(min.data()[j] <= max.data()[j]) || !std::isfinite(min.data()[j]) || !std::isfinite(max.data()[j])) {
            detail::throw_value_error(fmt::format("{}: feature {}: min {} and max {} are not a finite range", op, j,
                                                  min.data()[j], max.data()[j]));
        }
    }
    scope_ = min.dimension() == 0 ? Scope::global : Scope::per_feature;
    min_ = min;
    max_ = max;
    fitted_ = true;
}

// ---------------------------------------------------------------------------------------------------
// StandardScaler

template <class T>
StandardScaler& StandardScaler::fit(const Array<T>& x) {
    check_fit_input(x, "standard_scaler.fit");
    std::size_t n = x.shape(0);
    std::size_t d = x.shape(1);
    // Deviations from the first row rather than from 0: a constant feature then has deviations of exactly
    // 0 and a variance of exactly 0, where a mean rounded in the sum would leave a std of rounding noise
    // (and scale the feature by 1e15). Two passes: squared deviations, not E[x^2] - E[x]^2, which cancels.
    const T* first = x.data();
    Array<double> shift = xt::zeros<double>(Shape{d});
    Array<double> var = xt::zeros<double>(Shape{d});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < d; ++j) {
            shift(j) += static_cast<double>(x.data()[i * d + j]) - static_cast<double>(first[j]);
        }
    }
    shift /= static_cast<double>(n);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < d; ++j) {
            double dev = static_cast<double>(x.data()[i * d + j]) - static_cast<double>(first[j]) - shift(j);
            var(j) += dev * dev;
        }
    }
    Array<double> mean = xt::empty<double>(Shape{d});
    Array<double> scale = xt::empty<double>(Shape{d});
    for (std::size_t j = 0; j < d; ++j) {
        mean(j) = static_cast<double>(first[j]) + shift(j);
        double s = std::sqrt(var(j) / static_cast<double>(n));
        scale(j) = s > 0 ? s : 1.0;
    }
    mean_ = std::move(mean);
    scale_ = std::move(scale);
    fitted_ = true;
    return *this;
}

template <class T>
Array<T> StandardScaler::transform(const Array<T>& x) const {
    if (!fitted_) {
        throw_not_fitted("standard_scaler.transform");
    }
    return affine(x, mean_, scale_, false, true, "standard_scaler.transform");
}

template <class T>
Array<T> StandardScaler::inverse_transform(const Array<T>& x) const {
    if (!fitted_) {
        throw_not_fitted("standard_scaler.inverse_transform");
    }
    return affine(x, mean_, scale_, false, false, "standard_scaler.inverse_transform");
}

ScalerState StandardScaler::state() const {
    if (!fitted_) {
        throw_not_fitted("standard_scaler.state");
    }
    return {{"mean", mean_}, {"scale", scale_}};
}

void StandardScaler::load_state(const ScalerState& state) {
    constexpr std::string_view op = "standard_scaler.load_state";
    const Array<double>& mean = find(state, "mean", op);
    const Array<double>& scale = find(state, "scale", op);
    if (mean.shape() != scale.shape() || mean.dimension() != 1) {
        detail::throw_shape_error(fmt::format("{}: mean and scale must both be (D,), found {} and {}", op,
                                              to_string(mean.shape()), to_string(scale.shape())));
    }
    for (std::size_t j = 0; j < mean.size(); ++j) {
        if (!(scale(j) > 0) || !std::isfinite(scale(j)) || !std::isfinite(mean(j))) {
            detail::throw_value_error(fmt::format("{}: feature {}: mean {} and scale {} are not finite with scale > 0",
                                                  op, j, mean(j), scale(j)));
        }
    }
    mean_ = mean;
    scale_ = scale;
    fitted_ = true;
}

template MinMaxScaler& MinMaxScaler::fit<float>(const Array<float>&);
template MinMaxScaler& MinMaxScaler::fit<double>(const Array<double>&);
template Array<float> MinMaxScaler::transform<float>(const Array<float>&) const;
template Array<double> MinMaxScaler::transform<double>(const Array<double>&) const;
template Array<float> MinMaxScaler::inverse_transform<float>(const Array<float>&) const;
template Array<double> MinMaxScaler::inverse_transform<double>(const Array<double>&) const;
template StandardScaler& StandardScaler::fit<float>(const Array<float>&);
template StandardScaler& StandardScaler::fit<double>(const Array<double>&);
template Array<float> StandardScaler::transform<float>(const Array<float>&) const;
template Array<double> StandardScaler::transform<double>(const Array<double>&) const;
template Array<float> StandardScaler::inverse_transform<float>(const Array<float>&) const;
template Array<double> StandardScaler::inverse_transform<double>(const Array<double>&) const;

}  // namespace tapegrad::nn
