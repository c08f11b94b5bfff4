// Linear: y = x W + b against loops, shapes and errors, seeding, and a gradient check.
#include "helpers.hpp"
#include "tapegrad/nn/linear.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

TEST_CASE_TEMPLATE("forward is x W + b", T, float, double) {
    Linear<T> layer(5, 3, {.init = Init::xavier_uniform, .seed = 3});
    Var<T> x(test::random_array<T>({4, 5}, 1));
    Array<T> y = layer(x).value();
    REQUIRE(y.shape() == Shape{4, 3});
    const Array<T>& w = layer.weight().value();
    const Array<T>& b = layer.bias().value();
    for (std::size_t i = 0; i < 4; ++i) {
        for (std::size_t j = 0; j < 3; ++j) {
            double want = b(j);
            for (std::size_t k = 0; k < 5; ++k) {
                want += double(x.value()(i, k)) * double(w(k, j));
            }
            CHECK(double(y(i, j)) == doctest::Approx(want).epsilon(test::tolerance<T>() * 10));
        }
    }
}

TEST_CASE("without bias; the input's shape is checked") {
    Linear<double> layer(4, 2, {.bias = false});
    CHECK_FALSE(layer.bias().defined());
    CHECK(layer.named_parameters().size() == 1);
    CHECK(layer.describe() == "Linear(4, 2, bias=false)");
    Var<double> wrong(test::random_array<double>({3, 5}, 1));
    CHECK_THROWS_WITH_AS(layer(wrong), "Linear(4, 2, bias=false): input has shape (3, 5), expected (batch, 4)",
                         ShapeError);
    Var<double> flat(test::random_array<double>({4}, 1));
    CHECK_THROWS_AS(layer(flat), ShapeError);
}

TEST_CASE("the same seed gives the same layer; a shared generator gives different layers") {
    Linear<float> a(8, 4, {.seed = 11});
    Linear<float> b(8, 4, {.seed = 11});
    Linear<float> c(8, 4, {.seed = 12});
    CHECK(a.weight().value() == b.weight().value());
    CHECK(a.bias().value() == b.bias().value());
    CHECK(a.weight().value() != c.weight().value());
    std::mt19937_64 rng(5);
    Linear<float> first(8, 4, rng);
    Linear<float> second(8, 4, rng);
    CHECK(first.weight().value() != second.weight().value());
}

TEST_CASE("gradcheck over weight and bias") {
    Linear<double> layer(5, 3, {.init = Init::xavier_normal, .seed = 1});
    Var<double> x(test::random_array<double>({6, 5}, 2));
    auto f = [&] { return test::weighted_sum(layer(x)); };
    std::vector<Var<double>> params = layer.parameters();
    GradcheckReport report = gradcheck(f, params);
    CHECK(report);
    CHECK(report.inputs[0].name == "weight");
    CHECK(report.inputs[1].name == "bias");
}
