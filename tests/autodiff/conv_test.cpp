// The image ops' forward values, which a gradient check cannot vouch for (op_table_test.cpp checks their
// gradients): conv2d against the textbook gather written here in double, conv_transpose2d against its
// own definition as a scatter, conv2d_weight_grad against loops, over strides, paddings, dilations,
// groups, odd and non-square sizes, in float and double; the adjoint identities that tie the three
// together; small examples computed by hand; the pools (padding as -infinity or zeros, ties, the
// adjoints) and nearest upsampling against loops; the error messages; the same bits on 1 and 2 threads;
// and a convolutional training step that allocates nothing after warm-up. Semantics are PyTorch's.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

#include "counting_new.hpp"
#include "helpers.hpp"
#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using test::random_array;

namespace {

// A reference result in double and, per element, the sum of the absolute values of its terms: any order
// of summation in T is within (terms + 1) eps_T of it (Higham, Accuracy and Stability, 3.5), the
// reference itself within terms eps_double.
struct Reference {
    Array<double> value;
    Array<double> abs;
    std::size_t terms = 0;  // the most terms an element sums
};

Reference zeros_reference(const Shape& shape) {
    return {xt::zeros<double>(shape), xt::zeros<double>(shape), 0};
}

// "" when got is within the bound of every element of want, else the first element that is not.
template <class T>
std::string mismatch(const Array<T>& got, const Reference& want) {
    if (got.shape() != want.value.shape()) {
        return fmt::format("shape {}, want {}", to_string(got.shape()), to_string(want.value.shape()));
    }
    double terms = static_cast<double>(want.terms);
    double rel = (terms + 1) * std::numeric_limits<T>::epsilon() + terms * std::numeric_limits<double>::epsilon();
    for (std::size_t i = 0; i < got.size(); ++i) {
        double bound = rel * want.abs.data()[i] + std::numeric_limits<T>::min();
        double error = std::abs(double(got.data()[i]) - want.value.data()[i]);
        if (!(error <= bound)) {
            return fmt::format("{}: got {}, want {}, error {:.3g} above {:.3g}", index_to_string(got.shape(), i),
                               double(got.data()[i]), want.value.data()[i], error, bound);
        }
    }
    return "";
}

// The position a kernel tap reads: out stride - padding + tap dilation, negative in the padding.
long tap(std::size_t out, std::size_t k, std::size_t stride, std::size_t padding, std::size_t dilation) {
    return long(out * stride) - long(padding) + long(k * dilation);
}

bool inside(long i, std::size_t size) { return i >= 0 && i < long(size); }

// PyTorch's output side of a convolution or pool: (in + 2 padding - dilation (k - 1) - 1) / stride + 1.
std::size_t out_side(std::size_t in, std::size_t k, std::size_t stride, std::size_t padding, std::size_t dilation) {
    return (in + 2 * padding - dilation * (k - 1) - 1) / stride + 1;
}

// One term of conv2d's definition: output (n, o, i, j) reads input (n, ci, iy, ix), ci the channel c of
// o's group, through the weight's tap (o, c, p, q).
struct Term {
    std::size_t n, o, i, j, c, p, q, ci, iy, ix;
};

// Calls f(term) for each term of y[n, o, i, j] = the sum over the channels c of o's group and the taps
// (p, q) of x[n, c, i s - pad + p d, j s - pad + q d] w[o, c - the group's first channel, p, q]; x (N, C,
// H, W), w (O, C / groups, kh, kw), the padding skipped.
template <class F>
void conv_terms(const Shape& x, const Shape& w, const Conv2dOptions& o, F f) {
    std::size_t ho = out_side(x[2], w[2], o.stride[0], o.padding[0], o.dilation[0]);
    std::size_t wo = out_side(x[3], w[3], o.stride[1], o.padding[1], o.dilation[1]);
    for (std::size_t n = 0; n < x[0]; ++n) {
        for (std::size_t oo = 0; oo < w[0]; ++oo) {
            for (std::size_t i = 0; i < ho; ++i) {
                for (std::size_t j = 0; j < wo; ++j) {
                    for (std::size_t c = 0; c < w[1]; ++c) {
                        for (std::size_t p = 0; p < w[2]; ++p) {
                            for (std::size_t q = 0; q < w[3]; ++q) {
                                long iy = tap(i, p, o.stride[0], o.padding[0], o.dilation[0]);
                                long ix = tap(j, q, o.stride[1], o.padding[1], o.dilation[1]);
                                if (inside(iy, x[2]) && inside(ix, x[3])) {
                                    std::size_t ci = oo / (w[0] / o.groups) * w[1] + c;
                                    f(Term{n, oo, i, j, c, p, q, ci, std::size_t(iy), std::size_t(ix)});
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// Adds t to element i of ref.
void add(Reference& ref, std::size_t i, double t) {
    ref.value.data()[i] += t;
    ref.abs.data()[i] += std::abs(t);
}

// Each output channel's plane set to its bias: ref (N, O, ...), b (O,).
template <class T>
void add_bias(Reference& ref, const Array<T>* b) {
    std::size_t plane = ref.value.size() / ref.value.shape()[0] / ref.value.shape()[1];
    for (std::size_t i = 0; b != nullptr && i < ref.value.size(); ++i) {
        add(ref, i, double((*b)(i / plane % ref.value.shape()[1])));
    }
    ref.terms += b != nullptr ? 1 : 0;
}

// conv2d by its definition, a gather, plus b[o].
template <class T>
Reference conv2d_ref(const Array<T>& x, const Array<T>& w, std::type_identity_t<const Array<T>*> b,
                     const Conv2dOptions& o) {
    Shape y{x.shape()[0], w.shape()[0],
            out_side(x.shape()[2], w.shape()[2], o.stride[0], o.padding[0], o.dilation[0]),
            out_side(x.shape()[3], w.shape()[3], o.stride[1], o.padding[1], o.dilation[1])};
    Reference ref = zeros_reference(y);
    ref.terms = w.shape()[1] * w.shape()[2] * w.shape()[3];
    add_bias(ref, b);
    conv_terms(x.shape(), w.shape(), o, [&](const Term& t) {
        double term = double(x(t.n, t.ci, t.iy, t.ix)) * double(w(t.o, t.c, t.p, t.q));
        add(ref, ((t.n * y[1] + t.o) * y[2] + t.i) * y[3] + t.j, term);
    });
    return ref;
}

// conv2d_weight_grad by conv2d's definition: dw[o, c, p, q] = the sum of g[n, o, i, j] x[n, ci, iy, ix]
// over the terms of conv2d that read tap (o, c, p, q).
template <class T>
Reference weight_grad_ref(const Array<T>& x, const Array<T>& g, Pair kernel, const Conv2dOptions& o) {
    Shape dw{g.shape()[1], x.shape()[1] / o.groups, kernel[0], kernel[1]};
    Reference ref = zeros_reference(dw);
    ref.terms = g.size() / g.shape()[1];
    conv_terms(x.shape(), dw, o, [&](const Term& t) {
        double term = double(g(t.n, t.o, t.i, t.j)) * double(x(t.n, t.ci, t.iy, t.ix));
        add(ref, ((t.o * dw[1] + t.c) * dw[2] + t.p) * dw[3] + t.q, term);
    });
    return ref;
}

// conv_transpose2d by its definition, a scatter: each input pixel x[n, c, i, j] adds x w[c, o', p, q] to
// out[n, o, i s - pad + p d, j s - pad + q d] for each o' of c's group (o = the group's first + o'); the
// output, b[o] before, is (H - 1) s - 2 pad + d (k - 1) + output_padding + 1 on a side.
template <class T>
Reference conv_transpose2d_ref(const Array<T>& x, const Array<T>& w, std::type_identity_t<const Array<T>*> b,
                               const ConvTranspose2dOptions& o) {
    std::size_t n = x.shape()[0], cin = x.shape()[1], h = x.shape()[2], wd = x.shape()[3];
    std::size_t og = w.shape()[1], kh = w.shape()[2], kw = w.shape()[3];
    std::size_t cin_g = cin / o.groups;
    std::size_t ho = (h - 1) * o.stride[0] - 2 * o.padding[0] + o.dilation[0] * (kh - 1) + o.output_padding[0] + 1;
    std::size_t wo = (wd - 1) * o.stride[1] - 2 * o.padding[1] + o.dilation[1] * (kw - 1) + o.output_padding[1] + 1;
    Reference ref = zeros_reference({n, og * o.groups, ho, wo});
    ref.terms = cin_g * kh * kw;
    add_bias(ref, b);
    for (std::size_t s = 0; s < n; ++s) {
        for (std::size_t c = 0; c < cin; ++c) {
            for (std::size_t i = 0; i < h; ++i) {
                for (std::size_t j = 0; j < wd; ++j) {
                    for (std::size_t oo = 0; oo < og; ++oo) {
                        for (std::size_t p = 0; p < kh; ++p) {
                            for (std::size_t q = 0; q < kw; ++q) {
                                long y = tap(i, p, o.stride[0], o.padding[0], o.dilation[0]);
                                long z = tap(j, q, o.stride[1], o.padding[1], o.dilation[1]);
                                if (inside(y, ho) && inside(z, wo)) {
                                    std::size_t out = ((s * og * o.groups + c / cin_g * og + oo) * ho + y) * wo + z;
                                    add(ref, out, double(x(s, c, i, j)) * double(w(c, oo, p, q)));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return ref;
}

struct ConvCase {
    std::string name;
    Shape x;
    Shape w;
    Conv2dOptions options;
    bool bias = false;
};

// Strides 1 to 3, paddings 0 to 2 (and past the kernel), dilations 1 and 2, 1, 2 and 4 groups and
// depthwise ones, 1x1 kernels and kernels the image's size, non-square everything, batches 1 to 3.
std::vector<ConvCase> conv_cases() {
    return {
        {"(1, 1, 5, 5) * (1, 1, 3, 3)", {1, 1, 5, 5}, {1, 1, 3, 3}, {}},
        {"(3, 3, 7, 6) * (4, 3, 3, 2) + b stride 2 padding 1", {3, 3, 7, 6}, {4, 3, 3, 2},
         {.stride = {2, 2}, .padding = {1, 1}}, true},
        {"(2, 2, 9, 7) * (3, 2, 3, 3) + b stride 3 padding 2", {2, 2, 9, 7}, {3, 2, 3, 3},
         {.stride = {3, 3}, .padding = {2, 2}}, true},
        {"(1, 3, 8, 9) * (2, 3, 3, 3) dilation 2 padding 2", {1, 3, 8, 9}, {2, 3, 3, 3},
         {.padding = {2, 2}, .dilation = {2, 2}}},
        {"(3, 4, 6, 5) * (6, 2, 3, 3) + b groups 2 padding 1", {3, 4, 6, 5}, {6, 2, 3, 3},
         {.padding = {1, 1}, .groups = 2}, true},
        {"(2, 8, 5, 7) * (8, 2, 2, 3) + b groups 4 stride (2, 1) padding (1, 0)", {2, 8, 5, 7}, {8, 2, 2, 3},
         {.stride = {2, 1}, .padding = {1, 0}, .groups = 4}, true},
        {"(2, 5, 6, 6) * (5, 1, 3, 3) + b depthwise padding 1", {2, 5, 6, 6}, {5, 1, 3, 3},
         {.padding = {1, 1}, .groups = 5}, true},
        {"(1, 3, 7, 5) * (6, 1, 3, 3) depthwise x2 stride 2 dilation (1, 2)", {1, 3, 7, 5}, {6, 1, 3, 3},
         {.stride = {2, 2}, .dilation = {1, 2}, .groups = 3}},
        {"(1, 2, 11, 8) * (3, 2, 2, 4) stride (1, 3) padding (2, 0) dilation (3, 1)", {1, 2, 11, 8}, {3, 2, 2, 4},
         {.stride = {1, 3}, .padding = {2, 0}, .dilation = {3, 1}}},
        {"(3, 6, 4, 3) * (5, 6, 1, 1) + b", {3, 6, 4, 3}, {5, 6, 1, 1}, {}, true},
        {"(1, 2, 3, 3) * (2, 2, 1, 1) + b padding 2, past the kernel", {1, 2, 3, 3}, {2, 2, 1, 1},
         {.padding = {2, 2}}, true},
        {"(2, 3, 4, 5) * (2, 3, 4, 5), the image's size", {2, 3, 4, 5}, {2, 3, 4, 5}, {}},
        {"(3, 16, 14, 13) * (24, 16, 3, 3) + b padding 1", {3, 16, 14, 13}, {24, 16, 3, 3}, {.padding = {1, 1}},
         true},
    };
}

struct ConvTransposeCase {
    std::string name;
    Shape x;
    Shape w;
    ConvTranspose2dOptions options;
    bool bias = false;
};

std::vector<ConvTransposeCase> conv_transpose_cases() {
    return {
        {"(1, 1, 3, 3) * (1, 1, 2, 2)", {1, 1, 3, 3}, {1, 1, 2, 2}, {}},
        {"(2, 3, 4, 4) * (3, 2, 3, 3) + b stride 2 padding 1 output padding 1", {2, 3, 4, 4}, {3, 2, 3, 3},
         {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}}, true},
        {"(1, 4, 3, 5) * (4, 1, 3, 2) groups 2 stride (1, 2) padding (0, 1)", {1, 4, 3, 5}, {4, 1, 3, 2},
         {.stride = {1, 2}, .padding = {0, 1}, .groups = 2}},
        {"(2, 2, 3, 3) * (2, 3, 2, 2) + b dilation 2", {2, 2, 3, 3}, {2, 3, 2, 2}, {.dilation = {2, 2}}, true},
        {"(3, 6, 5, 4) * (6, 2, 3, 3) + b groups 3 stride 3 padding (2, 1) output padding (2, 1)", {3, 6, 5, 4},
         {6, 2, 3, 3}, {.stride = {3, 3}, .padding = {2, 1}, .output_padding = {2, 1}, .groups = 3}, true},
        {"(1, 4, 4, 4) * (4, 1, 3, 3) depthwise stride 2 padding 1 output padding (1, 0)", {1, 4, 4, 4},
         {4, 1, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 0}, .groups = 4}},
        {"(1, 2, 3, 3) * (2, 1, 2, 2) + b stride 3, gaps between the pieces", {1, 2, 3, 3}, {2, 1, 2, 2},
         {.stride = {3, 3}}, true},
        {"(2, 8, 6, 5) * (8, 12, 4, 3) + b stride 2 padding 1", {2, 8, 6, 5}, {8, 12, 4, 3},
         {.stride = {2, 2}, .padding = {1, 1}}, true},
    };
}

// <a, b> in double.
template <class T, class U>
double dot(const Array<T>& a, const Array<U>& b) {
    double sum = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        sum += double(a.data()[i]) * double(b.data()[i]);
    }
    return sum;
}

// The conv_transpose2d options that send conv2d's output back to x's shape: the same geometry, and the
// rows the stride skipped at the end as output padding.
ConvTranspose2dOptions adjoint_options(const Shape& x, const Shape& w, const Conv2dOptions& o) {
    ConvTranspose2dOptions t{.stride = o.stride, .padding = o.padding, .dilation = o.dilation, .groups = o.groups};
    for (std::size_t axis = 0; axis < 2; ++axis) {
        std::size_t span = o.dilation[axis] * (w[2 + axis] - 1) + 1;
        t.output_padding[axis] = (x[2 + axis] + 2 * o.padding[axis] - span) % o.stride[axis];
    }
    return t;
}

}  // namespace

TEST_CASE_TEMPLATE("conv2d matches the textbook gather", T, float, double) {
    testing::poison_pool<T>();  // outputs come from the pool: unwritten elements show as NaN
    std::uint64_t seed = 1;
    for (const ConvCase& k : conv_cases()) {
        CAPTURE(k.name);
        Array<T> x = random_array<T>(k.x, ++seed);
        Array<T> w = random_array<T>(k.w, ++seed);
        Array<T> b = random_array<T>({k.w[0]}, ++seed);
        Var<T> y = k.bias ? conv2d(Var<T>(x), Var<T>(w), Var<T>(b), k.options)
                          : conv2d(Var<T>(x), Var<T>(w), k.options);
        CHECK(mismatch(y.value(), conv2d_ref(x, w, k.bias ? &b : nullptr, k.options)) == "");
    }
}

TEST_CASE_TEMPLATE("conv_transpose2d matches its definition as a scatter", T, float, double) {
    testing::poison_pool<T>();
    std::uint64_t seed = 1;
    for (const ConvTransposeCase& k : conv_transpose_cases()) {
        CAPTURE(k.name);
        Array<T> x = random_array<T>(k.x, ++seed);
        Array<T> w = random_array<T>(k.w, ++seed);
        Array<T> b = random_array<T>({k.w[1] * k.options.groups}, ++seed);
        Var<T> y = k.bias ? conv_transpose2d(Var<T>(x), Var<T>(w), Var<T>(b), k.options)
                          : conv_transpose2d(Var<T>(x), Var<T>(w), k.options);
        CHECK(mismatch(y.value(), conv_transpose2d_ref(x, w, k.bias ? &b : nullptr, k.options)) == "");
    }
}

TEST_CASE_TEMPLATE("conv2d_weight_grad matches loops over the batch and the output", T, float, double) {
    testing::poison_pool<T>();
    std::uint64_t seed = 1;
    for (const ConvCase& k : conv_cases()) {
        CAPTURE(k.name);
        Array<T> x = random_array<T>(k.x, ++seed);
        Pair kernel{k.w[2], k.w[3]};
        Shape g_shape{k.x[0], k.w[0], out_side(k.x[2], kernel[0], k.options.stride[0], k.options.padding[0],
                                               k.options.dilation[0]),
                      out_side(k.x[3], kernel[1], k.options.stride[1], k.options.padding[1], k.options.dilation[1])};
        Array<T> g = random_array<T>(g_shape, ++seed);
        Var<T> dw = conv2d_weight_grad(Var<T>(x), Var<T>(g), kernel, k.options);
        CHECK(mismatch(dw.value(), weight_grad_ref(x, g, kernel, k.options)) == "");
    }
}

// <C(x, w), y> = <x, Ct(y, w)> = <w, Cw(x, y)>: the three are one bilinear form, which is what makes each
// op's backward the other two. To 1e-12 of the sum of |terms|, in double.
TEST_CASE("conv2d, conv_transpose2d and conv2d_weight_grad are adjoints") {
    std::uint64_t seed = 100;
    for (const ConvCase& k : conv_cases()) {
        CAPTURE(k.name);
        Array<double> x = random_array<double>(k.x, ++seed);
        Array<double> w = random_array<double>(k.w, ++seed);
        Var<double> y = conv2d(Var<double>(x), Var<double>(w), k.options);
        Array<double> r = random_array<double>(y.shape(), ++seed);
        double scale = dot(conv2d_ref(x, w, nullptr, k.options).abs, Array<double>(xt::abs(r)));
        double forward = dot(y.value(), r);
        ConvTranspose2dOptions t = adjoint_options(k.x, k.w, k.options);
        Var<double> back = conv_transpose2d(Var<double>(r), Var<double>(w), t);
        REQUIRE(back.shape() == k.x);
        CHECK(std::abs(forward - dot(x, back.value())) <= 1e-12 * scale);
        Var<double> dw = conv2d_weight_grad(Var<double>(x), Var<double>(r), {k.w[2], k.w[3]}, k.options);
        CHECK(std::abs(forward - dot(w, dw.value())) <= 1e-12 * scale);
    }
}

// ---------------------------------------------------------------------------------------------------------
// Small examples, worked out by hand.

TEST_CASE_TEMPLATE("convolutions by hand", T, float, double) {
    Var<T> nine(Array<T>{{{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}}});
    Var<T> ones(xt::ones<T>(Shape{1, 1, 2, 2}));
    // Each output sums a 2x2 block: 1 + 2 + 4 + 5 = 12.
    CHECK(conv2d(nine, ones).value() == Array<T>{{{{12, 16}, {24, 28}}}});
    // Padded by a ring of zeros and read every second pixel, plus 10: 1, 2 + 3, 4 + 7, 5 + 6 + 8 + 9.
    Var<T> ten(Array<T>(Shape{1}, T(10)));
    CHECK(conv2d(nine, ones, ten, {.stride = {2, 2}, .padding = {1, 1}}).value() == Array<T>{{{{11, 15}, {21, 38}}}});
    // Dilation 2 reads the corners: 1 + 3 + 7 + 9.
    CHECK(conv2d(nine, ones, {.dilation = {2, 2}}).value() == Array<T>(Shape{1, 1, 1, 1}, T(20)));

    // Each input pixel stamps the kernel, scaled, at its place; overlaps add up.
    Var<T> x(Array<T>{{{{1, 2}, {3, 4}}}});
    CHECK(conv_transpose2d(x, ones).value() == Array<T>{{{{1, 3, 2}, {4, 10, 6}, {3, 7, 4}}}});
    Var<T> w(Array<T>{{{{1, 2}, {3, 4}}}});
    Array<T> stamped{{{{1, 2, 2, 4}, {3, 4, 6, 8}, {3, 6, 4, 8}, {9, 12, 12, 16}}}};
    CHECK(conv_transpose2d(x, w, {.stride = {2, 2}}).value() == stamped);
    // Padding 1 crops a ring; output padding 1 keeps one more row and column at the end.
    CHECK(conv_transpose2d(x, w, {.stride = {2, 2}, .padding = {1, 1}}).value() == Array<T>{{{{4, 6}, {6, 4}}}});
    CHECK(conv_transpose2d(x, w, {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}}).value() ==
          Array<T>{{{{4, 6, 8}, {6, 4, 8}, {12, 12, 16}}}});
    // Two output channels of one group and a bias: the second channel's kernel is 10 times the first's.
    Var<T> w2(Array<T>{{{{1, 2}, {3, 4}}, {{10, 20}, {30, 40}}}});
    Var<T> bias(Array<T>{0.5, -1});
    CHECK(conv_transpose2d(x, w2, bias, {.stride = {2, 2}}).value() ==
          Array<T>(xt::concatenate(xt::xtuple(stamped + T(0.5), T(10) * stamped - T(1)), 1)));
}

TEST_CASE_TEMPLATE("pools and upsampling by hand", T, float, double) {
    Var<T> x(Array<T>{{{{1, 9, 2, 0}, {3, 4, 8, 7}, {5, 6, 0, 1}, {2, 3, 4, -1}}}});
    CHECK(max_pool2d(x).value() == Array<T>{{{{9, 8}, {6, 4}}}});
    CHECK(avg_pool2d(x).value() == Array<T>{{{{4.25, 4.25}, {4, 1}}}});
    // Padding is -infinity for max: a window that holds one pixel of -1 and three of padding gives -1.
    Var<T> minus(Array<T>{{{{-1, -2, -3}, {-4, -5, -6}, {-7, -8, -9}}}});
    CHECK(max_pool2d(minus, {.stride = {1, 1}, .padding = {1, 1}}).value() ==
          Array<T>{{{{-1, -1, -2, -3}, {-1, -1, -2, -3}, {-4, -4, -5, -6}, {-7, -7, -8, -9}}}});
    // Dilation 2 over 1..16: the window of (0, 0) is 1, 3, 9, 11.
    Var<T> sixteen(Array<T>(xt::reshape_view(xt::arange<T>(1, 17), {1, 1, 4, 4})));
    CHECK(max_pool2d(sixteen, {.stride = {1, 1}, .dilation = {2, 2}}).value() ==
          Array<T>{{{{11, 12}, {15, 16}}}});
    // Padding is zeros for the average, which divides by the whole window: 9 even at the corners.
    Var<T> nine(Array<T>{{{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}}});
    Array<double> ninths{{{{12, 21, 16}, {27, 45, 33}, {24, 39, 28}}}};
    CHECK(test::close_to(avg_pool2d(nine, {.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}}).value(),
                         Array<double>(ninths / 9.0), test::tolerance<T>()));
    CHECK(upsample_nearest2d(Var<T>(Array<T>{{{{1, 2}, {3, 4}}}}), {2, 3}).value() ==
          Array<T>{{{{1, 1, 1, 2, 2, 2}, {1, 1, 1, 2, 2, 2}, {3, 3, 3, 4, 4, 4}, {3, 3, 3, 4, 4, 4}}}});
}

// ---------------------------------------------------------------------------------------------------------
// Pools against loops.

namespace {

struct PoolCase {
    std::string name;
    Shape x;
    Pool2dOptions options;
};

std::vector<PoolCase> pool_cases(bool dilated) {
    std::vector<PoolCase> cases = {
        {"(2, 3, 4, 4) kernel 2", {2, 3, 4, 4}, {}},
        {"(1, 2, 7, 5) kernel 3 stride 2 padding 1", {1, 2, 7, 5},
         {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}},
        {"(3, 2, 5, 5) kernel 3 stride 1 padding 1", {3, 2, 5, 5},
         {.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}}},
        {"(2, 1, 5, 7) kernel (2, 3) stride (1, 2)", {2, 1, 5, 7}, {.kernel = {2, 3}, .stride = {1, 2}}},
        {"(1, 2, 9, 8) kernel (4, 2) stride (3, 1) padding (2, 1)", {1, 2, 9, 8},
         {.kernel = {4, 2}, .stride = {3, 1}, .padding = {2, 1}}},
        {"(1, 1, 5, 6) kernel 1 stride 2", {1, 1, 5, 6}, {.kernel = {1, 1}, .stride = {2, 2}}},
    };
    if (dilated) {
        cases.push_back({"(2, 1, 6, 7) kernel (2, 3) stride 1 dilation 2", {2, 1, 6, 7},
                         {.kernel = {2, 3}, .stride = {1, 1}, .dilation = {2, 2}}});
        cases.push_back({"(1, 3, 9, 8) kernel (3, 2) stride (2, 3) padding 1 dilation (2, 1)", {1, 3, 9, 8},
                         {.kernel = {3, 2}, .stride = {2, 3}, .padding = {1, 1}, .dilation = {2, 1}}});
    }
    return cases;
}

// Calls f(out, in) with flat positions, for each output position of x (n, c, h, w) and each position of its
// window inside the image, window row-major. Written from PyTorch's definition, apart from conv.cpp's.
template <class F>
Shape sweep(const Shape& x, const Pool2dOptions& o, F f) {
    Pair stride{o.stride[0] == 0 ? o.kernel[0] : o.stride[0], o.stride[1] == 0 ? o.kernel[1] : o.stride[1]};
    std::size_t ho = out_side(x[2], o.kernel[0], stride[0], o.padding[0], o.dilation[0]);
    std::size_t wo = out_side(x[3], o.kernel[1], stride[1], o.padding[1], o.dilation[1]);
    for (std::size_t plane = 0; plane < x[0] * x[1]; ++plane) {
        for (std::size_t i = 0; i < ho; ++i) {
            for (std::size_t j = 0; j < wo; ++j) {
                for (std::size_t p = 0; p < o.kernel[0]; ++p) {
                    for (std::size_t q = 0; q < o.kernel[1]; ++q) {
                        long iy = tap(i, p, stride[0], o.padding[0], o.dilation[0]);
                        long ix = tap(j, q, stride[1], o.padding[1], o.dilation[1]);
                        if (inside(iy, x[2]) && inside(ix, x[3])) {
                            f((plane * ho + i) * wo + j, (plane * x[2] + std::size_t(iy)) * x[3] + std::size_t(ix));
                        }
                    }
                }
            }
        }
    }
    return {x[0], x[1], ho, wo};
}

// For each window, the flat position of its first maximum (row-major); -infinity in the padding.
template <class T>
std::vector<std::size_t> first_maxima(const Array<T>& x, const Pool2dOptions& o) {
    std::vector<std::size_t> at;
    Shape y = sweep(x.shape(), o, [&](std::size_t out, std::size_t in) {
        if (out == at.size()) {
            at.push_back(in);
        } else if (x.data()[in] > x.data()[at[out]]) {
            at[out] = in;
        }
    });
    CHECK(at.size() == y[0] * y[1] * y[2] * y[3]);
    return at;
}

// Integers from {-1, 0, 1}: many ties, so that the first maximum is the one that counts.
template <class T>
Array<T> tied(const Shape& shape, std::uint64_t seed) {
    return xt::round(random_array<T>(shape, seed, -1.5, 1.5));
}

}  // namespace

TEST_CASE_TEMPLATE("max_pool2d and its adjoint match loops, ties going to the first maximum", T, float, double) {
    testing::poison_pool<T>();
    std::uint64_t seed = 1;
    for (const PoolCase& k : pool_cases(true)) {
        for (bool ties : {false, true}) {
            CAPTURE(k.name);
            CAPTURE(ties);
            Array<T> x = ties ? tied<T>(k.x, ++seed) : random_array<T>(k.x, ++seed);
            std::vector<std::size_t> at = first_maxima(x, k.options);
            Var<T> y = max_pool2d(Var<T>(x), k.options);
            REQUIRE(y.size() == at.size());
            Array<T> g = random_array<T>(y.shape(), ++seed);
            Reference dx = zeros_reference(k.x);
            dx.terms = k.options.kernel[0] * k.options.kernel[1];  // windows that can share a maximum
            bool same = true;
            for (std::size_t i = 0; i < at.size(); ++i) {
                same = same && y.value().data()[i] == x.data()[at[i]];
                add(dx, at[i], double(g.data()[i]));
            }
            CHECK(same);
            CHECK(mismatch(max_pool2d_backward(Var<T>(g), Var<T>(x), k.options).value(), dx) == "");
        }
    }
}

TEST_CASE_TEMPLATE("avg_pool2d and its adjoint match loops, padding counted in the window", T, float, double) {
    testing::poison_pool<T>();
    std::uint64_t seed = 1;
    for (const PoolCase& k : pool_cases(false)) {
        CAPTURE(k.name);
        Array<T> x = random_array<T>(k.x, ++seed);
        double area = double(k.options.kernel[0] * k.options.kernel[1]);
        Shape y_shape = sweep(k.x, k.options, [](std::size_t, std::size_t) {});
        Reference y = zeros_reference(y_shape);
        y.terms = k.options.kernel[0] * k.options.kernel[1] + 2;  // the sum, then times a rounded 1 / area
        sweep(k.x, k.options, [&](std::size_t out, std::size_t in) { add(y, out, double(x.data()[in]) / area); });
        CHECK(mismatch(avg_pool2d(Var<T>(x), k.options).value(), y) == "");

        Array<T> g = random_array<T>(y_shape, ++seed);
        Reference dx = zeros_reference(k.x);
        dx.terms = k.options.kernel[0] * k.options.kernel[1] + 2;
        sweep(k.x, k.options, [&](std::size_t out, std::size_t in) { add(dx, in, double(g.data()[out]) / area); });
        CHECK(mismatch(avg_pool2d_backward(Var<T>(g), {k.x[2], k.x[3]}, k.options).value(), dx) == "");
    }
}

TEST_CASE_TEMPLATE("upsample_nearest2d repeats each pixel scale times each way", T, float, double) {
    testing::poison_pool<T>();
    for (Pair scale : {Pair{1, 1}, Pair{2, 2}, Pair{3, 1}, Pair{1, 4}, Pair{2, 3}}) {
        CAPTURE(scale[0]);
        CAPTURE(scale[1]);
        Array<T> x = random_array<T>({2, 3, 4, 5}, 1);
        Array<T> want = xt::empty<T>(Shape{2, 3, 4 * scale[0], 5 * scale[1]});
        for (std::size_t n = 0; n < 2; ++n) {
            for (std::size_t c = 0; c < 3; ++c) {
                for (std::size_t i = 0; i < want.shape()[2]; ++i) {
                    for (std::size_t j = 0; j < want.shape()[3]; ++j) {
                        want(n, c, i, j) = x(n, c, i / scale[0], j / scale[1]);
                    }
                }
            }
        }
        CHECK(upsample_nearest2d(Var<T>(x), scale).value() == want);
    }
}

// Backward through the tape, where ties matter: each window's gradient goes to its first maximum alone.
TEST_CASE_TEMPLATE("max_pool2d's gradient goes to the first maximum of each window, row-major", T, float, double) {
    SUBCASE("kernel 2: a tie of two, and windows all tied") {
        Var<T> x = Var<T>::parameter(Array<T>{{{{1, 3, 3, 0}, {3, 2, 1, 3}, {0, 0, 5, 5}, {0, 0, 5, 5}}}}, "x");
        Var<T> y = max_pool2d(x);
        CHECK(y.value() == Array<T>{{{{3, 3}, {0, 5}}}});
        backward(y, Var<T>(Array<T>{{{{10, 20}, {30, 40}}}}));
        CHECK(x.grad().value() == Array<T>{{{{0, 10, 20, 0}, {0, 0, 0, 0}, {30, 0, 40, 0}, {0, 0, 0, 0}}}});
    }
    SUBCASE("overlapping windows over a constant, padded by -infinity") {
        // A 2x2 image of -1, padded by 1, windows of 2 every pixel: 9 windows, each with its first pixel
        // inside the image as the maximum (the padding never wins, though -1 < 0).
        Var<T> x = Var<T>::parameter(Array<T>(Shape{1, 1, 2, 2}, T(-1)), "x");
        Pool2dOptions o{.stride = {1, 1}, .padding = {1, 1}};
        Var<T> y = max_pool2d(x, o);
        CHECK(y.value() == Array<T>(Shape{1, 1, 3, 3}, T(-1)));
        Array<T> dy{{{{1, 2, 4}, {8, 16, 32}, {64, 128, 256}}}};
        std::vector<Var<T>> dx = grad(y, std::span<const Var<T>>(&x, 1), {}, Var<T>(dy));
        CHECK(dx[0].value() == Array<T>{{{{1 + 2 + 8 + 16, 4 + 32}, {64 + 128, 256}}}});
    }
}

// A NaN in a window is its maximum, wherever it is in the window, as in PyTorch.
TEST_CASE_TEMPLATE("max_pool2d propagates NaN, as PyTorch's does", T, float, double) {
    T nan = std::numeric_limits<T>::quiet_NaN();
    Array<T> y = max_pool2d(Var<T>(Array<T>{{{{1, nan}, {2, 3}}, {{nan, 1}, {2, 3}}, {{1, 2}, {3, nan}}}})).value();
    CHECK(std::isnan(y(0, 0, 0, 0)));
    CHECK(std::isnan(y(0, 1, 0, 0)));
    CHECK(std::isnan(y(0, 2, 0, 0)));
}

// A dilated window can fall wholly in the padding: kernel 2, padding 1, dilation 2 over one pixel reads
// rows -1 and 1. Its maximum is -infinity, as PyTorch's, and it sends no gradient anywhere.
TEST_CASE_TEMPLATE("max_pool2d of a window wholly in the padding is -infinity", T, float, double) {
    Pool2dOptions o{.kernel = {2, 2}, .padding = {1, 1}, .dilation = {2, 2}};
    Var<T> x = Var<T>::parameter(Array<T>(Shape{1, 1, 1, 1}, T(7)), "x");
    Var<T> y = max_pool2d(x, o);
    REQUIRE(y.shape() == Shape{1, 1, 1, 1});
    CHECK(y.value()(0, 0, 0, 0) == -std::numeric_limits<T>::infinity());
    std::vector<Var<T>> dx = grad(y, std::span<const Var<T>>(&x, 1), {}, Var<T>(Array<T>(Shape{1, 1, 1, 1}, T(1))));
    CHECK(dx[0].value()(0, 0, 0, 0) == T(0));
}

// PyTorch takes output padding below the stride or the dilation; tapegrad below the stride only (with
// stride 1 and dilation 2 PyTorch's extra rows are reached by the bias alone, and conv2d, the op's
// backward, would give back a larger input than it took). Refused with the reason.
TEST_CASE_TEMPLATE("conv_transpose2d refuses output padding at or above the stride", T, float, double) {
    ConvTranspose2dOptions o{.output_padding = {1, 1}, .dilation = {2, 2}};
    CHECK_THROWS_WITH_AS(conv_transpose2d(Var<T>(random_array<T>({2, 3, 3, 3}, 1)),
                                          Var<T>(random_array<T>({3, 2, 2, 2}, 2)), o),
                         "conv_transpose2d: output padding (1, 1) must be below the stride (1, 1)", ValueError);
}

// ---------------------------------------------------------------------------------------------------------
// Errors: `op: what is wrong: shapes`.

TEST_CASE_TEMPLATE("convolution errors name the op and print the shapes", T, float, double) {
    auto v = [](Shape shape) { return Var<T>(random_array<T>(shape, 1)); };
    CHECK_THROWS_WITH_AS(conv2d(v({8, 3, 28, 28}), v({16, 1, 3, 3})),
                         "conv2d: input has 3 channels, weight expects 1: (8, 3, 28, 28) * (16, 1, 3, 3)", ShapeError);
    CHECK_THROWS_WITH_AS(conv2d(v({8, 4, 28, 28}), v({16, 1, 3, 3}), {.groups = 2}),
                         "conv2d: input has 4 channels, weight expects 2 (2 groups of 1): "
                         "(8, 4, 28, 28) * (16, 1, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv2d(v({1, 3, 5, 5}), v({4, 1, 3, 3}), {.groups = 2}),
                         "conv2d: input has 3 channels, weight expects 2 (2 groups of 1): (1, 3, 5, 5) * (4, 1, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv2d(v({1, 4, 5, 5}), v({3, 2, 3, 3}), {.groups = 2}),
                         "conv2d: 3 output channels do not split into 2 groups: (1, 4, 5, 5) * (3, 2, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv2d(v({2, 3, 5, 5}), v({4, 3, 3, 3}), v({3})),
                         "conv2d: bias (3,) does not fit 4 output channels: (2, 3, 5, 5) * (4, 3, 3, 3)", ShapeError);
    CHECK_THROWS_WITH_AS(conv2d(v({2, 3, 5, 5}), v({4, 3, 3, 3}), v({1, 4})),
                         "conv2d: bias (1, 4) does not fit 4 output channels: (2, 3, 5, 5) * (4, 3, 3, 3)", ShapeError);
    CHECK_THROWS_WITH_AS(conv2d(v({1, 1, 2, 2}), v({1, 1, 3, 3})),
                         "conv2d: the image (2, 2) padded by (0, 0) is smaller than the kernel (3, 3) dilated by "
                         "(1, 1): (1, 1, 2, 2) * (1, 1, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv2d(v({1, 1, 5, 6}), v({1, 1, 3, 3}), {.padding = {0, 1}, .dilation = {3, 1}}),
                         "conv2d: the image (5, 6) padded by (0, 1) is smaller than the kernel (3, 3) dilated by "
                         "(3, 1): (1, 1, 5, 6) * (1, 1, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv2d(v({3, 28, 28}), v({16, 3, 3, 3})),
                         "conv2d: needs 4-D values (NCHW, and a weight (O, C/groups, kh, kw)): (3, 28, 28) * "
                         "(16, 3, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv2d(v({1, 1, 5, 5}), v({1, 1, 3, 3}), {.stride = {0, 1}}),
                         "conv2d: stride (0, 1) must be positive and below 65536", ValueError);
    CHECK_THROWS_WITH_AS(conv2d(v({1, 1, 5, 5}), v({1, 1, 3, 3}), {.groups = 0}),
                         "conv2d: groups 0 must be positive and below 65536", ValueError);

    CHECK_THROWS_WITH_AS(conv_transpose2d(v({2, 3, 4, 4}), v({4, 2, 3, 3})),
                         "conv_transpose2d: input has 3 channels, weight expects 4: (2, 3, 4, 4) * (4, 2, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv_transpose2d(v({2, 3, 4, 4}), v({3, 2, 3, 3}), v({3})),
                         "conv_transpose2d: bias (3,) does not fit 2 output channels: (2, 3, 4, 4) * (3, 2, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv_transpose2d(v({1, 1, 3, 3}), v({1, 1, 3, 3}),
                                          {.stride = {2, 2}, .output_padding = {2, 2}}),
                         "conv_transpose2d: output padding (2, 2) must be below the stride (2, 2)", ValueError);
    CHECK_THROWS_WITH_AS(conv_transpose2d(v({1, 1, 2, 2}), v({1, 1, 2, 2}), {.padding = {2, 2}}),
                         "conv_transpose2d: padding (2, 2) leaves no output: (1, 1, 2, 2) * (1, 1, 2, 2)", ShapeError);
    CHECK_THROWS_WITH_AS(conv_transpose2d(v({3, 4, 4}), v({3, 2, 3, 3})),
                         "conv_transpose2d: needs 4-D values (NCHW, and a weight (C, O/groups, kh, kw)): (3, 4, 4) * "
                         "(3, 2, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv_transpose2d(v({1, 3, 4, 4}), v({3, 1, 3, 3}), {.groups = 2}),
                         "conv_transpose2d: 3 input channels do not split into 2 groups: (1, 3, 4, 4) * (3, 1, 3, 3)",
                         ShapeError);

    CHECK_THROWS_WITH_AS(conv2d_weight_grad(v({2, 3, 5, 5}), v({2, 4, 3, 3}), {2, 2}),
                         "conv2d_weight_grad: a kernel (2, 2) over the input gives (2, 4, 4, 4), not the gradient's "
                         "shape: (2, 3, 5, 5) and (2, 4, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv2d_weight_grad(v({2, 3, 5, 5}), v({3, 4, 3, 3}), {3, 3}),
                         "conv2d_weight_grad: a kernel (3, 3) over the input gives (2, 4, 3, 3), not the gradient's "
                         "shape: (2, 3, 5, 5) and (3, 4, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv2d_weight_grad(v({2, 3, 5, 5}), v({2, 4, 3, 3}), {3, 3}, {.groups = 2}),
                         "conv2d_weight_grad: 3 input channels do not split into 2 groups: (2, 3, 5, 5) and "
                         "(2, 4, 3, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(conv2d_weight_grad(v({1, 1, 2, 2}), v({1, 1, 1, 1}), {3, 3}),
                         "conv2d_weight_grad: the image (2, 2) padded by (0, 0) is smaller than the kernel (3, 3) "
                         "dilated by (1, 1): (1, 1, 2, 2) and (1, 1, 1, 1)",
                         ShapeError);
}

TEST_CASE_TEMPLATE("pool and upsampling errors name the op and print the shapes", T, float, double) {
    auto v = [](Shape shape) { return Var<T>(random_array<T>(shape, 1)); };
    CHECK_THROWS_WITH_AS(max_pool2d(v({1, 1, 4, 4}), {.kernel = {3, 3}, .padding = {2, 1}}),
                         "max_pool2d: padding (2, 1) must be at most half the kernel (3, 3)", ValueError);
    CHECK_THROWS_WITH_AS(avg_pool2d(v({1, 1, 4, 4}), {.kernel = {2, 2}, .padding = {1, 2}}),
                         "avg_pool2d: padding (1, 2) must be at most half the kernel (2, 2)", ValueError);
    CHECK_THROWS_WITH_AS(max_pool2d(v({3, 4, 4})), "max_pool2d: needs a 4-D value (NCHW): (3, 4, 4)", ShapeError);
    CHECK_THROWS_WITH_AS(avg_pool2d(v({4, 4})), "avg_pool2d: needs a 4-D value (NCHW): (4, 4)", ShapeError);
    CHECK_THROWS_WITH_AS(max_pool2d(v({1, 1, 1, 3})),
                         "max_pool2d: the image (1, 3) padded by (0, 0) is smaller than the window (2, 2) dilated by "
                         "(1, 1): (1, 1, 1, 3)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(max_pool2d(v({1, 1, 4, 4}), {.kernel = {0, 2}}),
                         "max_pool2d: kernel (0, 2) must be positive and below 65536", ValueError);
    CHECK_THROWS_WITH_AS(avg_pool2d(v({1, 1, 4, 4}), {.dilation = {2, 2}}), "avg_pool2d: takes no dilation",
                         ValueError);
    CHECK_THROWS_WITH_AS(max_pool2d_backward(v({1, 1, 3, 3}), v({1, 1, 4, 4})),
                         "max_pool2d_backward: the gradient (1, 1, 3, 3) is not the pooled shape of (1, 1, 4, 4)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(avg_pool2d_backward(v({1, 1, 3, 3}), {4, 4}),
                         "avg_pool2d_backward: the gradient (1, 1, 3, 3) is not the pooled shape of an image of (4, 4)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(upsample_nearest2d(v({3, 4, 4}), {2, 2}),
                         "upsample_nearest2d: needs a 4-D value (NCHW): (3, 4, 4)", ShapeError);
    CHECK_THROWS_WITH_AS(upsample_nearest2d(v({1, 3, 4, 4}), {0, 2}),
                         "upsample_nearest2d: scale (0, 2) must be positive", ValueError);
}

// ---------------------------------------------------------------------------------------------------------
// Threads and the steady state.

// conv2d and conv_transpose2d cut the batch between threads, and a product inside a parallel loop is not
// cut again: each sample's products are whole on one thread, whatever the thread count. conv2d_weight_grad
// sums the samples on the caller, and gemm cuts a product above 2^18 multiply-adds into bands, as it does
// conv2d's product on a batch of 1: each element is still summed over all of k by one thread, but a
// band's shape can lead the BLAS kernel to add in another order (README, Reproducibility). A bias's
// gradient sums each channel whole on one thread. Checked here on this machine's kernel: the same bits.
TEST_CASE_TEMPLATE("the convolutions give the same bits on 1 and 2 threads", T, float, double) {
    Conv2dOptions o{.stride = {2, 2}, .padding = {1, 1}};
    Array<T> x = random_array<T>({8, 16, 24, 24}, 1);
    Array<T> w = random_array<T>({32, 16, 3, 3}, 2);
    Array<T> b = random_array<T>({32}, 3);
    Array<T> g = random_array<T>({8, 32, 12, 12}, 4);
    Array<T> wt = random_array<T>({32, 16, 4, 4}, 5);
    Array<T> bt = random_array<T>({16}, 6);
    Array<T> x1 = random_array<T>({1, 16, 24, 24}, 7);
    auto bias_grad = [&] {
        Var<T> bias(b, true);
        backward(conv2d(Var<T>(x), Var<T>(w), bias, o), Var<T>(g));
        return bias.grad().value();
    };
    auto run = [&] {
        return std::vector<Array<T>>{
            conv2d(Var<T>(x), Var<T>(w), Var<T>(b), o).value(),                       // (8, 32, 12, 12)
            conv_transpose2d(Var<T>(g), Var<T>(wt), Var<T>(bt), {.stride = {2, 2}, .padding = {1, 1}}).value(),
            conv2d_weight_grad(Var<T>(x), Var<T>(g), {3, 3}, o).value(),               // 32 x 144 x 144 each
            conv2d(Var<T>(x1), Var<T>(w), Var<T>(b), {.padding = {1, 1}}).value(),     // 32 x 576 x 144
            bias_grad(),                                                                // a channel sum
        };
    };
    set_threads(1);
    std::vector<Array<T>> one = run();
    set_threads(2);
    std::vector<Array<T>> two = run();
    set_threads(1);
    for (std::size_t i = 0; i < one.size(); ++i) {
        CAPTURE(i);
        CHECK(one[i] == two[i]);
    }
}

// The kernels' columns and argmax positions live in per-thread scratch that grows and stays, oneDNN's
// primitives and buffers are kept per shape, and every output comes from the pool: after warm-up a step
// allocates nothing in tapegrad, on 1 thread or 2. oneDNN's own call (dnnl_primitive_execute) builds a hash
// map of its arguments, at most one node per argument (5) and a bucket array each time: those are all.
TEST_CASE_TEMPLATE("after warm-up, a convolutional training step allocates nothing", T, float, double) {
    Var<T> x(random_array<T>({8, 2, 12, 12}, 1, 0, 1));
    std::vector<Var<T>> params = {
        test::random_param<T>({6, 2, 3, 3}, 2, "encoder.0.weight", -0.3, 0.3),
        test::random_param<T>({6}, 3, "encoder.0.bias"),
        test::random_param<T>({6, 2, 4, 4}, 4, "decoder.0.weight", -0.3, 0.3),
        test::random_param<T>({2}, 5, "decoder.0.bias"),
        test::random_param<T>({2, 6, 3, 3}, 6, "decoder.1.weight", -0.3, 0.3),
    };
    auto sgd = [&] {
        for (Var<T>& p : params) {
            if (!p.grad().defined()) {  // decoder.1 is the pooling step's alone
                continue;
            }
            T* value = p.mutable_value().data();
            const T* g = p.grad().value().data();
            for (std::size_t i = 0; i < p.size(); ++i) {
                value[i] -= T(0.01) * g[i];
            }
            p.zero_grad();
        }
    };
    auto conv_step = [&] {
        Var<T> h = relu(conv2d(x, params[0], params[1], {.stride = {2, 2}, .padding = {1, 1}}));  // (8, 6, 6, 6)
        Var<T> y = conv_transpose2d(h, params[2], params[3], {.stride = {2, 2}, .padding = {1, 1}});  // (8, 2, 12, 12)
        mean_squared_error(y, x).backward();
        sgd();
    };
    auto pool_step = [&] {
        Var<T> h = max_pool2d(relu(conv2d(x, params[0], params[1], {.padding = {1, 1}})));  // (8, 6, 6, 6)
        Var<T> y = conv2d(upsample_nearest2d(h, {2, 2}), params[4], {.padding = {1, 1}});   // (8, 2, 12, 12)
        mean_squared_error(avg_pool2d(y), avg_pool2d(x)).backward();
        sgd();
    };
    const char* backend = std::getenv("TAPEGRAD_CONV");
    bool im2col = std::is_same_v<T, double> || (backend != nullptr && std::string_view(backend) == "im2col");
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        CAPTURE(conv_summary());
        set_threads(threads);
        for (const auto& step : {std::function<void()>(conv_step), std::function<void()>(pool_step)}) {
            for (int i = 0; i < 3; ++i) {
                step();
            }
            long allocated = test::allocations();
            std::uint64_t called = testing::onednn_executions();
            for (int i = 0; i < 20; ++i) {
                step();
            }
            long allocations = test::allocations() - allocated;
            std::uint64_t calls = testing::onednn_executions() - called;
            CAPTURE(calls);
            CAPTURE(allocations);
            CHECK(allocations <= 6 * static_cast<long>(calls));
            // Floats run on oneDNN when it is built in and not turned off; the conv tests run both ways.
            CHECK((calls > 0) == (!im2col && conv_summary().starts_with("oneDNN")));
        }
    }
    set_threads(1);
}
