// Shared by the test files: seeded random values and the random-weighted sum that seeds backward
// with a random dy rather than ones, so that a formula that forgets dy fails.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

#include <doctest/doctest.h>

#include "tapegrad/autodiff.hpp"

namespace tapegrad::test {

// Uniform in [lo, hi), avoiding (-gap, gap) when gap > 0: keeps relu, abs and friends off their kinks.
template <class T>
Array<T> random_array(const Shape& shape, std::uint64_t seed, double lo = -1, double hi = 1, double gap = 0) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(lo, hi);
    Array<T> a = xt::empty<T>(shape);
    for (T& v : a) {
        double x = u(rng);
        while (gap > 0 && std::abs(x) < gap) {
            x = u(rng);
        }
        v = static_cast<T>(x);
    }
    return a;
}

template <class T>
Var<T> random_param(const Shape& shape, std::uint64_t seed, std::string name, double lo = -1, double hi = 1,
                    double gap = 0) {
    return Var<T>::parameter(random_array<T>(shape, seed, lo, hi, gap), std::move(name));
}

// sum(y * r) for a fixed random r of y's shape.
template <class T>
Var<T> weighted_sum(const Var<T>& y, std::uint64_t seed = 99) {
    return sum(y * Var<T>(random_array<T>(y.shape(), seed, 0.5, 1.5)));
}

template <class T>
bool all_close(const Array<T>& a, const Array<T>& b, double tol) {
    if (a.shape() != b.shape()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        double x = a.data()[i];
        double y = b.data()[i];
        if (!(std::abs(x - y) <= tol * (1 + std::abs(y)))) {
            return false;
        }
    }
    return true;
}

// The flat index of the element of an input of shape `in` that numpy's broadcasting reads for the
// element `flat` of an output of shape `out`: an independent reference for the broadcasting kernels.
inline std::size_t source(const Shape& out, const Shape& in, std::size_t flat) {
    std::size_t lead = out.size() - in.size();
    std::size_t index = 0;
    std::size_t stride = 1;
    for (std::size_t d = out.size(); d-- > 0;) {
        std::size_t i = flat % out[d];
        flat /= out[d];
        if (d >= lead) {
            index += (in[d - lead] == 1 ? 0 : i) * stride;
            stride *= in[d - lead];
        }
    }
    return index;
}

// got (in T) against a double reference, with all_close's mixed absolute/relative tolerance.
template <class T>
bool close_to(const Array<T>& got, const Array<double>& want, double tol) {
    Array<double> widened = xt::empty<double>(got.shape());
    std::copy(got.begin(), got.end(), widened.begin());
    return all_close<double>(widened, want, tol);
}

// Tolerance for comparing with a double reference: float rounding, or double's.
template <class T>
constexpr double tolerance() {
    return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

// The mean, variance and largest magnitude of an array's values, in double: what initialisers are checked by.
struct Moments {
    double mean = 0;
    double variance = 0;
    double max_abs = 0;
    double sd() const { return std::sqrt(variance); }
};

template <class T>
Moments moments(const Array<T>& a) {
    Moments m;
    for (T v : a) {
        m.mean += double(v);
        m.max_abs = std::max(m.max_abs, std::abs(double(v)));
    }
    m.mean /= double(a.size());
    for (T v : a) {
        m.variance += (double(v) - m.mean) * (double(v) - m.mean);
    }
    m.variance /= double(a.size());
    return m;
}

}  // namespace tapegrad::test

// Lets CHECK print shapes.
namespace doctest {
template <>
struct StringMaker<tapegrad::Shape> {
    static String convert(const tapegrad::Shape& s) { return tapegrad::to_string(s).c_str(); }
};
}  // namespace doctest
