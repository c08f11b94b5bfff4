// Image layers on NCHW values, as torch.nn's: Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, Upsample
// (nearest), and Flatten / Unflatten, which carry a batch of rows (N, C H W) to images (N, C, H, W) and back,
// so that a convolutional encoder takes the same (batch, features) rows as a dense one.
//
// The weights start as PyTorch's do (Init::torch_default): weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
// fan_in = the input channels of a group times the kernel's area (for ConvTranspose2d, PyTorch's rule: its
// weight's second dimension, the output channels of a group, times the kernel's area).
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string_view>

#include "tapegrad/nn/init.hpp"
#include "tapegrad/nn/module.hpp"

namespace tapegrad::nn {

struct Conv2dLayerOptions {
    Pair kernel{3, 3};
    Pair stride{1, 1};
    Pair padding{0, 0};
    Pair dilation{1, 1};
    std::size_t groups = 1;
    Pair output_padding{0, 0};  // ConvTranspose2d only
    bool bias = true;
    Init init = Init::torch_default;
    std::uint64_t seed = 0;  // used when no generator is given
};

// What Conv2d and ConvTranspose2d share: the channels, the geometry, the weight and bias they own and how
// they are drawn. Not a layer itself.
template <class T>
class ConvLayer : public Module<T> {
public:
    std::size_t in_channels() const { return in_; }
    std::size_t out_channels() const { return out_; }
    const Conv2dLayerOptions& options() const { return options_; }
    const Var<T>& weight() const { return weight_; }
    const Var<T>& bias() const { return bias_; }  // undefined without one

protected:
    // The weight is (out, in / groups, kh, kw) for a convolution, (in, out / groups, kh, kw) for a transposed
    // one; `rng` null draws from options.seed.
    ConvLayer(std::size_t in, std::size_t out, std::mt19937_64* rng, const Conv2dLayerOptions& options,
              bool transposed);
    // "Conv2d(1, 16, kernel_size=3, stride=2, padding=1)", as torch prints the layer.
    std::string describe_as(std::string_view layer) const;

    std::size_t in_;
    std::size_t out_;
    Conv2dLayerOptions options_;
    Var<T> weight_;
    Var<T> bias_;

private:
    bool transposed_;
};

// y = conv2d(x, W, b): x (N, in, H, W), W (out, in / groups, kh, kw).
template <class T>
class Conv2d : public ConvLayer<T> {
public:
    Conv2d(std::size_t in, std::size_t out, Conv2dLayerOptions options = {})
        : ConvLayer<T>(in, out, nullptr, options, false) {}
    Conv2d(std::size_t in, std::size_t out, std::mt19937_64& rng, Conv2dLayerOptions options = {})
        : ConvLayer<T>(in, out, &rng, options, false) {}

    Var<T> forward(const Var<T>& x) override;
    std::string describe() const override { return this->describe_as("Conv2d"); }
};

// y = conv_transpose2d(x, W, b): x (N, in, H, W), W (in, out / groups, kh, kw); the output side is
// (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1.
template <class T>
class ConvTranspose2d : public ConvLayer<T> {
public:
    ConvTranspose2d(std::size_t in, std::size_t out, Conv2dLayerOptions options = {})
        : ConvLayer<T>(in, out, nullptr, options, true) {}
    ConvTranspose2d(std::size_t in, std::size_t out, std::mt19937_64& rng, Conv2dLayerOptions options = {})
        : ConvLayer<T>(in, out, &rng, options, true) {}

    Var<T> forward(const Var<T>& x) override;
    std::string describe() const override { return this->describe_as("ConvTranspose2d"); }
};

template <class T>
class MaxPool2d : public Module<T> {
public:
    explicit MaxPool2d(Pool2dOptions options = {}) : options_(options) {}
    Var<T> forward(const Var<T>& x) override { return max_pool2d(x, options_); }
    std::string describe() const override;

private:
    Pool2dOptions options_;
};

template <class T>
class AvgPool2d : public Module<T> {
public:
    explicit AvgPool2d(Pool2dOptions options = {});  // ValueError for a dilation, which average pooling has not
    Var<T> forward(const Var<T>& x) override { return avg_pool2d(x, options_); }
    std::string describe() const override;

private:
    Pool2dOptions options_;
};

// Nearest-neighbour upsampling by a whole factor per axis.
template <class T>
class Upsample : public Module<T> {
public:
    explicit Upsample(Pair scale = {2, 2}) : scale_(scale) {}
    Var<T> forward(const Var<T>& x) override { return upsample_nearest2d(x, scale_); }
    std::string describe() const override;

private:
    Pair scale_;
};

// (N, d1, d2, ...) -> (N, d1 d2 ...).
template <class T>
class Flatten : public Module<T> {
public:
    Var<T> forward(const Var<T>& x) override;
    std::string describe() const override { return "Flatten"; }
};

// (N, C H W) -> (N, C, H, W); a shape error names the layer and both shapes.
template <class T>
class Unflatten : public Module<T> {
public:
    explicit Unflatten(std::array<std::size_t, 3> image) : image_(image) {}
    Var<T> forward(const Var<T>& x) override;
    std::string describe() const override;

private:
    std::array<std::size_t, 3> image_;
};

extern template class ConvLayer<float>;
extern template class ConvLayer<double>;
extern template class Conv2d<float>;
extern template class Conv2d<double>;
extern template class ConvTranspose2d<float>;
extern template class ConvTranspose2d<double>;
extern template class MaxPool2d<float>;
extern template class MaxPool2d<double>;
extern template class AvgPool2d<float>;
extern template class AvgPool2d<double>;
extern template class Upsample<float>;
extern template class Upsample<double>;
extern template class Flatten<float>;
extern template class Flatten<double>;
extern template class Unflatten<float>;
extern template class Unflatten<double>;

}  // namespace tapegrad::nn
