// The tape: backward's semantics (accumulation, seeds, freeing, retain_graph, create_graph), the
// functional grad(), no_grad and detach, memory that stays bounded, and checking mode.
#include <xtensor/xmath.hpp>

#include "helpers.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using test::all_close;
using test::random_param;

TEST_CASE_TEMPLATE("backward gathers gradients into leaves and accumulates until zero_grad", T, float, double) {
    Var<T> x = random_param<T>({3, 4}, 1, "x");
    Array<T> twice_x = 2 * x.value();
    sum(x * x).backward();
    CHECK(all_close<T>(x.grad().value(), twice_x, test::tolerance<T>()));
    sum(x * x).backward();
    CHECK(all_close<T>(x.grad().value(), 2 * twice_x, test::tolerance<T>()));
    x.zero_grad();
    CHECK_FALSE(x.grad().defined());
    sum(x * x).backward();
    CHECK(all_close<T>(x.grad().value(), twice_x, test::tolerance<T>()));
}

TEST_CASE("a value used twice gets both contributions") {
    Var<double> x = random_param<double>({5}, 2, "x");
    Var<double> y = sum(x + x) + sum(x * x);
    y.backward();
    CHECK(all_close<double>(x.grad().value(), 2.0 + 2 * x.value(), 1e-12));
}

TEST_CASE("backward frees the graph: a second sweep is an error, retain_graph allows it") {
    Var<double> x = random_param<double>({3}, 3, "x");
    Var<double> y = sum(tanh(x));
    y.backward({.retain_graph = true});
    Array<double> once = x.grad().value();
    y.backward();
    CHECK(all_close<double>(x.grad().value(), 2 * once, 1e-12));
    CHECK_THROWS_WITH_AS(y.backward(),
                         "backward: the graph of this output was already swept and freed by an earlier backward; "
                         "pass {.retain_graph = true} to the first backward to sweep it twice",
                         GraphError);
    CHECK(tape_size<double>() == 0);
}

TEST_CASE("backward of one output leaves an unrelated graph on the tape intact") {
    Var<double> x = random_param<double>({4}, 4, "x");
    Var<double> y1 = sum(tanh(x));
    Var<double> y2 = sum(exp(x));
    y1.backward();
    y2.backward();
    Array<double> t = xt::tanh(x.value());
    CHECK(all_close<double>(x.grad().value(), 1.0 - t * t + xt::exp(x.value()), 1e-12));
}

TEST_CASE("a second backward through a shared, freed subgraph names the problem") {
    Var<double> x = random_param<double>({4}, 5, "x");
    Var<double> h = tanh(x);
    Var<double> y1 = sum(h);
    Var<double> y2 = sum(h * h);
    y1.backward();
    CHECK_THROWS_AS(y2.backward(), GraphError);
    CHECK_THROWS_WITH(y2.backward(), doctest::Contains("already swept and freed"));
}

TEST_CASE("backward needs a scalar output or a seed of its shape") {
    Var<double> x = random_param<double>({3, 4}, 6, "x");
    Var<double> y = tanh(x);
    CHECK_THROWS_WITH_AS(backward(y), "backward: the output has shape (3, 4); a non-scalar output needs a seed of its shape",
                         GraphError);
    Var<double> bad_seed(xt::ones<double>(Shape{4, 3}));
    CHECK_THROWS_WITH_AS(backward(y, bad_seed), "backward: seed shape (4, 3) differs from output shape (3, 4)",
                         ShapeError);
    Var<double> seed(test::random_array<double>({3, 4}, 7));
    backward(y, seed);
    Array<double> t = xt::tanh(x.value());
    CHECK(all_close<double>(x.grad().value(), seed.value() * (1.0 - t * t), 1e-12));
}

TEST_CASE("backward on a value that needs no gradient, or on an empty Var, is a clear error") {
    Var<double> c(test::random_array<double>({3}, 8));
    CHECK_THROWS_WITH_AS(sum(c).backward(),
                         "backward: the output does not require grad: no input of its graph requires grad, or it was "
                         "computed under no_grad",
                         GraphError);
    CHECK_THROWS_WITH_AS(backward(Var<double>()), "backward: the output is an empty Var",
                         GraphError);
}

TEST_CASE("no_grad records nothing; detach cuts the graph") {
    Var<double> x = random_param<double>({3}, 9, "x");
    std::size_t before = tape_size<double>();
    {
        NoGrad off;
        CHECK_FALSE(grad_enabled());
        Var<double> y = sum(tanh(x) * x);
        CHECK_FALSE(y.requires_grad());
        CHECK(tape_size<double>() == before);
    }
    CHECK(grad_enabled());
    Var<double> y = sum(x.detach() * x);
    y.backward();
    CHECK(all_close<double>(x.grad().value(), x.value(), 1e-12));  // d/dx of c * x with c = x held fixed
}

TEST_CASE("a forward-only loop keeps the tape bounded") {
    Var<double> x = random_param<double>({8}, 10, "x");
    std::size_t most = 0;
    for (int i = 0; i < 20000; ++i) {
        Var<double> y = sum(tanh(x) * x);
        most = std::max(most, tape_size<double>());
    }
    CHECK(most <= 8192);
    clear_tape<double>();
    CHECK(tape_size<double>() == 0);
}

