// Convolutions on NCHW images, and the three ops they close under differentiation. With C the
// convolution x (N, C, H, W) * w (O, C/G, kh, kw) -> y (N, O, Ho, Wo), all three bilinear:
//   conv2d             C(x, w)   = y
//   conv_transpose2d   Ct(y, w)  = the adjoint of x -> C(x, w), applied to y: the gradient of C's input
//   conv2d_weight_grad Cw(x, y)  = the adjoint of w -> C(x, w), applied to y: the gradient of C's weight
// and each one's gradients are the other two: for conv2d, dx = Ct(dy, w), dw = Cw(x, dy); for
// conv_transpose2d, dy = C(dx, w), dw = Cw(dx, y); for conv2d_weight_grad, dx = Ct(y, dw), dy = C(x, dw).
// So backward formulas are ops again, and second derivatives come for free.
//
// The kernels: samples run in parallel, a part per thread. On floats, oneDNN's convolutions run each part
// when the library is built with it (conv_dnnl.hpp). Otherwise, and for doubles, each sample's (and
// group's) input is unrolled into columns (im2col), multiplied through tapegrad::gemm, and for the adjoints
// the columns are added back (col2im).
#include <algorithm>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "../gemm.hpp"
#include "conv_dnnl.hpp"
#include "image.hpp"

