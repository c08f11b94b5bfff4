// Elementwise ops of one input. Each struct holds the op's name, forward kernel and backward formula;
// backward formulas are written with ops, so create_graph records them and they differentiate again.
#include <fmt/format.h>

#include "../kernels.hpp"
#include "../op.hpp"

namespace tapegrad {

namespace detail {
namespace {

using kernels::Unary;

template <class Op, class T>
Var<T> apply(const Var<T>& x, const Attrs& attrs = {}) {
    Var<T> y = empty<T>(x.shape());
    kernels::map(Op::kernel, x.value().data(), y.mutable_value().data(), x.size(), attrs.a, attrs.b);
    if constexpr (Op::kink) {
        const T* px = x.value().data();
        note_branches(Op::name, x.size(), [&](std::size_t i) { return Op::branch(px[i], attrs); });
    }
    return record(op_def<Op, T>, std::move(y), {x}, attrs);
}

struct Neg {
    static constexpr std::string_view name = "neg";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    static constexpr Unary kernel = Unary::neg;
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, -g.dy());
    }
};

struct Pow {
    static constexpr std::string_view name = "pow";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    static constexpr Unary kernel = Unary::pow;
    template <class T>
    static void backward(Grads<T>& g) {
        double p = g.attrs().a;
        g.add(0, g.dy() * (static_cast<T>(p) * pow(g.in(0), p - 1)));
    }
};

struct Exp {
    static constexpr std::string_view name = "exp";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    static constexpr Unary kernel = Unary::exp;
    // The output is the derivative: no second exp.
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy() * g.out());
    }
};

struct Log {
    static constexpr std::string_view name = "log";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    static constexpr Unary kernel = Unary::log;
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy() / g.in(0));
    }
};

struct Sqrt {
    static constexpr std::string_view name = "sqrt";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    static constexpr Unary kernel = Unary::sqrt;
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy() / (T(2) * g.out()));
    }
};

struct Abs {
    static constexpr std::string_view name = "abs";
    static constexpr int arity = 1;
    static constexpr bool kink = true;
    static constexpr Unary kernel = Unary::abs;
    template <class T>
    static int branch(T x, const Attrs&) {
        return (x > 0) - (x < 0) + 1;
    }
    // sign(0) = 0: the subgradient PyTorch uses.
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy() * sign(g.in(0)));
    }
};

struct Relu {
    static constexpr std::string_view name = "relu";
    static constexpr int arity = 1;
    static constexpr bool kink = true;
    static constexpr Unary kernel = Unary::relu;
    template <class T>
    static int branch(T x, const Attrs&) {
        return x > 0;
    }
    // NOTE: the gradient at exactly 0 is 0, PyTorch's choice.
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, relu_backward(g.dy(), g.in(0)));
    }
};

struct LeakyRelu {
    static constexpr std::string_view name = "leaky_relu";
    static constexpr int arity = 1;
    static constexpr bool kink = true;
    static constexpr Unary kernel = Unary::leaky_relu;
    template <class T>
    static int branch(T x, const Attrs&) {
        return x > 0;
    }
    template <class T>
    static void backward(Grads<T>& g) {
        T slope = static_cast<T>(g.attrs().a);
        Var<T> factor = mask_of(g.in(0), [](T v) { return v > 0; });
        T* f = factor.mutable_value().data();
        for (std::size_t i = 0; i < factor.size(); ++i) {
            f[i] = f[i] != 0 ? T(1) : slope;
        }
        g.add(0, g.dy() * factor);
    }
};

struct Sigmoid {
    static constexpr std::string_view name = "sigmoid";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    static constexpr Unary kernel = Unary::sigmoid;
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, sigmoid_backward(g.dy(), g.out()));
    }
};

struct Tanh {
    static constexpr std::string_view name = "tanh";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    static constexpr Unary kernel = Unary::tanh;
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, tanh_backward(g.dy(), g.out()));
    }
};

struct Softplus {
    static constexpr std::string_view name = "softplus";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    static constexpr Unary kernel = Unary::softplus;
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy() * sigmoid(g.in(0)));
    }
};