TEST_CASE("a repeated step reuses the buffers of the step before") {
    Var<float> x = random_param<float>({64, 16}, 11, "x");
    auto step = [&] {
        Var<float> y = sum(tanh(x) * x);
        y.backward();
        x.zero_grad();
    };
    step();
    step();
    std::size_t pooled = testing::pooled_buffers<float>();
    for (int i = 0; i < 10; ++i) {
        step();
    }
    CHECK(testing::pooled_buffers<float>() == pooled);
}

TEST_CASE("gradients are whole when the pool hands out buffers full of NaN") {
    Var<double> x = random_param<double>({6, 5}, 12, "x");
    Var<double> w = random_param<double>({5, 3}, 13, "w");
    Var<double> b = random_param<double>({3}, 14, "b");
    auto loss = [&] { return mean(sigmoid(matmul(x, w) + b)) + sum(slice(concat({x, x}, 0), 0, 2, 9)); };
    loss().backward();  // fills the pool
    x.zero_grad();
    w.zero_grad();
    b.zero_grad();
    testing::poison_pool<double>();
    loss().backward();
    for (Var<double>* p : {&x, &w, &b}) {
        CAPTURE(p->name());
        CHECK(xt::all(xt::isfinite(p->grad().value())));
    }
}

TEST_CASE("grad returns gradients without touching .grad, zeros for unused inputs") {
    Var<double> x = random_param<double>({3}, 15, "x");
    Var<double> unused = random_param<double>({2}, 16, "unused");
    Var<double> h = tanh(x);
    Var<double> y = sum(h * h);
    std::vector<Var<double>> inputs = {x, unused, h};
    std::vector<Var<double>> g = grad(y, std::span<const Var<double>>(inputs));
    Array<double> t = xt::tanh(x.value());
    CHECK(all_close<double>(g[0].value(), 2.0 * t * (1.0 - t * t), 1e-12));
    CHECK(all_close<double>(g[1].value(), xt::zeros<double>(Shape{2}), 0));
    CHECK(all_close<double>(g[2].value(), 2.0 * t, 1e-12));
    CHECK_FALSE(x.grad().defined());
    Var<double> constant(test::random_array<double>({3}, 17));
    std::vector<Var<double>> bad = {constant};
    CHECK_THROWS_WITH_AS(grad(sum(x * constant), std::span<const Var<double>>(bad)),
                         "grad: input 0 does not require grad", GraphError);
}

TEST_CASE("create_graph: second derivatives and gradient penalties") {
    Var<double> x = random_param<double>({4}, 18, "x");
    SUBCASE("d2/dx2 of sum(x^3) is 6x") {
        Var<double> y = sum(pow(x, 3.0));
        std::vector<Var<double>> in = {x};
        Var<double> g = grad(y, std::span<const Var<double>>(in), {.create_graph = true})[0];
        CHECK(g.requires_grad());
        CHECK(all_close<double>(g.value(), 3.0 * x.value() * x.value(), 1e-12));
        sum(g).backward();
        CHECK(all_close<double>(x.grad().value(), 6.0 * x.value(), 1e-12));
    }
    SUBCASE("backward with create_graph leaves a differentiable .grad") {
        Var<double> y = sum(exp(x));
        y.backward({.create_graph = true});
        Var<double> g = x.grad();
        x.zero_grad();
        sum(g * g).backward();  // d/dx sum(exp(x)^2) = 2 exp(2x)
        CHECK(all_close<double>(x.grad().value(), 2.0 * xt::exp(2.0 * x.value()), 1e-12));
    }
}

TEST_CASE("checking mode names the first op that made NaN or Inf, and the bad input") {
    Var<double> x = Var<double>::parameter(Array<double>{1.0, 0.0, 2.0}, "x");
    SUBCASE("off by default") {
        CHECK_FALSE(check_numerics_enabled());
        CHECK(std::isinf(log(x).value()(1)));
    }
    SUBCASE("forward") {
        CheckNumerics on;
        CHECK_THROWS_WITH_AS(log(x), "check: log produced -inf at [1] in its output (3,) from finite inputs: \"x\" (3,)",
                             NumericError);
    }
    SUBCASE("a NaN planted in an input") {
        Var<double> w = Var<double>::parameter(Array<double>{{1.0, std::nan("")}, {3.0, 4.0}}, "encoder.0.weight");
        Var<double> a(Array<double>{{1.0, 2.0}});
        CheckNumerics on;
        CHECK_THROWS_WITH_AS(matmul(a, w),
                             "check: matmul: input 1 \"encoder.0.weight\" (2, 2) holds nan at [0, 1]; inputs: (1, 2), "
                             "\"encoder.0.weight\" (2, 2)",
                             NumericError);
    }
    SUBCASE("backward") {
        Var<double> y = sum(sqrt(x));  // finite forward; d sqrt / dx at 0 is inf
        CheckNumerics on;
        CHECK_THROWS_WITH_AS(y.backward(),
                             "check: backward of sqrt produced inf at [1] in the gradient of input 0 \"x\" (3,); inputs: \"x\" (3,)",
                             NumericError);
        CHECK_FALSE(x.grad().defined());  // nothing half-gathered
    }
}

TEST_CASE("dump_tape lists the live entries with their names and shapes") {
    clear_tape<double>();
    Var<double> x = random_param<double>({2, 3}, 19, "x");
    Var<double> y = sum(tanh(x));
    std::string dump = dump_tape<double>();
    CHECK(dump.find("tanh") != std::string::npos);
    CHECK(dump.find("\"x\" (2, 3)") != std::string::npos);
    CHECK(tape_size<double>() == 2);
}
