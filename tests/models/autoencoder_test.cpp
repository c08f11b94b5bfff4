// The autoencoder family: structure and names, a double-precision gradient check over every parameter
// of every variant, training that lowers each loss, and each variant's own behaviour.
#include <cmath>
#include <memory>

#include <nlohmann/json.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xstrided_view.hpp>

#include "helpers.hpp"
#include "tapegrad/models/contractive.hpp"
#include "tapegrad/models/denoising.hpp"
#include "tapegrad/models/sparse.hpp"
#include "tapegrad/models/variational.hpp"
#include "tapegrad/nn/losses.hpp"
#include "tapegrad/nn/optim.hpp"

using namespace tapegrad;
using namespace tapegrad::models;

namespace {

AutoencoderConfig small(std::string latent = "tanh", bool tied = false) {
    return {.sizes = {6, 4, 2}, .activation = "tanh", .latent_activation = latent, .output_activation = "sigmoid",
            .tied = tied, .init = nn::Init::xavier_uniform, .seed = 3};
}

// One of each variant, in double, with its noise fixed so that the loss is a function of the parameters.
std::vector<std::shared_ptr<Autoencoder<double>>> every_variant() {
    auto denoising = std::make_shared<DenoisingAutoencoder<double>>(small(), DenoisingOptions{.level = 0.3, .seed = 1});
    denoising->noise().fix(true);
    auto variational = std::make_shared<VariationalAutoencoder<double>>(small("identity"), VariationalOptions{.seed = 2});
    variational->noise().fix(true);
    return {
        std::make_shared<Autoencoder<double>>(small()),
        std::make_shared<Autoencoder<double>>(small("tanh", true)),
        denoising,
        std::make_shared<SparseAutoencoder<double>>(small("sigmoid"), SparseOptions{.rho = 0.1, .beta = 3, .lambda = 1e-2}),
        std::make_shared<ContractiveAutoencoder<double>>(small(), ContractiveOptions{.lambda = 0.1}),
        variational,
    };
}

// A convolutional encoder and decoder on 2-channel 3x5 images: sides 3 -> 2 -> 1 and 5 -> 3 -> 2, odd
// sides, so that the decoder's transposed convolutions take no output padding, then dense 4 -> 4 -> 2.
AutoencoderConfig small_conv(std::string latent = "tanh") {
    AutoencoderConfig c = small(std::move(latent));
    c.sizes = {30, 4, 2};
    c.channels = {3, 2};
    c.image = {2, 3, 5};
    return c;
}

// Each variant once more, on small_conv.
std::vector<std::shared_ptr<Autoencoder<double>>> every_conv_variant() {
    auto denoising = std::make_shared<DenoisingAutoencoder<double>>(small_conv(), DenoisingOptions{.level = 0.3, .seed = 1});
    denoising->noise().fix(true);
    auto variational = std::make_shared<VariationalAutoencoder<double>>(small_conv("identity"), VariationalOptions{.seed = 2});
    variational->noise().fix(true);
    return {
        std::make_shared<Autoencoder<double>>(small_conv()),
        denoising,
        std::make_shared<SparseAutoencoder<double>>(small_conv("sigmoid"),
                                                    SparseOptions{.rho = 0.1, .beta = 3, .lambda = 1e-2}),
        std::make_shared<ContractiveAutoencoder<double>>(small_conv(), ContractiveOptions{.lambda = 0.1}),
        variational,
    };
}

}  // namespace

TEST_CASE("layers and full names follow the sizes; the decoder mirrors the encoder") {
    Autoencoder<float> ae({.sizes = {6, 4, 2}, .activation = "relu", .output_activation = "sigmoid"});
    std::vector<std::string> names;
    for (const auto& p : ae.named_parameters()) {
        names.push_back(p.name + " " + to_string(p.var.shape()));
    }
    CHECK(names == std::vector<std::string>{"encoder.0.weight (6, 4)", "encoder.0.bias (4,)", "encoder.2.weight (4, 2)",
                                            "encoder.2.bias (2,)", "decoder.0.weight (2, 4)", "decoder.0.bias (4,)",
                                            "decoder.2.weight (4, 6)", "decoder.2.bias (6,)"});
    Var<float> x(test::random_array<float>({5, 6}, 1, 0, 1));
    CHECK(ae.encode(x).shape() == Shape{5, 2});
    Array<float> out = ae.reconstruct(x).value();
    CHECK(out.shape() == Shape{5, 6});
    CHECK(xt::all(out > 0.0f && out < 1.0f));
    CHECK(ae.describe() == "Autoencoder[vanilla](6-4-2, relu, latent identity, output sigmoid)");
    Array<float> err = ae.reconstruction_error(x.value());
    CHECK(test::all_close<float>(err, nn::mse_per_sample(ae.reconstruct(x), x).value(), 1e-6));
}

