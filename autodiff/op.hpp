// What every op file shares: the tape entry, the Grads handed to a backward formula, and record().
// Internal to the library.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::detail {

// Scalar arguments an op keeps for its backward: an exponent, a slope, bounds, an axis, flags.
struct Attrs {
    double a = 0;
    double b = 0;
    std::int64_t i = 0;
    std::int64_t j = 0;
    std::int64_t k = 0;
    bool p = false;
    bool q = false;
};

template <class T>
class Grads;

// One row of the op table as the tape sees it: the name the errors and reports print, and the
// backward formula.
template <class T>
struct OpDef {
    std::string_view name;
    void (*backward)(Grads<T>&);
};

template <class Op, class T>
inline constexpr OpDef<T> op_def{Op::name, &Op::template backward<T>};

template <class Op>
constexpr OpInfo op_info(std::string_view family) {
    return OpInfo{Op::name, Op::arity, Op::kink, family};
}

template <class T>
struct Entry {
    const OpDef<T>* op = nullptr;  // nullptr once freed
    std::uint64_t serial = 0;
    Var<T> out;
    std::vector<Var<T>> in;
    std::vector<std::size_t> index;  // row indices of gather_rows and scatter_rows
    Attrs attrs;
};

template <class T>
class Tape;

// What a backward formula sees: dy, the op's output and inputs, its attributes; and add(k, dx), which
// sums dx back to input k's shape when the op broadcast it and adds it to that input's gradient.
template <class T>
class Grads {
public:
    Grads(Tape<T>& tape, const Entry<T>& entry, Var<T> dy) : tape_(tape), entry_(entry), dy_(std::move(dy)) {}

    const Var<T>& dy() const { return dy_; }
    const Var<T>& out() const { return entry_.out; }
    const Var<T>& in(std::size_t k) const { return entry_.in[k]; }
    std::size_t arity() const { return entry_.in.size(); }
    const Attrs& attrs() const { return entry_.attrs; }
    std::span<const std::size_t> index() const { return entry_.index; }
    bool needs(std::size_t k) const { return entry_.in[k].node()->requires_grad; }
    std::string_view op() const { return entry_.op->name; }

    void add(std::size_t k, Var<T> dx);
    // add(k, op(A) op(B)), with op(X) = X^T when its flag is set. When input k already has a gradient
    // of its own pending (a weight used twice, or one with a penalty on it) and nothing records, the
    // product is added onto it by the GEMM itself (beta = 1): no product buffer and no extra pass.
    void add_matmul(std::size_t k, const Var<T>& a, const Var<T>& b, bool ta, bool tb);

private:
    Tape<T>& tape_;
    const Entry<T>& entry_;
    Var<T> dy_;
};

// Called by every op after its forward: checks the output for NaN and Inf in checking mode, and records
// the entry when gradient mode is on and an input requires grad. Returns `out`.
template <class T>
Var<T> record(const OpDef<T>& op, Var<T> out, std::span<const Var<T>> in, const Attrs& attrs = {},
              std::span<const std::size_t> index = {});

template <class T>
Var<T> record(const OpDef<T>& op, Var<T> out, std::initializer_list<Var<T>> in, const Attrs& attrs = {},
              std::span<const std::size_t> index = {}) {
    return record(op, std::move(out), std::span<const Var<T>>(in.begin(), in.size()), attrs, index);
}

// Ops with a kink (relu at 0, abs, clamp at its bounds, maximum at ties) report which side of it each
// element fell on while a gradient check watches, so that the check can tell a finite difference that
// straddles a kink from a wrong gradient.
struct KinkNote {
    std::string_view op;
    std::uint64_t hash;
};
inline thread_local std::vector<KinkNote>* kink_log = nullptr;

// branch(i) is the side (0, 1, 2) of the kink element i falls on.
template <class Branch>
void note_branches(std::string_view op, std::size_t n, Branch branch) {
    if (kink_log == nullptr) {
        return;
    }
    std::uint64_t hash = 0;
    for (std::size_t i = 0; i < n; ++i) {
        hash += static_cast<std::uint64_t>(branch(i)) * (i * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);
    }
    kink_log->push_back({op, hash});
}

}  // namespace tapegrad::detail

namespace tapegrad::detail {

// Each op family lists its rows; op_table() joins them.
std::span<const OpInfo> unary_ops();
std::span<const OpInfo> binary_ops();
std::span<const OpInfo> reduce_ops();
std::span<const OpInfo> shape_ops();
std::span<const OpInfo> matmul_ops();

// A 0/1 constant the shape of x: pred(x[i]). Masks in backward formulas take no gradient.
template <class T, class Pred>
Var<T> mask_of(const Var<T>& x, Pred pred) {
    Var<T> mask = empty<T>(x.shape());
    const T* px = x.value().data();
    T* pm = mask.mutable_value().data();
    for (std::size_t i = 0, n = x.size(); i < n; ++i) {
        pm[i] = pred(px[i]) ? T(1) : T(0);
    }
    return mask;
}

// dy * f(u[i]) in one pass, for the backward of an elementwise op whose derivative is f of its input or
// output u. When nothing records (a backward without create_graph) it writes one new buffer; otherwise
// it returns `composed()`, the same formula in ops, so that second derivatives flow through it.
template <class T, class F, class Composed>
Var<T> times_derivative(const Var<T>& dy, const Var<T>& u, F f, Composed composed) {
    if (grad_enabled()) {
        return composed();
    }
    Var<T> dx = empty<T>(u.shape());
    const T* pd = dy.value().data();
    const T* pu = u.value().data();
    T* px = dx.mutable_value().data();
    parallel_for(u.size(), elementwise_grain, [=](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
            px[i] = pd[i] * f(pu[i]);
        }
    });
    return dx;
}

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
