// The README's first program: an op of one's own, a two-layer model using it, the gradient, and the check
// of that gradient. With --break, the op's backward forgets a square on purpose, to show what the check
// then says: which parameters' gradients are wrong, and, from the tape audit, which op. The README shows
// this file from its #include on, and its output; a test compares both (tests/tools/readme_test.cpp).
#include <cstring>
#include <iostream>

#include <tapegrad/autodiff.hpp>
#include <xtensor/xmath.hpp>
using namespace tapegrad;

// softsign(x) = x / (1 + |x|), whose derivative is 1 / (1 + |x|)^2: the op, in one struct.
struct Softsign {
    static constexpr std::string_view name = "softsign";
    static constexpr int arity = 1;
    static inline bool broken = false;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        out = c.value(0) / (T(1) + xt::abs(c.value(0)));
    }
    template <class T>
    static void backward(Grads<T>& g) {
        Var<T> d = T(1) + abs(g.in(0));
        g.add(0, broken ? g.dy() / d : g.dy() / (d * d));
    }
};
template <class T>
Var<T> softsign(const Var<T>& x) {
    return apply<Softsign>({x});
}

int main(int argc, char** argv) {
    Softsign::broken = argc > 1 && std::strcmp(argv[1], "--break") == 0;
    auto param = [](Shape shape, double v, const char* name) {
        return Var<double>::parameter(Array<double>(shape, v), name);
    };
    Var<double> w1 = param({4, 3}, 0.1, "encoder.0.weight"), b1 = param({3}, 0.2, "encoder.0.bias");
    Var<double> w2 = param({3, 4}, -0.3, "decoder.0.weight"), b2 = param({4}, 0.0, "decoder.0.bias");
    Var<double> x(Array<double>{{0.1, 0.9, 0.3, 0.5}, {0.7, 0.2, 0.8, 0.4}, {0.6, 0.6, 0.1, 0.9},
                                {0.2, 0.4, 0.5, 0.3}, {0.9, 0.1, 0.7, 0.8}});  // a constant (5, 4)
    auto loss = [&] { return mean_squared_error(linear(softsign(linear(x, w1, b1)), w2, b2), x); };

    loss().backward();  // w1.grad(), b1.grad(), w2.grad(), b2.grad()

    GradcheckReport report = gradcheck(loss, {w1, b1, w2, b2});  // central differences, in double
    std::cout << report;  // when it fails, with the audit of the tape: which op is wrong
    return report.passed ? 0 : 1;
}
