// The gradient check itself: what it reports, that it catches wrong gradients (full and fast modes),
// that it tells a kink from a bug, and that it says what it will cost.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <xtensor/xsort.hpp>

#include "helpers.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using testing::FaultKind;
using testing::FaultScope;

namespace {

struct Model {
    Var<double> w = test::random_param<double>({4, 3}, 1, "encoder.0.weight");
    Var<double> b = test::random_param<double>({3}, 2, "encoder.0.bias");
    Var<double> x{test::random_array<double>({5, 4}, 3)};
    ScalarFunction loss() {
        return [this] { return test::weighted_sum(tanh(matmul(x, w) + b)); };
    }
    std::vector<Var<double>> params() { return {w, b}; }
};

}  // namespace

TEST_CASE("a correct gradient passes and the report names every input") {
    Model m;
    auto params = m.params();
    GradcheckReport report = gradcheck(m.loss(), params);
    CHECK(report);
    CHECK(report.check == "gradcheck");
    CHECK(report.evaluations == 1 + 2 * (12 + 3));
    REQUIRE(report.inputs.size() == 2);
    CHECK(report.inputs[0].name == "encoder.0.weight");
    CHECK(report.inputs[0].shape == Shape{4, 3});
    CHECK(report.inputs[0].checked == 12);
    CHECK(report.inputs[0].worst.size() == 2);
    CHECK(report["encoder.0.bias"].max_abs_error < 1e-8);
    std::string text = report.str();
    CHECK(text.rfind("gradcheck passed: 2 inputs", 0) == 0);
    CHECK(text.find("  encoder.0.weight (4, 3)  worst [") != std::string::npos);
    CHECK_THROWS_WITH_AS(report["decoder.0.weight"], "gradcheck: no input named \"decoder.0.weight\"", ValueError);
}

TEST_CASE("a wrong gradient fails, and the report names the input, its worst element and both values") {
    Model m;
    auto params = m.params();
    std::vector<Var<double>> exact = grad(m.loss()(), std::span<const Var<double>>(params));
    FaultScope fault({.op = "matmul", .kind = FaultKind::scale, .input = 1, .factor = 1.01});
    GradcheckReport report = gradcheck(m.loss(), params);
    CHECK_FALSE(report);
    const InputCheck& w = report["encoder.0.weight"];
    CHECK_FALSE(w.passed);
    CHECK(report["encoder.0.bias"].passed);
    // Scaled by 1.01, the element with the largest gradient is the worst one.
    std::size_t largest = xt::argmax(xt::abs(exact[0].value()))();
    CHECK(w.worst == std::vector<std::size_t>{largest / 3, largest % 3});
    CHECK(w.analytic == doctest::Approx(1.01 * exact[0].value().data()[largest]).epsilon(1e-9));
    CHECK(w.numeric == doctest::Approx(exact[0].value().data()[largest]).epsilon(1e-6));
    CHECK(w.max_rel_error == doctest::Approx(0.01 / 1.01).epsilon(1e-3));
    std::string text = report.str();
    CHECK(text.rfind("gradcheck failed: 1 of 2 inputs", 0) == 0);
    CHECK(text.find("FAILED (") != std::string::npos);
    // doctest prints the whole report when CHECK(report) fails.
    CHECK(std::string(doctest::toString(report).c_str()) == text);
}

TEST_CASE("fast mode checks random directions and still catches a wrong gradient") {
    Model m;
    auto params = m.params();
    GradcheckOptions fast{.fast = true, .directions = 3, .seed = 5};
    GradcheckReport ok = gradcheck(m.loss(), params, fast);
    CHECK(ok);
    CHECK(ok.fast);
    CHECK(ok.evaluations == 1 + 2 * 3 * 2);
    CHECK(ok.evaluations == gradcheck_cost(params, fast));
    FaultScope fault({.op = "add", .kind = FaultKind::scale, .input = 1, .factor = 1.01});
    GradcheckReport bad = gradcheck(m.loss(), params, fast);
    CHECK_FALSE(bad);
    CHECK(bad["encoder.0.weight"].passed);
    CHECK_FALSE(bad["encoder.0.bias"].passed);
    CHECK(bad.str().find("worst direction ") != std::string::npos);
}

