// Initialisers for a weight of shape (fan_in, fan_out) and its bias, seeded and reproducible.
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <string_view>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::nn {

enum class Init {
    xavier_uniform,  // U(-a, a), a = sqrt(6 / (fan_in + fan_out)): Glorot and Bengio, for tanh and sigmoid
    xavier_normal,   // N(0, 2 / (fan_in + fan_out))
    he_uniform,      // U(-a, a), a = sqrt(6 / fan_in): He et al., for ReLU
    he_normal,       // N(0, 2 / fan_in)
    zeros,
    torch_default,   // PyTorch's Linear: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))
};

std::string_view to_string(Init init);
// The inverse of to_string; throws ValueError naming the known ones.
Init parse_init(std::string_view name);

template <class T>
Array<T> init_weight(Init init, std::size_t fan_in, std::size_t fan_out, std::mt19937_64& rng);
// A weight of any shape drawn for the given fans: a convolution's (out, in / groups, kh, kw), whose fan_in
// is in / groups kh kw.
template <class T>
Array<T> init_weight(Init init, const Shape& shape, std::size_t fan_in, std::size_t fan_out, std::mt19937_64& rng);
// Zeros, but for torch_default, which draws the bias like the weight.
template <class T>
Array<T> init_bias(Init init, std::size_t fan_in, std::size_t fan_out, std::mt19937_64& rng);

}  // namespace tapegrad::nn
