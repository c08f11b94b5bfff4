// Matrix product through BLAS. The op carries transpose flags (attrs p for A, q for B) so that its
// backward formulas, which need A^T and B^T, read them in place instead of copying.
#include <fmt/format.h>

#include "../gemm.hpp"
#include "../kernels.hpp"
#include "../op_impl.hpp"

namespace tapegrad {

namespace detail {
namespace {

std::optional<kernels::Unary> kernel_of(Activation act) {
    switch (act) {
    case Activation::relu: return kernels::Unary::relu;
    case Activation::sigmoid: return kernels::Unary::sigmoid;
    case Activation::tanh: return kernels::Unary::tanh;
    case Activation::identity: break;
    }
    return std::nullopt;
}

// The shape rule and forward of linear and linear_activation: y = act(x op(W) + b), attr p = W transposed.
template <class T>
Shape affine_shape(const Call<T>& c) {
    bool tw = c.attrs().p;
    std::string_view op = tw ? "linear_transposed" : "linear";
    std::string_view wt = tw ? "^T" : "";
    const Var<T>& x = c.in(0);
    const Var<T>& w = c.in(1);
    const Var<T>& b = c.in(2);
    if (x.ndim() != 2 || w.ndim() != 2 || b.ndim() != 1) {
        throw_shape_error(fmt::format("{}: needs a 2-D input and weight and a 1-D bias: {} x {}{} + {}", op,
                                      to_string(x.shape()), to_string(w.shape()), wt, to_string(b.shape())));
    }
    std::size_t k = x.shape()[1];
    std::size_t n = w.shape()[tw ? 0 : 1];
    if (w.shape()[tw ? 1 : 0] != k || b.shape()[0] != n) {
        throw_shape_error(fmt::format("{}: shapes do not fit: {} x {}{} + {}", op, to_string(x.shape()),
                                      to_string(w.shape()), wt, to_string(b.shape())));
    }
    return Shape{x.shape()[0], n};
}

template <class T>
void affine_forward(const Call<T>& c, Array<T>& y, Activation act) {
    bool tw = c.attrs().p;
    const Array<T>& w = c.value(1);
    std::size_t m = y.shape()[0];
    std::size_t n = y.shape()[1];
    std::size_t k = c.shape(0)[1];
    if (m > 0 && n > 0) {
        biased_gemm<T>(false, tw, m, n, k, c.value(0).data(), k, w.data(), w.shape()[1], c.value(2).data(), y.data(),
                       n, kernel_of(act));
    }
}

struct Matmul {
    static constexpr std::string_view name = "matmul";
    static constexpr int arity = 2;
    static constexpr bool kink = false;
    // Attrs: p = A read transposed, q = B read transposed.
    template <class T>
    static Shape shape(const Call<T>& c) {
        const Shape& a = c.shape(0);
        const Shape& b = c.shape(1);
        bool ta = c.attrs().p;
        bool tb = c.attrs().q;
        if (a.size() != 2 || b.size() != 2) {
            throw_shape_error(fmt::format("matmul: needs 2-D values: {} x {}", to_string(a), to_string(b)));
        }
        if (a[ta ? 0 : 1] != b[tb ? 1 : 0]) {
            throw_shape_error(fmt::format("matmul: inner dimensions differ: {}{} x {}{}", to_string(a), ta ? "^T" : "",
                                          to_string(b), tb ? "^T" : ""));
        }
        return Shape{a[ta ? 1 : 0], b[tb ? 0 : 1]};
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& y) {
        bool ta = c.attrs().p;
        bool tb = c.attrs().q;
        std::size_t m = y.shape()[0];
        std::size_t n = y.shape()[1];
        std::size_t k = c.shape(0)[ta ? 0 : 1];
        if (k == 0) {
            std::fill(y.begin(), y.end(), T(0));
        } else if (m > 0 && n > 0) {
            gemm<T>(ta, tb, m, n, k, T(1), c.value(0).data(), c.shape(0)[1], c.value(1).data(), c.shape(1)[1], T(0),
                    y.data(), n);
        }
    }
    // For C = op(A) op(B):
    //   dA = dy op(B)^T,   or (dy op(B)^T)^T = op(B) dy^T when A was read transposed;
    //   dB = op(A)^T dy,   or (op(A)^T dy)^T = dy^T op(A) when B was read transposed.
    template <class T>
    static void backward(Grads<T>& g) {
        bool ta = g.attrs().p;
        bool tb = g.attrs().q;
        const Var<T>& dy = g.dy();
        if (g.needs(0)) {
            ta ? g.add_matmul(0, g.in(1), dy, tb, true) : g.add_matmul(0, dy, g.in(1), false, !tb);
        }
        if (g.needs(1)) {
            tb ? g.add_matmul(1, dy, g.in(0), true, ta) : g.add_matmul(1, g.in(0), dy, !ta, false);
        }
    }
};

// y = x op(W) + b, b broadcast over the rows: a layer's affine map as one op; attr p says W is read
// transposed. The forward writes b into each row of y and lets the product add x op(W) onto it, one pass
// over y fewer than matmul then add; the backward is matmul's for x and W, and dy summed over the rows for
// b (Grads::add sums what was broadcast).
struct Linear {
    static constexpr std::string_view name = "linear";
    static constexpr int arity = 3;
    static constexpr bool kink = false;
    template <class T>
    static Shape shape(const Call<T>& c) {
        return affine_shape(c);
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& y) {
        affine_forward(c, y, Activation::identity);
    }
    template <class T>
    static void backward(Grads<T>& g) {
        backward(g, g.dy());
    }
    // With dy the gradient of x op(W) + b, however it was reached.
    template <class T>
    static void backward(Grads<T>& g, const Var<T>& dy) {
        bool tw = g.attrs().p;
        if (g.needs(0)) {
            g.add_matmul(0, dy, g.in(1), false, !tw);
        }
        if (g.needs(1)) {
            tw ? g.add_matmul(1, dy, g.in(0), true, false) : g.add_matmul(1, g.in(0), dy, true, false);
        }
        if (g.needs(2)) {
            g.add(2, dy);
        }
    }
};

// y = act(x op(W) + b) (attr i holds the Activation): Linear with the activation applied to each band of y
// in the product's own pass. The backward takes act' from y (relu's y > 0 is its input's x > 0), multiplies
// dy by it in one pass, and goes on as Linear's.
struct LinearActivation {
    static constexpr std::string_view name = "linear_activation";
    static constexpr int arity = 3;
    static constexpr bool kink = true;  // with relu
    template <class T>
    static Shape shape(const Call<T>& c) {
        return affine_shape(c);
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& y) {
        auto act = static_cast<Activation>(c.attrs().i);
        affine_forward(c, y, act);
        if (act == Activation::relu) {
            note_branches(name, y.size(), [py = y.data()](std::size_t i) { return py[i] > 0; });
        }
    }
    template <class T>
    static void backward(Grads<T>& g) {
        const Var<T>& y = g.out();
        const Var<T>& dy = g.dy();
        switch (static_cast<Activation>(g.attrs().i)) {
        case Activation::relu: return Linear::backward(g, relu_backward(dy, y));
        case Activation::sigmoid: return Linear::backward(g, sigmoid_backward(dy, y));
        case Activation::tanh: return Linear::backward(g, tanh_backward(dy, y));
        case Activation::identity: return Linear::backward(g, dy);
        }
    }
};

constexpr OpInfo rows[] = {op_info<Matmul>("matmul"), op_info<Linear>("matmul"),
                           op_info<LinearActivation>("matmul")};

}  // namespace

std::span<const OpInfo> matmul_ops() { return rows; }

template <class T>
Var<T> matmul_t(const Var<T>& a, const Var<T>& b, bool ta, bool tb) {
    return apply<Matmul>({a, b}, {.p = ta, .q = tb});
}

template Var<float> matmul_t<float>(const Var<float>&, const Var<float>&, bool, bool);
template Var<double> matmul_t<double>(const Var<double>&, const Var<double>&, bool, bool);

}  // namespace detail

template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
    return detail::matmul_t(a, b, false, false);
}

