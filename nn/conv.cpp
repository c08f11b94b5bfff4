#include "tapegrad/nn/conv.hpp"

#include <fmt/format.h>

#include "tapegrad/autodiff/error.hpp"
#include "tapegrad/autodiff/ops.hpp"

namespace tapegrad::nn {

namespace {

std::string pair_text(Pair p) { return p[0] == p[1] ? fmt::format("{}", p[0]) : fmt::format("({}, {})", p[0], p[1]); }

// "kernel_size=3, stride=2, padding=1": what differs from the defaults, as torch prints a layer.
std::string geometry_text(const Conv2dLayerOptions& o, bool transposed) {
    std::string text = fmt::format("kernel_size={}", pair_text(o.kernel));
    if (o.stride != Pair{1, 1}) {
        text += fmt::format(", stride={}", pair_text(o.stride));
    }
    if (o.padding != Pair{0, 0}) {
        text += fmt::format(", padding={}", pair_text(o.padding));
    }
    if (o.dilation != Pair{1, 1}) {
        text += fmt::format(", dilation={}", pair_text(o.dilation));
    }
    if (transposed && o.output_padding != Pair{0, 0}) {
        text += fmt::format(", output_padding={}", pair_text(o.output_padding));
    }
    if (o.groups != 1) {
        text += fmt::format(", groups={}", o.groups);
    }
    if (!o.bias) {
        text += ", bias=false";
    }
    return text;
}

void check_layer(std::string_view layer, std::size_t in, std::size_t out, const Conv2dLayerOptions& o) {
    if (o.groups == 0) {
        detail::throw_value_error(fmt::format("{}: groups must be above 0", layer));
    }
    if (in == 0 || out == 0 || in % o.groups != 0 || out % o.groups != 0) {
        detail::throw_value_error(fmt::format("{}: {} input and {} output channels must be above 0{}", layer, in, out,
                                              o.groups > 1 ? fmt::format(" and split into {} groups", o.groups) : ""));
    }
    if (o.kernel[0] == 0 || o.kernel[1] == 0) {
        detail::throw_value_error(fmt::format("{}: kernel ({}, {}) must be above 0", layer, o.kernel[0], o.kernel[1]));
    }
}

std::string pool_text(const Pool2dOptions& o, bool dilation) {
    Pair stride{o.stride[0] == 0 ? o.kernel[0] : o.stride[0], o.stride[1] == 0 ? o.kernel[1] : o.stride[1]};
    std::string text = fmt::format("kernel_size={}, stride={}", pair_text(o.kernel), pair_text(stride));
    if (o.padding != Pair{0, 0}) {
        text += fmt::format(", padding={}", pair_text(o.padding));
    }
    if (dilation && o.dilation != Pair{1, 1}) {
        text += fmt::format(", dilation={}", pair_text(o.dilation));
    }
    return text;
}

}  // namespace

template <class T>
ConvLayer<T>::ConvLayer(std::size_t in, std::size_t out, std::mt19937_64* rng, const Conv2dLayerOptions& options,
                        bool transposed)
    : in_(in), out_(out), options_(options), transposed_(transposed) {
    check_layer(transposed ? "ConvTranspose2d" : "Conv2d", in, out, options);
    std::mt19937_64 own(options.seed);
    std::mt19937_64& draw = rng != nullptr ? *rng : own;
    // PyTorch's fans: the weight's second and first dimensions times the kernel's area.
    std::size_t area = options.kernel[0] * options.kernel[1];
    std::size_t first = transposed ? in : out;
    std::size_t second = (transposed ? out : in) / options.groups;
    Shape shape{first, second, options.kernel[0], options.kernel[1]};
    weight_ = this->register_parameter("weight", init_weight<T>(options.init, shape, second * area, first * area, draw));
    if (options.bias) {
        bias_ = this->register_parameter("bias", init_bias<T>(options.init, second * area, out, draw));
    }
}

template <class T>
std::string ConvLayer<T>::describe_as(std::string_view layer) const {
    return fmt::format("{}({}, {}, {})", layer, in_, out_, geometry_text(options_, transposed_));
}

template <class T>
Var<T> Conv2d<T>::forward(const Var<T>& x) {
    const Conv2dLayerOptions& o = this->options_;
    Conv2dOptions geometry{o.stride, o.padding, o.dilation, o.groups};
    return this->bias_.defined() ? conv2d(x, this->weight_, this->bias_, geometry) : conv2d(x, this->weight_, geometry);
}

template <class T>
Var<T> ConvTranspose2d<T>::forward(const Var<T>& x) {
    const Conv2dLayerOptions& o = this->options_;
    ConvTranspose2dOptions geometry{o.stride, o.padding, o.output_padding, o.dilation, o.groups};
    return this->bias_.defined() ? conv_transpose2d(x, this->weight_, this->bias_, geometry)
                                 : conv_transpose2d(x, this->weight_, geometry);
}

template <class T>
std::string MaxPool2d<T>::describe() const {
    return fmt::format("MaxPool2d({})", pool_text(options_, true));
}

template <class T>
AvgPool2d<T>::AvgPool2d(Pool2dOptions options) : options_(options) {
    if (options.dilation != Pair{1, 1}) {
        detail::throw_value_error(fmt::format("AvgPool2d: takes no dilation, given ({}, {})", options.dilation[0],
                                              options.dilation[1]));
    }
}

template <class T>
std::string AvgPool2d<T>::describe() const {
    return fmt::format("AvgPool2d({})", pool_text(options_, false));
}

template <class T>
std::string Upsample<T>::describe() const {
    return fmt::format("Upsample(scale_factor={}, mode=nearest)", pair_text(scale_));
}

template <class T>
Var<T> Flatten<T>::forward(const Var<T>& x) {
    if (x.ndim() < 2) {
        detail::throw_shape_error(fmt::format("Flatten: needs a batch of values, (N, ...): {}", tapegrad::to_string(x.shape())));
    }
    std::size_t width = 1;
    for (std::size_t d = 1; d < x.ndim(); ++d) {
        width *= x.shape()[d];
    }
    return reshape(x, Shape{x.shape()[0], width});
}

template <class T>
Var<T> Unflatten<T>::forward(const Var<T>& x) {
    std::size_t features = image_[0] * image_[1] * image_[2];
    if (x.ndim() != 2 || x.shape()[1] != features) {
        detail::throw_shape_error(fmt::format("{}: input has shape {}, expected (batch, {})", describe(),
                                              tapegrad::to_string(x.shape()), features));
    }
    return reshape(x, Shape{x.shape()[0], image_[0], image_[1], image_[2]});
}

template <class T>
std::string Unflatten<T>::describe() const {
    return fmt::format("Unflatten(dim=1, unflattened_size=({}, {}, {}))", image_[0], image_[1], image_[2]);
}

#define TAPEGRAD_INSTANTIATE(M) \
    template class M<float>;    \
    template class M<double>;
TAPEGRAD_INSTANTIATE(ConvLayer)
TAPEGRAD_INSTANTIATE(Conv2d)
TAPEGRAD_INSTANTIATE(ConvTranspose2d)
TAPEGRAD_INSTANTIATE(MaxPool2d)
TAPEGRAD_INSTANTIATE(AvgPool2d)
TAPEGRAD_INSTANTIATE(Upsample)
TAPEGRAD_INSTANTIATE(Flatten)
TAPEGRAD_INSTANTIATE(Unflatten)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::nn
