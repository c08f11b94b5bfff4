// Walks the op table: every op has a row here with its test domain and shapes (broadcasting included);
// each row is gradient-checked and gradgrad-checked in double, and each backward is broken on purpose
// (scaled by 1.01, its broadcast reduction dropped, its operands swapped) to prove that the check fails
// and names the input that was broken.
#include <functional>
#include <map>

#include <xtensor/xmath.hpp>

#include "helpers.hpp"
#include "op_specs.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using testing::FaultKind;
using testing::FaultScope;

namespace {

using namespace op_specs;

const char* names[] = {"a", "b", "c", "d"};

// The inputs of a case, and the scalar function that gradcheck differentiates: a random-weighted sum
// of the op's output. The harness's own ops (mul and sum, or reshape and matmul) are never the op under
// test, so that a fault in that op is the only fault.
struct Instance {
    Vars all;
    Vars differentiable;
    std::vector<std::size_t> positions;  // of the differentiable inputs among the op's inputs
    ScalarFunction f;
};

Instance instantiate(const std::string& op, const Case& c) {
    Instance inst;
    for (std::size_t k = 0; k < c.inputs.size(); ++k) {
        Array<double> value = sample(c.inputs[k], 1000 + k);
        if (c.inputs[k].mask) {
            inst.all.emplace_back(std::move(value));
        } else {
            inst.all.push_back(Var<double>::parameter(std::move(value), names[k]));
            inst.differentiable.push_back(inst.all.back());
            inst.positions.push_back(k);
        }
    }
    bool avoid_mul_sum = op == "mul" || op == "sum";
    Vars all = inst.all;
    auto apply = c.apply;
    inst.f = [all, apply, avoid_mul_sum]() {
        Var<double> y = apply(all);
        Var<double> r(test::random_array<double>(y.shape(), 77, 0.5, 1.5));
        if (!avoid_mul_sum) {
            return sum(y * r);
        }
        Shape row{1, y.size()};
        Shape column{y.size(), 1};
        return reshape(matmul(reshape(y, row), reshape(r, column)), Shape{});
    };
    return inst;
}

}  // namespace

TEST_CASE("every op in the table has a test row, and every row an op") {
    auto s = specs();
    for (const OpInfo& info : op_table()) {
        CAPTURE(info.name);
        CHECK_MESSAGE(s.count(std::string(info.name)) == 1, "op without a test row: ", info.name);
    }
    CHECK(s.size() == op_table().size());
}

TEST_CASE("gradcheck passes for every op over its shapes, in double") {
    for (const auto& [op, cases] : specs()) {
        for (const Case& c : cases) {
            CAPTURE(op);
            CAPTURE(c.label);
            Instance inst = instantiate(op, c);
            GradcheckReport report = gradcheck(inst.f, inst.differentiable);
            CHECK(report);
            CHECK(report.evaluations == gradcheck_cost(inst.differentiable));
        }
    }
}

TEST_CASE("gradgradcheck passes for every op: backward formulas differentiate again") {
    for (const auto& [op, cases] : specs()) {
        for (const Case& c : cases) {
            CAPTURE(op);
            CAPTURE(c.label);
            Instance inst = instantiate(op, c);
            CHECK(gradgradcheck(inst.f, inst.differentiable));
        }
    }
}

TEST_CASE("a backward scaled by 1.01 fails the check, which names the broken input") {
    for (const auto& [op, cases] : specs()) {
        for (const Case& c : cases) {
            Instance inst = instantiate(op, c);
            std::vector<Var<double>> exact = grad(inst.f(), std::span<const Var<double>>(inst.differentiable));
            for (std::size_t d = 0; d < inst.differentiable.size(); ++d) {
                CAPTURE(op);
                CAPTURE(c.label);
                CAPTURE(d);
                if (xt::amax(xt::abs(exact[d].value()))() == 0) {
                    continue;  // a zero gradient scaled is still zero (clamp or relu on its flat side)
                }
                FaultScope fault({.op = op, .kind = FaultKind::scale, .input = inst.positions[d], .factor = 1.01});
                GradcheckReport report = gradcheck(inst.f, inst.differentiable);
                CHECK_FALSE(report.passed);
                for (std::size_t other = 0; other < inst.differentiable.size(); ++other) {
                    CHECK(report[inst.differentiable[other].name()].passed == (other != d));
                }
            }
        }
    }
}

TEST_CASE("a dropped broadcast reduction fails the check, which names the broadcast input") {
    std::size_t tried = 0;
    for (const auto& [op, cases] : specs()) {
        for (const Case& c : cases) {
            if (c.broadcast_input < 0) {
                continue;
            }
            CAPTURE(op);
            CAPTURE(c.label);
            Instance inst = instantiate(op, c);
            auto k = static_cast<std::size_t>(c.broadcast_input);
            FaultScope fault({.op = op, .kind = FaultKind::drop_reduction, .input = k});
            GradcheckReport report = gradcheck(inst.f, inst.differentiable);
            CHECK_FALSE(report.passed);
            CHECK_FALSE(report[names[k]].passed);
            ++tried;
        }
    }
    CHECK(tried >= 15);
}

TEST_CASE("swapped operands fail the check") {
    std::size_t tried = 0;
    for (const auto& [op, cases] : specs()) {
        for (const Case& c : cases) {
            if (!c.swappable || op == "add") {  // add sends dy to both: a swap changes nothing
                continue;
            }
            CAPTURE(op);
            CAPTURE(c.label);
            Instance inst = instantiate(op, c);
            FaultScope fault({.op = op, .kind = FaultKind::swap_inputs});
            GradcheckReport report = gradcheck(inst.f, inst.differentiable);
            CHECK_FALSE(report.passed);
            CHECK_FALSE(report["a"].passed);
            ++tried;
        }
    }
    CHECK(tried >= 6);  // sub, mul, div, maximum, minimum, matmul
}
