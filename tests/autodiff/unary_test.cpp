// Elementwise ops of one input: forward values against std:: functions evaluated in double, the
// numerical edge cases (saturation, NaN, kinks, bounds, log of 0), clamp's bound check, and backward
// with a random seed and twice. Gradient checks of every op live in op_table_test.cpp.
#include <cmath>
#include <functional>
#include <limits>

#include <xtensor/xmath.hpp>

#include "helpers.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using test::close_to;
using test::random_array;

namespace {

template <class T>
Array<double> map_ref(const Array<T>& x, const std::function<double(double)>& f) {
    Array<double> y = xt::empty<double>(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) {
        y.data()[i] = f(static_cast<double>(x.data()[i]));
    }
    return y;
}

double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }

template <class T>
struct UnaryCase {
    const char* name;
    double lo;
    double hi;
    std::function<Var<T>(const Var<T>&)> op;
    std::function<double(double)> ref;
};

template <class T>
std::vector<UnaryCase<T>> forward_cases() {
    using V = const Var<T>&;
    return {
        {"neg", -3, 3, [](V x) { return -x; }, [](double x) { return -x; }},
        {"pow 2", -2, 2, [](V x) { return pow(x, 2.0); }, [](double x) { return x * x; }},
        {"pow 3", -2, 2, [](V x) { return pow(x, 3.0); }, [](double x) { return x * x * x; }},
        {"pow 1", -2, 2, [](V x) { return pow(x, 1.0); }, [](double x) { return x; }},
        {"pow 2.5", 0.1, 3, [](V x) { return pow(x, 2.5); }, [](double x) { return std::pow(x, 2.5); }},
        {"pow -1.5", 0.5, 2, [](V x) { return pow(x, -1.5); }, [](double x) { return std::pow(x, -1.5); }},
        {"exp", -3, 3, [](V x) { return exp(x); }, [](double x) { return std::exp(x); }},
        {"log", 0.05, 5, [](V x) { return log(x); }, [](double x) { return std::log(x); }},
        {"sqrt", 0, 4, [](V x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }},
        {"abs", -3, 3, [](V x) { return abs(x); }, [](double x) { return std::abs(x); }},
        {"relu", -3, 3, [](V x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; }},
        {"leaky_relu 0.1", -3, 3, [](V x) { return leaky_relu(x, 0.1); }, [](double x) { return x > 0 ? x : 0.1 * x; }},
        {"sigmoid", -8, 8, [](V x) { return sigmoid(x); }, sigmoid_ref},
        {"tanh", -3, 3, [](V x) { return tanh(x); }, [](double x) { return std::tanh(x); }},
        {"softplus", -10, 10, [](V x) { return softplus(x); }, [](double x) { return std::log1p(std::exp(x)); }},
        {"clamp [-0.5, 0.75]", -2, 2, [](V x) { return clamp(x, -0.5, 0.75); },
         [](double x) { return std::min(std::max(x, -0.5), 0.75); }},
    };
}

}  // namespace

TEST_CASE_TEMPLATE("unary forward values match std:: functions evaluated in double", T, float, double) {
    Shape shape;
    SUBCASE("()") { shape = {}; }
    SUBCASE("(5,)") { shape = {5}; }
    SUBCASE("(3, 4)") { shape = {3, 4}; }
    SUBCASE("(2, 3, 2)") { shape = {2, 3, 2}; }
    SUBCASE("(37,): more than one SIMD batch and a tail") { shape = {37}; }
    CAPTURE(shape);
    std::uint64_t seed = 1;
    for (const UnaryCase<T>& c : forward_cases<T>()) {
        CAPTURE(c.name);
        Var<T> x(random_array<T>(shape, seed++, c.lo, c.hi));
        Var<T> y = c.op(x);
        CHECK(y.shape() == shape);
        CHECK(close_to<T>(y.value(), map_ref<T>(x.value(), c.ref), test::tolerance<T>()));
    }
}

TEST_CASE_TEMPLATE("softplus is finite and accurate far from 0, and so is its gradient", T, float, double) {
    Var<T> x = Var<T>::parameter(Array<T>{-100, -30, 0, 30, 100}, "x");
    Var<T> y = softplus(x);
    sum(y).backward();
    const Array<T>& v = y.value();
    const Array<T>& g = x.grad().value();
    double tol = test::tolerance<T>();
    for (std::size_t i = 0; i < 5; ++i) {
        CAPTURE(x.value()(i));
        CHECK(std::isfinite(v(i)));
        CHECK(std::isfinite(g(i)));
    }
    CHECK(v(4) == doctest::Approx(100).epsilon(tol));
    CHECK(v(3) == doctest::Approx(30 + std::exp(-30.0)).epsilon(tol));
    CHECK(v(2) == doctest::Approx(std::log(2.0)).epsilon(tol));
    // log(1 + e^x) ~ e^x for x << 0: checked relative to e^x, which an absolute tolerance would not see.
    CHECK(std::abs(v(1) - std::exp(-30.0)) <= tol * std::exp(-30.0));
    if constexpr (std::is_same_v<T, double>) {
        CHECK(std::abs(v(0) - std::exp(-100.0)) <= tol * std::exp(-100.0));
    } else {
        CHECK(v(0) >= 0);  // e^-100 is below float's normal range: 0 or a subnormal
        CHECK(v(0) <= 1e-40f);
    }
    // The gradient is sigmoid(x).
    CHECK(g(4) == doctest::Approx(1).epsilon(tol));
    CHECK(g(2) == doctest::Approx(0.5).epsilon(tol));
    CHECK(g(0) >= 0);
    CHECK(g(0) <= 1e-40);
}

