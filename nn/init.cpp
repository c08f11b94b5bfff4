#include "tapegrad/nn/init.hpp"

#include <array>
#include <cmath>

#include <fmt/format.h>

#include "tapegrad/autodiff/error.hpp"

namespace tapegrad::nn {

namespace {

constexpr std::array<std::pair<Init, std::string_view>, 6> names = {{
    {Init::xavier_uniform, "xavier_uniform"},
    {Init::xavier_normal, "xavier_normal"},
    {Init::he_uniform, "he_uniform"},
    {Init::he_normal, "he_normal"},
    {Init::zeros, "zeros"},
    {Init::torch_default, "torch_default"},
}};

template <class T, class Dist>
Array<T> draw(const Shape& shape, Dist dist, std::mt19937_64& rng) {
    Array<T> out = xt::empty<T>(shape);
    for (T& v : out) {
        v = static_cast<T>(dist(rng));
    }
    return out;
}

void check_fans(std::size_t fan_in, std::size_t fan_out) {
    if (fan_in == 0 || fan_out == 0) {
        detail::throw_value_error(fmt::format("init: a weight needs fan_in and fan_out above 0, got ({}, {})", fan_in,
                                              fan_out));
    }
}

}  // namespace

std::string_view to_string(Init init) {
    for (auto [value, name] : names) {
        if (value == init) {
            return name;
        }
    }
    return "unknown";
}

Init parse_init(std::string_view name) {
    std::string known;
    for (auto [value, n] : names) {
        if (n == name) {
            return value;
        }
        known += known.empty() ? std::string(n) : ", " + std::string(n);
    }
    detail::throw_value_error(fmt::format("init: unknown initialiser \"{}\" (known: {})", name, known));
}

template <class T>
Array<T> init_weight(Init init, std::size_t fan_in, std::size_t fan_out, std::mt19937_64& rng) {
    return init_weight<T>(init, Shape{fan_in, fan_out}, fan_in, fan_out, rng);
}

template <class T>
Array<T> init_weight(Init init, const Shape& shape, std::size_t fan_in, std::size_t fan_out, std::mt19937_64& rng) {
    check_fans(fan_in, fan_out);
    auto in = static_cast<double>(fan_in);
    auto sum = static_cast<double>(fan_in + fan_out);
    switch (init) {
    case Init::xavier_uniform: {
        double a = std::sqrt(6.0 / sum);
        return draw<T>(shape, std::uniform_real_distribution<double>(-a, a), rng);
    }
    case Init::xavier_normal: return draw<T>(shape, std::normal_distribution<double>(0, std::sqrt(2.0 / sum)), rng);
    case Init::he_uniform: {
        double a = std::sqrt(6.0 / in);
        return draw<T>(shape, std::uniform_real_distribution<double>(-a, a), rng);
    }
    case Init::he_normal: return draw<T>(shape, std::normal_distribution<double>(0, std::sqrt(2.0 / in)), rng);
    case Init::zeros: return xt::zeros<T>(shape);
    case Init::torch_default: {
        // kaiming_uniform with a = sqrt(5): the bound sqrt(6 / ((1 + a^2) fan_in)) is 1 / sqrt(fan_in).
        double a = 1.0 / std::sqrt(in);
        return draw<T>(shape, std::uniform_real_distribution<double>(-a, a), rng);
    }
    }
    detail::throw_value_error("init: unknown initialiser");
}

template <class T>
Array<T> init_bias(Init init, std::size_t fan_in, std::size_t fan_out, std::mt19937_64& rng) {
    check_fans(fan_in, fan_out);
    if (init != Init::torch_default) {
        return xt::zeros<T>(Shape{fan_out});
    }
    double a = 1.0 / std::sqrt(static_cast<double>(fan_in));
    return draw<T>(Shape{fan_out}, std::uniform_real_distribution<double>(-a, a), rng);
}

template Array<float> init_weight<float>(Init, std::size_t, std::size_t, std::mt19937_64&);
template Array<double> init_weight<double>(Init, std::size_t, std::size_t, std::mt19937_64&);
template Array<float> init_weight<float>(Init, const Shape&, std::size_t, std::size_t, std::mt19937_64&);
template Array<double> init_weight<double>(Init, const Shape&, std::size_t, std::size_t, std::mt19937_64&);
template Array<float> init_bias<float>(Init, std::size_t, std::size_t, std::mt19937_64&);
template Array<double> init_bias<double>(Init, std::size_t, std::size_t, std::mt19937_64&);

}  // namespace tapegrad::nn