struct Clamp {
    static constexpr std::string_view name = "clamp";
    static constexpr int arity = 1;
    static constexpr bool kink = true;
    static constexpr Unary kernel = Unary::clamp;
    template <class T>
    static int branch(T x, const Attrs& attrs) {
        return x < attrs.a ? 0 : (x > attrs.b ? 2 : 1);
    }
    // The gradient passes at the bounds themselves (lo <= x <= hi), as in PyTorch's derivatives.yaml.
    template <class T>
    static void backward(Grads<T>& g) {
        T lo = static_cast<T>(g.attrs().a);
        T hi = static_cast<T>(g.attrs().b);
        g.add(0, g.dy() * mask_of(g.in(0), [lo, hi](T v) { return lo <= v && v <= hi; }));
    }
};

constexpr OpInfo rows[] = {
    op_info<Neg>("unary"),     op_info<Pow>("unary"),     op_info<Exp>("unary"),       op_info<Log>("unary"),
    op_info<Sqrt>("unary"),    op_info<Abs>("unary"),     op_info<Relu>("unary"),      op_info<LeakyRelu>("unary"),
    op_info<Sigmoid>("unary"), op_info<Tanh>("unary"),    op_info<Softplus>("unary"),  op_info<Clamp>("unary"),
};

}  // namespace

std::span<const OpInfo> unary_ops() { return rows; }

}  // namespace detail

template <class T>
Var<T> neg(const Var<T>& x) {
    return detail::apply<detail::Neg>(x);
}

template <class T>
Var<T> pow(const Var<T>& x, double exponent) {
    return detail::apply<detail::Pow>(x, {.a = exponent});
}

template <class T>
Var<T> exp(const Var<T>& x) {
    return detail::apply<detail::Exp>(x);
}

template <class T>
Var<T> log(const Var<T>& x) {
    return detail::apply<detail::Log>(x);
}

template <class T>
Var<T> sqrt(const Var<T>& x) {
    return detail::apply<detail::Sqrt>(x);
}

template <class T>
Var<T> abs(const Var<T>& x) {
    return detail::apply<detail::Abs>(x);
}

template <class T>
Var<T> relu(const Var<T>& x) {
    return detail::apply<detail::Relu>(x);
}

template <class T>
Var<T> leaky_relu(const Var<T>& x, double slope) {
    return detail::apply<detail::LeakyRelu>(x, {.a = slope});
}

template <class T>
Var<T> sigmoid(const Var<T>& x) {
    return detail::apply<detail::Sigmoid>(x);
}

template <class T>
Var<T> tanh(const Var<T>& x) {
    return detail::apply<detail::Tanh>(x);
}

template <class T>
Var<T> softplus(const Var<T>& x) {
    return detail::apply<detail::Softplus>(x);
}

template <class T>
Var<T> clamp(const Var<T>& x, double lo, double hi) {
    if (!(lo <= hi)) {
        detail::throw_value_error(fmt::format("clamp: lower bound {} is above upper bound {}", lo, hi));
    }
    return detail::apply<detail::Clamp>(x, {.a = lo, .b = hi});
}

template <class T>
Var<T> sign(const Var<T>& x) {
    Var<T> y = detail::empty<T>(x.shape());
    detail::kernels::map(detail::kernels::Unary::sign, x.value().data(), y.mutable_value().data(), x.size());
    return y;
}

#define TAPEGRAD_INSTANTIATE(T)                                  \
    template Var<T> neg<T>(const Var<T>&);                       \
    template Var<T> pow<T>(const Var<T>&, double);               \
    template Var<T> exp<T>(const Var<T>&);                       \
    template Var<T> log<T>(const Var<T>&);                       \
    template Var<T> sqrt<T>(const Var<T>&);                      \
    template Var<T> abs<T>(const Var<T>&);                       \
    template Var<T> relu<T>(const Var<T>&);                      \
    template Var<T> leaky_relu<T>(const Var<T>&, double);        \
    template Var<T> sigmoid<T>(const Var<T>&);                   \
    template Var<T> tanh<T>(const Var<T>&);                      \
    template Var<T> softplus<T>(const Var<T>&);                  \
    template Var<T> clamp<T>(const Var<T>&, double, double);     \
    template Var<T> sign<T>(const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