namespace {

template <class T>
Var<T> affine(const Var<T>& x, const Var<T>& w, const Var<T>& b, bool tw, Activation act = Activation::identity) {
    if (act == Activation::identity) {
        return apply<detail::Linear>({x, w, b}, {.p = tw});
    }
    return apply<detail::LinearActivation>({x, w, b}, {.i = static_cast<std::int64_t>(act), .p = tw});
}

}  // namespace

template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b) {
    return affine(x, w, b, false);
}

template <class T>
Var<T> linear_transposed(const Var<T>& x, const Var<T>& w, const Var<T>& b) {
    return affine(x, w, b, true);
}

template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b, Activation act) {
    return affine(x, w, b, false, act);
}

template <class T>
Var<T> linear_transposed(const Var<T>& x, const Var<T>& w, const Var<T>& b, Activation act) {
    return affine(x, w, b, true, act);
}

std::string_view to_string(Activation act) {
    switch (act) {
    case Activation::identity: return "identity";
    case Activation::relu: return "relu";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    }
    return "unknown";
}

template Var<float> matmul<float>(const Var<float>&, const Var<float>&);
template Var<double> matmul<double>(const Var<double>&, const Var<double>&);
template Var<float> linear<float>(const Var<float>&, const Var<float>&, const Var<float>&);
template Var<double> linear<double>(const Var<double>&, const Var<double>&, const Var<double>&);
template Var<float> linear_transposed<float>(const Var<float>&, const Var<float>&, const Var<float>&);
template Var<double> linear_transposed<double>(const Var<double>&, const Var<double>&, const Var<double>&);
template Var<float> linear<float>(const Var<float>&, const Var<float>&, const Var<float>&, Activation);
template Var<double> linear<double>(const Var<double>&, const Var<double>&, const Var<double>&, Activation);
template Var<float> linear_transposed<float>(const Var<float>&, const Var<float>&, const Var<float>&, Activation);
template Var<double> linear_transposed<double>(const Var<double>&, const Var<double>&, const Var<double>&,
                                               Activation);

}  // namespace tapegrad
