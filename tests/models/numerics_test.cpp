// Training that goes wrong in numbers, caught where it starts: with check_numerics on, a run that makes
// NaN or Inf stops at the first op (or optimizer update) that made it, and the error says which op, the
// parameters that fed it, the step (epoch, batch, global step), and whether it was the forward pass, the
// backward pass or the update. And training that goes right is reproducible: the same seed gives the
// same losses, bit for bit, at one BLAS thread.
#include <cmath>
#include <regex>
#include <string>

#include <doctest/doctest.h>

#include "scratch.hpp"

#include "tapegrad/autodiff.hpp"
#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"
#include "tapegrad/nn/data.hpp"

using namespace tapegrad;
using namespace tapegrad::models;

namespace {

// The bundled digits in [0, 1]: 1797 rows; a 0.1 validation split leaves 1617, 51 batches of 32.
nn::Dataset digits() {
    nn::Dataset d = nn::load_dataset("digits");
    d.x = d.x / 16.0f;
    return d;
}

// Binary cross-entropy written the textbook way, with no clamp: log of a probability that is exactly 0.
class RawBceAutoencoder : public Autoencoder<float> {
public:
    using Autoencoder<float>::Autoencoder;
    Var<float> loss(const Var<float>& x) override {
        Var<float> p = reconstruct(x);
        return mean(-(x * log(p) + (1.0f - x) * log(1.0f - p)));
    }
};

// The square root of the positive part of the error: finite forward, but its derivative at 0 is Inf.
class RootErrorAutoencoder : public Autoencoder<float> {
public:
    using Autoencoder<float>::Autoencoder;
    Var<float> loss(const Var<float>& x) override { return mean(sqrt(relu(reconstruct(x) - x))); }
};

std::string message_of(Trainer<float>& trainer, const nn::Dataset& data) {
    try {
        trainer.fit(data);
    } catch (const NumericError& e) {
        return e.what();
    }
    return "(no NumericError)";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A handle on the model's parameter: changing its value changes the model's.
Var<float> parameter(Autoencoder<float>& model, const std::string& name) {
    for (auto& p : model.named_parameters()) {
        if (p.name == name) {
            return p.var;
        }
    }
    FAIL("no parameter " << name);
    return {};
}

}  // namespace

TEST_CASE("(a) a learning rate far too high: the first op that overflowed, the layer that fed it, the step") {
    set_threads(1);
    nn::Dataset data = digits();
    AutoencoderConfig config{.sizes = {64, 16, 4}, .activation = "relu", .output_activation = "identity", .seed = 1};
    TrainerOptions options{.epochs = 3, .batch_size = 32, .optimizer = "sgd", .lr = 1e6, .momentum = 0,
                           .check_numerics = true};
    SUBCASE("checking off: the run stops at the end of the epoch, naming a parameter that is no number") {
        Autoencoder<float> model(config);
        options.check_numerics = false;
        Trainer<float> trainer(model, options);
        std::string m = message_of(trainer, data);
        CAPTURE(m);
        CHECK(m.starts_with("trainer: epoch 1/3: the run diverged, the parameters hold "));
        CHECK(std::regex_search(m, std::regex(R"re(hold -?(nan|inf) at \[[0-9, ]*\] in "(en|de)coder\.[0-9]\.)re")));
        CHECK(m.ends_with("; --check-numerics (TrainerOptions::check_numerics) stops at the op that made the "
                          "first one"));
    }
    SUBCASE("checking on: step 1 makes the weights huge, the loss of step 2 overflows") {
        Autoencoder<float> model(config);
        Trainer<float> trainer(model, options);
        std::string m = message_of(trainer, data);
        CAPTURE(m);
        // Which op overflows first, at which step, depends on the kernels; that it is named, with the step
        // and the parameters, does not.
        std::smatch found;
        REQUIRE(std::regex_match(
            m, found,
            std::regex(R"re(trainer: epoch 1/3, batch (\d+)/51 \(step (\d+)\), forward pass: check: )re"
                       R"re((\w+) produced inf at \[[0-9, ]*\] in its output \([0-9, ]*\) from finite inputs: )re"
                       R"re(.*"(en|de)coder\.[0-9]\.(weight|bias)".*; the parameters have grown large: )re"
                       R"re(\|(en|de)coder\.[0-9]\.(weight|bias)\| reaches [0-9.]+e\+[0-9]+)re")));
        CHECK(found[1] == found[2]);
        CHECK(std::stoi(found[1]) >= 2);  // step 1 starts from the initial, finite weights
    }
    SUBCASE("an update that itself overflows is caught at the update") {
        Autoencoder<float> model(config);
        options.lr = 1e39;  // Inf as a float
        Trainer<float> trainer(model, options);
        std::string m = message_of(trainer, data);
        CAPTURE(m);
        CHECK(m.rfind("trainer: epoch 1/3, batch 1/51 (step 1), optimizer step: check: the sgd update (lr 1e+39) "
                      "made ",
                      0) == 0);
        CHECK(contains(m, " in \"encoder.0.weight\" (64, 16) from finite gradients"));
    }
}

TEST_CASE("(b) log of an exact 0: the log, the output layer's parameters, the step, in the forward pass") {
    set_threads(1);
    nn::Dataset data = digits();
    RawBceAutoencoder model(AutoencoderConfig{.sizes = {64, 16, 4}, .seed = 1});
    // The output layer's bias far negative: the sigmoid gives exactly 0 in float.
    parameter(model, "decoder.2.bias").mutable_value().fill(-200.0f);
    Trainer<float> trainer(model, {.epochs = 2, .batch_size = 32, .check_numerics = true});
    CHECK(message_of(trainer, data) ==
          "trainer: epoch 1/2, batch 1/51 (step 1), forward pass: check: log produced -inf at [0, 0] in its output "
          "(32, 64) from finite inputs: (32, 64); input 0 is computed from \"decoder.2.bias\", \"decoder.2.weight\"");
}

TEST_CASE("(c) a NaN planted in the data: the op that met it, the batch's row and where it is in the data") {
    set_threads(1);
    nn::Dataset data = digits();
    data.x(700, 10) = std::nanf("");
    SUBCASE("fit(data): found in the data given to fit") {
        Autoencoder<float> model({.sizes = {64, 16, 4}, .seed = 1});
        Trainer<float> trainer(model, {.epochs = 3, .batch_size = 32, .check_numerics = true});
        std::string m = message_of(trainer, data);
        CAPTURE(m);
        // The op is the first layer's (matmul, or a fused linear with the bias as a third input).
        CHECK(m.starts_with("trainer: epoch 1/3, batch 34/51 (step 34), forward pass: check: "));
        CHECK(contains(m, ": input 0 \"batch\" (32, 64) holds nan at [29, 10]; inputs: \"batch\" (32, 64), "
                          "\"encoder.0.weight\" (64, 16)"));
        CHECK(m.ends_with("; the nan came with the data: row 700, column 10 of the data given to fit (row 1572 of "
                          "its training part)"));
    }
    SUBCASE("fit(train, &validation): a NaN in the validation data shows when it is evaluated") {
        nn::Dataset clean = digits();
        Autoencoder<float> model({.sizes = {64, 16, 4}, .seed = 1});
        Trainer<float> trainer(model, {.epochs = 3, .batch_size = 32, .check_numerics = true});
        std::string m;
        try {
            trainer.fit(clean, &data);
        } catch (const NumericError& e) {
            m = e.what();
        }
        CAPTURE(m);
        CHECK(m.starts_with("trainer: epoch 1/3, evaluating batch 1/2 of the validation data: check: "));
        CHECK(contains(m, ": input 0 \"batch\" (1024, 64) holds nan at [700, 10]; inputs: \"batch\" (1024, 64), "
                          "\"encoder.0.weight\" (64, 16)"));
        CHECK(m.ends_with("; the nan came with the data: row 700, column 10 of the validation data"));
    }
    SUBCASE("a denoising model corrupts the batch first: the data is still named") {
        auto model = make_autoencoder<float>("denoising", {.sizes = {64, 16, 4}, .seed = 1}, R"({"level": 0.3})");
        Trainer<float> trainer(*model, {.epochs = 3, .batch_size = 32, .validation_fraction = 0,
                                        .check_numerics = true});
        std::string m = message_of(trainer, data);
        CAPTURE(m);
        CHECK(m.rfind("trainer: epoch 1/3, batch ", 0) == 0);
        CHECK(contains(m, "forward pass: check: "));
        CHECK(contains(m, "holds nan"));
        CHECK(contains(m, "; the nan came with the data: row 700, column 10 of the training data"));
    }
}

TEST_CASE("(d) an Inf made by a backward formula: named as the backward pass") {
    set_threads(1);
    nn::Dataset data = digits();
    RootErrorAutoencoder model(AutoencoderConfig{.sizes = {64, 16, 4}, .seed = 1});
    Trainer<float> trainer(model, {.epochs = 2, .batch_size = 32, .check_numerics = true});
    std::string m = message_of(trainer, data);
    CAPTURE(m);
    CHECK(m.rfind("trainer: epoch 1/2, batch 1/51 (step 1), backward pass: check: backward of sqrt produced inf at ",
                  0) == 0);
    CHECK(contains(m, "in the gradient of input 0 (32, 64); inputs: (32, 64); input 0 is computed from \"batch\", "
                      "\"decoder.2.bias\", \"decoder.2.weight\""));
}

TEST_CASE("(e) without checking, a run that diverges leaves the last finite checkpoint as it was") {
    set_threads(1);
    test::TempDir dir("numerics");
    std::string path = (dir.path / "checkpoint.npz").string();
    nn::Dataset data = digits();
    AutoencoderConfig config{.sizes = {64, 16, 4}, .seed = 1};
    Autoencoder<float> first(config);
    Trainer<float>(first, {.epochs = 1, .batch_size = 32, .checkpoint = path}).fit(data);
    std::string saved = test::read_bytes(path);

    // Epoch 2 meets a NaN in the data; unchecked, it reaches every weight through the gradients.
    data.x(700, 10) = std::nanf("");
    Autoencoder<float> second(config);
    Trainer<float> trainer(second, {.epochs = 3, .batch_size = 32, .checkpoint = path, .resume = path});
    std::string m = message_of(trainer, data);
    CAPTURE(m);
    CHECK(std::regex_search(m, std::regex(R"re(^trainer: epoch 2/3: the run diverged, the parameters hold -?nan at )re"
                                          R"re(.*\(train loss -?nan\); )re")));
    CHECK(contains(m, "; " + path + " was not overwritten; "));
    CHECK(test::read_bytes(path) == saved);
    Autoencoder<float> reloaded(config);
    nn::load_checkpoint<float>(path, reloaded);
    for (const auto& p : reloaded.named_parameters()) {
        CHECK(p.var.value() == parameter(first, p.name).value());
    }
}

TEST_CASE("the same seed gives the same losses and weights, bit for bit, at one BLAS thread") {
    set_threads(1);
    nn::Dataset data = digits();
    for (const char* variant : {"vanilla", "denoising", "variational"}) {
        CAPTURE(variant);
        auto run = [&](std::uint64_t seed) {
            auto model = make_autoencoder<float>(variant, {.sizes = {64, 16, 4}, .seed = 3}, "{}");
            History h = Trainer<float>(*model, {.epochs = 3, .batch_size = 32, .seed = seed}).fit(data);
            return std::pair(h, model);
        };
        auto [a, model_a] = run(7);
        auto [b, model_b] = run(7);
        auto [c, model_c] = run(8);
        REQUIRE(a.epochs.size() == 3);
        REQUIRE(b.epochs.size() == 3);
        for (std::size_t e = 0; e < 3; ++e) {
            CAPTURE(e);
            CHECK(a.epochs[e].train_loss == b.epochs[e].train_loss);
            CHECK(a.epochs[e].validation_loss == b.epochs[e].validation_loss);
            CHECK(a.epochs[e].validation_mse == b.epochs[e].validation_mse);
        }
        auto pa = model_a->named_parameters();
        auto pb = model_b->named_parameters();
        for (std::size_t i = 0; i < pa.size(); ++i) {
            CAPTURE(pa[i].name);
            CHECK(pa[i].var.value() == pb[i].var.value());
        }
        // And the comparison can tell: another batch order gives other losses.
        CHECK(c.epochs.back().train_loss != a.epochs.back().train_loss);
    }
}