TEST_CASE("tied weights: the decoder owns only biases and uses the encoder's weights transposed") {
    Autoencoder<double> ae(small("tanh", true));
    std::vector<std::string> names;
    for (const auto& p : ae.named_parameters()) {
        names.push_back(p.name);
    }
    CHECK(names == std::vector<std::string>{"encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias",
                                            "decoder.0.bias", "decoder.2.bias"});
    CHECK(ae.summary().find("TiedLinear(2, 4) = encoder.2.weight^T") != std::string::npos);
}

TEST_CASE("every variant passes a gradient check over all its parameters, in double") {
    Var<double> x(test::random_array<double>({5, 6}, 4, 0, 1));
    for (auto& model : every_variant()) {
        CAPTURE(model->describe());
        std::vector<Var<double>> params = model->parameters();
        GradcheckReport report = gradcheck([&] { return model->loss(x); }, params);
        CHECK(report);
        CHECK(report.inputs.front().name == "encoder.0.weight");
    }
}

TEST_CASE("a convolutional model: convolutions halve the image's sides, transposed ones give them back") {
    // The benchmark's Fashion-MNIST model: 28 -> 14 -> 7 and back, each transposed convolution padded by one.
    Autoencoder<float> fashion({.sizes = {784, 64}, .output_activation = "sigmoid", .channels = {16, 32}});
    std::vector<std::string> names;
    for (const auto& p : fashion.named_parameters()) {
        names.push_back(p.name + " " + to_string(p.var.shape()));
    }
    CHECK(names == std::vector<std::string>{
                       "encoder.1.weight (16, 1, 3, 3)", "encoder.1.bias (16,)", "encoder.3.weight (32, 16, 3, 3)",
                       "encoder.3.bias (32,)", "encoder.6.weight (1568, 64)", "encoder.6.bias (64,)",
                       "decoder.0.weight (64, 1568)", "decoder.0.bias (1568,)", "decoder.3.weight (32, 16, 3, 3)",
                       "decoder.3.bias (16,)", "decoder.5.weight (16, 1, 3, 3)", "decoder.5.bias (1,)"});
    std::string summary = fashion.summary();
    CAPTURE(summary);
    for (const char* layer : {"Unflatten(dim=1, unflattened_size=(1, 28, 28))", "Conv2d(1, 16, kernel_size=3, stride=2, padding=1)",
                              "ConvTranspose2d(32, 16, kernel_size=3, stride=2, padding=1, output_padding=1)",
                              "Unflatten(dim=1, unflattened_size=(32, 7, 7))", "Flatten"}) {
        CHECK(summary.find(layer) != std::string::npos);
    }
    CHECK(fashion.describe() == "Autoencoder[vanilla](conv 16-32 on 1x28x28, 784-64, relu, latent identity, output sigmoid)");
    Var<float> images(test::random_array<float>({3, 784}, 2, 0, 1));
    CHECK(fashion.encode(images).shape() == Shape{3, 64});
    CHECK(fashion.reconstruct(images).shape() == Shape{3, 784});

    // Odd sides need no output padding: 2 x 3 x 5 -> 3 x 2 x 3 -> 2 x 1 x 2 and back.
    Autoencoder<double> odd(small_conv());
    Var<double> x(test::random_array<double>({4, 30}, 3, 0, 1));
    CHECK(odd.reconstruct(x).shape() == Shape{4, 30});
    CHECK(odd.summary().find("ConvTranspose2d(3, 2, kernel_size=3, stride=2, padding=1)  weight") != std::string::npos);

    AutoencoderConfig back = AutoencoderConfig::from_json(small_conv().to_json());
    CHECK(back.channels == std::vector<std::size_t>{3, 2});
    CHECK(back.image == std::vector<std::size_t>{2, 3, 5});
    CHECK(back.to_json() == small_conv().to_json());
    // A dense model's description is what it was before convolutions existed.
    CHECK(small().to_json().find("channels") == std::string::npos);

    CHECK_THROWS_WITH_AS(Autoencoder<float>({.sizes = {30, 4}, .channels = {3}}),
                         "autoencoder: a convolutional model needs images: 30 input features are no square; give the "
                         "image (channels, height, width)",
                         ValueError);
    CHECK_THROWS_WITH_AS(Autoencoder<float>({.sizes = {30, 4}, .channels = {3}, .image = {1, 5, 5}}),
                         "autoencoder: the image [1, 5, 5] does not hold the 30 input features (channels, height, "
                         "width)",
                         ValueError);
    CHECK_THROWS_WITH_AS(Autoencoder<float>({.sizes = {16, 4}, .tied = true, .channels = {3}}),
                         "autoencoder: tied weights are for dense models, not convolutional ones", ValueError);
}