TEST_CASE("a finite difference across a kink is reported as such, not as a wrong gradient") {
    auto check_kink = [](Var<double> x, ScalarFunction f, const std::string& op) {
        CAPTURE(op);
        GradcheckReport report = gradcheck(f, {x});
        CHECK(report);
        CHECK(report.inputs[0].kinks == 1);
        CHECK(report.inputs[0].kink_op == op);
        CHECK(report.str().find("straddle a kink of " + op) != std::string::npos);
    };
    // At the kink itself, or within eps of it, the central difference averages the two sides.
    Var<double> x = Var<double>::parameter(Array<double>{-1.0, 0.0, 2.0}, "x");
    check_kink(x, [&] { return sum(relu(x)); }, "relu");
    check_kink(x, [&] { return sum(leaky_relu(x, 0.2)); }, "leaky_relu");
    Var<double> near_zero = Var<double>::parameter(Array<double>{-1.0, 3e-7, 2.0}, "near_zero");
    check_kink(near_zero, [&] { return sum(abs(near_zero)); }, "abs");
    Var<double> y = Var<double>::parameter(Array<double>{-1.0, 0.5, 2.0}, "y");
    check_kink(y, [&] { return sum(clamp(y, -2.0, 0.5)); }, "clamp");
    Var<double> z = Var<double>::parameter(Array<double>{1.0, 3.0 + 1e-7}, "z");
    Var<double> other(Array<double>{0.0, 3.0});
    check_kink(z, [&] { return sum(maximum(z, other)); }, "maximum");
    check_kink(z, [&] { return sum(minimum(z, other)); }, "minimum");
}

TEST_CASE("where the subgradient is the average of the two sides, a kink passes as it is") {
    Var<double> x = Var<double>::parameter(Array<double>{-1.0, 0.0, 2.0}, "x");
    GradcheckReport report = gradcheck([&] { return sum(abs(x)); }, {x});  // sign(0) = 0 = (1 - 1) / 2
    CHECK(report);
    CHECK(report.inputs[0].kinks == 0);
    Var<double> tie(Array<double>{0.0, 0.0, 2.0});
    CHECK(gradcheck([&] { return sum(maximum(x, tie)); }, {x}));  // half of dy to each side
}

TEST_CASE("it says what it will cost before it starts") {
    Model m;
    auto params = m.params();
    std::ostringstream log;
    gradcheck(m.loss(), params, {.log = &log});
    CHECK(log.str() == "gradcheck: 2 inputs, 15 elements: 31 function evaluations\n");
}

TEST_CASE("the report as JSON") {
    Model m;
    auto params = m.params();
    GradcheckReport report = gradcheck(m.loss(), params);
    nlohmann::json j = nlohmann::json::parse(report.json());
    CHECK(j["check"] == "gradcheck");
    CHECK(j["passed"] == true);
    CHECK(j["atol"] == 1e-5);
    CHECK(j["inputs"][0]["name"] == "encoder.0.weight");
    CHECK(j["inputs"][0]["shape"] == nlohmann::json::array({4, 3}));
    CHECK(j["inputs"][1]["worst"].size() == 1);
    std::string path = (std::filesystem::temp_directory_path() / "tapegrad_gradcheck_test.json").string();
    report.write_json(path);
    std::ifstream in(path);
    CHECK(nlohmann::json::parse(in) == j);
    std::remove(path.c_str());
}

TEST_CASE("inputs restored, bad functions and inputs named") {
    Model m;
    auto params = m.params();
    Array<double> before = m.w.value();
    gradcheck(m.loss(), params);
    CHECK(m.w.value() == before);
    Var<double> c(test::random_array<double>({2}, 9));
    CHECK_THROWS_WITH_AS(gradcheck([&] { return sum(c); }, {c}), "gradcheck: input 0 (input 0) does not require grad",
                         ValueError);
    CHECK_THROWS_WITH_AS(gradcheck([&] { return tanh(m.w); }, {m.w}),
                         "gradcheck: the function must return a single value, got shape (4, 3)", ValueError);
}

TEST_CASE("gradgradcheck checks Hessian-vector products") {
    Model m;
    auto params = m.params();
    GradcheckReport report = gradgradcheck(m.loss(), params);
    CHECK(report);
    CHECK(report.check == "gradgradcheck");
    CHECK(report.str().rfind("gradgradcheck passed", 0) == 0);
    // A function whose gradient does not depend on the inputs has a zero Hessian: it passes too.
    Var<double> x = test::random_param<double>({3}, 4, "x");
    CHECK(gradgradcheck([&] { return sum(x * 3.0); }, {x}));
}

