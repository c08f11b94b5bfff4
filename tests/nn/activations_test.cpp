// Activation modules, Identity, Dropout and make_activation.
#include <xtensor/xmath.hpp>

#include "helpers.hpp"
#include "tapegrad/nn/activations.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

TEST_CASE_TEMPLATE("each activation module applies its op", T, float, double) {
    Var<T> x(test::random_array<T>({4, 5}, 1, -3, 3));
    const Array<T>& v = x.value();
    CHECK(test::all_close<T>(ReLU<T>()(x).value(), xt::maximum(v, T(0)), 0));
    CHECK(test::all_close<T>(LeakyReLU<T>(0.2)(x).value(), xt::where(v > 0, v, T(0.2) * v), test::tolerance<T>()));
    CHECK(test::all_close<T>(Tanh<T>()(x).value(), xt::tanh(v), test::tolerance<T>()));
    CHECK(test::all_close<T>(Sigmoid<T>()(x).value(), 1 / (1 + xt::exp(-v)), test::tolerance<T>()));
    CHECK(test::all_close<T>(Softplus<T>()(x).value(), xt::log1p(xt::exp(v)), test::tolerance<T>()));
    CHECK(Identity<T>()(x).value() == v);
}

TEST_CASE("make_activation by name") {
    CHECK(make_activation<float>("tanh")->describe() == "Tanh");
    CHECK(make_activation<float>("leaky_relu")->describe() == "LeakyReLU(0.01)");
    CHECK_THROWS_WITH_AS(make_activation<float>("gelu"),
                         "activation: unknown \"gelu\" (known: identity, relu, leaky_relu, sigmoid, tanh, softplus)",
                         ValueError);
}

TEST_CASE("dropout: inverted, seeded, off in eval") {
    Var<double> x = Var<double>::parameter(xt::ones<double>(Shape{200, 50}), "x");
    Dropout<double> drop(0.3, 42);
    Var<double> y = drop(x);
    std::size_t zeros = 0;
    for (double v : y.value()) {
        CHECK((v == 0 || v == doctest::Approx(1 / 0.7)));
        zeros += v == 0;
    }
    // 10000 draws: the zeroed fraction is within 4 standard deviations (0.0046) of 0.3.
    CHECK(std::abs(double(zeros) / 10000 - 0.3) < 0.02);
    // The gradient goes through the kept elements, scaled as they are.
    sum(y).backward();
    CHECK(x.grad().value() == y.value());
    // A fresh mask each call; the same sequence for the same seed.
    Dropout<double> again(0.3, 42);
    CHECK(again(x).value() == y.value());
    CHECK(again(x).value() != y.value());
    drop.eval();
    CHECK(drop(x).value() == x.value());
    CHECK_THROWS_WITH_AS(Dropout<float>(1.0), "Dropout: probability 1 outside [0, 1)", ValueError);
}
