// The loops under the ops: elementwise maps (vectorised with xsimd), broadcasting, reductions, copies.
// They know nothing of the tape. Outputs are written whole, so pooled buffers need no clearing.
// Internal to the library.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::detail::kernels {

// numpy's broadcasting rule; throws `op: shapes do not broadcast: (3, 4) and (5, 4)`.
Shape broadcast_shape(std::string_view op, const Shape& a, const Shape& b);
// Whether `from` broadcasts to `to`.
bool broadcasts_to(const Shape& from, const Shape& to);

// The activations linear fuses into its product (the ops' own loops are in elementwise.hpp).
enum class Unary { relu, sigmoid, tanh };
// y = f(x) elementwise.
template <class T>
void map(Unary f, const T* x, T* y, std::size_t n);

enum class Binary { add, sub, mul, div, maximum, minimum, greater, equal };
// out = f(a, b) with broadcasting; out already has the broadcast shape.
template <class T>
void binary(Binary f, const Array<T>& a, const Array<T>& b, Array<T>& out);
// out = mask != 0 ? a : b, the three broadcast to out's shape.
template <class T>
void where(const Array<T>& mask, const Array<T>& a, const Array<T>& b, Array<T>& out);

// out = x broadcast to out's shape.
template <class T>
void broadcast_to(const Array<T>& x, Array<T>& out);
// out = x summed down to out's shape (which broadcasts to x's). With first_only, out takes the first
// element of each summed group instead of the sum: a broken reduction, for fault injection only.
template <class T>
void sum_to(const Array<T>& x, Array<T>& out, bool first_only = false);

template <class T>
void add_inplace(T* a, const T* b, std::size_t n);

// y = x, n elements, shared among the threads.
template <class T>
void copy(const T* x, T* y, std::size_t n);

// (rows, cols) -> (cols, rows).
template <class T>
void transpose2d(const T* x, T* y, std::size_t rows, std::size_t cols);

// Views src and dst as (outer, src_mid, inner) and (outer, dst_mid, inner) and copies `mid` rows of the
// middle axis: dst[o, dst_begin + m, :] = src[o, src_begin + m, :]. Slice and concat along any axis.
template <class T>
void copy_blocks(const T* src, std::size_t src_mid, std::size_t src_begin, T* dst, std::size_t dst_mid,
                 std::size_t dst_begin, std::size_t mid, std::size_t outer, std::size_t inner);

// The flat index of the first NaN or Inf.
template <class T>
std::optional<std::size_t> first_nonfinite(const T* x, std::size_t n);

}  // namespace tapegrad::detail::kernels