TEST_CASE("every variant on a convolutional encoder and decoder passes a gradient check over all its parameters") {
    Var<double> x(test::random_array<double>({3, 30}, 4, 0, 1));
    for (auto& model : every_conv_variant()) {
        CAPTURE(model->describe());
        std::vector<Var<double>> params = model->parameters();
        GradcheckReport report = gradcheck([&] { return model->loss(x); }, params);
        CHECK(report);
        CHECK(report.inputs.front().name == "encoder.1.weight");
        CHECK(report.inputs.size() == 16);  // two convolutions and two dense layers each way, weights and biases
    }
}

TEST_CASE("training lowers every variant's loss on a small fixed problem") {
    Var<float> x(test::random_array<float>({32, 6}, 5, 0, 1));
    auto float_variants = std::vector<std::shared_ptr<Autoencoder<float>>>{
        std::make_shared<Autoencoder<float>>(small()),
        std::make_shared<Autoencoder<float>>(small("tanh", true)),
        std::make_shared<DenoisingAutoencoder<float>>(small(), DenoisingOptions{.level = 0.2, .seed = 1}),
        std::make_shared<SparseAutoencoder<float>>(small("sigmoid"), SparseOptions{.rho = 0.1}),
        std::make_shared<ContractiveAutoencoder<float>>(small(), ContractiveOptions{.lambda = 0.01}),
        // mse: binary cross-entropy against values inside (0, 1) has a floor (their entropy) far above 0,
        // which hides how much the model learned.
        std::make_shared<VariationalAutoencoder<float>>(small("identity"),
                                                        VariationalOptions{.reconstruction = "mse", .seed = 2}),
    };
    for (auto& model : float_variants) {
        CAPTURE(model->describe());
        nn::Adam<float> adam(model->named_parameters(), {.lr = 0.01});
        // The mean of the first and of the last ten losses: stochastic variants vary from step to step.
        double first = 0;
        double last = 0;
        for (int step = 0; step < 300; ++step) {
            adam.zero_grad();
            Var<float> loss = model->loss(x);
            (step < 10 ? first : last) += step < 10 || step >= 290 ? loss.item() : 0.0;
            loss.backward();
            adam.step();
        }
        CHECK(last < 0.8 * first);
    }
}

TEST_CASE("denoising corrupts afresh at every draw, as asked") {
    Array<double> x(Shape{100, 100}, 0.5);
    DenoisingAutoencoder<double> masking({.sizes = {100, 3}}, {.corruption = Corruption::masking, .level = 0.3});
    Array<double> a = masking.corrupt(x);
    std::size_t zeros = xt::sum(xt::equal(a, 0.0))();
    CHECK(std::abs(double(zeros) / 10000 - 0.3) < 0.02);  // 4 standard deviations
    CHECK(masking.corrupt(x) != a);
    masking.noise().fix(true);
    CHECK(masking.corrupt(x) == masking.corrupt(x));
    DenoisingAutoencoder<double> salt({.sizes = {100, 3}}, {.corruption = Corruption::salt_and_pepper, .level = 0.2});
    Array<double> s = salt.corrupt(x);
    std::size_t ones = xt::sum(xt::equal(s, 1.0))();
    std::size_t nought = xt::sum(xt::equal(s, 0.0))();
    CHECK(std::abs(double(ones + nought) / 10000 - 0.2) < 0.02);
    CHECK(std::abs(double(ones) - double(nought)) < 200);
    DenoisingAutoencoder<double> gauss({.sizes = {100, 3}}, {.corruption = Corruption::gaussian, .level = 0.1});
    Array<double> g = gauss.corrupt(x) - x;
    CHECK(std::sqrt(xt::mean(g * g)()) == doctest::Approx(0.1).epsilon(0.03));
    CHECK_THROWS_WITH_AS(DenoisingAutoencoder<float>({.sizes = {4, 2}}, {.level = 1.5}),
                         "denoising: masking level 1.5 outside [0, 1]", ValueError);
}

TEST_CASE("variational: the ELBO is reported and the KL is never negative") {
    VariationalAutoencoder<double> vae(small("identity"), {.seed = 4});
    Var<double> x(test::random_array<double>({8, 6}, 6, 0, 1));
    Var<double> loss = vae.loss(x);
    CHECK(vae.last_elbo() == doctest::Approx(-loss.item()));
    CHECK(vae.last_kl() >= 0);
    CHECK(vae.encode(x).shape() == Shape{8, 2});
    CHECK(vae.encode(x).value() == vae.encode(x).value());  // the code is the mean: no noise
    CHECK_THROWS_WITH_AS(VariationalAutoencoder<float>(small("tanh"), {}),
                         "variational: the encoder gives a mean and a log-variance, unbounded: latent_activation must "
                         "be identity, not tanh",
                         ValueError);
}

