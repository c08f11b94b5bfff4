// Defining a differentiable op: the one way the library's own ops and a user's are written.
//
// An op is a struct holding its name, its number of inputs, its forward and its backward formula:
//
//     struct Cube {
//         static constexpr std::string_view name = "cube";
//         static constexpr int arity = 1;
//         // The output's shape, or a ShapeError naming the op and the shapes (optional: without it,
//         // the output has input 0's shape).
//         template <class T> static Shape shape(const Call<T>& c) { return c.shape(0); }
//         // The output from the inputs' values, into `out` (fresh, uninitialised, of shape()'s shape).
//         template <class T> static void forward(const Call<T>& c, Array<T>& out) { out = xt::pow(c.value(0), 3); }
//         // dy sent to the inputs, written with differentiable ops: under create_graph it is recorded too, so
//         // second derivatives (gradgradcheck, penalties on gradients) work on the op.
//         template <class T> static void backward(Grads<T>& g) { g.add(0, g.dy() * T(3) * g.in(0) * g.in(0)); }
//     };
//     template <class T> Var<T> cube(const Var<T>& x) { return apply<Cube>({x}); }
//
// Optional members: `static constexpr bool kink = true` for an op not differentiable everywhere (relu at
// 0, a top-k boundary), whose forward then calls note_branches() so that gradient checks and the tape
// audit can tell a finite difference straddling the kink from a wrong gradient; `fast_backward(Grads&)`,
// a fused loop used instead of backward when nothing records (a plain backward, no create_graph), which
// must compute the same numbers; a forward returning the output (`Var<T> forward(const Call<T>&)`) in
// place of shape() and the Array form, for an op that picks its own output buffer.
//
// The attributes an op keeps for its backward (an exponent, k, an axis, flags) go in Attrs; row indices in
// `index`. The tape stores them with the entry; the tape audit (audit.hpp) replays forward on the values
// the entry saw and checks backward against finite differences of that op alone.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <vector>

#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

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

// What a forward sees: the op's inputs, attributes and indices.
template <class T>
class Call {
public:
    Call(std::string_view op, std::span<const Var<T>> in, const Attrs& attrs, std::span<const std::size_t> index)
        : op_(op), in_(in), attrs_(attrs), index_(index) {}

    std::string_view op() const { return op_; }
    std::size_t arity() const { return in_.size(); }
    const Var<T>& in(std::size_t k) const { return in_[k]; }
    const Array<T>& value(std::size_t k) const { return in_[k].value(); }
    const Shape& shape(std::size_t k) const { return in_[k].shape(); }
    std::span<const Var<T>> inputs() const { return in_; }
    const Attrs& attrs() const { return attrs_; }
    std::span<const std::size_t> index() const { return index_; }

private:
    std::string_view op_;
    std::span<const Var<T>> in_;
    const Attrs& attrs_;
    std::span<const std::size_t> index_;
};

template <class T>
class Grads;

