// The tape audit inside real models: for each built-in variant, tied and untied, the audit of its loss
// passes; and with the backward of any op its graph uses broken on purpose (the gradient sent to one
// input scaled by 1.01), the audit names that op as the first entry that disagrees, and no other op.
#include <set>

#include <xtensor/xview.hpp>

#include "helpers.hpp"
#include "tapegrad/autodiff/audit.hpp"
#include "tapegrad/autodiff/testing.hpp"
#include "tapegrad/models/factory.hpp"

using namespace tapegrad;
using namespace tapegrad::models;
using testing::FaultKind;
using testing::FaultScope;

namespace {

struct Model {
    std::string variant;
    std::shared_ptr<Autoencoder<double>> model;
    Var<double> batch;
};

Model make(const std::string& variant, bool tied, bool conv) {
    AutoencoderConfig c{.sizes = {6, 5, 3}, .activation = "tanh", .latent_activation = "sigmoid", .tied = tied,
                        .seed = 3};
    if (conv) {  // 4x4 images through two convolutions and back
        c.sizes = {16, 5, 3};
        c.channels = {2, 3};
    }
    if (variant == "variational") {
        c.latent_activation = "identity";
    }
    Model m{variant, make_autoencoder<double>(variant, c), Var<double>(test::random_array<double>({4, c.sizes[0]}, 9, 0.05, 0.95))};
    if (NoiseSource* noise = m.model->noise_source()) {
        noise->fix(true);  // the same corruption or sample at every evaluation
    }
    return m;
}

}  // namespace

TEST_CASE("the audit of every variant's loss passes, and with any op of it broken names that op") {
    for (const VariantInfo& info : variant_infos()) {
        if (info.name != "vanilla" && info.name != "denoising" && info.name != "sparse" &&
            info.name != "contractive" && info.name != "variational") {
            continue;  // variants registered by other tests
        }
        for (auto [tied, conv] : {std::pair{false, false}, {true, false}, {false, true}}) {
            if (tied && info.name == "variational") {
                continue;  // its encoder ends at twice the latent size: no tied decoder
            }
            CAPTURE(info.name);
            CAPTURE(tied);
            CAPTURE(conv);
            Model m = make(info.name, tied, conv);
            std::vector<Var<double>> params = m.model->parameters();
            AuditReport clean = audit(m.model->loss(m.batch), params);
            CHECK(clean.passed);
            std::set<std::string> ops;
            for (const AuditEntry& e : clean.entries) {
                ops.insert(e.op);
            }
            CHECK(ops.size() >= 2);  // vanilla: linear_activation and mean_squared_error
            if (conv) {
                CHECK(ops.count("conv2d") == 1);
                CHECK(ops.count("conv_transpose2d") == 1);
            }
            clear_tape<double>();
            for (const std::string& op : ops) {
                CAPTURE(op);
                // Break the gradient each entry of this op sends to its first checked input.
                auto first = std::find_if(clean.entries.begin(), clean.entries.end(),
                                          [&](const AuditEntry& e) { return e.op == op; });
                std::size_t input = first->inputs.front().k;
                FaultScope fault({.op = op, .kind = FaultKind::scale, .input = input, .factor = 1.01});
                AuditReport broken = audit(m.model->loss(m.batch), params);
                clear_tape<double>();
                CHECK_FALSE(broken.passed);
                REQUIRE(broken.first_failure() != nullptr);
                CHECK(broken.first_failure()->op == op);
                for (const AuditEntry& e : broken.entries) {
                    if (!e.passed) {
                        CHECK(e.op == op);
                    }
                }
            }
        }
    }
}

TEST_CASE("the audit names the module of a wrong entry's parameters") {
    Model m = make("vanilla", false, false);
    FaultScope fault({.op = "linear_activation", .kind = FaultKind::scale, .input = 1, .factor = 1.01});
    AuditReport report = audit(m.model->loss(m.batch), m.model->parameters());
    clear_tape<double>();
    REQUIRE(report.first_failure() != nullptr);
    CHECK(report.first_failure()->op == "linear_activation");
    CHECK(report.first_failure()->module == "encoder.0");
    REQUIRE(report.first_failure()->inputs.size() == 2);  // the weight and the bias; the batch takes no gradient
    CHECK(report.first_failure()->inputs[0].k == 1);
    CHECK(report.first_failure()->inputs[0].name == "encoder.0.weight");
    CHECK_FALSE(report.first_failure()->inputs[0].passed);
    CHECK(report.first_failure()->inputs[1].passed);
}
