// The differentiable ops. Each is defined, with its shape rule and backward formula beside it, in
// autodiff/ops/<family>.cpp and instantiated there for float and double.
//
// Binary elementwise ops broadcast by numpy's rules; the gradient of a broadcast input is summed back to
// its shape. Shapes that do not fit throw ShapeError naming the op and the shapes.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string_view>
#include <type_traits>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// One row of the op table, for tests and tools that walk every op.
struct OpInfo {
    std::string_view name;
    int arity;    // number of Var inputs; -1 for a variable number (concat)
    bool kink;    // not differentiable at some points (relu at 0, abs, clamp bounds, maximum at ties)
    std::string_view family;
};
std::span<const OpInfo> op_table();

// Elementwise, broadcasting.
template <class T> Var<T> add(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> maximum(const Var<T>& a, const Var<T>& b);  // ties send half of dy to each
template <class T> Var<T> minimum(const Var<T>& a, const Var<T>& b);
// mask holds 0 or 1 and takes no gradient: mask ? a : b, the three broadcast together.
template <class T> Var<T> where(const Var<T>& mask, const Var<T>& a, const Var<T>& b);

// Elementwise, one input.
template <class T> Var<T> neg(const Var<T>& x);
template <class T> Var<T> pow(const Var<T>& x, double exponent);
template <class T> Var<T> exp(const Var<T>& x);
template <class T> Var<T> log(const Var<T>& x);
template <class T> Var<T> sqrt(const Var<T>& x);
template <class T> Var<T> abs(const Var<T>& x);  // subgradient 0 at 0
template <class T> Var<T> relu(const Var<T>& x);  // subgradient 0 at 0
template <class T> Var<T> leaky_relu(const Var<T>& x, double slope = 0.01);
template <class T> Var<T> sigmoid(const Var<T>& x);
template <class T> Var<T> tanh(const Var<T>& x);
// log(1 + exp(x)) computed as max(x, 0) + log1p(exp(-|x|)), finite for every finite x.
template <class T> Var<T> softplus(const Var<T>& x);
// Gradient 1 inside [lo, hi] bounds included, as PyTorch's clamp.
template <class T> Var<T> clamp(const Var<T>& x, double lo, double hi);

// Constants that take no gradient: masks for where and for backward formulas.
template <class T> Var<T> greater(const Var<T>& a, const Var<T>& b);  // 1 where a > b, else 0
template <class T> Var<T> sign(const Var<T>& x);                       // -1, 0 or 1

// Matrix product of 2-D values through BLAS: (m, k) x (k, n) -> (m, n).
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b);
// x W + b for x (m, k), W (k, n), b (n,): matmul and a broadcast add in one op and one pass, as Linear uses.
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b);
// x W^T + b for W (n, k), read transposed in place (no copy, forward or backward): a tied decoder's layer,
// whose W is the encoder's. PyTorch's F.linear.
template <class T> Var<T> linear_transposed(const Var<T>& x, const Var<T>& w, const Var<T>& b);
// The activations a linear op can apply to its own output.
enum class Activation { identity, relu, sigmoid, tanh };
std::string_view to_string(Activation act);
// act(x W + b) and act(x W^T + b) as one op: each thread applies act to its band of the output right after
// its product wrote it, while the band is still in its cache, and the output is the only buffer kept (the
// backward reads act' from it: y > 0, y (1 - y), 1 - y^2). Same values, bit for bit, as the two ops apart.
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b, Activation act);
template <class T> Var<T> linear_transposed(const Var<T>& x, const Var<T>& w, const Var<T>& b, Activation act);
// 2-D transpose.
template <class T> Var<T> transpose(const Var<T>& x);
template <class T> Var<T> reshape(const Var<T>& x, const Shape& shape);

// Reductions: over everything (a 0-d result), or over one axis (negative counts from the end).
template <class T> Var<T> sum(const Var<T>& x);
template <class T> Var<T> sum(const Var<T>& x, int axis, bool keepdims = false);
// mean((a - b)^2) over every element of two values of one shape, as one op (NaN when they are empty).
template <class T> Var<T> mean_squared_error(const Var<T>& a, const Var<T>& b);
// sum(x^2) over every element, as one op: an L2 penalty.
template <class T> Var<T> sum_squares(const Var<T>& x);
template <class T> Var<T> mean(const Var<T>& x);
template <class T> Var<T> mean(const Var<T>& x, int axis, bool keepdims = false);
template <class T> Var<T> broadcast_to(const Var<T>& x, const Shape& shape);
// The inverse of broadcast_to: sums x down to `shape`, which must broadcast to x's shape.
template <class T> Var<T> sum_to(const Var<T>& x, const Shape& shape);

// Rows (the first axis) picked by index, repeats allowed, and the adjoint: rows added into zeros.
template <class T> Var<T> gather_rows(const Var<T>& x, std::span<const std::size_t> rows);
template <class T> Var<T> scatter_rows(const Var<T>& x, std::span<const std::size_t> rows, std::size_t n_rows);
// Elements [begin, end) along an axis, and the joining of values along an axis.
template <class T> Var<T> slice(const Var<T>& x, int axis, std::size_t begin, std::size_t end);
template <class T> Var<T> concat(std::span<const Var<T>> parts, int axis = 0);
template <class T> Var<T> concat(std::initializer_list<Var<T>> parts, int axis = 0) {
    return concat<T>(std::span<const Var<T>>(parts.begin(), parts.size()), axis);
}
template <class T> Var<T> slice_rows(const Var<T>& x, std::size_t begin, std::size_t end) {
    return slice(x, 0, begin, end);
}

