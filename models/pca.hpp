// PCA: the baseline every autoencoder here is compared with, with the same interface (encode, decode,
// reconstruct, reconstruction_error). A linear autoencoder with k units at its best reaches PCA's error
// with k components, so an autoencoder that does worse than this has not learned its data.
//
// Fitted in double whatever T is. Instantiated for float and double in models/pca.cpp.
#pragma once

#include <cstddef>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::models {

enum class PcaSolver {
    automatic,   // covariance when there are many more samples than features, else svd
    svd,         // SVD of the centred data (LAPACK gesdd): the most exact
    covariance,  // eigendecomposition of the D x D covariance (LAPACK syevd): fast for N >> D
};

struct PcaOptions {
    std::size_t components = 2;
    bool whiten = false;  // codes with unit variance per component
    PcaSolver solver = PcaSolver::automatic;
};

template <class T>
class Pca {
public:
    explicit Pca(PcaOptions options);

    // x: (samples, features), at least two samples and as many components as features allow.
    Pca& fit(const Array<T>& x);
    bool fitted() const { return fitted_; }

    Array<T> encode(const Array<T>& x) const;  // (samples, components)
    Array<T> decode(const Array<T>& z) const;  // (samples, features)
    Array<T> reconstruct(const Array<T>& x) const { return decode(encode(x)); }
    // Mean squared error of each sample's reconstruction: (samples,).
    Array<T> reconstruction_error(const Array<T>& x) const;

    std::size_t n_components() const { return options_.components; }
    const Array<double>& components() const { return components_; }  // (components, features), unit rows
    const Array<double>& mean() const { return mean_; }              // (features,)
    // Variance along each component (unbiased: divided by samples - 1), largest first.
    const Array<double>& explained_variance() const { return explained_variance_; }
    // explained_variance over the total variance of the data.
    const Array<double>& explained_variance_ratio() const { return explained_variance_ratio_; }

private:
    void check_fitted(std::string_view what) const;
    void check_features(std::string_view what, const Array<T>& x, std::size_t features) const;

    PcaOptions options_;
    bool fitted_ = false;
    Array<double> components_;
    Array<double> mean_;
    Array<double> explained_variance_;
    Array<double> explained_variance_ratio_;
};

extern template class Pca<float>;
extern template class Pca<double>;

}  // namespace tapegrad::models