namespace tapegrad {

namespace detail {
namespace {

using namespace image;

Attrs encode(std::string_view op, const ConvAttrs& c) {
    check_field(op, "stride", c.stride, true);
    check_field(op, "padding", c.padding, false);
    check_field(op, "dilation", c.dilation, true);
    if (c.groups == 0 || c.groups >= field_limit) {
        throw_value_error(fmt::format("{}: groups {} must be positive and below {}", op, c.groups, field_limit));
    }
    return {.i = pack4(c.stride[0], c.stride[1], c.padding[0], c.padding[1]),
            .j = pack4(c.dilation[0], c.dilation[1], c.groups, 0),
            .k = static_cast<std::int64_t>(c.size[0] | c.size[1] << 32)};
}

ConvAttrs decode(const Attrs& a) {
    auto k = static_cast<std::uint64_t>(a.k);
    return {.stride = {field(a.i, 0), field(a.i, 1)},
            .padding = {field(a.i, 2), field(a.i, 3)},
            .dilation = {field(a.j, 0), field(a.j, 1)},
            .groups = field(a.j, 2),
            .size = {k & 0xffffffffu, k >> 32}};
}
std::string shapes(const Shape& a, std::string_view sep, const Shape& b) {
    return fmt::format("{} {} {}", to_string(a), sep, to_string(b));
}

// The geometry of C from its input's and weight's shapes, checked: the shape errors of conv2d, and of the
// two adjoints, which name their own operands (`sep` joins them in the message).
Geometry geometry(std::string_view op, const Shape& x, const Shape& w, const ConvAttrs& a, std::string_view sep,
                  const Shape& shown_a, const Shape& shown_b) {
    if (x.size() != 4 || w.size() != 4) {
        throw_shape_error(fmt::format("{}: needs 4-D values (NCHW, and a weight (O, C/groups, kh, kw)): {}", op,
                                      shapes(shown_a, sep, shown_b)));
    }
    Geometry g{x[0], x[1], x[2], x[3], w[0], w[2], w[3], 0, 0, a};
    if (g.c != w[1] * a.groups) {
        throw_shape_error(fmt::format("{}: input has {} channels, weight expects {}{}: {}", op, g.c, w[1] * a.groups,
                                      a.groups > 1 ? fmt::format(" ({} groups of {})", a.groups, w[1]) : "",
                                      shapes(shown_a, sep, shown_b)));
    }
    if (g.o % a.groups != 0) {
        throw_shape_error(fmt::format("{}: {} output channels do not split into {} groups: {}", op, g.o, a.groups,
                                      shapes(shown_a, sep, shown_b)));
    }
    if (g.kh == 0 || g.kw == 0) {
        throw_shape_error(fmt::format("{}: empty kernel: {}", op, shapes(shown_a, sep, shown_b)));
    }
    g.ho = swept(g.h, g.kh, a.stride[0], a.padding[0], a.dilation[0]);
    g.wo = swept(g.w, g.kw, a.stride[1], a.padding[1], a.dilation[1]);
    if (g.ho == 0 || g.wo == 0) {
        throw_shape_error(fmt::format("{}: the image ({}, {}) padded by ({}, {}) is smaller than the kernel ({}, {}) "
                                      "dilated by ({}, {}): {}",
                                      op, g.h, g.w, a.padding[0], a.padding[1], g.kh, g.kw, a.dilation[0],
                                      a.dilation[1], shapes(shown_a, sep, shown_b)));
    }
    return g;
}

void check_bias(std::string_view op, const Shape& b, std::size_t channels, const Shape& x, const Shape& w) {
    if (b.size() != 1 || b[0] != channels) {
        throw_shape_error(fmt::format("{}: bias {} does not fit {} output channels: {} * {}", op, to_string(b),
                                      channels, to_string(x), to_string(w)));
    }
}

// x (cg, h, w) of one sample and group unrolled into col (cg kh kw, ho wo): row (c, i, j) holds the input
// each output position sees through kernel tap (i, j) of channel c, 0 in the padding.
template <class T>
void im2col(const Geometry& g, const T* x, T* col) {
    const ConvAttrs& a = g.a;
    for (std::size_t c = 0; c < g.cg(); ++c) {
        for (std::size_t i = 0; i < g.kh; ++i) {
            for (std::size_t j = 0; j < g.kw; ++j) {
                T* row = col + ((c * g.kh + i) * g.kw + j) * g.out_plane();
                const T* plane = x + c * g.in_plane();
                for (std::size_t oy = 0; oy < g.ho; ++oy) {
                    // iy = oy stride + i dilation - padding, in unsigned arithmetic: out of range wraps high.
                    std::size_t iy = oy * a.stride[0] + i * a.dilation[0] - a.padding[0];
                    T* out = row + oy * g.wo;
                    if (iy >= g.h) {
                        std::fill(out, out + g.wo, T(0));
                        continue;
                    }
                    const T* in = plane + iy * g.w;
                    for (std::size_t ox = 0; ox < g.wo; ++ox) {
                        std::size_t ix = ox * a.stride[1] + j * a.dilation[1] - a.padding[1];
                        out[ox] = ix < g.w ? in[ix] : T(0);
                    }
                }
            }
        }
    }
}

// The adjoint of im2col: each column entry added back to the input position it was read from.
template <class T>
void col2im(const Geometry& g, const T* col, T* x) {
    const ConvAttrs& a = g.a;
    for (std::size_t c = 0; c < g.cg(); ++c) {
        for (std::size_t i = 0; i < g.kh; ++i) {
            for (std::size_t j = 0; j < g.kw; ++j) {
                const T* row = col + ((c * g.kh + i) * g.kw + j) * g.out_plane();
                T* plane = x + c * g.in_plane();
                for (std::size_t oy = 0; oy < g.ho; ++oy) {
                    std::size_t iy = oy * a.stride[0] + i * a.dilation[0] - a.padding[0];
                    if (iy >= g.h) {
                        continue;
                    }
                    const T* in = row + oy * g.wo;
                    T* out = plane + iy * g.w;
                    for (std::size_t ox = 0; ox < g.wo; ++ox) {
                        std::size_t ix = ox * a.stride[1] + j * a.dilation[1] - a.padding[1];
                        if (ix < g.w) {
                            out[ix] += in[ox];
                        }
                    }
                }
            }
        }
    }
}

// Every output channel's plane of y (n, channels, plane) set to its bias, or to zero without one.
template <class T>
void fill_channels(T* y, std::size_t n, std::size_t channels, std::size_t plane, const T* bias) {
    for (std::size_t s = 0; s < n; ++s) {
        for (std::size_t ch = 0; ch < channels; ++ch) {
            T* p = y + (s * channels + ch) * plane;
            std::fill(p, p + plane, bias != nullptr ? bias[ch] : T(0));
        }
    }
}

// A part of a convolution: samples [begin, end) of g.
Geometry samples(const Geometry& g, std::size_t begin, std::size_t end) {
    Geometry part = g;
    part.n = end - begin;
    return part;
}

// On oneDNN when it runs this pass on floats (conv_dnnl.hpp): false, having done nothing, otherwise.
template <class T>
bool on_onednn(onednn::Pass pass, const Geometry& g, const T* a, const T* b, const T* bias, T* out) {
    if constexpr (std::is_same_v<T, float>) {
        return onednn::run(pass, g, a, b, bias, out);
    } else {
        return false;
    }
}

// y (n, o, ho, wo) = C(x, w) (+ bias): per sample and group, W_g (og, k) x columns (k, ho wo).
template <class T>
void conv_forward(const Geometry& g, const T* x, const T* w, const T* bias, T* y) {
    parallel_for(g.n, 1, [&](std::size_t begin, std::size_t end) {
        const T* xs = x + begin * g.c * g.in_plane();
        T* ys = y + begin * g.o * g.out_plane();
        if (on_onednn(onednn::Pass::forward, samples(g, begin, end), xs, w, bias, ys)) {
            return;
        }
        fill_channels(ys, end - begin, g.o, g.out_plane(), bias);
        T* col = scratch<T>(g.k() * g.out_plane());
        for (std::size_t s = begin; s < end; ++s) {
            for (std::size_t q = 0; q < g.a.groups; ++q) {
                im2col(g, x + (s * g.c + q * g.cg()) * g.in_plane(), col);
                gemm<T>(false, false, g.og(), g.out_plane(), g.k(), T(1), w + q * g.og() * g.k(), g.k(), col,
                        g.out_plane(), T(1), y + (s * g.o + q * g.og()) * g.out_plane(), g.out_plane());
            }
        }
    }, 1);
}

// x (n, c, h, w) = Ct(y, w) (+ bias): per sample and group, columns = W_g^T (k, og) x y_g (og, ho wo), added
// back.
template <class T>
void conv_adjoint_input(const Geometry& g, const T* y, const T* w, const T* bias, T* x) {
    parallel_for(g.n, 1, [&](std::size_t begin, std::size_t end) {
        const T* ys = y + begin * g.o * g.out_plane();
        T* xs = x + begin * g.c * g.in_plane();
        if (on_onednn(onednn::Pass::input, samples(g, begin, end), ys, w, bias, xs)) {
            return;
        }
        fill_channels(xs, end - begin, g.c, g.in_plane(), bias);
        T* col = scratch<T>(g.k() * g.out_plane());
        for (std::size_t s = begin; s < end; ++s) {
            for (std::size_t q = 0; q < g.a.groups; ++q) {
                gemm<T>(true, false, g.k(), g.out_plane(), g.og(), T(1), w + q * g.og() * g.k(), g.k(),
                        y + (s * g.o + q * g.og()) * g.out_plane(), g.out_plane(), T(0), col, g.out_plane());
                col2im(g, col, x + (s * g.c + q * g.cg()) * g.in_plane());
            }
        }
    }, 1);
}

// Samples per part of the weight gradient's sum: the parts are summed in parallel, then added in order,
// so that the result depends on the batch alone, not on the threads.
constexpr std::size_t weight_parts = 8;

// dw (o, cg, kh, kw) = Cw(x, y): per group, the sum over samples of y_g (og, ho wo) x columns^T, in
// weight_parts parts of consecutive samples (each summed in sample order), the parts then added in order.
template <class T>
void conv_adjoint_weight(const Geometry& g, const T* x, const T* y, T* dw) {
    std::size_t size = g.o * g.k();
    std::size_t parts = std::min(g.n, weight_parts);
    T* partial = scratch<T, 1>(parts * size);
    parallel_for(parts, 1, [&](std::size_t begin, std::size_t end) {
        T* col = scratch<T>(g.k() * g.out_plane());
        for (std::size_t part = begin; part < end; ++part) {
            T* sum = partial + part * size;
            std::size_t first = part * g.n / parts;
            std::size_t last = (part + 1) * g.n / parts;
            if (on_onednn(onednn::Pass::weight, samples(g, first, last), x + first * g.c * g.in_plane(),
                          y + first * g.o * g.out_plane(), static_cast<const T*>(nullptr), sum)) {
                continue;
            }
            std::fill(sum, sum + size, T(0));
            for (std::size_t s = first; s < last; ++s) {
                for (std::size_t q = 0; q < g.a.groups; ++q) {
                    im2col(g, x + (s * g.c + q * g.cg()) * g.in_plane(), col);
                    gemm<T>(false, true, g.og(), g.k(), g.out_plane(), T(1),
                            y + (s * g.o + q * g.og()) * g.out_plane(), g.out_plane(), col, g.out_plane(), T(1),
                            sum + q * g.og() * g.k(), g.k());
                }
            }
        }
    }, 1);
    std::fill(dw, dw + size, T(0));
    for (std::size_t part = 0; part < parts; ++part) {
        const T* sum = partial + part * size;
        for (std::size_t i = 0; i < size; ++i) {
            dw[i] += sum[i];
        }
    }
}

Attrs with_size(const Attrs& attrs, Pair size) {
    ConvAttrs a = decode(attrs);
    a.size = size;
    return encode("conv", a);
}

// dy summed over samples and pixels: a bias's gradient, with ops so that it differentiates again (sum_to
// sums each channel in one parallel pass).
template <class T>
Var<T> channel_sums(const Var<T>& dy) {
    std::size_t channels = dy.shape()[1];
    return reshape(sum_to(dy, Shape{channels, 1, 1}), Shape{channels});
}

struct Conv2d;
struct ConvTranspose2d;
struct Conv2dWeightGrad;

// y = C(x, w) (+ b per output channel).
struct Conv2d {
    static constexpr std::string_view name = "conv2d";
    static constexpr int arity = -1;  // x, w and an optional bias
    static constexpr bool kink = false;
    template <class T>
    static Geometry geometry_of(const Call<T>& c) {
        check_arity(c, 2, 3);
        Geometry g = geometry(name, c.shape(0), c.shape(1), decode(c.attrs()), "*", c.shape(0), c.shape(1));
        if (c.arity() == 3) {
            check_bias(name, c.shape(2), g.o, c.shape(0), c.shape(1));
        }
        return g;
    }
    template <class T>
    static Shape shape(const Call<T>& c) {
        Geometry g = geometry_of(c);
        return {g.n, g.o, g.ho, g.wo};
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& y) {
        conv_forward(geometry_of(c), c.value(0).data(), c.value(1).data(),
                     c.arity() == 3 ? c.value(2).data() : nullptr, y.data());
    }
    template <class T>
    static void backward(Grads<T>& g) {
        const Shape& x = g.in(0).shape();
        const Shape& w = g.in(1).shape();
        if (g.needs(0)) {
            g.add(0, apply<ConvTranspose2d, T>({g.dy(), g.in(1)}, with_size(g.attrs(), {x[2], x[3]})));
        }
        if (g.needs(1)) {
            g.add(1, apply<Conv2dWeightGrad, T>({g.in(0), g.dy()}, with_size(g.attrs(), {w[2], w[3]})));
        }
        if (g.arity() == 3 && g.needs(2)) {
            g.add(2, channel_sums(g.dy()));
        }
    }
};

// x = Ct(y, w) (+ b per output channel): y (n, o, ho, wo), w (o, c / groups, kh, kw) -> (n, c, h, w), (h, w)
// from the attrs.
struct ConvTranspose2d {
    static constexpr std::string_view name = "conv_transpose2d";
    static constexpr int arity = -1;
    static constexpr bool kink = false;
    template <class T>
    static Geometry geometry_of(const Call<T>& c) {
        check_arity(c, 2, 3);
        const Shape& y = c.shape(0);
        const Shape& w = c.shape(1);
        ConvAttrs a = decode(c.attrs());
        if (y.size() != 4 || w.size() != 4) {
            throw_shape_error(fmt::format("{}: needs 4-D values (NCHW, and a weight (C, O/groups, kh, kw)): {}", name,
                                          shapes(y, "*", w)));
        }
        if (y[1] != w[0]) {
            throw_shape_error(fmt::format("{}: input has {} channels, weight expects {}: {}", name, y[1], w[0],
                                          shapes(y, "*", w)));
        }
        if (y[1] % a.groups != 0) {
            throw_shape_error(fmt::format("{}: {} input channels do not split into {} groups: {}", name, y[1],
                                          a.groups, shapes(y, "*", w)));
        }
        Geometry g = geometry(name, Shape{y[0], w[1] * a.groups, a.size[0], a.size[1]}, w, a, "*", y, w);
        if (g.ho != y[2] || g.wo != y[3]) {
            throw_shape_error(fmt::format("{}: an output of ({}, {}) does not give back the input's ({}, {}) under "
                                          "the stride and padding: {}",
                                          name, a.size[0], a.size[1], y[2], y[3], shapes(y, "*", w)));
        }
        if (c.arity() == 3) {
            check_bias(name, c.shape(2), g.c, y, w);
        }
        return g;
    }
    template <class T>
    static Shape shape(const Call<T>& c) {
        Geometry g = geometry_of(c);
        return {g.n, g.c, g.h, g.w};
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& x) {
        conv_adjoint_input(geometry_of(c), c.value(0).data(), c.value(1).data(),
                           c.arity() == 3 ? c.value(2).data() : nullptr, x.data());
    }
    template <class T>
    static void backward(Grads<T>& g) {
        const Shape& w = g.in(1).shape();
        if (g.needs(0)) {
            g.add(0, apply<Conv2d, T>({g.dy(), g.in(1)}, with_size(g.attrs(), {0, 0})));
        }
        if (g.needs(1)) {
            g.add(1, apply<Conv2dWeightGrad, T>({g.dy(), g.in(0)}, with_size(g.attrs(), {w[2], w[3]})));
        }
        if (g.arity() == 3 && g.needs(2)) {
            g.add(2, channel_sums(g.dy()));
        }
    }
};

// dw = Cw(x, y): x (n, c, h, w), y (n, o, ho, wo) -> (o, c / groups, kh, kw), (kh, kw) from the attrs.
struct Conv2dWeightGrad {
    static constexpr std::string_view name = "conv2d_weight_grad";
    static constexpr int arity = 2;
    static constexpr bool kink = false;
    template <class T>
    static Geometry geometry_of(const Call<T>& c) {
        const Shape& x = c.shape(0);
        const Shape& y = c.shape(1);
        ConvAttrs a = decode(c.attrs());
        if (x.size() != 4 || y.size() != 4) {
            throw_shape_error(fmt::format("{}: needs 4-D values (NCHW): {}", name, shapes(x, "and", y)));
        }
        if (x[1] % a.groups != 0) {
            throw_shape_error(fmt::format("{}: {} input channels do not split into {} groups: {}", name, x[1],
                                          a.groups, shapes(x, "and", y)));
        }
        Geometry g = geometry(name, x, Shape{y[1], x[1] / a.groups, a.size[0], a.size[1]}, a, "and", x, y);
        if (x[0] != y[0] || g.ho != y[2] || g.wo != y[3]) {
            throw_shape_error(fmt::format("{}: a kernel ({}, {}) over the input gives ({}, {}, {}, {}), not the "
                                          "gradient's shape: {}",
                                          name, a.size[0], a.size[1], g.n, g.o, g.ho, g.wo, shapes(x, "and", y)));
        }
        return g;
    }
    template <class T>
    static Shape shape(const Call<T>& c) {
        Geometry g = geometry_of(c);
        return {g.o, g.cg(), g.kh, g.kw};
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& dw) {
        conv_adjoint_weight(geometry_of(c), c.value(0).data(), c.value(1).data(), dw.data());
    }
    template <class T>
    static void backward(Grads<T>& g) {
        const Shape& x = g.in(0).shape();
        if (g.needs(0)) {
            g.add(0, apply<ConvTranspose2d, T>({g.in(1), g.dy()}, with_size(g.attrs(), {x[2], x[3]})));
        }
        if (g.needs(1)) {
            g.add(1, apply<Conv2d, T>({g.in(0), g.dy()}, with_size(g.attrs(), {0, 0})));
        }
    }
};

constexpr OpInfo rows[] = {op_info<Conv2d>("conv"), op_info<ConvTranspose2d>("conv"),
                           op_info<Conv2dWeightGrad>("conv")};

ConvAttrs conv_attrs(const Conv2dOptions& o) {
    return {.stride = o.stride, .padding = o.padding, .dilation = o.dilation, .groups = o.groups};
}

// The output side of conv_transpose2d, checked: what conv2d over it gives back the input's side.
Pair transposed_size(const Shape& x, const Shape& w, const ConvTranspose2dOptions& o) {
    if (x.size() != 4 || w.size() != 4) {
        throw_shape_error(fmt::format("conv_transpose2d: needs 4-D values (NCHW, and a weight (C, O/groups, kh, kw)): "
                                      "{}",
                                      shapes(x, "*", w)));
    }
    Pair size{};
    for (int axis = 0; axis < 2; ++axis) {
        std::size_t in = x[2 + axis];
        std::size_t k = w[2 + axis];
        // PyTorch also takes output padding below the dilation, which adds rows that only the bias reaches;
        // those rows would make conv2d, this op's backward, give back a larger input.
        if (o.output_padding[axis] >= o.stride[axis]) {
            throw_value_error(fmt::format("conv_transpose2d: output padding ({}, {}) must be below the stride ({}, {})",
                                          o.output_padding[0], o.output_padding[1], o.stride[0], o.stride[1]));
        }
        std::size_t full = (in - 1) * o.stride[axis] + o.dilation[axis] * (k - 1) + o.output_padding[axis] + 1;
        if (in == 0 || k == 0 || full <= 2 * o.padding[axis]) {
            throw_shape_error(fmt::format("conv_transpose2d: padding ({}, {}) leaves no output: {}", o.padding[0],
                                          o.padding[1], shapes(x, "*", w)));
        }
        size[axis] = full - 2 * o.padding[axis];
    }
    return size;
}

Attrs transposed_attrs(const Shape& x, const Shape& w, const ConvTranspose2dOptions& o) {
    Pair size = transposed_size(x, w, o);
    return encode("conv_transpose2d",
                  ConvAttrs{.stride = o.stride, .padding = o.padding, .dilation = o.dilation, .groups = o.groups,
                            .size = size});
}

}  // namespace

std::span<const OpInfo> conv_ops() { return rows; }

}  // namespace detail

template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Conv2dOptions& options) {
    return apply<detail::Conv2d>({x, w}, detail::encode(detail::Conv2d::name, detail::conv_attrs(options)));
}

