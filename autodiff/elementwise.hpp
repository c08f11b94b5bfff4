// Elementwise loops for the library's ops: a function applied to every element, vectorised with xsimd
// batches (map_batches) or one element at a time (map_scalar), cut over the threads by parallel_for.
// The activations that linear fuses into its product are here too, so that the op and the fused form are
// one formula. Internal to the library.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>

#include <xsimd/xsimd.hpp>

#include "tapegrad/autodiff/parallel.hpp"

namespace tapegrad::detail::kernels {

// Applies a vectorised function to n elements; the tail goes through the same batch code on a padded
// copy, so an element's result does not depend on where it sits in the array (nor on the thread).
template <class T, class F>
void map_batches_range(const T* x, T* y, std::size_t n, F f) {
    using B = xsimd::batch<T>;
    constexpr std::size_t W = B::size;
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
        f(B::load_unaligned(x + i)).store_unaligned(y + i);
    }
    if (i < n) {
        alignas(64) std::array<T, W> buffer{};
        std::copy(x + i, x + n, buffer.begin());
        f(B::load_aligned(buffer.data())).store_aligned(buffer.data());
        std::copy(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n - i), y + i);
    }
}

template <class T, class F>
void map_scalar_range(const T* x, T* y, std::size_t n, F f) {
    for (std::size_t i = 0; i < n; ++i) {
        y[i] = f(x[i]);
    }
}

template <class T, class F>
void map_batches(const T* x, T* y, std::size_t n, F f) {
    parallel_for(n, elementwise_grain,
                 [&](std::size_t begin, std::size_t end) { map_batches_range(x + begin, y + begin, end - begin, f); });
}

template <class T, class F>
void map_scalar(const T* x, T* y, std::size_t n, F f) {
    parallel_for(n, elementwise_grain,
                 [&](std::size_t begin, std::size_t end) { map_scalar_range(x + begin, y + begin, end - begin, f); });
}

// v < 0 ? 0 : v keeps a NaN a NaN, as PyTorch's relu does.
struct Relu {
    template <class T>
    T operator()(T v) const {
        return v < 0 ? T(0) : v;
    }
};

struct Sigmoid {
    template <class B>
    B operator()(B v) const {
        return B(1) / (B(1) + xsimd::exp(-v));
    }
};

struct Tanh {
    template <class B>
    B operator()(B v) const {
        return xsimd::tanh(v);
    }
};

}  // namespace tapegrad::detail::kernels