TEST_CASE_TEMPLATE("sigmoid saturates to exactly 0 and 1 at +-100 with a finite gradient", T, float, double) {
    Var<T> x = Var<T>::parameter(Array<T>{-1000, -100, 100, 1000}, "x");
    Var<T> y = sigmoid(x);
    sum(y).backward();
    const Array<T>& v = y.value();
    const Array<T>& g = x.grad().value();
    for (std::size_t i = 0; i < 4; ++i) {
        CAPTURE(x.value()(i));
        CHECK(std::isfinite(v(i)));
        CHECK(std::isfinite(g(i)));
        CHECK(g(i) >= 0);
        CHECK(g(i) <= 1e-40);
    }
    CHECK(v(0) == 0);
    CHECK(v(1) <= 1e-40);
    CHECK(v(1) >= 0);
    CHECK(v(2) == 1);
    CHECK(v(3) == 1);
}

TEST_CASE_TEMPLATE("relu, leaky_relu and abs keep NaN a NaN", T, float, double) {
    T nan = std::numeric_limits<T>::quiet_NaN();
    Var<T> x(Array<T>{nan, -1, nan, 2});
    for (const Var<T>& y : {relu(x), leaky_relu(x, 0.1), abs(x)}) {
        CHECK(std::isnan(y.value()(0)));
        CHECK(std::isnan(y.value()(2)));
        CHECK(std::isfinite(y.value()(1)));
        CHECK(y.value()(3) == 2);
    }
}

TEST_CASE_TEMPLATE("the subgradient at exactly 0: 0 for relu and abs, the slope for leaky_relu", T, float, double) {
    Var<T> x = Var<T>::parameter(Array<T>{-1.5, 0, -0.0, 2}, "x");
    Array<T> dy = {0.3, 0.7, 1.1, 1.3};
    Var<T> seed(dy);

    backward(relu(x), seed);
    CHECK(close_to<T>(x.grad().value(), Array<double>{0, 0, 0, 1.3}, test::tolerance<T>()));
    x.zero_grad();

    backward(abs(x), seed);
    CHECK(close_to<T>(x.grad().value(), Array<double>{-0.3, 0, 0, 1.3}, test::tolerance<T>()));
    x.zero_grad();

    backward(leaky_relu(x, 0.25), seed);
    CHECK(close_to<T>(x.grad().value(), Array<double>{0.25 * 0.3, 0.25 * 0.7, 0.25 * 1.1, 1.3},
                      test::tolerance<T>()));

    CHECK(relu(x).value()(1) == 0);
    CHECK(abs(x).value()(2) == 0);
}

TEST_CASE_TEMPLATE("clamp: values stop at the bounds; the gradient is 1 at the bounds themselves, 0 outside", T,
                   float, double) {
    Var<T> x = Var<T>::parameter(Array<T>{-2, -0.5, 0.125, 0.75, 3}, "x");
    Var<T> seed(Array<T>{0.3, 0.7, 1.1, 1.3, 1.7});
    Var<T> y = clamp(x, -0.5, 0.75);
    CHECK(close_to<T>(y.value(), Array<double>{-0.5, -0.5, 0.125, 0.75, 0.75}, 0));
    backward(y, seed);
    CHECK(close_to<T>(x.grad().value(), Array<double>{0, 0.7, 1.1, 1.3, 0}, test::tolerance<T>()));

    SUBCASE("lo == hi is allowed: every value becomes the bound, the gradient passes only at it") {
        x.zero_grad();
        Var<T> z = clamp(x, 0.75, 0.75);
        CHECK(close_to<T>(z.value(), Array<double>{0.75, 0.75, 0.75, 0.75, 0.75}, 0));
        backward(z, seed);
        CHECK(close_to<T>(x.grad().value(), Array<double>{0, 0, 0, 1.3, 0}, test::tolerance<T>()));
    }
}

TEST_CASE_TEMPLATE("clamp rejects a lower bound above the upper bound, and NaN bounds", T, float, double) {
    Var<T> x(random_array<T>({3}, 1));
    CHECK_THROWS_WITH_AS(clamp(x, 1.0, -1.0), "clamp: lower bound 1 is above upper bound -1", ValueError);
    CHECK_THROWS_WITH_AS(clamp(x, 0.5, 0.25), "clamp: lower bound 0.5 is above upper bound 0.25", ValueError);
    CHECK_THROWS_WITH_AS(clamp(x, std::nan(""), 1.0), "clamp: lower bound nan is above upper bound 1", ValueError);
    CHECK_NOTHROW(clamp(x, -1.0, -1.0));
}

