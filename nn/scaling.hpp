// Feature scaling that remembers its parameters, so that test data and a reloaded model see the scaling
// the training data had, and that can be undone (reconstructions back in pixel units).
//
// Both scalers work on (N, D) arrays of float or double and keep their parameters in double. The
// templates are instantiated for float and double in nn/scaling.cpp.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::nn {

// Named parameters, as a checkpoint stores them.
using ScalerState = std::vector<std::pair<std::string, Array<double>>>;

// To [0, 1]: (x - min) / (max - min). Per feature (each column its own min and max, scikit-learn's
// MinMaxScaler) or global (one min and max for all, as images are usually scaled, so that a pixel keeps
// its meaning across positions). A feature whose max equals its min is only shifted (range 1), to 0.
class MinMaxScaler {
public:
    enum class Scope { per_feature, global };

    explicit MinMaxScaler(Scope scope = Scope::per_feature) : scope_(scope) {}

    template <class T>
    MinMaxScaler& fit(const Array<T>& x);
    template <class T>
    Array<T> transform(const Array<T>& x) const;
    template <class T>
    Array<T> inverse_transform(const Array<T>& x) const;
    template <class T>
    Array<T> fit_transform(const Array<T>& x) {
        return fit(x).transform(x);
    }

    bool fitted() const { return fitted_; }
    Scope scope() const { return scope_; }
    // min and max: (D,) per feature, 0-d when global; meaningless before fit.
    const Array<double>& min() const { return min_; }
    const Array<double>& max() const { return max_; }

    // {"min", min}, {"max", max}; load_state takes them back, the scope following their shape.
    ScalerState state() const;
    void load_state(const ScalerState& state);

private:
    Scope scope_;
    bool fitted_ = false;
    Array<double> min_;
    Array<double> max_;
};

// To mean 0 and standard deviation 1 per feature: (x - mean) / std, with the population std (ddof 0)
// as scikit-learn's StandardScaler. A constant feature keeps scale 1 (it is only centred, to 0):
// dividing by its std of 0 would turn it into NaN.
class StandardScaler {
public:
    template <class T>
    StandardScaler& fit(const Array<T>& x);
    template <class T>
    Array<T> transform(const Array<T>& x) const;
    template <class T>
    Array<T> inverse_transform(const Array<T>& x) const;
    template <class T>
    Array<T> fit_transform(const Array<T>& x) {
        return fit(x).transform(x);
    }

    bool fitted() const { return fitted_; }
    // (D,) each, meaningless before fit. scale is the std, or 1 for a constant feature.
    const Array<double>& mean() const { return mean_; }
    const Array<double>& scale() const { return scale_; }

    // {"mean", mean}, {"scale", scale}.
    ScalerState state() const;
    void load_state(const ScalerState& state);

private:
    bool fitted_ = false;
    Array<double> mean_;
    Array<double> scale_;
};

extern template MinMaxScaler& MinMaxScaler::fit<float>(const Array<float>&);
extern template MinMaxScaler& MinMaxScaler::fit<double>(const Array<double>&);
extern template Array<float> MinMaxScaler::transform<float>(const Array<float>&) const;
extern template Array<double> MinMaxScaler::transform<double>(const Array<double>&) const;
extern template Array<float> MinMaxScaler::inverse_transform<float>(const Array<float>&) const;
extern template Array<double> MinMaxScaler::inverse_transform<double>(const Array<double>&) const;
extern template StandardScaler& StandardScaler::fit<float>(const Array<float>&);
extern template StandardScaler& StandardScaler::fit<double>(const Array<double>&);
extern template Array<float> StandardScaler::transform<float>(const Array<float>&) const;
extern template Array<double> StandardScaler::transform<double>(const Array<double>&) const;
extern template Array<float> StandardScaler::inverse_transform<float>(const Array<float>&) const;
extern template Array<double> StandardScaler::inverse_transform<double>(const Array<double>&) const;

}  // namespace tapegrad::nn