template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, const Conv2dOptions& options) {
    return apply<detail::Conv2d>({x, w, b}, detail::encode(detail::Conv2d::name, detail::conv_attrs(options)));
}

template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& w, const ConvTranspose2dOptions& options) {
    return apply<detail::ConvTranspose2d>({x, w}, detail::transposed_attrs(x.shape(), w.shape(), options));
}

template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, const ConvTranspose2dOptions& options) {
    return apply<detail::ConvTranspose2d>({x, w, b}, detail::transposed_attrs(x.shape(), w.shape(), options));
}

template <class T>
Var<T> conv2d_weight_grad(const Var<T>& x, const Var<T>& g, Pair kernel, const Conv2dOptions& options) {
    detail::ConvAttrs a = detail::conv_attrs(options);
    a.size = kernel;
    return apply<detail::Conv2dWeightGrad>({x, g}, detail::encode(detail::Conv2dWeightGrad::name, a));
}

#define TAPEGRAD_INSTANTIATE(T)                                                                              \
    template Var<T> conv2d<T>(const Var<T>&, const Var<T>&, const Conv2dOptions&);                           \
    template Var<T> conv2d<T>(const Var<T>&, const Var<T>&, const Var<T>&, const Conv2dOptions&);            \
    template Var<T> conv_transpose2d<T>(const Var<T>&, const Var<T>&, const ConvTranspose2dOptions&);        \
    template Var<T> conv_transpose2d<T>(const Var<T>&, const Var<T>&, const Var<T>&,                         \
                                        const ConvTranspose2dOptions&);                                      \
    template Var<T> conv2d_weight_grad<T>(const Var<T>&, const Var<T>&, Pair, const Conv2dOptions&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
