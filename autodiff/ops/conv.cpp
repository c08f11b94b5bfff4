// Convolutions on NCHW images, and the three ops they close under differentiation. With C the
// convolution x (N, C, H, W) * w (O, C/G, kh, kw) -> y (N, O, Ho, Wo), all three bilinear:
//   conv2d             C(x, w)   = y
//   conv_transpose2d   Ct(y, w)  = the adjoint of x -> C(x, w), applied to y: the gradient of C's input
//   conv2d_weight_grad Cw(x, y)  = the adjoint of w -> C(x, w), applied to y: the gradient of C's weight
// and each one's gradients are the other two: for conv2d, dx = Ct(dy, w), dw = Cw(x, dy); for
// conv_transpose2d, dy = C(dx, w), dw = Cw(dx, y); for conv2d_weight_grad, dx = Ct(y, dw), dy = C(x, dw).
// So backward formulas are ops again, and second derivatives come for free.
//
// The kernels: each sample's (and group's) input unrolled into columns (im2col), one matrix product through
// tapegrad::gemm, and for the adjoints the columns added back (col2im). Samples run in parallel.
#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "../gemm.hpp"
#include "../op_impl.hpp"

namespace tapegrad {

namespace detail {
namespace {

// The geometry of one convolution C, as the tape stores it in Attrs: stride, padding, dilation (each below
// 2^16 per axis), groups, and `size`: the input side (H, W) for conv_transpose2d, the kernel (kh, kw) for
// conv2d_weight_grad, unused for conv2d.
struct ConvAttrs {
    Pair stride{1, 1};
    Pair padding{0, 0};
    Pair dilation{1, 1};
    std::size_t groups = 1;
    Pair size{0, 0};
};

constexpr std::size_t field_limit = std::size_t{1} << 16;

std::int64_t pack4(std::size_t a, std::size_t b, std::size_t c, std::size_t d) {
    return static_cast<std::int64_t>(a | b << 16 | c << 32 | d << 48);
}
std::size_t field(std::int64_t packed, int k) {
    return (static_cast<std::uint64_t>(packed) >> (16 * k)) & (field_limit - 1);
}

void check_field(std::string_view op, std::string_view what, Pair v, bool positive) {
    for (std::size_t x : v) {
        if (x >= field_limit || (positive && x == 0)) {
            throw_value_error(fmt::format("{}: {} ({}, {}) must be {}below {}", op, what, v[0], v[1],
                                          positive ? "positive and " : "", field_limit));
        }
    }
}

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

// The output side of a window sweep, or 0 when the padded input is shorter than the dilated kernel.
std::size_t swept(std::size_t in, std::size_t kernel, std::size_t stride, std::size_t padding, std::size_t dilation) {
    std::size_t span = dilation * (kernel - 1) + 1;
    if (in + 2 * padding < span) {
        return 0;
    }
    return (in + 2 * padding - span) / stride + 1;
}

// Everything the kernels need about one convolution C: x (n, c, h, w) * w (o, c / groups, kh, kw) ->
// (n, o, ho, wo).
struct Geometry {
    std::size_t n, c, h, w, o, kh, kw, ho, wo;
    ConvAttrs a;
    std::size_t cg() const { return c / a.groups; }
    std::size_t og() const { return o / a.groups; }
    std::size_t k() const { return cg() * kh * kw; }  // rows of a group's columns
    std::size_t in_plane() const { return h * w; }
    std::size_t out_plane() const { return ho * wo; }
};

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

template <class T>
void check_arity(const Call<T>& c, std::size_t lo, std::size_t hi) {
    if (c.arity() < lo || c.arity() > hi) {
        throw_value_error(fmt::format("{}: takes {} or {} inputs, given {}", c.op(), lo, hi, c.arity()));
    }
}

// A thread's scratch buffers (slot 0: columns; 1: partial sums), grown as needed and kept: no allocation in
// a steady state.
template <class T, int slot = 0>
T* scratch(std::size_t n) {
    thread_local std::vector<T> buffer;
    if (buffer.size() < n) {
        buffer.resize(n);
    }
    return buffer.data();
}

// The output columns [lo, hi) whose input column ix = ox stride + offset lies in [0, w), offset being
// tap j dilation - padding.
struct Span {
    std::size_t lo, hi;
};
inline Span inside(std::ptrdiff_t offset, std::size_t stride, std::size_t w, std::size_t wo) {
    auto s = static_cast<std::ptrdiff_t>(stride);
    std::ptrdiff_t lo = offset >= 0 ? 0 : (-offset + s - 1) / s;
    std::ptrdiff_t hi = static_cast<std::ptrdiff_t>(w) - offset <= 0 ? 0 : (static_cast<std::ptrdiff_t>(w) - offset + s - 1) / s;
    lo = std::min<std::ptrdiff_t>(lo, static_cast<std::ptrdiff_t>(wo));
    hi = std::clamp<std::ptrdiff_t>(hi, lo, static_cast<std::ptrdiff_t>(wo));
    return {static_cast<std::size_t>(lo), static_cast<std::size_t>(hi)};
}

// The input column of output column span.lo: at least 0 when the span is not empty.
inline std::ptrdiff_t first(Span span, std::size_t stride, std::ptrdiff_t offset) {
    return static_cast<std::ptrdiff_t>(span.lo * stride) + offset;
}

// x (cg, h, w) of one sample and group unrolled into col (cg kh kw, ho wo): row (c, i, j) holds the input
// each output position sees through kernel tap (i, j) of channel c, 0 in the padding.
template <class T>
void im2col(const Geometry& g, const T* x, T* col) {
    const ConvAttrs& a = g.a;
    const std::size_t sx = a.stride[1];
    for (std::size_t c = 0; c < g.cg(); ++c) {
        for (std::size_t i = 0; i < g.kh; ++i) {
            for (std::size_t j = 0; j < g.kw; ++j) {
                T* row = col + ((c * g.kh + i) * g.kw + j) * g.out_plane();
                const T* plane = x + c * g.in_plane();
                auto offset = static_cast<std::ptrdiff_t>(j * a.dilation[1]) - static_cast<std::ptrdiff_t>(a.padding[1]);
                Span span = inside(offset, sx, g.w, g.wo);
                for (std::size_t oy = 0; oy < g.ho; ++oy) {
                    // iy = oy stride + i dilation - padding, in unsigned arithmetic: out of range wraps high.
                    std::size_t iy = oy * a.stride[0] + i * a.dilation[0] - a.padding[0];
                    T* out = row + oy * g.wo;
                    if (iy >= g.h) {
                        std::fill(out, out + g.wo, T(0));
                        continue;
                    }
                    std::fill(out, out + span.lo, T(0));
                    if (span.lo < span.hi) {
                        // in[k stride] is the input of column span.lo + k.
                        const T* in = plane + iy * g.w + static_cast<std::size_t>(first(span, sx, offset));
                        std::size_t n = span.hi - span.lo;
                        if (sx == 1) {
                            std::copy(in, in + n, out + span.lo);
                        } else {
                            for (std::size_t k = 0; k < n; ++k) {
                                out[span.lo + k] = in[k * sx];
                            }
                        }
                    }
                    std::fill(out + span.hi, out + g.wo, T(0));
                }
            }
        }
    }
}

// The adjoint of im2col: each column entry added back to the input position it was read from.
template <class T>
void col2im(const Geometry& g, const T* col, T* x) {
    const ConvAttrs& a = g.a;
    const std::size_t sx = a.stride[1];
    for (std::size_t c = 0; c < g.cg(); ++c) {
        for (std::size_t i = 0; i < g.kh; ++i) {
            for (std::size_t j = 0; j < g.kw; ++j) {
                const T* row = col + ((c * g.kh + i) * g.kw + j) * g.out_plane();
                T* plane = x + c * g.in_plane();
                auto offset = static_cast<std::ptrdiff_t>(j * a.dilation[1]) - static_cast<std::ptrdiff_t>(a.padding[1]);
                Span span = inside(offset, sx, g.w, g.wo);
                for (std::size_t oy = 0; oy < g.ho; ++oy) {
                    std::size_t iy = oy * a.stride[0] + i * a.dilation[0] - a.padding[0];
                    if (iy >= g.h || span.lo == span.hi) {
                        continue;
                    }
                    const T* in = row + oy * g.wo + span.lo;
                    T* out = plane + iy * g.w + static_cast<std::size_t>(first(span, sx, offset));
                    for (std::size_t k = 0, n = span.hi - span.lo; k < n; ++k) {
                        out[k * sx] += in[k];
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

// y (n, o, ho, wo) += C(x, w): per sample and group, W_g (og, k) x columns (k, ho wo).
template <class T>
void conv_forward(const Geometry& g, const T* x, const T* w, T* y) {
    parallel_for(g.n, 1, [&](std::size_t begin, std::size_t end) {
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

// x (n, c, h, w) += Ct(y, w): per sample and group, columns = W_g^T (k, og) x y_g (og, ho wo), added back.
template <class T>
void conv_adjoint_input(const Geometry& g, const T* y, const T* w, T* x) {
    parallel_for(g.n, 1, [&](std::size_t begin, std::size_t end) {
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
    std::fill(partial, partial + parts * size, T(0));
    parallel_for(parts, 1, [&](std::size_t begin, std::size_t end) {
        T* col = scratch<T>(g.k() * g.out_plane());
        for (std::size_t part = begin; part < end; ++part) {
            T* sum = partial + part * size;
            for (std::size_t s = part * g.n / parts; s < (part + 1) * g.n / parts; ++s) {
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

// dy summed over samples and pixels: a bias's gradient, with ops so that it differentiates again.
template <class T>
Var<T> channel_sums(const Var<T>& dy) {
    return sum(sum(sum(dy, 3), 2), 0);
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
        Geometry g = geometry_of(c);
        fill_channels(y.data(), g.n, g.o, g.out_plane(), c.arity() == 3 ? c.value(2).data() : nullptr);
        conv_forward(g, c.value(0).data(), c.value(1).data(), y.data());
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
        Geometry g = geometry_of(c);
        fill_channels(x.data(), g.n, g.c, g.in_plane(), c.arity() == 3 ? c.value(2).data() : nullptr);
        conv_adjoint_input(g, c.value(0).data(), c.value(1).data(), x.data());
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

// ---------------------------------------------------------------------------------------------------------
// Pooling. The window geometry in Attrs: kernel and stride (i), padding and dilation (j), and the input's
// (h, w) for the adjoints, which must give it back (k).

struct PoolAttrs {
    Pair kernel, stride, padding, dilation, size;
};

Attrs encode(std::string_view op, const PoolAttrs& p) {
    check_field(op, "kernel", p.kernel, true);
    check_field(op, "stride", p.stride, true);
    check_field(op, "padding", p.padding, false);
    check_field(op, "dilation", p.dilation, true);
    for (int axis = 0; axis < 2; ++axis) {
        if (2 * p.padding[axis] > p.kernel[axis]) {
            throw_value_error(fmt::format("{}: padding ({}, {}) must be at most half the kernel ({}, {})", op,
                                          p.padding[0], p.padding[1], p.kernel[0], p.kernel[1]));
        }
    }
    return {.i = pack4(p.kernel[0], p.kernel[1], p.stride[0], p.stride[1]),
            .j = pack4(p.padding[0], p.padding[1], p.dilation[0], p.dilation[1]),
            .k = static_cast<std::int64_t>(p.size[0] | p.size[1] << 32)};
}

PoolAttrs decode_pool(const Attrs& a) {
    auto k = static_cast<std::uint64_t>(a.k);
    return {.kernel = {field(a.i, 0), field(a.i, 1)},
            .stride = {field(a.i, 2), field(a.i, 3)},
            .padding = {field(a.j, 0), field(a.j, 1)},
            .dilation = {field(a.j, 2), field(a.j, 3)},
            .size = {k & 0xffffffffu, k >> 32}};
}

PoolAttrs pool_attrs(const Pool2dOptions& o, Pair size) {
    Pair stride{o.stride[0] == 0 ? o.kernel[0] : o.stride[0], o.stride[1] == 0 ? o.kernel[1] : o.stride[1]};
    return {o.kernel, stride, o.padding, o.dilation, size};
}

struct Window {
    std::size_t planes, h, w, ho, wo;
    PoolAttrs a;
    std::size_t in_plane() const { return h * w; }
    std::size_t out_plane() const { return ho * wo; }
};

// The window sweep over x (n, c, h, w), checked; `shown` is the operand the error names.
Window window(std::string_view op, const Shape& x, const PoolAttrs& a, const Shape& shown) {
    if (x.size() != 4) {
        throw_shape_error(fmt::format("{}: needs a 4-D value (NCHW): {}", op, to_string(shown)));
    }
    Window win{x[0] * x[1], x[2], x[3], 0, 0, a};
    win.ho = swept(win.h, a.kernel[0], a.stride[0], a.padding[0], a.dilation[0]);
    win.wo = swept(win.w, a.kernel[1], a.stride[1], a.padding[1], a.dilation[1]);
    if (win.ho == 0 || win.wo == 0) {
        throw_shape_error(fmt::format("{}: the image ({}, {}) padded by ({}, {}) is smaller than the window ({}, {}) "
                                      "dilated by ({}, {}): {}",
                                      op, win.h, win.w, a.padding[0], a.padding[1], a.kernel[0], a.kernel[1],
                                      a.dilation[0], a.dilation[1], to_string(shown)));
    }
    return win;
}

// Calls f(out, in) for each output position of each plane and each input position of its window inside the
// image, planes in parallel. Positions are flat in the whole (n c h w) and (n c ho wo) arrays.
template <class F>
void for_each_window(const Window& win, F f) {
    const PoolAttrs& a = win.a;
    parallel_for(win.planes, 1, [&](std::size_t begin, std::size_t end) {
        for (std::size_t p = begin; p < end; ++p) {
            for (std::size_t oy = 0; oy < win.ho; ++oy) {
                for (std::size_t ox = 0; ox < win.wo; ++ox) {
                    std::size_t out = p * win.out_plane() + oy * win.wo + ox;
                    for (std::size_t i = 0; i < a.kernel[0]; ++i) {
                        std::size_t iy = oy * a.stride[0] + i * a.dilation[0] - a.padding[0];
                        if (iy >= win.h) {
                            continue;
                        }
                        for (std::size_t j = 0; j < a.kernel[1]; ++j) {
                            std::size_t ix = ox * a.stride[1] + j * a.dilation[1] - a.padding[1];
                            if (ix < win.w) {
                                f(out, p * win.in_plane() + iy * win.w + ix);
                            }
                        }
                    }
                }
            }
        }
    }, 1);
}

// What argmax gives a window wholly in the padding (a dilated one can be): no input position.
constexpr std::size_t no_position = std::numeric_limits<std::size_t>::max();

// For each output position, the flat input position of its window's first maximum in `like`, a NaN being
// the maximum of any window it is in (as in PyTorch); no_position for a window wholly in the padding.
template <class T>
void argmax(const Window& win, const T* like, std::size_t* at) {
    std::fill(at, at + win.planes * win.out_plane(), no_position);
    for_each_window(win, [&](std::size_t out, std::size_t in) {
        T best = at[out] == no_position ? T(0) : like[at[out]];
        if (at[out] == no_position || (best == best && (like[in] > best || like[in] != like[in]))) {
            at[out] = in;
        }
    });
}

template <class T>
void check_same(std::string_view op, const Var<T>& a, const Var<T>& b, std::string_view what) {
    if (a.shape() != b.shape()) {
        throw_shape_error(fmt::format("{}: {} has shape {}, the input {}", op, what, to_string(b.shape()),
                                      to_string(a.shape())));
    }
}

struct MaxPool2dBackward;

// y = the maximum of each window of x; or, with a second input `like`, the values of x at the maxima of
// like's windows (what max_pool2d_backward's backward needs; like takes no gradient).
struct MaxPool2d {
    static constexpr std::string_view name = "max_pool2d";
    static constexpr int arity = -1;
    static constexpr bool kink = true;
    template <class T>
    static Window window_of(const Call<T>& c) {
        check_arity(c, 1, 2);
        if (c.arity() == 2) {
            check_same(name, c.in(0), c.in(1), "the maxima's source");
        }
        return window(name, c.shape(0), decode_pool(c.attrs()), c.shape(0));
    }
    template <class T>
    static Shape shape(const Call<T>& c) {
        Window win = window_of(c);
        return {c.shape(0)[0], c.shape(0)[1], win.ho, win.wo};
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& y) {
        Window win = window_of(c);
        std::size_t* at = scratch<std::size_t>(y.size());
        argmax(win, c.value(c.arity() - 1).data(), at);
        const T* x = c.value(0).data();
        T* py = y.data();
        for (std::size_t i = 0; i < y.size(); ++i) {
            py[i] = at[i] == no_position ? -std::numeric_limits<T>::infinity() : x[at[i]];
        }
        note_branches(name, y.size(), [at](std::size_t i) { return at[i]; });
    }
    template <class T>
    static void backward(Grads<T>& g) {
        if (g.needs(0)) {
            g.add(0, apply<MaxPool2dBackward, T>({g.dy(), g.in(g.arity() - 1)}, g.attrs()));
        }
    }
};

// The adjoint of max_pool2d in x: g (pooled) added, in like's shape, at the maximum of each window of like.
struct MaxPool2dBackward {
    static constexpr std::string_view name = "max_pool2d_backward";
    static constexpr int arity = 2;
    static constexpr bool kink = false;
    template <class T>
    static Window window_of(const Call<T>& c) {
        Window win = window(name, c.shape(1), decode_pool(c.attrs()), c.shape(1));
        const Shape& g = c.shape(0);
        if (g != Shape{c.shape(1)[0], c.shape(1)[1], win.ho, win.wo}) {
            throw_shape_error(fmt::format("{}: the gradient {} is not the pooled shape of {}", name, to_string(g),
                                          to_string(c.shape(1))));
        }
        return win;
    }
    template <class T>
    static Shape shape(const Call<T>& c) {
        window_of(c);
        return c.shape(1);
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& x) {
        Window win = window_of(c);
        std::size_t n = c.value(0).size();
        std::size_t* at = scratch<std::size_t>(n);
        argmax(win, c.value(1).data(), at);
        std::fill(x.begin(), x.end(), T(0));
        const T* g = c.value(0).data();
        T* px = x.data();
        for (std::size_t i = 0; i < n; ++i) {
            if (at[i] != no_position) {
                px[at[i]] += g[i];
            }
        }
    }
    template <class T>
    static void backward(Grads<T>& g) {
        if (g.needs(0)) {
            g.add(0, apply<MaxPool2d, T>({g.dy(), g.in(1)}, g.attrs()));
        }
    }
};

struct AvgPool2dBackward;

// y = the mean of each window of x padded with zeros, over the whole window.
struct AvgPool2d {
    static constexpr std::string_view name = "avg_pool2d";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static Shape shape(const Call<T>& c) {
        Window win = window(name, c.shape(0), decode_pool(c.attrs()), c.shape(0));
        return {c.shape(0)[0], c.shape(0)[1], win.ho, win.wo};
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& y) {
        Window win = window(name, c.shape(0), decode_pool(c.attrs()), c.shape(0));
        std::fill(y.begin(), y.end(), T(0));
        const T* x = c.value(0).data();
        T* py = y.data();
        for_each_window(win, [&](std::size_t out, std::size_t in) { py[out] += x[in]; });
        T scale = T(1) / static_cast<T>(win.a.kernel[0] * win.a.kernel[1]);
        for (T& v : y) {
            v *= scale;
        }
    }
    template <class T>
    static void backward(Grads<T>& g) {
        if (g.needs(0)) {
            PoolAttrs a = decode_pool(g.attrs());
            const Shape& x = g.in(0).shape();
            a.size = {x[2], x[3]};
            g.add(0, apply<AvgPool2dBackward, T>({g.dy()}, encode(name, a)));
        }
    }
};

// The adjoint of avg_pool2d: each pooled value spread evenly over its window, in an image of (h, w) from
// the attrs.
struct AvgPool2dBackward {
    static constexpr std::string_view name = "avg_pool2d_backward";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static Window window_of(const Call<T>& c) {
        const Shape& g = c.shape(0);
        PoolAttrs a = decode_pool(c.attrs());
        if (g.size() != 4) {
            throw_shape_error(fmt::format("{}: needs a 4-D value (NCHW): {}", name, to_string(g)));
        }
        Window win = window(name, Shape{g[0], g[1], a.size[0], a.size[1]}, a, g);
        if (win.ho != g[2] || win.wo != g[3]) {
            throw_shape_error(fmt::format("{}: the gradient {} is not the pooled shape of an image of ({}, {})", name,
                                          to_string(g), a.size[0], a.size[1]));
        }
        return win;
    }
    template <class T>
    static Shape shape(const Call<T>& c) {
        Window win = window_of(c);
        return {c.shape(0)[0], c.shape(0)[1], win.h, win.w};
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& x) {
        Window win = window_of(c);
        std::fill(x.begin(), x.end(), T(0));
        T scale = T(1) / static_cast<T>(win.a.kernel[0] * win.a.kernel[1]);
        const T* g = c.value(0).data();
        T* px = x.data();
        for_each_window(win, [&](std::size_t out, std::size_t in) { px[in] += g[out] * scale; });
    }
    template <class T>
    static void backward(Grads<T>& g) {
        if (g.needs(0)) {
            g.add(0, apply<AvgPool2d, T>({g.dy()}, g.attrs()));
        }
    }
};

// Each pixel repeated (i, j) = scale times; the backward sums each block: scale[0] scale[1] times the
// average pool over it.
struct UpsampleNearest2d {
    static constexpr std::string_view name = "upsample_nearest2d";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static Shape shape(const Call<T>& c) {
        const Shape& x = c.shape(0);
        if (x.size() != 4) {
            throw_shape_error(fmt::format("{}: needs a 4-D value (NCHW): {}", name, to_string(x)));
        }
        auto s = static_cast<std::size_t>(c.attrs().i);
        auto t = static_cast<std::size_t>(c.attrs().j);
        return {x[0], x[1], x[2] * s, x[3] * t};
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& y) {
        const Shape& x = c.shape(0);
        auto s = static_cast<std::size_t>(c.attrs().i);
        auto t = static_cast<std::size_t>(c.attrs().j);
        const T* px = c.value(0).data();
        T* py = y.data();
        std::size_t wo = x[3] * t;
        for (std::size_t row = 0, rows = x[0] * x[1] * x[2]; row < rows; ++row) {
            T* first = py + row * s * wo;
            for (std::size_t ix = 0; ix < x[3]; ++ix) {
                std::fill(first + ix * t, first + (ix + 1) * t, px[row * x[3] + ix]);
            }
            for (std::size_t r = 1; r < s; ++r) {
                std::copy(first, first + wo, first + r * wo);
            }
        }
    }
    template <class T>
    static void backward(Grads<T>& g) {
        if (g.needs(0)) {
            auto s = static_cast<std::size_t>(g.attrs().i);
            auto t = static_cast<std::size_t>(g.attrs().j);
            g.add(0, avg_pool2d(g.dy(), {.kernel = {s, t}}) * static_cast<T>(s * t));
        }
    }
};

constexpr OpInfo rows[] = {
    op_info<Conv2d>("conv"),     op_info<ConvTranspose2d>("conv"),   op_info<Conv2dWeightGrad>("conv"),
    op_info<MaxPool2d>("conv"),  op_info<MaxPool2dBackward>("conv"), op_info<AvgPool2d>("conv"),
    op_info<AvgPool2dBackward>("conv"), op_info<UpsampleNearest2d>("conv"),
};

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

template <class T>
Var<T> max_pool2d(const Var<T>& x, const Pool2dOptions& options) {
    return apply<detail::MaxPool2d>({x}, detail::encode(detail::MaxPool2d::name, detail::pool_attrs(options, {})));
}

template <class T>
Var<T> max_pool2d_backward(const Var<T>& g, const Var<T>& like, const Pool2dOptions& options) {
    return apply<detail::MaxPool2dBackward>(
        {g, like}, detail::encode(detail::MaxPool2dBackward::name, detail::pool_attrs(options, {})));
}

template <class T>
Var<T> avg_pool2d(const Var<T>& x, const Pool2dOptions& options) {
    if (options.dilation != Pair{1, 1}) {
        detail::throw_value_error("avg_pool2d: takes no dilation");
    }
    return apply<detail::AvgPool2d>({x}, detail::encode(detail::AvgPool2d::name, detail::pool_attrs(options, {})));
}

template <class T>
Var<T> avg_pool2d_backward(const Var<T>& g, Pair size, const Pool2dOptions& options) {
    if (options.dilation != Pair{1, 1}) {
        detail::throw_value_error("avg_pool2d_backward: takes no dilation");
    }
    return apply<detail::AvgPool2dBackward>(
        {g}, detail::encode(detail::AvgPool2dBackward::name, detail::pool_attrs(options, size)));
}

template <class T>
Var<T> upsample_nearest2d(const Var<T>& x, Pair scale) {
    if (scale[0] == 0 || scale[1] == 0) {
        detail::throw_value_error(fmt::format("upsample_nearest2d: scale ({}, {}) must be positive", scale[0], scale[1]));
    }
    return apply<detail::UpsampleNearest2d>(
        {x}, {.i = static_cast<std::int64_t>(scale[0]), .j = static_cast<std::int64_t>(scale[1])});
}

#define TAPEGRAD_INSTANTIATE(T)                                                                              \
    template Var<T> conv2d<T>(const Var<T>&, const Var<T>&, const Conv2dOptions&);                           \
    template Var<T> conv2d<T>(const Var<T>&, const Var<T>&, const Var<T>&, const Conv2dOptions&);            \
    template Var<T> conv_transpose2d<T>(const Var<T>&, const Var<T>&, const ConvTranspose2dOptions&);        \
    template Var<T> conv_transpose2d<T>(const Var<T>&, const Var<T>&, const Var<T>&,                         \
                                        const ConvTranspose2dOptions&);                                      \
    template Var<T> conv2d_weight_grad<T>(const Var<T>&, const Var<T>&, Pair, const Conv2dOptions&);         \
    template Var<T> max_pool2d<T>(const Var<T>&, const Pool2dOptions&);                                      \
    template Var<T> max_pool2d_backward<T>(const Var<T>&, const Var<T>&, const Pool2dOptions&);              \
    template Var<T> avg_pool2d<T>(const Var<T>&, const Pool2dOptions&);                                      \
    template Var<T> avg_pool2d_backward<T>(const Var<T>&, Pair, const Pool2dOptions&);                       \
    template Var<T> upsample_nearest2d<T>(const Var<T>&, Pair);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
