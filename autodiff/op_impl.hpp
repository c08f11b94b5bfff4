// What the library's op files share beyond the public op API (op.hpp): the op families' rows and the
// backward helpers several ops use. Internal to the library.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::detail {

template <class Op>
constexpr OpInfo op_info(std::string_view family) {
    if constexpr (requires { Op::kink; }) {
        return OpInfo{Op::name, Op::arity, Op::kink, family};
    } else {
        return OpInfo{Op::name, Op::arity, false, family};
    }
}

// Each op family lists its rows; op_table() joins them.
std::span<const OpInfo> unary_ops();
std::span<const OpInfo> binary_ops();
std::span<const OpInfo> reduce_ops();
std::span<const OpInfo> shape_ops();
std::span<const OpInfo> matmul_ops();
std::span<const OpInfo> conv_ops();
std::span<const OpInfo> pool_ops();
std::span<const OpInfo> distributed_ops();

// dy times the derivative of relu, sigmoid or tanh, read from u: relu's input or output (positive at the same
// places), sigmoid's and tanh's output. The backward of those ops, alone or fused into linear.
template <class T>
Var<T> relu_backward(const Var<T>& dy, const Var<T>& u) {
    return times_derivative(dy, u, [](T v) { return v > 0 ? T(1) : T(0); },
                            [&] { return dy * mask_of(u, [](T v) { return v > 0; }); });
}

template <class T>
Var<T> sigmoid_backward(const Var<T>& dy, const Var<T>& y) {
    return times_derivative(dy, y, [](T v) { return v * (T(1) - v); }, [&] { return dy * (y * (T(1) - y)); });
}

// 1 - y^2 from the output is cheaper than tanh(x) again.
template <class T>
Var<T> tanh_backward(const Var<T>& dy, const Var<T>& y) {
    return times_derivative(dy, y, [](T v) { return T(1) - v * v; }, [&] { return dy * (T(1) - y * y); });
}

// matmul with op(A) = A^T when ta, op(B) = B^T when tb: what backward formulas use instead of copies.
template <class T>
Var<T> matmul_t(const Var<T>& a, const Var<T>& b, bool ta, bool tb);

}  // namespace tapegrad::detail

namespace tapegrad::detail {

// The live entries of this thread's tape that y depends on, in tape order, with their positions; empty
// when y is not on the tape. For the audit.
template <class T>
std::vector<std::pair<std::size_t, const Entry<T>*>> entries_of(const Var<T>& y);
// The named values (parameters, the trainer's "batch") an unnamed value was computed from, nearest first
// as checking mode reports them, quoted: "\"encoder.0.weight\"".
template <class T>
std::vector<std::string> upstream_names(const Var<T>& v);

}  // namespace tapegrad::detail
