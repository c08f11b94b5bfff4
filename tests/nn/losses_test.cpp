// Losses and penalties: values against hand computations, stability at the edges, and gradient checks
// (they have no backward of their own: the ops' formulas carry them).
#include <cmath>

#include <xtensor/xmath.hpp>

#include "helpers.hpp"
#include "tapegrad/nn/losses.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

TEST_CASE_TEMPLATE("mse and mse per sample", T, float, double) {
    Var<T> p(Array<T>{{1, 2, 3}, {0, 0, 0}});
    Var<T> t(Array<T>{{1, 0, 0}, {1, 1, 1}});
    CHECK(mse(p, t).item() == doctest::Approx((0 + 4 + 9 + 1 + 1 + 1) / 6.0));
    Array<T> per = mse_per_sample(p, t).value();
    REQUIRE(per.shape() == Shape{2});
    CHECK(per(0) == doctest::Approx(13.0 / 3));
    CHECK(per(1) == doctest::Approx(1.0));
    Var<T> other(Array<T>{{1, 2}});
    CHECK_THROWS_WITH_AS(mse(p, other), "mse: prediction has shape (2, 3), target (1, 2)", ShapeError);
}

TEST_CASE_TEMPLATE("binary cross-entropy on probabilities and on logits", T, float, double) {
    Array<T> z = test::random_array<T>({4, 3}, 1, -4, 4);
    Array<T> t = test::random_array<T>({4, 3}, 2, 0, 1);
    double want = 0;
    for (std::size_t i = 0; i < z.size(); ++i) {
        double p = 1 / (1 + std::exp(-double(z.data()[i])));
        want -= t.data()[i] * std::log(p) + (1 - t.data()[i]) * std::log(1 - p);
    }
    want /= double(z.size());
    Var<T> logits(z);
    Var<T> target(t);
    CHECK(binary_cross_entropy(sigmoid(logits), target).item() == doctest::Approx(want).epsilon(1e-5));
    CHECK(binary_cross_entropy_with_logits(logits, target).item() == doctest::Approx(want).epsilon(1e-5));
}

TEST_CASE("cross-entropy stays finite at the edges") {
    Var<float> p(Array<float>{0.0f, 1.0f});
    Var<float> t(Array<float>{1.0f, 0.0f});
    CHECK(binary_cross_entropy(p, t).item() == doctest::Approx(100.0));  // each log bounded by -100
    Var<float> z = Var<float>::parameter(Array<float>{-1000.0f, 1000.0f}, "z");
    Var<float> loss = binary_cross_entropy_with_logits(z, t);
    CHECK(loss.item() == doctest::Approx(1000.0));
    loss.backward();
    CHECK(xt::all(xt::isfinite(z.grad().value())));
}

TEST_CASE("KL divergence of Bernoulli means, with the clamp") {
    double rho = 0.05;
    Array<double> q{0.01, 0.05, 0.3, 0.9};
    double want = 0;
    for (double v : q) {
        want += rho * std::log(rho / v) + (1 - rho) * std::log((1 - rho) / (1 - v));
    }
    CHECK(kl_bernoulli(rho, Var<double>(q)).item() == doctest::Approx(want).epsilon(1e-12));
    CHECK(kl_bernoulli(rho, Var<double>(Array<double>{rho})).item() == doctest::Approx(0).epsilon(1e-15));
    // At 0 and 1 the KL is infinite; the clamp keeps it finite.
    double at_zero = kl_bernoulli(rho, Var<double>(Array<double>{0.0}), 1e-6).item();
    CHECK(std::isfinite(at_zero));
    CHECK(at_zero == doctest::Approx(rho * std::log(rho / 1e-6) + (1 - rho) * std::log((1 - rho) / (1 - 1e-6))));
    CHECK_THROWS_WITH_AS(kl_bernoulli(1.0, Var<double>(q)), "kl_bernoulli: target sparsity 1 outside (0, 1)",
                         ValueError);
}

TEST_CASE("penalties over chosen parameters") {
    Var<double> w = Var<double>::parameter(Array<double>{{1, -2}, {3, 0}}, "encoder.0.weight");
    Var<double> b = Var<double>::parameter(Array<double>{-5}, "encoder.0.bias");
    ParameterList<double> params = {{"encoder.0.weight", w}, {"encoder.0.bias", b}};
    std::vector<Var<double>> weights = weights_of(params);
    REQUIRE(weights.size() == 1);
    CHECK(l1_penalty<double>(weights).item() == 6);
    CHECK(l2_penalty<double>(weights).item() == 14);
    std::vector<Var<double>> all = {w, b};
    CHECK(l2_penalty<double>(all).item() == 39);
}

TEST_CASE("gradcheck of every loss") {
    Var<double> p = test::random_param<double>({4, 3}, 3, "prediction", 0.1, 0.9);
    Var<double> z = test::random_param<double>({4, 3}, 4, "logits", -3, 3);
    Var<double> t = test::random_param<double>({4, 3}, 5, "target", 0, 1);
    Var<double> q = test::random_param<double>({6}, 6, "rho_hat", 0.01, 0.5);
    Var<double> w = test::random_param<double>({3, 2}, 7, "weight", -1, 1, 0.1);
    CHECK(gradcheck([&] { return mse(p, t); }, {p, t}));
    CHECK(gradcheck([&] { return test::weighted_sum(mse_per_sample(p, t)); }, {p, t}));
    CHECK(gradcheck([&] { return binary_cross_entropy(p, t); }, {p, t}));
    CHECK(gradcheck([&] { return binary_cross_entropy_with_logits(z, t); }, {z, t}));
    CHECK(gradcheck([&] { return kl_bernoulli(0.05, q); }, {q}));
    std::vector<Var<double>> ws = {w};
    CHECK(gradcheck([&] { return l1_penalty<double>(ws) + l2_penalty<double>(ws); }, {w}));
    CHECK(gradgradcheck([&] { return binary_cross_entropy_with_logits(z, t) + kl_bernoulli(0.05, q); }, {z, q}));
}
