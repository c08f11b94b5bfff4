// Activation layers, Identity and Dropout: modules without parameters around one op each.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string_view>

#include "tapegrad/nn/module.hpp"

namespace tapegrad::nn {

template <class T>
class ReLU : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override;
    std::optional<Activation> activation() const override { return Activation::relu; }
    std::string describe() const override { return "ReLU"; }
};

template <class T>
class LeakyReLU : public Module<T> {
public:
    explicit LeakyReLU(double slope = 0.01) : slope_(slope) {}
    Var<T> forward(const Var<T>& x) override;
    std::string describe() const override;

private:
    double slope_;
};

template <class T>
class Sigmoid : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override;
    std::optional<Activation> activation() const override { return Activation::sigmoid; }
    std::string describe() const override { return "Sigmoid"; }
};

template <class T>
class Tanh : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override;
    std::optional<Activation> activation() const override { return Activation::tanh; }
    std::string describe() const override { return "Tanh"; }
};

template <class T>
class Softplus : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override;
    std::string describe() const override { return "Softplus"; }
};

template <class T>
class Identity : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override { return x; }
    std::string describe() const override { return "Identity"; }
};

// Inverted dropout: in training mode each element is zeroed with probability p and the rest scaled by
// 1 / (1 - p), so evaluation mode is the identity. The masks come from the layer's own seeded generator.
template <class T>
class Dropout : public Module<T> {
public:
    explicit Dropout(double p = 0.5, std::uint64_t seed = 0);
    Var<T> forward(const Var<T>& x) override;
    std::string describe() const override;

private:
    double p_;
    std::mt19937_64 rng_;
};

// By name, for configurations: identity, relu, leaky_relu, sigmoid, tanh, softplus.
template <class T>
std::shared_ptr<Module<T>> make_activation(std::string_view name);

extern template class ReLU<float>;
extern template class ReLU<double>;
extern template class LeakyReLU<float>;
extern template class LeakyReLU<double>;
extern template class Sigmoid<float>;
extern template class Sigmoid<double>;
extern template class Tanh<float>;
extern template class Tanh<double>;
extern template class Softplus<float>;
extern template class Softplus<double>;
extern template class Identity<float>;
extern template class Identity<double>;
extern template class Dropout<float>;
extern template class Dropout<double>;

}  // namespace tapegrad::nn