// Images, NCHW: x (batch, channels, height, width). Each geometry is per axis, {height, width}, as
// PyTorch's; the output side of a convolution is (in + 2 padding - dilation (kernel - 1) - 1) / stride + 1.
using Pair = std::array<std::size_t, 2>;
struct Conv2dOptions {
    Pair stride{1, 1};
    Pair padding{0, 0};
    Pair dilation{1, 1};
    std::size_t groups = 1;
};
// The cross-correlation of PyTorch's conv2d: x (N, C, H, W), w (O, C / groups, kh, kw), b (O,) -> (N, O,
// Ho, Wo). Without b, no bias.
template <class T> Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Conv2dOptions& options = {});
template <class T> Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, const Conv2dOptions& options = {});
struct ConvTranspose2dOptions {
    Pair stride{1, 1};
    Pair padding{0, 0};
    Pair output_padding{0, 0};  // added to one side of the output, below the stride (or the dilation)
    Pair dilation{1, 1};
    std::size_t groups = 1;
};
// The adjoint of conv2d in x (the gradient of conv2d's input), as PyTorch's conv_transpose2d: x (N, C, H,
// W), w (C, O / groups, kh, kw), b (O,) -> (N, O, Ho, Wo), Ho = (H - 1) stride - 2 padding + dilation (kh - 1)
// + output_padding + 1.
template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& w, const ConvTranspose2dOptions& options = {});
template <class T>
Var<T> conv_transpose2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, const ConvTranspose2dOptions& options = {});
// The gradient of conv2d's weight: the correlation of conv2d's input x (N, C, H, W) with the gradient g
// (N, O, Ho, Wo) of its output, summed over the batch -> (O, C / groups, kernel[0], kernel[1]).
template <class T>
Var<T> conv2d_weight_grad(const Var<T>& x, const Var<T>& g, Pair kernel, const Conv2dOptions& options = {});

// Pooling over windows of `kernel`, every `stride` (0: the kernel), the input padded by `padding` on each
// side (at most half the kernel): -infinity for max, zeros for average, which divides by the whole window
// (PyTorch's defaults: count_include_pad, floor of the output side).
struct Pool2dOptions {
    Pair kernel{2, 2};
    Pair stride{0, 0};
    Pair padding{0, 0};
    Pair dilation{1, 1};  // max_pool2d only
};
// Ties: the first maximum in the window (row-major) takes the gradient.
template <class T> Var<T> max_pool2d(const Var<T>& x, const Pool2dOptions& options = {});
template <class T> Var<T> avg_pool2d(const Var<T>& x, const Pool2dOptions& options = {});
// The adjoints, which the backward formulas of the pools use: g (the pooled shape) sent back to `like`'s
// shape, to the maximum of each window of `like` (max) or spread over each window (average).
template <class T> Var<T> max_pool2d_backward(const Var<T>& g, const Var<T>& like, const Pool2dOptions& options = {});
template <class T> Var<T> avg_pool2d_backward(const Var<T>& g, Pair size, const Pool2dOptions& options = {});
// Each pixel repeated scale[0] x scale[1] times: (N, C, H, W) -> (N, C, H scale[0], W scale[1]).
template <class T> Var<T> upsample_nearest2d(const Var<T>& x, Pair scale);

// Operators. A plain number is a 0-d constant that broadcasts.
template <class T> using Scalar = std::type_identity_t<T>;

template <class T> Var<T> operator+(const Var<T>& a, const Var<T>& b) { return add(a, b); }
template <class T> Var<T> operator-(const Var<T>& a, const Var<T>& b) { return sub(a, b); }
template <class T> Var<T> operator*(const Var<T>& a, const Var<T>& b) { return mul(a, b); }
template <class T> Var<T> operator/(const Var<T>& a, const Var<T>& b) { return div(a, b); }
template <class T> Var<T> operator-(const Var<T>& x) { return neg(x); }
template <class T> Var<T> operator+(const Var<T>& a, Scalar<T> b) { return add(a, Var<T>::scalar(b)); }
template <class T> Var<T> operator+(Scalar<T> a, const Var<T>& b) { return add(Var<T>::scalar(a), b); }
template <class T> Var<T> operator-(const Var<T>& a, Scalar<T> b) { return sub(a, Var<T>::scalar(b)); }
template <class T> Var<T> operator-(Scalar<T> a, const Var<T>& b) { return sub(Var<T>::scalar(a), b); }
template <class T> Var<T> operator*(const Var<T>& a, Scalar<T> b) { return mul(a, Var<T>::scalar(b)); }
template <class T> Var<T> operator*(Scalar<T> a, const Var<T>& b) { return mul(Var<T>::scalar(a), b); }
template <class T> Var<T> operator/(const Var<T>& a, Scalar<T> b) { return div(a, Var<T>::scalar(b)); }
template <class T> Var<T> operator/(Scalar<T> a, const Var<T>& b) { return div(Var<T>::scalar(a), b); }

}  // namespace tapegrad
