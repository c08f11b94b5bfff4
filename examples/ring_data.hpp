// The 2-D toy data of the tutorials: points r * (cos t, sin t) with a uniform angle t and a standard normal
// radius r (a ring smeared through the origin), as tutorial 000 draws them (the angle first, then the
// radius, for each point). ring_points_raw gives them as drawn, the space the tutorial trains in;
// ring_points standardised per column, for the benchmark.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::examples {

inline Array<double> ring_points_raw(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> angle(0, 2 * std::numbers::pi);
    std::normal_distribution<double> radius;
    Array<double> x = xt::empty<double>(Shape{n, 2});
    for (std::size_t i = 0; i < n; ++i) {
        double a = angle(rng);
        double r = radius(rng);
        x(i, 0) = r * std::cos(a);
        x(i, 1) = r * std::sin(a);
    }
    return x;
}

inline Array<float> ring_points(std::size_t n, std::uint64_t seed) {
    Array<double> x = ring_points_raw(n, seed);
    Array<float> out = xt::empty<float>(Shape{n, 2});
    for (std::size_t c = 0; c < 2; ++c) {
        double mean = 0;
        for (std::size_t i = 0; i < n; ++i) {
            mean += x(i, c);
        }
        mean /= static_cast<double>(n);
        double sq = 0;
        for (std::size_t i = 0; i < n; ++i) {
            sq += (x(i, c) - mean) * (x(i, c) - mean);
        }
        double sd = std::sqrt(sq / static_cast<double>(n));
        for (std::size_t i = 0; i < n; ++i) {
            out(i, c) = static_cast<float>((x(i, c) - mean) / sd);
        }
    }
    return out;
}

}  // namespace tapegrad::examples
