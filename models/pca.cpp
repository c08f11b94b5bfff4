#include "tapegrad/models/pca.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

#include "tapegrad/autodiff/error.hpp"

namespace tapegrad::models {

namespace {

// Components are defined up to sign: make the largest entry of each one positive, so that fits of the
// same data agree whatever the solver (scikit-learn's svd_flip does the same on the other factor).
void fix_signs(Array<double>& components) {
    for (std::size_t c = 0; c < components.shape()[0]; ++c) {
        auto row = xt::row(components, static_cast<std::ptrdiff_t>(c));
        std::size_t largest = 0;
        for (std::size_t j = 1; j < row.size(); ++j) {
            if (std::abs(row(j)) > std::abs(row(largest))) {
                largest = j;
            }
        }
        if (row(largest) < 0) {
            row *= -1.0;
        }
    }
}

}  // namespace

template <class T>
Pca<T>::Pca(PcaOptions options) : options_(options) {
    if (options.components == 0) {
        tapegrad::detail::throw_value_error("pca: needs at least one component");
    }
}

template <class T>
Pca<T>& Pca<T>::fit(const Array<T>& x) {
    if (x.dimension() != 2) {
        tapegrad::detail::throw_shape_error(
            fmt::format("pca: fit needs (samples, features), got {}", tapegrad::to_string(x.shape())));
    }
    std::size_t n = x.shape()[0];
    std::size_t d = x.shape()[1];
    std::size_t k = options_.components;
    if (n < 2 || k > std::min(n, d)) {
        tapegrad::detail::throw_value_error(fmt::format(
            "pca: {} components need at least as many samples and features, and two samples; data is {}", k,
            tapegrad::to_string(x.shape())));
    }
    Array<double> centred = xt::cast<double>(x);
    Array<double> mean = xt::mean(centred, {0});
    centred -= mean;

    bool covariance = options_.solver == PcaSolver::covariance ||
                      (options_.solver == PcaSolver::automatic && n >= 10 * d);
    Array<double> variances;   // every direction's variance, largest first
    Array<double> directions;  // (k, d)
    if (covariance) {
        // C = X^T X / (n - 1); eigh gives ascending eigenvalues and eigenvectors as columns.
        Array<double> c = xt::linalg::dot(xt::transpose(centred), centred) / static_cast<double>(n - 1);
        auto [values, vectors] = xt::linalg::eigh(c);
        variances = xt::flip(Array<double>(xt::maximum(values, 0.0)), 0);
        directions = xt::empty<double>(Shape{k, d});
        for (std::size_t i = 0; i < k; ++i) {
            xt::row(directions, static_cast<std::ptrdiff_t>(i)) = xt::col(vectors, static_cast<std::ptrdiff_t>(d - 1 - i));
        }
    } else {
        auto [u, s, vt] = xt::linalg::svd(centred, false, true);
        variances = s * s / static_cast<double>(n - 1);
        directions = xt::view(vt, xt::range(0, k), xt::all());
    }
    fix_signs(directions);
    double total = xt::sum(variances)();
    components_ = std::move(directions);
    mean_ = std::move(mean);
    explained_variance_ = xt::view(variances, xt::range(0, k));
    fitted_ = true;
    explained_variance_ratio_ = total > 0 ? Array<double>(explained_variance_ / total) : Array<double>(xt::zeros<double>(Shape{k}));
    return *this;
}

template <class T>
void Pca<T>::check_fitted(std::string_view what) const {
    if (!fitted()) {
        tapegrad::detail::throw_value_error(fmt::format("pca: {} before fit", what));
    }
}

template <class T>
void Pca<T>::check_features(std::string_view what, const Array<T>& x, std::size_t features) const {
    if (x.dimension() != 2 || x.shape()[1] != features) {
        tapegrad::detail::throw_shape_error(fmt::format("pca: {} needs (samples, {}), got {}", what, features,
                                                        tapegrad::to_string(x.shape())));
    }
}

template <class T>
Array<T> Pca<T>::encode(const Array<T>& x) const {
    check_fitted("encode");
    check_features("encode", x, mean_.size());
    Array<double> z = xt::linalg::dot(xt::cast<double>(x) - mean_, xt::transpose(components_));
    if (options_.whiten) {
        z /= xt::sqrt(explained_variance_);
    }
    return xt::cast<T>(z);
}

template <class T>
Array<T> Pca<T>::decode(const Array<T>& z) const {
    check_fitted("decode");
    check_features("decode", z, options_.components);
    Array<double> codes = xt::cast<double>(z);
    if (options_.whiten) {
        codes *= xt::sqrt(explained_variance_);
    }
    Array<double> x = xt::linalg::dot(codes, components_) + mean_;
    return xt::cast<T>(x);
}

template <class T>
Array<T> Pca<T>::reconstruction_error(const Array<T>& x) const {
    Array<double> diff = xt::cast<double>(reconstruct(x)) - xt::cast<double>(x);
    Array<double> err = xt::mean(diff * diff, {1});
    return xt::cast<T>(err);
}

template class Pca<float>;
template class Pca<double>;

}  // namespace tapegrad::models