TEST_CASE("a loss that takes a gradient inside is checked too: finite differences then record") {
    // A contractive-style penalty: the squared norm of d(sum tanh(x w))/dx, through create_graph.
    Model m;
    auto penalty = [&] {
        Var<double> x = Var<double>::parameter(m.x.value(), "x");
        Var<double> y = sum(tanh(matmul(x, m.w)));
        std::vector<Var<double>> in = {x};
        Var<double> dx = grad(y, std::span<const Var<double>>(in), {.create_graph = true})[0];
        return sum(dx * dx);
    };
    std::vector<Var<double>> params = {m.w};
    GradcheckReport report = gradcheck(penalty, params);
    CHECK(report);
    CHECK(report.evaluations == gradcheck_cost(params) + 1);  // the one evaluation that found out
}

// The rule is atol + rtol * |numeric|, not atol alone: f = sum(10 x) has gradient 10 everywhere, and a
// backward scaled by 1 + d is off by 10 d, which rtol 1e-3 forgives up to d = 1e-3 and no further.
TEST_CASE("the relative tolerance counts: an error above atol passes within rtol of the value, and fails beyond") {
    Var<double> x = test::random_param<double>({3}, 5, "x");
    Var<double> ten(Array<double>({10.0, 10.0, 10.0}));
    auto f = [&] { return sum(x * ten); };
    auto params = std::vector<Var<double>>{x};
    {
        FaultScope fault({.op = "mul", .kind = FaultKind::scale, .input = 0, .factor = 1 + 5e-5});
        GradcheckReport within = gradcheck(f, params);  // off by 5e-4: above atol 1e-5, below 1e-5 + 1e-2
        CAPTURE(within.str());
        CHECK(within);
        CHECK(within["x"].max_abs_error > 1e-4);
        GradcheckReport atol_alone = gradcheck(f, params, {.rtol = 0});
        CHECK_FALSE(atol_alone);
    }
    {
        FaultScope fault({.op = "mul", .kind = FaultKind::scale, .input = 0, .factor = 1 + 2e-3});
        GradcheckReport beyond = gradcheck(f, params);  // off by 2e-2 > 1e-5 + 1e-2
        CHECK_FALSE(beyond);
        CHECK(beyond["x"].failed == 3);
    }
}

TEST_CASE("options that cannot check are refused, and a check of nothing never passes") {
    Model m;
    auto params = m.params();
    for (double eps : {0.0, -1e-6, std::nan(""), std::numeric_limits<double>::infinity()}) {
        CAPTURE(eps);
        CHECK_THROWS_AS(gradcheck(m.loss(), params, {.eps = eps}), ValueError);
    }
    CHECK_THROWS_WITH_AS(gradcheck(m.loss(), params, {.eps = 0}), "gradcheck: eps must be a finite number above 0, got 0",
                         ValueError);
    CHECK_THROWS_WITH_AS(gradcheck(m.loss(), params, {.atol = -1}),
                         "gradcheck: atol and rtol must be finite numbers from 0, got -1 and 0.001", ValueError);
    CHECK_THROWS_AS(gradcheck(m.loss(), params, {.rtol = -1e-3}), ValueError);
    CHECK_THROWS_WITH_AS(gradcheck(m.loss(), params, {.fast = true, .directions = 0}),
                         "gradcheck: fast mode needs at least 1 direction per input, got 0", ValueError);
    CHECK_THROWS_AS(gradgradcheck(m.loss(), params, {.eps = 0}), ValueError);

    GradcheckReport none = gradcheck(m.loss(), std::span<const Var<double>>());
    CHECK_FALSE(none);
    CHECK(none.checked == 0);
    CHECK(none.str().rfind("gradcheck failed: it checked nothing (0 inputs with no elements)", 0) == 0);
    Var<double> empty = Var<double>::parameter(xt::zeros<double>(Shape{0}), "empty");
    GradcheckReport nothing = gradcheck([&] { return sum(empty) + sum(m.w); }, {empty});
    CHECK_FALSE(nothing);
    CHECK(nothing.str().rfind("gradcheck failed: it checked nothing", 0) == 0);
    CHECK(nlohmann::json::parse(nothing.json())["passed"] == false);
}
