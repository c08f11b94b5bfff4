// The tape audit: every op of the table, placed inside a graph of several layers (each input made by a
// matmul from a parameter, the output reduced by further ops), passes the audit; with its backward broken
// on purpose the audit names that op, and only entries of that op, as the first entry that disagrees. The
// same for ops defined outside the library through the public op API (op.hpp).
#include <functional>
#include <map>
#include <sstream>

#include <xtensor/xbuilder.hpp>
#include <xtensor/xmath.hpp>

#include "helpers.hpp"
#include "op_specs.hpp"
#include "tapegrad/autodiff/audit.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using testing::FaultKind;
using testing::FaultScope;

// The op rows are the op table test's: same domains and shapes.
namespace {

using namespace op_specs;

const char* names[] = {"layer0.weight", "layer1.weight", "layer2.weight", "layer3.weight"};

// A graph around one op: input k = reshape(matmul(reshape(P_k, (1, n)), I_n), shape), the op, then the
// output weighted and summed (through matmul when the op is mul or sum). The identity keeps each input's
// values, and so the op's domain, exactly.
struct Graph {
    Vars params;
    std::vector<std::size_t> positions;  // of the parameters among the op's inputs
    std::function<Var<double>()> loss;
};

Graph build(const std::string& op, const Case& c) {
    Graph g;
    Vars inputs_made;
    std::vector<std::function<Var<double>()>> makers;
    for (std::size_t k = 0; k < c.inputs.size(); ++k) {
        Array<double> value = sample(c.inputs[k], 1000 + k);
        if (c.inputs[k].mask) {
            Var<double> mask(std::move(value));
            makers.push_back([mask] { return mask; });
            continue;
        }
        Var<double> p = Var<double>::parameter(std::move(value), names[k]);
        g.params.push_back(p);
        g.positions.push_back(k);
        Shape shape = c.inputs[k].shape;
        std::size_t n = p.size();
        Var<double> identity(Array<double>(xt::eye<double>(n)));
        makers.push_back([p, identity, shape, n] {
            return reshape(matmul(reshape(p, Shape{1, n}), identity), shape);
        });
    }
    bool avoid_mul_sum = op == "mul" || op == "sum";
    auto apply = c.apply;
    g.loss = [makers, apply, avoid_mul_sum] {
        Vars in;
        for (const auto& make : makers) {
            in.push_back(make());
        }
        Var<double> y = apply(in);
        Var<double> r(test::random_array<double>(y.shape(), 77, 0.5, 1.5));
        if (!avoid_mul_sum) {
            return sum(y * r);
        }
        return reshape(matmul(reshape(y, Shape{1, y.size()}), reshape(r, Shape{y.size(), 1})), Shape{});
    };
    return g;
}

}  // namespace

TEST_CASE("the audit passes every op of the table inside a graph of several layers") {
    for (const auto& [op, cases] : specs()) {
        for (const Case& c : cases) {
            CAPTURE(op);
            CAPTURE(c.label);
            Graph g = build(op, c);
            Var<double> loss = g.loss();
            std::size_t cost = audit_cost(loss, g.params);
            AuditReport report = audit(loss, g.params);
            CHECK(report.passed);
            CHECK(report.evaluations == cost);
            CHECK(report.checked > 0);
            // The op itself is among the entries checked, with the layers around it.
            CHECK(std::count_if(report.entries.begin(), report.entries.end(),
                                [&](const AuditEntry& e) { return e.op == op; }) >= 1);
            CHECK(report.entries.size() >= 4);
            clear_tape<double>();
        }
    }
}

