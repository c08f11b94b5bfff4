// Elementwise ops of one input. Each struct holds the op's name, forward and backward formula; backward
// formulas are written with ops, so create_graph records them and they differentiate again.
#include <fmt/format.h>

#include "../elementwise.hpp"
#include "../op_impl.hpp"

namespace tapegrad {

namespace detail {
namespace {

using kernels::map_batches;
using kernels::map_scalar;

// The ops below are written through the public op API (op.hpp), as a user's op is: forward on arrays
// into the output (the shape rule is the default, input 0's shape), backward in ops.
template <class T>
const T* in0(const Call<T>& c) {
    return c.value(0).data();
}

struct Neg {
    static constexpr std::string_view name = "neg";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        map_scalar(in0(c), out.data(), out.size(), [](T v) { return -v; });
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, -g.dy());
    }
};

struct Pow {
    static constexpr std::string_view name = "pow";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        double p = c.attrs().a;
        if (p == 2) {
            map_scalar(in0(c), out.data(), out.size(), [](T v) { return v * v; });
        } else if (p == 1) {
            map_scalar(in0(c), out.data(), out.size(), [](T v) { return v; });
        } else {
            map_scalar(in0(c), out.data(), out.size(), [tp = static_cast<T>(p)](T v) { return std::pow(v, tp); });
        }
    }
    // p x^(p-1), except that x^0 is a constant: its derivative is 0 everywhere, where the formula would
    // give 0 * x^-1, NaN at 0 (so would x^1's second derivative, through x^0). PyTorch gives 0 too.
    template <class T>
    static void backward(Grads<T>& g) {
        double p = g.attrs().a;
        if (p == 0) {
            g.add(0, full<T>(g.in(0).shape(), T(0)));
            return;
        }
        g.add(0, g.dy() * (static_cast<T>(p) * pow(g.in(0), p - 1)));
    }
};

struct Exp {
    static constexpr std::string_view name = "exp";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        map_batches(in0(c), out.data(), out.size(), [](auto v) { return xsimd::exp(v); });
    }
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
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        map_batches(in0(c), out.data(), out.size(), [](auto v) { return xsimd::log(v); });
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy() / g.in(0));
    }
};

struct Sqrt {
    static constexpr std::string_view name = "sqrt";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        map_batches(in0(c), out.data(), out.size(), [](auto v) { return xsimd::sqrt(v); });
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy() / (T(2) * g.out()));
    }
};

struct Abs {
    static constexpr std::string_view name = "abs";
    static constexpr int arity = 1;
    static constexpr bool kink = true;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        map_scalar(in0(c), out.data(), out.size(), [](T v) { return std::abs(v); });
        note_branches(name, out.size(), [x = in0(c)](std::size_t i) { return (x[i] > 0) - (x[i] < 0) + 1; });
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
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        map_scalar(in0(c), out.data(), out.size(), kernels::Relu{});
        note_branches(name, out.size(), [x = in0(c)](std::size_t i) { return x[i] > 0; });
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
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        T slope = static_cast<T>(c.attrs().a);
        map_scalar(in0(c), out.data(), out.size(), [slope](T v) { return v < 0 ? slope * v : v; });
        note_branches(name, out.size(), [x = in0(c)](std::size_t i) { return x[i] > 0; });
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
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        map_batches(in0(c), out.data(), out.size(), kernels::Sigmoid{});
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, sigmoid_backward(g.dy(), g.out()));
    }
};

struct Tanh {
    static constexpr std::string_view name = "tanh";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        map_batches(in0(c), out.data(), out.size(), kernels::Tanh{});
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, tanh_backward(g.dy(), g.out()));
    }
};

struct Softplus {
    static constexpr std::string_view name = "softplus";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        map_batches(in0(c), out.data(), out.size(), [](auto v) {
            return xsimd::max(v, decltype(v)(0)) + xsimd::log1p(xsimd::exp(-xsimd::abs(v)));
        });
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy() * sigmoid(g.in(0)));
    }
};

struct Clamp {
    static constexpr std::string_view name = "clamp";
    static constexpr int arity = 1;
    static constexpr bool kink = true;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        T lo = static_cast<T>(c.attrs().a);
        T hi = static_cast<T>(c.attrs().b);
        map_scalar(in0(c), out.data(), out.size(), [lo, hi](T v) { return v < lo ? lo : (v > hi ? hi : v); });
        note_branches(name, out.size(),
                      [x = in0(c), lo, hi](std::size_t i) { return x[i] < lo ? 0 : (x[i] > hi ? 2 : 1); });
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
    return apply<detail::Neg>({x});
}

template <class T>
Var<T> pow(const Var<T>& x, double exponent) {
    return apply<detail::Pow>({x}, {.a = exponent});
}

template <class T>
Var<T> exp(const Var<T>& x) {
    return apply<detail::Exp>({x});
}

template <class T>
Var<T> log(const Var<T>& x) {
    return apply<detail::Log>({x});
}

template <class T>
Var<T> sqrt(const Var<T>& x) {
    return apply<detail::Sqrt>({x});
}

template <class T>
Var<T> abs(const Var<T>& x) {
    return apply<detail::Abs>({x});
}

template <class T>
Var<T> relu(const Var<T>& x) {
    return apply<detail::Relu>({x});
}

template <class T>
Var<T> leaky_relu(const Var<T>& x, double slope) {
    return apply<detail::LeakyRelu>({x}, {.a = slope});
}

template <class T>
Var<T> sigmoid(const Var<T>& x) {
    return apply<detail::Sigmoid>({x});
}

template <class T>
Var<T> tanh(const Var<T>& x) {
    return apply<detail::Tanh>({x});
}

template <class T>
Var<T> softplus(const Var<T>& x) {
    return apply<detail::Softplus>({x});
}

template <class T>
Var<T> clamp(const Var<T>& x, double lo, double hi) {
    if (!(lo <= hi)) {
        detail::throw_value_error(fmt::format("clamp: lower bound {} is above upper bound {}", lo, hi));
    }
    return apply<detail::Clamp>({x}, {.a = lo, .b = hi});
}

template <class T>
Var<T> sign(const Var<T>& x) {
    Var<T> y = detail::empty<T>(x.shape());
    detail::kernels::map_scalar(x.value().data(), y.mutable_value().data(), x.size(),
                                [](T v) { return T((v > 0) - (v < 0)); });
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
