// Matrix product through BLAS. The op carries transpose flags (attrs p for A, q for B) so that its
// backward formulas, which need A^T and B^T, read them in place instead of copying.
#include <fmt/format.h>

#include "../gemm.hpp"
#include "../op.hpp"

namespace tapegrad {

namespace detail {
namespace {

struct Matmul {
    static constexpr std::string_view name = "matmul";
    static constexpr int arity = 2;
    static constexpr bool kink = false;
    // For C = op(A) op(B):
    //   dA = dy op(B)^T,   or (dy op(B)^T)^T = op(B) dy^T when A was read transposed;
    //   dB = op(A)^T dy,   or (op(A)^T dy)^T = dy^T op(A) when B was read transposed.
    template <class T>
    static void backward(Grads<T>& g) {
        bool ta = g.attrs().p;
        bool tb = g.attrs().q;
        const Var<T>& dy = g.dy();
        if (g.needs(0)) {
            g.add(0, ta ? matmul_t(g.in(1), dy, tb, true) : matmul_t(dy, g.in(1), false, !tb));
        }
        if (g.needs(1)) {
            g.add(1, tb ? matmul_t(dy, g.in(0), true, ta) : matmul_t(g.in(0), dy, !ta, false));
        }
    }
};

constexpr OpInfo rows[] = {op_info<Matmul>("matmul")};

}  // namespace

std::span<const OpInfo> matmul_ops() { return rows; }

template <class T>
Var<T> matmul_t(const Var<T>& a, const Var<T>& b, bool ta, bool tb) {
    if (a.ndim() != 2 || b.ndim() != 2) {
        throw_shape_error(fmt::format("matmul: needs 2-D values: {} x {}", to_string(a.shape()), to_string(b.shape())));
    }
    // Shapes as the product reads them.
    std::size_t m = a.shape()[ta ? 1 : 0];
    std::size_t k = a.shape()[ta ? 0 : 1];
    std::size_t kb = b.shape()[tb ? 1 : 0];
    std::size_t n = b.shape()[tb ? 0 : 1];
    if (k != kb) {
        throw_shape_error(fmt::format("matmul: inner dimensions differ: {}{} x {}{}", to_string(a.shape()),
                                      ta ? "^T" : "", to_string(b.shape()), tb ? "^T" : ""));
    }
    Var<T> y = empty<T>(Shape{m, n});
    if (k == 0) {
        std::fill(y.mutable_value().begin(), y.mutable_value().end(), T(0));
    } else if (m > 0 && n > 0) {
        gemm<T>(ta, tb, m, n, k, T(1), a.value().data(), a.shape()[1], b.value().data(), b.shape()[1], T(0),
                y.mutable_value().data(), n);
    }
    return record(op_def<Matmul, T>, std::move(y), {a, b}, {.p = ta, .q = tb});
}

template Var<float> matmul_t<float>(const Var<float>&, const Var<float>&, bool, bool);
template Var<double> matmul_t<double>(const Var<double>&, const Var<double>&, bool, bool);

}  // namespace detail

template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
    return detail::matmul_t(a, b, false, false);
}

template Var<float> matmul<float>(const Var<float>&, const Var<float>&);
template Var<double> matmul<double>(const Var<double>&, const Var<double>&);

}  // namespace tapegrad