TEST_CASE("with one op's backward scaled by 1.01, the audit names that op first, and no other op") {
    std::size_t tried = 0;
    for (const auto& [op, cases] : specs()) {
        for (const Case& c : cases) {
            Graph g = build(op, c);
            std::vector<Var<double>> exact = grad(g.loss(), std::span<const Var<double>>(g.params));
            for (std::size_t d = 0; d < g.params.size(); ++d) {
                CAPTURE(op);
                CAPTURE(c.label);
                CAPTURE(d);
                if (xt::amax(xt::abs(exact[d].value()))() == 0) {
                    continue;  // a zero gradient scaled is still zero (clamp or relu on its flat side)
                }
                FaultScope fault({.op = op, .kind = FaultKind::scale, .input = g.positions[d], .factor = 1.01});
                Var<double> loss = g.loss();
                AuditReport report = audit(loss, g.params);
                CHECK_FALSE(report.passed);
                const AuditEntry* first = report.first_failure();
                REQUIRE(first != nullptr);
                CHECK(first->op == op);
                for (const AuditEntry& e : report.entries) {
                    if (!e.passed) {
                        CHECK(e.op == op);
                    }
                }
                // The input that was broken is the one called wrong.
                bool named = std::any_of(first->inputs.begin(), first->inputs.end(), [&](const AuditInput& in) {
                    return !in.passed && in.k == g.positions[d];
                });
                CHECK(named);
                CHECK(report.str().find("first wrong: #" + std::to_string(first->position) + " " + op) !=
                      std::string::npos);
                clear_tape<double>();
                ++tried;
            }
        }
    }
    CHECK(tried >= 80);
}

namespace {

// Ops written outside the library, as a user writes them: x^3, right and wrong.
struct Cube {
    static constexpr std::string_view name = "cube";
    static constexpr int arity = 1;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        out = c.value(0) * c.value(0) * c.value(0);
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy() * T(3) * g.in(0) * g.in(0));
    }
};

struct WrongCube : Cube {
    static constexpr std::string_view name = "wrong_cube";
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy() * T(2) * g.in(0) * g.in(0));  // the 3 of the power rule written as 2
    }
};

template <class Op>
Var<double> two_layers(const Var<double>& w1, const Var<double>& b1, const Var<double>& w2, const Var<double>& b2) {
    Var<double> x(test::random_array<double>({5, 3}, 3, -1, 1));
    Var<double> h = apply<Op>({linear(x, w1, b1, Activation::tanh)});
    return mean_squared_error(linear(h, w2, b2), x);
}

}  // namespace

TEST_CASE("a user-defined op: the audit passes it when right, and names it when its backward is wrong") {
    Var<double> w1 = Var<double>::parameter(test::random_array<double>({3, 4}, 1, -1, 1), "encoder.0.weight");
    Var<double> b1 = Var<double>::parameter(test::random_array<double>({4}, 2, -1, 1), "encoder.0.bias");
    Var<double> w2 = Var<double>::parameter(test::random_array<double>({4, 3}, 4, -1, 1), "decoder.0.weight");
    Var<double> b2 = Var<double>::parameter(test::random_array<double>({3}, 5, -1, 1), "decoder.0.bias");
    std::vector<Var<double>> params{w1, b1, w2, b2};
    auto f_right = [&] { return two_layers<Cube>(w1, b1, w2, b2); };
    CHECK(gradcheck(f_right, params));
    AuditReport right = audit(f_right(), params);
    CHECK(right.passed);
    CHECK(right.entries.size() == 4);  // linear_activation, cube, linear, mean_squared_error

    auto f_wrong = [&] { return two_layers<WrongCube>(w1, b1, w2, b2); };
    CHECK_FALSE(gradcheck(f_wrong, params, {.audit_on_failure = false}));
    AuditReport wrong = audit(f_wrong(), params);
    CHECK_FALSE(wrong.passed);
    REQUIRE(wrong.first_failure() != nullptr);
    CHECK(wrong.first_failure()->op == "wrong_cube");
    CHECK(wrong.first_failure()->position == 1);
    const AuditInput& in = wrong.first_failure()->inputs.at(0);
    CHECK(in.source == "\"encoder.0.bias\", \"encoder.0.weight\"");
    CHECK(std::abs(in.analytic / in.numeric - 2.0 / 3.0) < 1e-6);  // 2 x^2 against 3 x^2
    std::string text = wrong.str();
    CHECK(text.find("first wrong: #1 wrong_cube -> (5, 4)") != std::string::npos);
    CHECK(text.find("input 0 (computed from \"encoder.0.bias\", \"encoder.0.weight\") (5, 4)  worst") !=
          std::string::npos);
    // The entries after it agree: only the op is wrong, not the layers it feeds.
    for (std::size_t i = 2; i < wrong.entries.size(); ++i) {
        CHECK(wrong.entries[i].passed);
    }
    CHECK(wrong.json().find("\"op\": \"wrong_cube\"") != std::string::npos);

    // And fault injection finds a user op by its name, as it finds the library's.
    FaultScope fault({.op = "cube", .kind = FaultKind::scale, .factor = 1.01});
    AuditReport broken = audit(f_right(), params);
    REQUIRE(broken.first_failure() != nullptr);
    CHECK(broken.first_failure()->op == "cube");
}

