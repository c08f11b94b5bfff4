// The README's first program: two parameters, a loss, its gradient, and the check of that gradient.
// With --break, matmul's backward is broken on purpose (its gradient for the weight scaled by 1.01), to
// show what the check then says. The README shows this file from its #include on, and its output; a test
// compares both (tests/tools/readme_test.cpp).
#include <cstring>
#include <iostream>
#include <optional>

#include <tapegrad/autodiff.hpp>
#include <tapegrad/autodiff/testing.hpp>
using namespace tapegrad;

int main(int argc, char** argv) {
    Var<double> w = Var<double>::parameter(Array<double>(Shape{4, 3}, 0.1), "encoder.0.weight");
    Var<double> b = Var<double>::parameter(Array<double>(Shape{3}, 0.0), "encoder.0.bias");
    Var<double> x(Array<double>{{0.1, 0.9, 0.3, 0.5}, {0.7, 0.2, 0.8, 0.4}, {0.6, 0.6, 0.1, 0.9},
                                {0.2, 0.4, 0.5, 0.3}, {0.9, 0.1, 0.7, 0.8}});  // a constant (5, 4)
    auto loss = [&] { return mean(pow(tanh(matmul(x, w) + b), 2.0)); };

    loss().backward();  // w.grad(), b.grad()

    std::optional<testing::FaultScope> fault;
    if (argc > 1 && std::strcmp(argv[1], "--break") == 0) {
        fault.emplace(testing::Fault{.op = "matmul", .input = 1, .factor = 1.01});
    }
    GradcheckReport report = gradcheck(loss, {w, b});  // central differences, in double
    std::cout << report;
    return report.passed ? 0 : 1;
}
