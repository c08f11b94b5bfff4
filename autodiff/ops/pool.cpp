// Pooling and upsampling on NCHW images. Each pool's backward is its adjoint, which is an op too
// (max_pool2d_backward, avg_pool2d_backward), and the adjoint's backward is the pool again, so second
// derivatives work; nearest upsampling's adjoint is a scaled average pool.
#include <algorithm>
#include <cstddef>
#include <limits>

#include <fmt/format.h>

#include "image.hpp"

namespace tapegrad {

namespace detail {
namespace {

using namespace image;

// The window geometry in Attrs: kernel and stride (i), padding and dilation (j), and the input's
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


constexpr OpInfo rows[] = {op_info<MaxPool2d>("pool"), op_info<MaxPool2dBackward>("pool"),
                           op_info<AvgPool2d>("pool"), op_info<AvgPool2dBackward>("pool"),
                           op_info<UpsampleNearest2d>("pool")};

}  // namespace

std::span<const OpInfo> pool_ops() { return rows; }

}  // namespace detail

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


#define TAPEGRAD_INSTANTIATE(T)                                                                 \
    template Var<T> max_pool2d<T>(const Var<T>&, const Pool2dOptions&);                         \
    template Var<T> max_pool2d_backward<T>(const Var<T>&, const Var<T>&, const Pool2dOptions&); \
    template Var<T> avg_pool2d<T>(const Var<T>&, const Pool2dOptions&);                         \
    template Var<T> avg_pool2d_backward<T>(const Var<T>&, Pair, const Pool2dOptions&);          \
    template Var<T> upsample_nearest2d<T>(const Var<T>&, Pair);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