TEST_CASE_TEMPLATE("log of 0 is -inf and of a negative is NaN, without an exception when checking is off", T, float,
                   double) {
    REQUIRE_FALSE(check_numerics_enabled());
    Var<T> x = Var<T>::parameter(Array<T>{0, -1, 1}, "x");
    Var<T> y;
    REQUIRE_NOTHROW(y = log(x));
    CHECK(std::isinf(y.value()(0)));
    CHECK(y.value()(0) < 0);
    CHECK(std::isnan(y.value()(1)));
    CHECK(y.value()(2) == 0);
    // d log(x) / dx = 1 / x: +inf at 0 for a positive dy.
    REQUIRE_NOTHROW(backward(y, Var<T>(Array<T>{2, 3, 5})));
    CHECK(std::isinf(x.grad().value()(0)));
    CHECK(x.grad().value()(0) > 0);
    CHECK(x.grad().value()(1) == -3);
    CHECK(x.grad().value()(2) == 5);

    CheckNumerics on;
    CHECK_THROWS_WITH_AS(log(Var<T>::parameter(Array<T>{1, 0}, "x")),
                         "check: log produced -inf at [1] in its output (2,) from finite inputs: \"x\" (2,)",
                         NumericError);
}

TEST_CASE_TEMPLATE("unary backward with a random seed is the vector-Jacobian product, and accumulates", T, float,
                   double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    struct Vjp {
        const char* name;
        double lo;
        double hi;
        std::function<Var<T>(const Var<T>&)> op;
        std::function<double(double x, double y)> derivative;  // dy/dx from the input and the output
    };
    const Vjp cases[] = {
        {"tanh", -3, 3, [](const Var<T>& x) { return tanh(x); }, [](double, double y) { return 1 - y * y; }},
        {"sigmoid", -5, 5, [](const Var<T>& x) { return sigmoid(x); }, [](double, double y) { return y * (1 - y); }},
        {"softplus", -5, 5, [](const Var<T>& x) { return softplus(x); },
         [](double x, double) { return sigmoid_ref(x); }},
        {"log", 0.2, 3, [](const Var<T>& x) { return log(x); }, [](double x, double) { return 1 / x; }},
        {"pow 2.5", 0.2, 3, [](const Var<T>& x) { return pow(x, 2.5); },
         [](double x, double) { return 2.5 * std::pow(x, 1.5); }},
    };
    Shape shape = {3, 4};
    CAPTURE(shape);
    std::uint64_t s = 10;
    for (const Vjp& c : cases) {
        CAPTURE(c.name);
        Var<T> x = Var<T>::parameter(random_array<T>(shape, s++, c.lo, c.hi), "x");
        Var<T> seed(random_array<T>(shape, s++));
        Var<T> y = c.op(x);
        Array<double> expected = xt::empty<double>(shape);
        for (std::size_t i = 0; i < expected.size(); ++i) {
            double dy = seed.value().data()[i];
            expected.data()[i] = dy * c.derivative(x.value().data()[i], y.value().data()[i]);
        }
        backward(y, seed, {.retain_graph = true});
        CHECK(close_to<T>(x.grad().value(), expected, test::tolerance<T>()));
        backward(y, seed);
        CHECK(close_to<T>(x.grad().value(), 2.0 * expected, test::tolerance<T>()));
        x.zero_grad();
        CHECK_FALSE(x.grad().defined());
        backward(c.op(x), seed);
        CHECK(close_to<T>(x.grad().value(), expected, test::tolerance<T>()));
    }
}

// x^0 is the constant 1 and x^1 is x: at x = 0 the formula p x^(p-1) would meet 0 * inf (NaN) in the
// gradient of x^0 and in the second derivative of x^1 and x^0. PyTorch gives 0 for all three; so must we.
TEST_CASE_TEMPLATE("pow with exponent 0 or 1 has finite derivatives at 0: 0 and 1, second derivatives 0", T,
                   float, double) {
    for (double p : {0.0, 1.0}) {
        CAPTURE(p);
        Var<T> x = Var<T>::parameter(Array<T>{T(0), T(2), T(-3)}, "x");
        Var<T> y = sum(pow(x, p));
        std::vector<Var<T>> inputs{x};
        Var<T> dx = grad(y, std::span<const Var<T>>(inputs), {.create_graph = true})[0];
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(dx.value()(i) == T(p));
        }
        if (p == 0) {
            CHECK_FALSE(dx.requires_grad());  // a constant: its own derivative is 0, as in PyTorch
            continue;
        }
        Var<T> ddx = grad(sum(dx), std::span<const Var<T>>(inputs))[0];
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(ddx.value()(i) == T(0));
        }
    }
}
