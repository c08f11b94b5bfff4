// Module and Sequential: full names, counts, modes, summary, and a gradient check over every parameter.
#include <memory>

#include "helpers.hpp"
#include "tapegrad/autodiff/testing.hpp"
#include "tapegrad/nn/activations.hpp"
#include "tapegrad/nn/linear.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

namespace {

// An autoencoder as a user would write one: two Sequentials registered as children.
template <class T>
struct TinyAutoencoder : Module<T> {
    TinyAutoencoder() {
        std::mt19937_64 rng(7);
        encoder = &this->register_module("encoder", std::make_shared<Sequential<T>>());
        encoder->add(std::make_shared<Linear<T>>(6, 4, rng)).add(std::make_shared<Tanh<T>>());
        encoder->add(std::make_shared<Linear<T>>(4, 2, rng));
        decoder = &this->register_module("decoder", std::make_shared<Sequential<T>>());
        decoder->add(std::make_shared<Linear<T>>(2, 6, rng)).add(std::make_shared<Sigmoid<T>>());
    }
    Var<T> forward(const Var<T>& x) override { return (*decoder)(tanh((*encoder)(x))); }
    std::string describe() const override { return "TinyAutoencoder"; }
    Sequential<T>* encoder;
    Sequential<T>* decoder;
};

}  // namespace

TEST_CASE_TEMPLATE("parameters carry their full names, in the module and in their Vars", T, float, double) {
    TinyAutoencoder<T> model;
    ParameterList<T> params = model.named_parameters();
    std::vector<std::string> names;
    for (const auto& p : params) {
        names.push_back(p.name);
        CHECK(p.var.name() == p.name);
        CHECK(p.var.requires_grad());
    }
    CHECK(names == std::vector<std::string>{"encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias",
                                            "decoder.0.weight", "decoder.0.bias"});
    CHECK(model.parameter_count() == 6 * 4 + 4 + 4 * 2 + 2 + 2 * 6 + 6);
    CHECK(model.parameters().size() == 6);
    // A module built first and registered later is renamed too.
    auto inner = std::make_shared<Linear<T>>(3, 3);
    CHECK(inner->weight().name() == "weight");
    Sequential<T> outer;
    outer.add(std::make_shared<Identity<T>>()).add(inner);
    CHECK(inner->weight().name() == "1.weight");
}

TEST_CASE("train and eval reach every module; zero_grad every parameter") {
    TinyAutoencoder<double> model;
    CHECK(model.training());
    model.eval();
    CHECK_FALSE(model.training());
    CHECK_FALSE((*model.encoder)[1].training());
    model.train();
    CHECK((*model.decoder)[0].training());
    Var<double> x(test::random_array<double>({5, 6}, 1));
    sum(model(x)).backward();
    for (const auto& p : model.named_parameters()) {
        CHECK(p.var.grad().defined());
    }
    model.zero_grad();
    for (const auto& p : model.named_parameters()) {
        CHECK_FALSE(p.var.grad().defined());
    }
}

TEST_CASE("the summary lists modules, shapes and counts") {
    TinyAutoencoder<float> model;
    std::string text = model.summary();
    CHECK(text.find("TinyAutoencoder\n") == 0);
    CHECK(text.find("  encoder  Sequential") != std::string::npos);
    CHECK(text.find("    0  Linear(6, 4)") != std::string::npos);
    CHECK(text.find("weight (6, 4), bias (4,)") != std::string::npos);
    CHECK(text.find("    1  Tanh") != std::string::npos);
    CHECK(text.find("parameters: 56\n") != std::string::npos);
}

TEST_CASE("misuse is a clear error") {
    Sequential<double> seq;
    seq.add(std::make_shared<ReLU<double>>());
    CHECK_THROWS_WITH_AS(seq[3], "Sequential: index 3 out of range for 1 modules", ValueError);
    CHECK_THROWS_WITH_AS(seq.add(std::shared_ptr<ReLU<double>>()), "Sequential: child \"1\" is empty", ValueError);
}

TEST_CASE("gradcheck over every parameter of a model, named in the report") {
    TinyAutoencoder<double> model;
    Var<double> x(test::random_array<double>({5, 6}, 2, 0, 1));
    auto loss = [&] { return mean(pow(model(x) - x, 2.0)); };
    std::vector<Var<double>> params = model.parameters();
    GradcheckReport report = gradcheck(loss, params);
    CHECK(report);
    CHECK(report.inputs.size() == 6);
    CHECK(report.inputs[4].name == "decoder.0.weight");
    // Broken on purpose: the gradient to the third input (the bias) scaled by 1.01, in the fused op that
    // runs the layers followed by Tanh and Sigmoid, then in plain linear, which runs the middle layer.
    for (std::string op : {"linear_activation", "linear"}) {
        CAPTURE(op);
        bool fused = op == "linear_activation";
        testing::FaultScope fault({.op = op, .kind = testing::FaultKind::scale, .input = 2});
        GradcheckReport broken = gradcheck(loss, params);
        CHECK_FALSE(broken);
        CHECK(broken["encoder.0.weight"].passed);
        CHECK(broken["encoder.0.bias"].passed == !fused);
        CHECK(broken["encoder.2.bias"].passed == fused);
        CHECK(broken["decoder.0.bias"].passed == !fused);
    }
}

// Sequential runs a Linear and the ReLU, Sigmoid or Tanh after it as one op; what it cannot fuse (a
// layer without bias, LeakyReLU, an activation first) runs module by module. Same values and gradients.
TEST_CASE_TEMPLATE("Sequential fuses Linear with the activation after it, and changes no value", T, float, double) {
    std::mt19937_64 rng(3);
    Sequential<T> seq;
    seq.add(std::make_shared<ReLU<T>>());                                               // nothing before it
    seq.add(std::make_shared<Linear<T>>(6, 5, rng)).add(std::make_shared<ReLU<T>>());   // fused
    seq.add(std::make_shared<Linear<T>>(5, 4, rng)).add(std::make_shared<Tanh<T>>());   // fused
    seq.add(std::make_shared<Linear<T>>(4, 4, rng, LinearOptions{.bias = false}));      // no bias: apart
    seq.add(std::make_shared<Sigmoid<T>>());
    seq.add(std::make_shared<Linear<T>>(4, 3, rng)).add(std::make_shared<LeakyReLU<T>>(0.1));  // apart
    seq.add(std::make_shared<Linear<T>>(3, 2, rng)).add(std::make_shared<Sigmoid<T>>());       // fused
    Var<T> x(test::random_array<T>({7, 6}, 5));
    Array<T> seed = test::random_array<T>({7, 2}, 6);
    auto run = [&](bool whole) {
        seq.zero_grad();
        clear_tape<T>();
        Var<T> y = x;
        if (whole) {
            y = seq(x);
        } else {
            for (std::size_t i = 0; i < seq.size(); ++i) {
                y = seq[i](y);
            }
        }
        std::size_t entries = tape_size<T>();
        backward(y, Var<T>(seed));
        std::vector<Array<T>> out{y.value()};
        for (const Var<T>& p : seq.parameters()) {
            out.push_back(p.grad().value());
        }
        return std::pair{entries, out};
    };
    auto [fused_entries, fused] = run(true);
    auto [apart_entries, apart] = run(false);
    CHECK(apart_entries == 10);  // the first ReLU acts on a constant: not recorded
    CHECK(fused_entries == 7);
    REQUIRE(fused.size() == apart.size());
    for (std::size_t i = 0; i < fused.size(); ++i) {
        CAPTURE(i);
        CHECK(fused[i] == apart[i]);
    }
}
