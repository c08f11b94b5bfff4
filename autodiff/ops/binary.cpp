// Elementwise ops of two inputs, broadcasting by numpy's rules. Backward formulas send dy at the
// broadcast shape; Grads::add sums it back to each input's shape.
#include "../kernels.hpp"
#include "../op.hpp"

namespace tapegrad {

namespace detail {
namespace {

using kernels::Binary;

template <class Op, class T>
Var<T> apply(const Var<T>& a, const Var<T>& b) {
    Var<T> y = empty<T>(kernels::broadcast_shape(Op::name, a.shape(), b.shape()));
    kernels::binary(Op::kernel, a.value(), b.value(), y.mutable_value());
    return record(op_def<Op, T>, std::move(y), {a, b});
}

// 1 where a wins, 1/2 at ties, 0 where b wins; `wins` is Binary::greater for maximum, and the same
// with the inputs swapped for minimum.
template <class T>
Var<T> winner_mask(const Var<T>& a, const Var<T>& b, std::string_view op) {
    Shape shape = kernels::broadcast_shape(op, a.shape(), b.shape());
    Var<T> wins = empty<T>(shape);
    Var<T> ties = empty<T>(shape);
    kernels::binary(Binary::greater, a.value(), b.value(), wins.mutable_value());
    kernels::binary(Binary::equal, a.value(), b.value(), ties.mutable_value());
    T* w = wins.mutable_value().data();
    const T* t = ties.value().data();
    for (std::size_t i = 0; i < wins.size(); ++i) {
        w[i] += T(0.5) * t[i];
    }
    return wins;
}

template <class T>
void note_ties(std::string_view op, const Var<T>& a, const Var<T>& b) {
    if (kink_log == nullptr) {
        return;
    }
    Var<T> wins = winner_mask(a, b, op);
    const T* w = wins.value().data();
    note_branches(op, wins.size(), [w](std::size_t i) { return static_cast<int>(w[i] * 2); });
}

struct Add {
    static constexpr std::string_view name = "add";
    static constexpr int arity = 2;
    static constexpr bool kink = false;
    static constexpr Binary kernel = Binary::add;
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy());
        g.add(1, g.dy());
    }
};

struct Sub {
    static constexpr std::string_view name = "sub";
    static constexpr int arity = 2;
    static constexpr bool kink = false;
    static constexpr Binary kernel = Binary::sub;
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy());
        if (g.needs(1)) {
            g.add(1, -g.dy());
        }
    }
};

struct Mul {
    static constexpr std::string_view name = "mul";
    static constexpr int arity = 2;
    static constexpr bool kink = false;
    static constexpr Binary kernel = Binary::mul;
    template <class T>
    static void backward(Grads<T>& g) {
        if (g.needs(0)) {
            g.add(0, g.dy() * g.in(1));
        }
        if (g.needs(1)) {
            g.add(1, g.dy() * g.in(0));
        }
    }
};

struct Div {
    static constexpr std::string_view name = "div";
    static constexpr int arity = 2;
    static constexpr bool kink = false;
    static constexpr Binary kernel = Binary::div;
    // d(a/b)/db = -a/b^2 = -y/b, from the saved output.
    template <class T>
    static void backward(Grads<T>& g) {
        if (g.needs(0)) {
            g.add(0, g.dy() / g.in(1));
        }
        if (g.needs(1)) {
            g.add(1, -(g.dy() * g.out() / g.in(1)));
        }
    }
};

struct Maximum {
    static constexpr std::string_view name = "maximum";
    static constexpr int arity = 2;
    static constexpr bool kink = true;
    static constexpr Binary kernel = Binary::maximum;
    // At a tie each input gets half of dy, as in PyTorch.
    template <class T>
    static void backward(Grads<T>& g) {
        Var<T> to_a = winner_mask(g.in(0), g.in(1), name);
        g.add(0, g.dy() * to_a);
        g.add(1, g.dy() * (T(1) - to_a));
    }
};

struct Minimum {
    static constexpr std::string_view name = "minimum";
    static constexpr int arity = 2;
    static constexpr bool kink = true;
    static constexpr Binary kernel = Binary::minimum;
    template <class T>
    static void backward(Grads<T>& g) {
        Var<T> to_a = winner_mask(g.in(1), g.in(0), name);
        g.add(0, g.dy() * to_a);
        g.add(1, g.dy() * (T(1) - to_a));
    }
};

struct Where {
    static constexpr std::string_view name = "where";
    static constexpr int arity = 3;
    static constexpr bool kink = false;
    // The mask (input 0) takes no gradient.
    template <class T>
    static void backward(Grads<T>& g) {
        Var<T> zero = Var<T>::scalar(T(0));
        if (g.needs(1)) {
            g.add(1, where(g.in(0), g.dy(), zero));
        }
        if (g.needs(2)) {
            g.add(2, where(g.in(0), zero, g.dy()));
        }
    }
};

constexpr OpInfo rows[] = {
    op_info<Add>("binary"),     op_info<Sub>("binary"),     op_info<Mul>("binary"), op_info<Div>("binary"),
    op_info<Maximum>("binary"), op_info<Minimum>("binary"), op_info<Where>("binary"),
};

}  // namespace

std::span<const OpInfo> binary_ops() { return rows; }

}  // namespace detail

template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
    return detail::apply<detail::Add>(a, b);
}

template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
    return detail::apply<detail::Sub>(a, b);
}

template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
    return detail::apply<detail::Mul>(a, b);
}

template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
    return detail::apply<detail::Div>(a, b);
}

template <class T>
Var<T> maximum(const Var<T>& a, const Var<T>& b) {
    detail::note_ties(detail::Maximum::name, a, b);
    return detail::apply<detail::Maximum>(a, b);
}

template <class T>
Var<T> minimum(const Var<T>& a, const Var<T>& b) {
    detail::note_ties(detail::Minimum::name, b, a);
    return detail::apply<detail::Minimum>(a, b);
}

template <class T>
Var<T> where(const Var<T>& mask, const Var<T>& a, const Var<T>& b) {
    std::string_view name = detail::Where::name;
    Shape shape = detail::kernels::broadcast_shape(name, detail::kernels::broadcast_shape(name, mask.shape(), a.shape()),
                                                   b.shape());
    Var<T> y = detail::empty<T>(shape);
    detail::kernels::where(mask.value(), a.value(), b.value(), y.mutable_value());
    return detail::record(detail::op_def<detail::Where, T>, std::move(y), {mask, a, b});
}

template <class T>
Var<T> greater(const Var<T>& a, const Var<T>& b) {
    Var<T> y = detail::empty<T>(detail::kernels::broadcast_shape("greater", a.shape(), b.shape()));
    detail::kernels::binary(detail::kernels::Binary::greater, a.value(), b.value(), y.mutable_value());
    return y;
}

#define TAPEGRAD_INSTANTIATE(T)                                              \
    template Var<T> add<T>(const Var<T>&, const Var<T>&);                    \
    template Var<T> sub<T>(const Var<T>&, const Var<T>&);                    \
    template Var<T> mul<T>(const Var<T>&, const Var<T>&);                    \
    template Var<T> div<T>(const Var<T>&, const Var<T>&);                    \
    template Var<T> maximum<T>(const Var<T>&, const Var<T>&);                \
    template Var<T> minimum<T>(const Var<T>&, const Var<T>&);                \
    template Var<T> where<T>(const Var<T>&, const Var<T>&, const Var<T>&);   \
    template Var<T> greater<T>(const Var<T>&, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
