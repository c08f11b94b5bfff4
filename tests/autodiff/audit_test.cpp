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
#include "tapegrad/autodiff/audit.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using testing::FaultKind;
using testing::FaultScope;

// The op rows are the op table test's: same domains and shapes.
namespace {

using Vars = std::vector<Var<double>>;

struct Input {
    Shape shape;
    double lo = -1;
    double hi = 1;
    std::vector<double> avoid = {};  // points within 0.05 of which no value falls: kinks
    bool mask = false;               // a 0/1 mask that takes no gradient (where's first input)
};

struct Case {
    std::string label;
    std::vector<Input> inputs;
    std::function<Var<double>(const Vars&)> apply;
    int broadcast_input = -1;  // an input the op broadcasts: its reduction can be dropped
    bool swappable = false;    // inputs of one shape whose gradients differ: swapping them shows
};

Array<double> sample(const Input& in, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(in.lo, in.hi);
    Array<double> a = xt::empty<double>(in.shape);
    for (double& v : a) {
        if (in.mask) {
            v = u(rng) < (in.lo + in.hi) / 2 ? 0.0 : 1.0;
            continue;
        }
        auto near_kink = [&](double x) {
            return std::any_of(in.avoid.begin(), in.avoid.end(), [x](double k) { return std::abs(x - k) < 0.05; });
        };
        do {
            v = u(rng);
        } while (near_kink(v));
    }
    return a;
}

std::vector<Case> unary(std::function<Var<double>(const Var<double>&)> op, double lo = -2, double hi = 2,
                        std::vector<double> avoid = {}) {
    std::vector<Case> cases;
    for (Shape shape : {Shape{}, Shape{5}, Shape{3, 4}, Shape{2, 3, 2}}) {
        cases.push_back({to_string(shape), {{shape, lo, hi, avoid}}, [op](const Vars& v) { return op(v[0]); }});
    }
    return cases;
}

std::vector<Case> binary(std::function<Var<double>(const Var<double>&, const Var<double>&)> op, double lo = -2,
                         double hi = 2, double b_lo = -2, double b_hi = 2) {
    auto f = [op](const Vars& v) { return op(v[0], v[1]); };
    auto in = [&](Shape a, Shape b) { return std::vector<Input>{{a, lo, hi}, {b, b_lo, b_hi}}; };
    return {
        {"(3, 4) and (3, 4)", in({3, 4}, {3, 4}), f, -1, true},
        {"(3, 4) and (4,)", in({3, 4}, {4}), f, 1},
        {"(3, 1) and (1, 4)", in({3, 1}, {1, 4}), f, 0},
        {"() and (2, 3)", in({}, {2, 3}), f, 0},
        {"(2, 3, 4) and (3, 1)", in({2, 3, 4}, {3, 1}), f, 1},
        // Long enough, with a short period, for the tiled kernels.
        {"(40, 8) and (8,)", in({40, 8}, {8}), f, 1},
        {"(1, 3) and (100, 1, 3)", in({1, 3}, {100, 1, 3}), f, 0},
    };
}

const std::vector<std::size_t> gather_index = {2, 0, 2, 4};
const std::vector<std::size_t> gather_index_1d = {3, 3, 1};
const std::vector<std::size_t> scatter_index = {1, 3, 1};

std::map<std::string, std::vector<Case>> specs() {
    using V = const Var<double>&;
    std::map<std::string, std::vector<Case>> s;
    s["neg"] = unary([](V x) { return neg(x); });
    s["pow"] = unary([](V x) { return pow(x, 2.5); }, 0.5, 2);
    for (auto [p, lo] : {std::pair{3.0, -2.0}, {-1.5, 0.5}, {2.0, -2.0}}) {
        auto more = unary([p](V x) { return pow(x, p); }, lo, 2);
        s["pow"].insert(s["pow"].end(), more.begin() + 1, more.end());
    }
    s["exp"] = unary([](V x) { return exp(x); });
    s["log"] = unary([](V x) { return log(x); }, 0.3, 3);
    s["sqrt"] = unary([](V x) { return sqrt(x); }, 0.3, 3);
    s["abs"] = unary([](V x) { return abs(x); }, -2, 2, {0});
    s["relu"] = unary([](V x) { return relu(x); }, -2, 2, {0});
    s["leaky_relu"] = unary([](V x) { return leaky_relu(x, 0.1); }, -2, 2, {0});
    s["sigmoid"] = unary([](V x) { return sigmoid(x); }, -4, 4);
    s["tanh"] = unary([](V x) { return tanh(x); });
    s["softplus"] = unary([](V x) { return softplus(x); }, -6, 6);
    s["clamp"] = unary([](V x) { return clamp(x, -0.5, 0.7); }, -2, 2, {-0.5, 0.7});

    s["add"] = binary([](V a, V b) { return a + b; });
    s["sub"] = binary([](V a, V b) { return a - b; });
    s["mul"] = binary([](V a, V b) { return a * b; });
    s["div"] = binary([](V a, V b) { return a / b; }, -2, 2, 0.5, 2);
    s["maximum"] = binary([](V a, V b) { return maximum(a, b); });
    s["minimum"] = binary([](V a, V b) { return minimum(a, b); });
    // Both inputs from one value: each side wins somewhere.
    s["maximum"].push_back({"(3, 4) mixed winners", {{{3, 4}, -2, 2, {0}}},
                            [](const Vars& v) { return maximum(v[0], -v[0] * 0.5); }});
    s["minimum"].push_back({"(3, 4) mixed winners", {{{3, 4}, -2, 2, {0}}},
                            [](const Vars& v) { return minimum(v[0], -v[0] * 0.5); }});

    auto where3 = [](const Vars& v) { return where(v[0], v[1], v[2]); };
    s["where"] = {
        {"(3, 4) (3, 4) (3, 4)", {{{3, 4}, 0, 1, {}, true}, {{3, 4}}, {{3, 4}}}, where3},
        {"(3, 4) (3, 4) (4,)", {{{3, 4}, 0, 1, {}, true}, {{3, 4}}, {{4}}}, where3, 2},
        {"(3, 1) (1, 4) ()", {{{3, 1}, 0, 1, {}, true}, {{1, 4}}, {{}}}, where3, 1},
    };

    s["sum"] = {
        {"all (3, 4)", {{{3, 4}}}, [](const Vars& v) { return sum(v[0]); }},
        {"axis 0 (3, 4)", {{{3, 4}}}, [](const Vars& v) { return sum(v[0], 0); }},
        {"axis -1 keepdims (2, 3, 4)", {{{2, 3, 4}}}, [](const Vars& v) { return sum(v[0], -1, true); }},
        {"axis 1 (2, 3, 4)", {{{2, 3, 4}}}, [](const Vars& v) { return sum(v[0], 1); }},
    };
    s["mean_squared_error"] = {
        {"(3, 4) and (3, 4)", {{{3, 4}}, {{3, 4}}}, [](const Vars& v) { return mean_squared_error(v[0], v[1]); }},
        {"(5,) and (5,)", {{{5}}, {{5}}}, [](const Vars& v) { return mean_squared_error(v[0], v[1]); }, -1, true},
        {"(2, 3, 2) and (2, 3, 2)", {{{2, 3, 2}}, {{2, 3, 2}}},
         [](const Vars& v) { return mean_squared_error(v[0], v[1]); }},
    };
    s["sum_squares"] = {
        {"()", {{{}}}, [](const Vars& v) { return sum_squares(v[0]); }},
        {"(3, 4)", {{{3, 4}}}, [](const Vars& v) { return sum_squares(v[0]); }},
        {"(2, 3, 2)", {{{2, 3, 2}}}, [](const Vars& v) { return sum_squares(v[0]); }},
    };
    s["mean"] = {
        {"all (3, 4)", {{{3, 4}}}, [](const Vars& v) { return mean(v[0]); }},
        {"axis 0 (3, 4)", {{{3, 4}}}, [](const Vars& v) { return mean(v[0], 0); }},
        {"axis -1 keepdims (2, 3, 4)", {{{2, 3, 4}}}, [](const Vars& v) { return mean(v[0], -1, true); }},
    };
    s["sum_to"] = {
        {"(3, 4) to (4,)", {{{3, 4}}}, [](const Vars& v) { return sum_to(v[0], {4}); }},
        {"(3, 4) to (3, 1)", {{{3, 4}}}, [](const Vars& v) { return sum_to(v[0], {3, 1}); }},
        {"(2, 3, 4) to (1, 3, 1)", {{{2, 3, 4}}}, [](const Vars& v) { return sum_to(v[0], {1, 3, 1}); }},
        {"(70, 2, 3) to (2, 3)", {{{70, 2, 3}}}, [](const Vars& v) { return sum_to(v[0], {2, 3}); }},
    };
    s["broadcast_to"] = {
        {"(4,) to (3, 4)", {{{4}}}, [](const Vars& v) { return broadcast_to(v[0], {3, 4}); }, 0},
        {"(3, 1) to (3, 4)", {{{3, 1}}}, [](const Vars& v) { return broadcast_to(v[0], {3, 4}); }, 0},
        {"() to (2, 3)", {{{}}}, [](const Vars& v) { return broadcast_to(v[0], {2, 3}); }, 0},
    };
    s["reshape"] = {
        {"(3, 4) to (2, 6)", {{{3, 4}}}, [](const Vars& v) { return reshape(v[0], {2, 6}); }},
        {"(2, 3, 2) to (12,)", {{{2, 3, 2}}}, [](const Vars& v) { return reshape(v[0], {12}); }},
    };
    s["transpose"] = {
        {"(3, 5)", {{{3, 5}}}, [](const Vars& v) { return transpose(v[0]); }},
        {"(4, 4)", {{{4, 4}}}, [](const Vars& v) { return transpose(v[0]); }},
    };
    s["gather_rows"] = {
        {"(5, 3) rows 2 0 2 4", {{{5, 3}}}, [](const Vars& v) { return gather_rows<double>(v[0], gather_index); }},
        {"(4,) rows 3 3 1", {{{4}}}, [](const Vars& v) { return gather_rows<double>(v[0], gather_index_1d); }},
    };
    s["scatter_rows"] = {
        {"(3, 2) to 5 rows", {{{3, 2}}}, [](const Vars& v) { return scatter_rows<double>(v[0], scatter_index, 5); }},
    };
    s["slice"] = {
        {"(5, 4) axis 0 [1, 4)", {{{5, 4}}}, [](const Vars& v) { return slice(v[0], 0, 1, 4); }},
        {"(3, 6) axis 1 [2, 6)", {{{3, 6}}}, [](const Vars& v) { return slice(v[0], 1, 2, 6); }},
        {"(2, 5, 3) axis -2 [0, 2)", {{{2, 5, 3}}}, [](const Vars& v) { return slice(v[0], -2, 0, 2); }},
    };
    s["concat"] = {
        {"(2, 3) (4, 3) axis 0", {{{2, 3}}, {{4, 3}}}, [](const Vars& v) { return concat({v[0], v[1]}, 0); }},
        {"(3, 2) (3, 1) (3, 4) axis 1", {{{3, 2}}, {{3, 1}}, {{3, 4}}},
         [](const Vars& v) { return concat({v[0], v[1], v[2]}, 1); }},
    };
    s["matmul"] = {
        {"(3, 4) x (4, 5)", {{{3, 4}}, {{4, 5}}}, [](const Vars& v) { return matmul(v[0], v[1]); }},
        {"(1, 3) x (3, 2)", {{{1, 3}}, {{3, 2}}}, [](const Vars& v) { return matmul(v[0], v[1]); }},
        // Tiny inner and outer dimensions with a long one: the product's special kernels.
        {"(9, 2) x (2, 3)", {{{9, 2}}, {{2, 3}}}, [](const Vars& v) { return matmul(v[0], v[1]); }},
        {"(9, 1) x (1, 1)", {{{9, 1}}, {{1, 1}}}, [](const Vars& v) { return matmul(v[0], v[1]); }},
        {"(4, 4) x (4, 4)", {{{4, 4}}, {{4, 4}}}, [](const Vars& v) { return matmul(v[0], v[1]); }, -1, true},
    };
    s["linear"] = {
        {"(3, 4) x (4, 5) + (5,)", {{{3, 4}}, {{4, 5}}, {{5}}},
         [](const Vars& v) { return linear(v[0], v[1], v[2]); }, 2},
        // One row: the bias is not summed over anything, so no reduction to drop.
        {"(1, 3) x (3, 2) + (2,)", {{{1, 3}}, {{3, 2}}, {{2}}},
         [](const Vars& v) { return linear(v[0], v[1], v[2]); }},
        {"(9, 2) x (2, 3) + (3,)", {{{9, 2}}, {{2, 3}}, {{3}}},
         [](const Vars& v) { return linear(v[0], v[1], v[2]); }, 2},
        {"(4, 4) x (4, 4) + (4,)", {{{4, 4}}, {{4, 4}}, {{4}}},
         [](const Vars& v) { return linear(v[0], v[1], v[2]); }, 2, true},
        // Transposed, as a tied decoder reads the encoder's weight.
        {"(3, 4) x (5, 4)^T + (5,)", {{{3, 4}}, {{5, 4}}, {{5}}},
         [](const Vars& v) { return linear_transposed(v[0], v[1], v[2]); }, 2},
        {"(9, 2) x (3, 2)^T + (3,)", {{{9, 2}}, {{3, 2}}, {{3}}},
         [](const Vars& v) { return linear_transposed(v[0], v[1], v[2]); }, 2},
        {"(4, 4) x (4, 4)^T + (4,)", {{{4, 4}}, {{4, 4}}, {{4}}},
         [](const Vars& v) { return linear_transposed(v[0], v[1], v[2]); }, 2, true},
    };
    // Each activation, plain and transposed; the tiny-product kernels; one row (no bias reduction); a
    // square case whose x and W can be swapped.
    auto fused = [](Activation act, bool transposed) {
        return [act, transposed](const Vars& v) {
            return transposed ? linear_transposed(v[0], v[1], v[2], act) : linear(v[0], v[1], v[2], act);
        };
    };
    s["linear_activation"] = {
        {"relu (3, 4) x (4, 5) + (5,)", {{{3, 4}}, {{4, 5}}, {{5}}}, fused(Activation::relu, false), 2},
        {"sigmoid (3, 4) x (4, 5) + (5,)", {{{3, 4}}, {{4, 5}}, {{5}}}, fused(Activation::sigmoid, false), 2},
        {"tanh (9, 2) x (2, 3) + (3,)", {{{9, 2}}, {{2, 3}}, {{3}}}, fused(Activation::tanh, false), 2},
        {"sigmoid (1, 3) x (3, 2) + (2,)", {{{1, 3}}, {{3, 2}}, {{2}}}, fused(Activation::sigmoid, false)},
        {"relu (3, 4) x (5, 4)^T + (5,)", {{{3, 4}}, {{5, 4}}, {{5}}}, fused(Activation::relu, true), 2},
        {"tanh (4, 4) x (4, 4)^T + (4,)", {{{4, 4}}, {{4, 4}}, {{4}}}, fused(Activation::tanh, true), 2, true},
    };
    return s;
}

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
