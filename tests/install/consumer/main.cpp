// A program outside the project, built against the installed tapegrad with pkg-config alone
// (tests/install/run.sh): the bundled digits from the installed data folder, a vanilla autoencoder from
// the registry, and a gradient check of its loss over every parameter. Prints what it found; exits 1 when
// the data is not what is bundled or the check fails or checks nothing.
#include <cstddef>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "tapegrad/autodiff.hpp"
#include "tapegrad/autodiff/gradcheck.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/nn/io/datasets.hpp"

namespace {

int fail(const std::string& what) {
    std::cerr << "consumer: " << what << "\n";
    return 1;
}

int run() {
    using namespace tapegrad;

    std::cout << "data_dir " << nn::data_dir() << "\n";
    nn::Dataset digits = nn::load_dataset("digits");
    std::cout << "digits " << digits.size() << " x " << digits.dim() << ", " << digits.labels.size() << " labels\n";
    if (digits.size() != 1797 || digits.dim() != 64 || digits.labels.size() != 1797) {
        return fail("digits: expected 1797 x 64 with 1797 labels");
    }

    // The first 8 rows, pixels 0..16 scaled to 0..1, in double as gradcheck wants.
    const std::size_t rows = 8;
    const std::size_t features = digits.dim();
    Array<double> x = xt::empty<double>(Shape{rows, features});
    double total = 0;
    for (std::size_t i = 0; i < rows; ++i) {
        for (std::size_t j = 0; j < features; ++j) {
            x(i, j) = digits.x(i, j) / 16.0;
            total += x(i, j);
        }
    }
    if (total <= 0) {
        return fail("digits: the first rows are all zero");
    }

    // tanh rather than relu: no kink for a finite difference to straddle.
    auto model = models::make_autoencoder<double>("vanilla", {.sizes = {features, 8, 2}, .activation = "tanh", .seed = 1});
    Var<double> input(x);
    std::vector<Var<double>> params = model->parameters();
    GradcheckReport report = gradcheck([&] { return model->loss(input); }, params);
    std::cout << model->describe() << "\n" << report << "\n";

    std::size_t checked = 0;
    for (const InputCheck& check : report.inputs) {
        checked += check.checked;
    }
    if (report.inputs.size() != params.size() || checked == 0) {
        return fail("gradcheck checked " + std::to_string(checked) + " elements of " +
                    std::to_string(report.inputs.size()) + " inputs, expected all of " +
                    std::to_string(params.size()) + " parameters");
    }
    if (!report) {
        return fail("gradcheck failed");
    }
    std::cout << "consumer: ok\n";
    return 0;
}

}  // namespace

int main() {
    try {
        return run();
    } catch (const std::exception& e) {
        return fail(e.what());
    }
}
