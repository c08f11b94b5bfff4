// Linear: y = x W + b, x shaped (batch, in), W (in, out), b (out,).
#pragma once

#include <cstdint>
#include <random>

#include "tapegrad/nn/init.hpp"
#include "tapegrad/nn/module.hpp"

namespace tapegrad::nn {

struct LinearOptions {
    bool bias = true;
    Init init = Init::torch_default;
    std::uint64_t seed = 0;  // used when no generator is given
};

template <class T>
class Linear : public Module<T> {
public:
    Linear(std::size_t in, std::size_t out, LinearOptions options = {});
    // Draws from `rng`, so that the layers of a network built in turn get different weights.
    Linear(std::size_t in, std::size_t out, std::mt19937_64& rng, LinearOptions options = {});

    Var<T> forward(const Var<T>& x) override;
    // act(x W + b) as one op; undefined without a bias.
    Var<T> forward_activated(const Var<T>& x, Activation act) override;
    std::string describe() const override;

    std::size_t in_features() const { return in_; }
    std::size_t out_features() const { return out_; }
    // Handles to the parameters the module owns.
    const Var<T>& weight() const { return weight_; }
    // Undefined when the layer has no bias.
    const Var<T>& bias() const { return bias_; }

private:
    void create(std::mt19937_64& rng, const LinearOptions& options);
    void check_input(const Var<T>& x) const;

    std::size_t in_;
    std::size_t out_;
    Var<T> weight_;
    Var<T> bias_;
};

extern template class Linear<float>;
extern template class Linear<double>;

}  // namespace tapegrad::nn