namespace detail {

template <class T>
class Tape;

// One row of the op table as the tape sees it: the name errors and reports print, the backward formula
// (and its fused form, or nullptr), and the forward, which the audit replays.
template <class T>
struct OpDef {
    std::string_view name;
    void (*backward)(Grads<T>&);
    void (*fast_backward)(Grads<T>&);
    Var<T> (*forward)(const Call<T>&);
};

template <class T>
struct Entry {
    const OpDef<T>* op = nullptr;  // nullptr once freed
    std::uint64_t serial = 0;
    Var<T> out;
    std::vector<Var<T>> in;
    std::vector<std::size_t> index;  // row indices of gather_rows and scatter_rows
    Attrs attrs;
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

[[noreturn]] void throw_arity_error(std::string_view op, int arity, std::size_t given);

// The op's forward, whichever form it is written in, without recording.
template <class Op, class T>
Var<T> run_forward(const Call<T>& c) {
    if constexpr (requires { { Op::forward(c) } -> std::same_as<Var<T>>; }) {
        return Op::forward(c);
    } else {
        Var<T> out;
        if constexpr (requires { Op::shape(c); }) {
            out = empty<T>(Op::shape(c));
        } else {
            out = empty<T>(c.shape(0));
        }
        Op::forward(c, out.mutable_value());
        return out;
    }
}

template <class Op, class T>
constexpr void (*fast_backward_of())(Grads<T>&) {
    if constexpr (requires(Grads<T>& g) { Op::fast_backward(g); }) {
        return &Op::template fast_backward<T>;
    } else {
        return nullptr;
    }
}

template <class Op, class T>
inline constexpr OpDef<T> op_def{Op::name, &Op::template backward<T>, fast_backward_of<Op, T>(),
                                 &run_forward<Op, T>};

struct KinkNote {
    std::string_view op;
    std::uint64_t hash;
};
inline thread_local std::vector<KinkNote>* kink_log = nullptr;

}  // namespace detail

// Evaluates Op on the inputs and records it on the tape: what an op's public function calls.
template <class Op, class T>
Var<T> apply(std::span<const Var<T>> in, const Attrs& attrs = {}, std::span<const std::size_t> index = {}) {
    if (Op::arity >= 0 && in.size() != static_cast<std::size_t>(Op::arity)) {
        detail::throw_arity_error(Op::name, Op::arity, in.size());
    }
    Call<T> call(Op::name, in, attrs, index);
    return detail::record(detail::op_def<Op, T>, detail::run_forward<Op, T>(call), in, attrs, index);
}

template <class Op, class T>
Var<T> apply(std::initializer_list<Var<T>> in, const Attrs& attrs = {}, std::span<const std::size_t> index = {}) {
    return apply<Op, T>(std::span<const Var<T>>(in.begin(), in.size()), attrs, index);
}

// What a backward formula sees: dy, the op's output and inputs, its attributes; and add(k, dx), which
// sums dx back to input k's shape when the op broadcast it and adds it to that input's gradient.
template <class T>
class Grads {
public:
    Grads(detail::Tape<T>& tape, const detail::Entry<T>& entry, Var<T> dy)
        : tape_(tape), entry_(entry), dy_(std::move(dy)) {}

    const Var<T>& dy() const { return dy_; }
    const Var<T>& out() const { return entry_.out; }
    const Var<T>& in(std::size_t k) const { return entry_.in[k]; }
    std::size_t arity() const { return entry_.in.size(); }
    const Attrs& attrs() const { return entry_.attrs; }
    std::span<const std::size_t> index() const { return entry_.index; }
    // Whether input k takes a gradient: skip the work for one that does not.
    bool needs(std::size_t k) const { return entry_.in[k].node()->requires_grad; }
    std::string_view op() const { return entry_.op->name; }

    void add(std::size_t k, Var<T> dx);
    // add(k, op(A) op(B)), with op(X) = X^T when its flag is set. When input k already has a gradient
    // of its own pending (a weight used twice, or one with a penalty on it) and nothing records, the
    // product is added onto it by the GEMM itself (beta = 1): no product buffer and no extra pass.
    void add_matmul(std::size_t k, const Var<T>& a, const Var<T>& b, bool ta, bool tb);

private:
    detail::Tape<T>& tape_;
    const detail::Entry<T>& entry_;
    Var<T> dy_;
};

// For an op with a kink: while a gradient check or the audit watches, records which side of the kink
// (0, 1, 2) each of n elements fell on, branch(i); otherwise does nothing.
template <class Branch>
void note_branches(std::string_view op, std::size_t n, Branch branch) {
    if (detail::kink_log == nullptr) {
        return;
    }
    std::uint64_t hash = 0;
    for (std::size_t i = 0; i < n; ++i) {
        hash += static_cast<std::uint64_t>(branch(i)) * (i * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull);
    }
    detail::kink_log->push_back({op, hash});
}

// A 0/1 constant the shape of x: pred(x[i]). Masks in backward formulas take no gradient.
template <class T, class Pred>
Var<T> mask_of(const Var<T>& x, Pred pred) {
    Var<T> mask = detail::empty<T>(x.shape());
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
    Var<T> dx = detail::empty<T>(u.shape());
    const T* pd = dy.value().data();
    const T* pu = u.value().data();
    T* px = dx.mutable_value().data();
    parallel_for(u.size(), detail::elementwise_grain, [=](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
            px[i] = pd[i] * f(pu[i]);
        }
    });
    return dx;
}

}  // namespace tapegrad
