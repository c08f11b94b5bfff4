// Elementwise ops of two inputs, broadcasting by numpy's rules. Backward formulas send dy at the
// broadcast shape; Grads::add sums it back to each input's shape.
#include "../kernels.hpp"
#include "../op_impl.hpp"

namespace tapegrad {

namespace detail {
namespace {

using kernels::Binary;

// The forward of the arithmetic ops: the shape rule is numpy's broadcasting, the loop the kernel.
template <class Op>
struct Broadcasting {
    template <class T>
    static Shape shape(const Call<T>& c) {
        return kernels::broadcast_shape(Op::name, c.shape(0), c.shape(1));
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        kernels::binary(Op::kernel, c.value(0), c.value(1), out);
        if constexpr (Op::kink) {
            Op::note(c);
        }
    }
};

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

struct Add : Broadcasting<Add> {
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

struct Sub : Broadcasting<Sub> {
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

struct Mul : Broadcasting<Mul> {
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

struct Div : Broadcasting<Div> {
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

struct Maximum : Broadcasting<Maximum> {
    static constexpr std::string_view name = "maximum";
    static constexpr int arity = 2;
    static constexpr bool kink = true;
    static constexpr Binary kernel = Binary::maximum;
    template <class T>
    static void note(const Call<T>& c) {
        note_ties(name, c.in(0), c.in(1));
    }
    // At a tie each input gets half of dy, as in PyTorch.
    template <class T>
    static void backward(Grads<T>& g) {
        Var<T> to_a = winner_mask(g.in(0), g.in(1), name);
        g.add(0, g.dy() * to_a);
        g.add(1, g.dy() * (T(1) - to_a));
    }
};

struct Minimum : Broadcasting<Minimum> {
    static constexpr std::string_view name = "minimum";
    static constexpr int arity = 2;
    static constexpr bool kink = true;
    static constexpr Binary kernel = Binary::minimum;
    template <class T>
    static void note(const Call<T>& c) {
        note_ties(name, c.in(1), c.in(0));
    }
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
    template <class T>
    static Shape shape(const Call<T>& c) {
        return kernels::broadcast_shape(name, kernels::broadcast_shape(name, c.shape(0), c.shape(1)), c.shape(2));
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        kernels::where(c.value(0), c.value(1), c.value(2), out);
    }
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
    return apply<detail::Add>({a, b});
}

template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
    return apply<detail::Sub>({a, b});
}

template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
    return apply<detail::Mul>({a, b});
}

template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
    return apply<detail::Div>({a, b});
}

template <class T>
Var<T> maximum(const Var<T>& a, const Var<T>& b) {
    return apply<detail::Maximum>({a, b});
}

template <class T>
Var<T> minimum(const Var<T>& a, const Var<T>& b) {
    return apply<detail::Minimum>({a, b});
}

template <class T>
Var<T> where(const Var<T>& mask, const Var<T>& a, const Var<T>& b) {
    return apply<detail::Where>({mask, a, b});
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
