// What the image ops share (conv.cpp, pool.cpp): geometry packed into Attrs, the side a window sweep leaves,
// the arity check of ops with an optional input, and per-thread scratch buffers. Internal to the library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "../op_impl.hpp"

namespace tapegrad::detail::image {

// Attrs hold a geometry as 16-bit fields, four to an int64.
inline constexpr std::size_t field_limit = std::size_t{1} << 16;

inline std::int64_t pack4(std::size_t a, std::size_t b, std::size_t c, std::size_t d) {
    return static_cast<std::int64_t>(a | b << 16 | c << 32 | d << 48);
}
inline std::size_t field(std::int64_t packed, int k) {
    return (static_cast<std::uint64_t>(packed) >> (16 * k)) & (field_limit - 1);
}

inline void check_field(std::string_view op, std::string_view what, Pair v, bool positive) {
    for (std::size_t x : v) {
        if (x >= field_limit || (positive && x == 0)) {
            throw_value_error(fmt::format("{}: {} ({}, {}) must be {}below {}", op, what, v[0], v[1],
                                          positive ? "positive and " : "", field_limit));
        }
    }
}

// The output side of a window sweep, or 0 when the padded input is shorter than the dilated kernel.
inline std::size_t swept(std::size_t in, std::size_t kernel, std::size_t stride, std::size_t padding,
                         std::size_t dilation) {
    std::size_t span = dilation * (kernel - 1) + 1;
    if (in + 2 * padding < span) {
        return 0;
    }
    return (in + 2 * padding - span) / stride + 1;
}

template <class T>
void check_arity(const Call<T>& c, std::size_t lo, std::size_t hi) {
    if (c.arity() < lo || c.arity() > hi) {
        throw_value_error(fmt::format("{}: takes {} or {} inputs, given {}", c.op(), lo, hi, c.arity()));
    }
}

// A thread's scratch buffers (slot 0: columns; 1: partial sums), grown as needed and kept: no allocation in
// a steady state.
template <class T, int slot = 0>
T* scratch(std::size_t n) {
    thread_local std::vector<T> buffer;
    if (buffer.size() < n) {
        buffer.resize(n);
    }
    return buffer.data();
}

}  // namespace tapegrad::detail::image