TEST_CASE("configurations round-trip through JSON; bad ones are named") {
    AutoencoderConfig c = small("sigmoid", true);
    AutoencoderConfig back = AutoencoderConfig::from_json(c.to_json());
    CHECK(back.to_json() == c.to_json());
    CHECK_THROWS_AS(AutoencoderConfig::from_json("{\"sizes\": [3]}"), ValueError);
    CHECK_THROWS_WITH_AS(Autoencoder<float>({.sizes = {5}}),
                         "autoencoder: sizes must list at least the input and the latent size, all above 0, got [5]",
                         ValueError);
    CHECK_THROWS_WITH_AS(SparseAutoencoder<float>(small("tanh"), {}),
                         "sparse: the KL penalty needs codes in (0, 1): latent_activation must be sigmoid, not tanh",
                         ValueError);
}

TEST_CASE("interpolation decodes evenly spaced codes between two samples") {
    Autoencoder<double> ae({.sizes = {6, 3}, .activation = "tanh", .output_activation = "identity", .seed = 1});
    Array<double> a = test::random_array<double>({6}, 7, 0, 1);
    Array<double> b = test::random_array<double>({6}, 8, 0, 1);
    Array<double> path = interpolate(ae, a, b, 5);
    REQUIRE(path.shape() == Shape{5, 6});
    // The ends are the two reconstructions; with a linear decoder the middle is their average.
    Array<double> ra = ae.reconstruct(Var<double>(Array<double>(xt::reshape_view(a, {1, 6})))).value();
    Array<double> rb = ae.reconstruct(Var<double>(Array<double>(xt::reshape_view(b, {1, 6})))).value();
    for (std::size_t j = 0; j < 6; ++j) {
        CHECK(path(0, j) == doctest::Approx(ra(0, j)));
        CHECK(path(4, j) == doctest::Approx(rb(0, j)));
        CHECK(path(2, j) == doctest::Approx((ra(0, j) + rb(0, j)) / 2));
    }
    CHECK_THROWS_WITH_AS(interpolate(ae, a, b, 1), "interpolate: needs at least 2 steps, got 1", ValueError);
    CHECK_THROWS_WITH_AS(interpolate(ae, Array<double>(xt::zeros<double>(Shape{5})), b, 3),
                         "interpolate: needs two samples of shape (6,), got (5,) and (6,)", ShapeError);
}

TEST_CASE("the variational reconstruction: auto is bce for a sigmoid output, mse otherwise; bce needs a sigmoid") {
    VariationalAutoencoder<double> sigmoid({.sizes = {6, 2}}, {});
    CHECK(nlohmann::json::parse(sigmoid.options_json())["reconstruction"] == "bce");
    VariationalAutoencoder<double> identity({.sizes = {6, 2}, .output_activation = "identity"}, {});
    CHECK(nlohmann::json::parse(identity.options_json())["reconstruction"] == "mse");
    CHECK_THROWS_WITH_AS(
        VariationalAutoencoder<double>({.sizes = {6, 2}, .output_activation = "identity"}, {.reconstruction = "bce"}),
        "variational: bce needs probabilities: a sigmoid output for data in [0, 1], not identity; use mse", ValueError);
    // The value of each objective on a hand-computed case: one sample, code of one unit, the noise fixed.
    for (const char* reconstruction : {"mse", "bce"}) {
        CAPTURE(reconstruction);
        VariationalAutoencoder<double> vae({.sizes = {2, 1}, .seed = 4}, {.reconstruction = reconstruction, .seed = 9});
        vae.noise().fix(true);
        Var<double> x(Array<double>{{0.25, 0.75}});
        double loss = vae.loss(x).item();
        auto [mu, logvar] = vae.posterior(x);
        double m = mu.value()(0, 0);
        double lv = logvar.value()(0, 0);
        double eps = std::normal_distribution<double>()(vae.noise().draw());
        Array<double> z(Shape{1, 1}, m + std::exp(lv / 2) * eps);
        Array<double> r = vae.decode(Var<double>(z)).value();
        double rec = 0;
        for (int j = 0; j < 2; ++j) {
            double xj = x.value()(0, j);
            double rj = r(0, j);
            rec += std::string(reconstruction) == "mse" ? (rj - xj) * (rj - xj)
                                                        : -(xj * std::log(rj) + (1 - xj) * std::log(1 - rj));
        }
        double kl = -0.5 * (1 + lv - m * m - std::exp(lv));
        CHECK(loss == doctest::Approx(rec + kl).epsilon(1e-9));
    }
}