TEST_CASE("a gradcheck that fails audits the tape and says which op is wrong") {
    Var<double> w1 = Var<double>::parameter(test::random_array<double>({3, 4}, 1, -1, 1), "encoder.0.weight");
    Var<double> b1 = Var<double>::parameter(test::random_array<double>({4}, 2, -1, 1), "encoder.0.bias");
    Var<double> w2 = Var<double>::parameter(test::random_array<double>({4, 3}, 4, -1, 1), "decoder.0.weight");
    Var<double> b2 = Var<double>::parameter(test::random_array<double>({3}, 5, -1, 1), "decoder.0.bias");
    std::vector<Var<double>> params{w1, b1, w2, b2};
    GradcheckReport report = gradcheck([&] { return two_layers<WrongCube>(w1, b1, w2, b2); }, params);
    CHECK_FALSE(report.passed);
    REQUIRE(report.audit.has_value());
    CHECK(report.audit->first_failure()->op == "wrong_cube");
    CHECK(report.str().find("first wrong: #1 wrong_cube") != std::string::npos);
    // A check that passes does not audit.
    GradcheckReport fine = gradcheck([&] { return two_layers<Cube>(w1, b1, w2, b2); }, params);
    CHECK(fine.passed);
    CHECK_FALSE(fine.audit.has_value());
}

TEST_CASE("the audit refuses a loss that is not on the tape, and one that depends on no parameter") {
    Var<double> w = Var<double>::parameter(Array<double>{1.0, 2.0}, "w");
    Var<double> other = Var<double>::parameter(Array<double>{3.0}, "other");
    Var<double> loss = sum(w * w);
    CHECK_THROWS_WITH_AS(audit(loss, {other}), "audit: the loss depends on none of the parameters given", ValueError);
    backward(loss);
    CHECK_THROWS_AS(audit(loss, {w}), ValueError);
    CHECK_THROWS_AS(audit(w, {w}), ValueError);
}

namespace {

// A user op with a fused backward: the loop when nothing records, the formula in ops otherwise.
struct FusedCube : Cube {
    static constexpr std::string_view name = "fused_cube";
    static inline int fused_calls = 0;
    template <class T>
    static void fast_backward(Grads<T>& g) {
        ++fused_calls;
        Var<T> dx = g.dy().detach();
        const T* x = g.in(0).value().data();
        for (std::size_t i = 0; i < dx.size(); ++i) {
            dx.mutable_value().data()[i] *= T(3) * x[i] * x[i];
        }
        g.add(0, dx);
    }
};

}  // namespace

TEST_CASE("a user op's fast_backward runs when nothing records, its backward in ops under create_graph") {
    Var<double> x = Var<double>::parameter(Array<double>{0.5, -1.5, 2.0}, "x");
    std::vector<Var<double>> inputs{x};
    FusedCube::fused_calls = 0;
    Var<double> fast = grad(sum(apply<FusedCube>({x})), std::span<const Var<double>>(inputs))[0];
    CHECK(FusedCube::fused_calls == 1);
    Var<double> composed =
        grad(sum(apply<FusedCube>({x})), std::span<const Var<double>>(inputs), {.create_graph = true})[0];
    CHECK(FusedCube::fused_calls == 1);  // the formula in ops, recorded
    CHECK(composed.requires_grad());
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(fast.value()(i) == composed.value()(i));
        CHECK(fast.value()(i) == 3 * x.value()(i) * x.value()(i));
    }
    // And the second derivative through the recorded formula: 6 x.
    Var<double> second = grad(sum(composed), std::span<const Var<double>>(inputs))[0];
    CHECK(second.value()(1) == doctest::Approx(-9.0));
    CHECK(gradgradcheck([&] { return sum(apply<FusedCube>({x})); }, {x}));
    CHECK(audit(sum(apply<FusedCube>({x})), {x}).passed);
    clear_tape<double>();
}
