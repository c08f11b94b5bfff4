// The image layers (Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, Upsample, Flatten, Unflatten) as modules:
// their parameters' names and shapes, the output shapes of the Fashion-MNIST autoencoder's geometry, that
// they pass their options to the ops, PyTorch's initialisation (bounds from the right fans, the range
// filled, seeding), the other initialisers' fans, describe() and summary(), errors with their messages,
// modes and zero_grad, float against double, and a gradient check over every parameter and the input of
// a small convolutional autoencoder that fails, naming the parameter, when a conv op's backward is broken.
// The ops' values are tested in tests/autodiff; here only that the layers call them as they say.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "helpers.hpp"
#include "tapegrad/autodiff/testing.hpp"
#include "tapegrad/nn/activations.hpp"
#include "tapegrad/nn/conv.hpp"
#include "tapegrad/nn/losses.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

namespace {

std::vector<std::string> names_of(const Module<double>& m) {
    std::vector<std::string> names;
    for (const auto& p : m.named_parameters()) {
        names.push_back(p.name);
    }
    return names;
}

// The Fashion-MNIST convolutional autoencoder's layers: 28 x 28 -> 16 x 14 x 14 -> 32 x 7 x 7 and back.
template <class T>
std::shared_ptr<Sequential<T>> fashion_autoencoder(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    Conv2dLayerOptions down{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}};
    Conv2dLayerOptions up{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}};
    auto net = std::make_shared<Sequential<T>>();
    net->add(std::make_shared<Unflatten<T>>(std::array<std::size_t, 3>{1, 28, 28}))
        .add(std::make_shared<Conv2d<T>>(1, 16, rng, down))
        .add(std::make_shared<ReLU<T>>())
        .add(std::make_shared<Conv2d<T>>(16, 32, rng, down))
        .add(std::make_shared<ReLU<T>>())
        .add(std::make_shared<ConvTranspose2d<T>>(32, 16, rng, up))
        .add(std::make_shared<ReLU<T>>())
        .add(std::make_shared<ConvTranspose2d<T>>(16, 1, rng, up))
        .add(std::make_shared<Sigmoid<T>>())
        .add(std::make_shared<Flatten<T>>());
    return net;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Parameters and shapes

TEST_CASE_TEMPLATE("parameters: weight (out, in / groups, kh, kw), (in, out / groups, kh, kw) transposed", T, float,
                   double) {
    SUBCASE("Conv2d") {
        Conv2d<T> conv(6, 4, {.kernel = {3, 5}, .groups = 2});
        ParameterList<T> params = conv.named_parameters();
        REQUIRE(params.size() == 2);
        CHECK(params[0].name == "weight");
        CHECK(params[0].var.shape() == Shape{4, 3, 3, 5});
        CHECK(params[1].name == "bias");
        CHECK(params[1].var.shape() == Shape{4});
        CHECK(conv.parameter_count() == 4 * 3 * 3 * 5 + 4);
        CHECK(conv.in_channels() == 6);
        CHECK(conv.out_channels() == 4);
    }
    SUBCASE("ConvTranspose2d") {
        ConvTranspose2d<T> deconv(6, 4, {.kernel = {3, 5}, .groups = 2});
        ParameterList<T> params = deconv.named_parameters();
        REQUIRE(params.size() == 2);
        CHECK(params[0].name == "weight");
        CHECK(params[0].var.shape() == Shape{6, 2, 3, 5});
        CHECK(params[1].name == "bias");
        CHECK(params[1].var.shape() == Shape{4});
    }
    SUBCASE("bias=false: the weight alone") {
        Conv2d<T> conv(3, 8, {.bias = false});
        ConvTranspose2d<T> deconv(8, 3, {.bias = false});
        CHECK_FALSE(conv.bias().defined());
        CHECK_FALSE(deconv.bias().defined());
        CHECK(conv.named_parameters().size() == 1);
        CHECK(deconv.named_parameters().size() == 1);
        CHECK(deconv.weight().shape() == Shape{8, 3, 3, 3});
    }
    SUBCASE("pooling, Upsample, Flatten and Unflatten have none") {
        CHECK(MaxPool2d<T>().named_parameters().empty());
        CHECK(AvgPool2d<T>().named_parameters().empty());
        CHECK(Upsample<T>().named_parameters().empty());
        CHECK(Flatten<T>().named_parameters().empty());
        CHECK(Unflatten<T>({1, 28, 28}).named_parameters().empty());
    }
}

TEST_CASE("inside a Sequential, parameters carry full names, in the list and in their Vars") {
    auto net = fashion_autoencoder<double>(1);
    CHECK(names_of(*net) == std::vector<std::string>{"1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias",
                                                     "7.weight", "7.bias"});
    for (const auto& p : net->named_parameters()) {
        CHECK(p.var.name() == p.name);
        CHECK(p.var.requires_grad());
    }
    CHECK(net->parameter_count() == (16 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 16 * 9 + 16) + (16 * 9 + 1));
}

TEST_CASE_TEMPLATE("output shapes of the Fashion-MNIST autoencoder's layers", T, float, double) {
    const std::size_t n = 3;
    Conv2dLayerOptions down{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}};
    Conv2dLayerOptions up{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}};
    Var<T> rows(test::random_array<T>({n, 784}, 1, 0, 1));
    Var<T> image = Unflatten<T>({1, 28, 28})(rows);
    CHECK(image.shape() == Shape{n, 1, 28, 28});
    Var<T> h1 = Conv2d<T>(1, 16, down)(image);
    CHECK(h1.shape() == Shape{n, 16, 14, 14});
    Var<T> h2 = Conv2d<T>(16, 32, down)(h1);
    CHECK(h2.shape() == Shape{n, 32, 7, 7});
    Var<T> g1 = ConvTranspose2d<T>(32, 16, up)(h2);
    CHECK(g1.shape() == Shape{n, 16, 14, 14});
    Var<T> g2 = ConvTranspose2d<T>(16, 1, up)(g1);
    CHECK(g2.shape() == Shape{n, 1, 28, 28});
    CHECK(Flatten<T>()(g2).shape() == Shape{n, 784});
    CHECK(Flatten<T>()(h2).shape() == Shape{n, 32 * 7 * 7});
    // The whole model takes and gives rows.
    CHECK(fashion_autoencoder<T>(2)->forward(rows).shape() == Shape{n, 784});
    // Without output_padding the transposed side is 13, not 14: (7 - 1) 2 - 2 + 2 + 1.
    CHECK(ConvTranspose2d<T>(32, 16, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}})(h2).shape() ==
          Shape{n, 16, 13, 13});
    // Pooling halves, Upsample doubles.
    CHECK(MaxPool2d<T>()(h1).shape() == Shape{n, 16, 7, 7});
    CHECK(AvgPool2d<T>()(h1).shape() == Shape{n, 16, 7, 7});
    CHECK(Upsample<T>()(h2).shape() == Shape{n, 32, 14, 14});
    CHECK(Upsample<T>({2, 3})(h2).shape() == Shape{n, 32, 14, 21});
}

// Each geometry option goes to the op, per axis and in its place: a layer whose options differ in every
// field and axis gives exactly what the op gives with the same options.
TEST_CASE("the layers pass every option to their op") {
    Var<double> x(test::random_array<double>({2, 4, 9, 10}, 3));
    SUBCASE("Conv2d") {
        Conv2d<double> conv(4, 6, {.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2},
                                   .groups = 2, .seed = 4});
        Conv2dOptions o{.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2};
        Var<double> y = conv(x);
        CHECK(y.shape() == Shape{2, 6, 5, 8});  // (9 + 2 - 2 - 1) / 2 + 1, (10 - 2 - 1) / 1 + 1
        CHECK(y.value() == conv2d(x, conv.weight(), conv.bias(), o).value());
        Conv2d<double> plain(4, 6, {.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2},
                                    .groups = 2, .bias = false, .seed = 4});
        CHECK(plain(x).value() == conv2d(x, plain.weight(), o).value());
    }
    SUBCASE("ConvTranspose2d") {
        ConvTranspose2d<double> deconv(4, 6, {.kernel = {3, 2}, .stride = {2, 3}, .padding = {1, 0},
                                              .dilation = {1, 2}, .groups = 2, .output_padding = {1, 2}, .seed = 4});
        ConvTranspose2dOptions o{
            .stride = {2, 3}, .padding = {1, 0}, .output_padding = {1, 2}, .dilation = {1, 2}, .groups = 2};
        Var<double> y = deconv(x);
        // (9 - 1) 2 - 2 + 1 (3 - 1) + 1 + 1 = 18, (10 - 1) 3 - 0 + 2 (2 - 1) + 2 + 1 = 32
        CHECK(y.shape() == Shape{2, 6, 18, 32});
        CHECK(y.value() == conv_transpose2d(x, deconv.weight(), deconv.bias(), o).value());
        ConvTranspose2d<double> plain(4, 6, {.kernel = {3, 2}, .stride = {2, 3}, .padding = {1, 0},
                                             .dilation = {1, 2}, .groups = 2, .output_padding = {1, 2},
                                             .bias = false, .seed = 4});
        CHECK(plain(x).value() == conv_transpose2d(x, plain.weight(), o).value());
    }
    SUBCASE("pooling and Upsample") {
        Pool2dOptions o{.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 0}};
        CHECK(MaxPool2d<double>(o)(x).value() == max_pool2d(x, o).value());
        CHECK(AvgPool2d<double>(o)(x).value() == avg_pool2d(x, o).value());
        Pool2dOptions dilated{.kernel = {2, 2}, .dilation = {2, 1}};
        CHECK(MaxPool2d<double>(dilated)(x).value() == max_pool2d(x, dilated).value());
        CHECK(Upsample<double>({3, 2})(x).value() == upsample_nearest2d(x, Pair{3, 2}).value());
    }
    SUBCASE("Flatten and Unflatten are inverse reshapes, row-major") {
        Var<double> rows = Flatten<double>()(x);
        CHECK(rows.shape() == Shape{2, 360});
        CHECK(rows.value()(1, 5) == x.value()(1, 0, 0, 5));
        CHECK(rows.value()(1, 95) == x.value()(1, 1, 0, 5));
        CHECK(Unflatten<double>({4, 9, 10})(rows).value() == x.value());
    }
}

// ---------------------------------------------------------------------------------------------------------
// Initialisation

namespace {

struct InitCase {
    const char* label;
    bool transposed;
    std::size_t in, out, groups, kh, kw;
    std::size_t fan_in;  // PyTorch's: weight.size(1) kh kw
};

}  // namespace

// PyTorch: kaiming_uniform_(a = sqrt(5)) on the weight, bound 1 / sqrt(fan_in), and the bias from the same
// fan_in. The cases differ in in, out and groups so that a fan taken from the wrong side moves the bound:
// too wide and max |w| stays under 0.9 of it, too narrow and some |w| passes it.
TEST_CASE_TEMPLATE("PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), filled", T, float, double) {
    const InitCase cases[] = {
        {"Conv2d(16, 32, 3)", false, 16, 32, 1, 3, 3, 16 * 9},
        {"Conv2d(32, 16, (3, 5))", false, 32, 16, 1, 3, 5, 32 * 15},
        {"Conv2d(8, 16, 3, groups=4)", false, 8, 16, 4, 3, 3, 2 * 9},
        {"ConvTranspose2d(32, 16, 3)", true, 32, 16, 1, 3, 3, 16 * 9},
        {"ConvTranspose2d(16, 32, 3)", true, 16, 32, 1, 3, 3, 32 * 9},
        {"ConvTranspose2d(8, 16, 3, groups=4)", true, 8, 16, 4, 3, 3, 4 * 9},
    };
    for (const InitCase& c : cases) {
        CAPTURE(c.label);
        Conv2dLayerOptions o{.kernel = {c.kh, c.kw}, .groups = c.groups, .seed = 17};
        std::unique_ptr<Module<T>> layer;
        if (c.transposed) {
            layer = std::make_unique<ConvTranspose2d<T>>(c.in, c.out, o);
        } else {
            layer = std::make_unique<Conv2d<T>>(c.in, c.out, o);
        }
        ParameterList<T> params = layer->named_parameters();
        REQUIRE(params.size() == 2);
        const Array<T>& w = params[0].var.value();
        const Array<T>& b = params[1].var.value();
        double bound = 1 / std::sqrt(double(c.fan_in));
        test::Moments sw = test::moments(w);
        test::Moments sb = test::moments(b);
        CAPTURE(bound);
        CAPTURE(sw.max_abs);
        CAPTURE(sw.mean);
        CAPTURE(sb.max_abs);
        CHECK(w.size() >= 288);
        CHECK(sw.max_abs <= bound);
        CHECK(sw.max_abs > 0.9 * bound);
        CHECK(std::abs(sw.mean) < 0.1 * bound);  // the mean's standard error is under 0.04 bound
        // Uniform: standard deviation bound / sqrt(3).
        CHECK(sw.sd() == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.08).scale(0));
        CHECK(b.size() == c.out);
        CHECK(sb.max_abs <= bound);
        CHECK(sb.max_abs > 0.5 * bound);
    }
}

TEST_CASE_TEMPLATE("seeded: the same seed gives the same weights; a shared generator different layers", T, float,
                   double) {
    SUBCASE("Conv2d") {
        Conv2d<T> a(4, 8, {.seed = 11});
        Conv2d<T> b(4, 8, {.seed = 11});
        Conv2d<T> c(4, 8, {.seed = 12});
        CHECK(a.weight().value() == b.weight().value());
        CHECK(a.bias().value() == b.bias().value());
        CHECK(a.weight().value() != c.weight().value());
        CHECK(a.bias().value() != c.bias().value());
        std::mt19937_64 rng(5);
        Conv2d<T> first(4, 8, rng);
        Conv2d<T> second(4, 8, rng);
        CHECK(first.weight().value() != second.weight().value());
        CHECK(first.bias().value() != second.bias().value());
    }
    SUBCASE("ConvTranspose2d") {
        ConvTranspose2d<T> a(4, 8, {.seed = 11});
        ConvTranspose2d<T> b(4, 8, {.seed = 11});
        ConvTranspose2d<T> c(4, 8, {.seed = 12});
        CHECK(a.weight().value() == b.weight().value());
        CHECK(a.bias().value() == b.bias().value());
        CHECK(a.weight().value() != c.weight().value());
        std::mt19937_64 rng(5);
        ConvTranspose2d<T> first(4, 8, rng);
        ConvTranspose2d<T> second(4, 8, rng);
        CHECK(first.weight().value() != second.weight().value());
    }
    SUBCASE("a whole model from one seed") {
        auto a = fashion_autoencoder<T>(3);
        auto b = fashion_autoencoder<T>(3);
        auto c = fashion_autoencoder<T>(4);
        std::vector<Var<T>> pa = a->parameters();
        std::vector<Var<T>> pb = b->parameters();
        std::vector<Var<T>> pc = c->parameters();
        for (std::size_t i = 0; i < pa.size(); ++i) {
            CAPTURE(pa[i].name());
            CHECK(pa[i].value() == pb[i].value());
            CHECK(pa[i].value() != pc[i].value());
        }
    }
}

// The other initialisers, from PyTorch's fans of a conv weight (its second and first dimensions times the
// kernel's area): Conv2d's (out, in / groups, kh, kw) fan_in = in / groups kh kw and fan_out = out kh kw;
// ConvTranspose2d's (in, out / groups, kh, kw) fan_in = out / groups kh kw, fan_out = in kh kw. The bias
// starts at zero.
TEST_CASE("xavier, he and zeros take the conv weight's fans") {
    // Conv2d(16, 32, 3, groups=2): fan_in 8 * 9 = 72, fan_out 32 * 9 = 288.
    SUBCASE("xavier_uniform, Conv2d") {
        Conv2d<double> conv(16, 32, {.groups = 2, .init = Init::xavier_uniform, .seed = 1});
        double bound = std::sqrt(6.0 / (72 + 288));
        test::Moments s = test::moments(conv.weight().value());
        CAPTURE(s.max_abs);
        CHECK(s.max_abs <= bound);
        CHECK(s.max_abs > 0.9 * bound);
        CHECK(test::moments(conv.bias().value()).max_abs == 0);
    }
    SUBCASE("xavier_uniform, ConvTranspose2d") {
        // ConvTranspose2d(8, 32, 3, groups=2): weight (8, 16, 3, 3), fan_in 16 * 9 = 144, fan_out 8 * 9 = 72.
        ConvTranspose2d<double> deconv(8, 32, {.groups = 2, .init = Init::xavier_uniform, .seed = 1});
        double bound = std::sqrt(6.0 / (144 + 72));
        test::Moments s = test::moments(deconv.weight().value());
        CAPTURE(s.max_abs);
        CHECK(s.max_abs <= bound);
        CHECK(s.max_abs > 0.9 * bound);
        CHECK(test::moments(deconv.bias().value()).max_abs == 0);
    }
    SUBCASE("xavier_normal") {
        Conv2d<double> conv(16, 32, {.groups = 2, .init = Init::xavier_normal, .seed = 2});
        // 2304 draws: the sample std within 3% (2 standard errors). Relative (scale 0): a std of 0.07 within
        // 0.05 of 1 would pass any fan.
        test::Moments s = test::moments(conv.weight().value());
        CHECK(s.sd() == doctest::Approx(std::sqrt(2.0 / (72 + 288))).epsilon(0.05).scale(0));
        CHECK(std::abs(s.mean) < 0.1 * s.sd());
    }
    SUBCASE("he_normal") {
        Conv2d<double> conv(16, 32, {.groups = 2, .init = Init::he_normal, .seed = 3});
        test::Moments s = test::moments(conv.weight().value());
        CHECK(s.sd() == doctest::Approx(std::sqrt(2.0 / 72)).epsilon(0.05).scale(0));
        CHECK(std::abs(s.mean) < 0.1 * s.sd());
        CHECK(test::moments(conv.bias().value()).max_abs == 0);
    }
    SUBCASE("he_uniform") {
        Conv2d<double> conv(16, 32, {.groups = 2, .init = Init::he_uniform, .seed = 4});
        double bound = std::sqrt(6.0 / 72);
        test::Moments s = test::moments(conv.weight().value());
        CHECK(s.max_abs <= bound);
        CHECK(s.max_abs > 0.9 * bound);
    }
    SUBCASE("zeros") {
        Conv2d<double> conv(16, 32, {.init = Init::zeros});
        ConvTranspose2d<double> deconv(16, 32, {.init = Init::zeros});
        CHECK(test::moments(conv.weight().value()).max_abs == 0);
        CHECK(test::moments(conv.bias().value()).max_abs == 0);
        CHECK(test::moments(deconv.weight().value()).max_abs == 0);
        CHECK(test::moments(deconv.bias().value()).max_abs == 0);
    }
}

// ---------------------------------------------------------------------------------------------------------
// describe() and summary()

TEST_CASE("describe reads like torch's repr, with what differs from the defaults") {
    SUBCASE("Conv2d") {
        CHECK(Conv2d<float>(1, 16, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}).describe() ==
              "Conv2d(1, 16, kernel_size=3, stride=2, padding=1)");
        CHECK(Conv2d<float>(3, 8).describe() == "Conv2d(3, 8, kernel_size=3)");
        CHECK(Conv2d<float>(4, 8, {.kernel = {3, 5}, .stride = {2, 1}, .padding = {1, 2}, .dilation = {2, 2},
                                   .groups = 2, .bias = false})
                  .describe() ==
              "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), dilation=2, groups=2, bias=false)");
        // output_padding belongs to the transposed layer: Conv2d does not print it.
        CHECK(Conv2d<float>(1, 2, {.output_padding = {1, 1}}).describe() == "Conv2d(1, 2, kernel_size=3)");
    }
    SUBCASE("ConvTranspose2d") {
        CHECK(ConvTranspose2d<float>(32, 16, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1},
                                              .output_padding = {1, 1}})
                  .describe() == "ConvTranspose2d(32, 16, kernel_size=3, stride=2, padding=1, output_padding=1)");
        CHECK(ConvTranspose2d<double>(4, 2, {.kernel = {2, 2}, .stride = {2, 2}, .groups = 2}).describe() ==
              "ConvTranspose2d(4, 2, kernel_size=2, stride=2, groups=2)");
    }
    SUBCASE("pooling, Upsample, Flatten, Unflatten") {
        CHECK(MaxPool2d<float>().describe() == "MaxPool2d(kernel_size=2, stride=2)");
        CHECK(MaxPool2d<float>({.kernel = {3, 3}, .stride = {1, 1}, .padding = {1, 1}}).describe() ==
              "MaxPool2d(kernel_size=3, stride=1, padding=1)");
        CHECK(MaxPool2d<float>({.kernel = {2, 2}, .dilation = {2, 2}}).describe() ==
              "MaxPool2d(kernel_size=2, stride=2, dilation=2)");
        CHECK(AvgPool2d<float>().describe() == "AvgPool2d(kernel_size=2, stride=2)");
        CHECK(AvgPool2d<float>({.kernel = {3, 2}, .stride = {2, 2}, .padding = {1, 1}}).describe() ==
              "AvgPool2d(kernel_size=(3, 2), stride=2, padding=1)");
        CHECK(Upsample<float>().describe() == "Upsample(scale_factor=2, mode=nearest)");
        CHECK(Upsample<float>({2, 3}).describe() == "Upsample(scale_factor=(2, 3), mode=nearest)");
        CHECK(Flatten<float>().describe() == "Flatten");
        CHECK(Unflatten<float>({1, 28, 28}).describe() == "Unflatten(dim=1, unflattened_size=(1, 28, 28))");
        CHECK(Unflatten<float>({32, 7, 7}).describe() == "Unflatten(dim=1, unflattened_size=(32, 7, 7))");
    }
}

// torch's _ConvNd.extra_repr prints dilation before output_padding.
TEST_CASE("describe orders the options as torch does: dilation before output_padding") {
    ConvTranspose2d<float> deconv(4, 2, {.kernel = {3, 3}, .stride = {2, 2}, .dilation = {2, 2},
                                         .output_padding = {1, 1}});
    CHECK(deconv.describe() == "ConvTranspose2d(4, 2, kernel_size=3, stride=2, dilation=2, output_padding=1)");
}

TEST_CASE("the summary lists every layer with its parameter shapes and counts") {
    auto net = fashion_autoencoder<float>(1);
    std::string text = net->summary();
    CAPTURE(text);
    CHECK(text.find("Sequential\n") == 0);
    CHECK(text.find("  0  Unflatten(dim=1, unflattened_size=(1, 28, 28))\n") != std::string::npos);
    CHECK(text.find("  1  Conv2d(1, 16, kernel_size=3, stride=2, padding=1)") != std::string::npos);
    CHECK(text.find("weight (16, 1, 3, 3), bias (16,)") != std::string::npos);
    CHECK(text.find("  3  Conv2d(16, 32, kernel_size=3, stride=2, padding=1)") != std::string::npos);
    CHECK(text.find("weight (32, 16, 3, 3), bias (32,)") != std::string::npos);
    CHECK(text.find("  5  ConvTranspose2d(32, 16, kernel_size=3, stride=2, padding=1, output_padding=1)") !=
          std::string::npos);
    CHECK(text.find("weight (32, 16, 3, 3), bias (16,)") != std::string::npos);
    CHECK(text.find("weight (16, 1, 3, 3), bias (1,)") != std::string::npos);
    CHECK(text.find("  9  Flatten\n") != std::string::npos);
    for (const char* count : {" 160\n", " 4640\n", " 4624\n", " 145\n"}) {
        CAPTURE(count);
        CHECK(text.find(count) != std::string::npos);
    }
    CHECK(text.find("parameters: 9569\n") != std::string::npos);
}

// The label column is 36 characters wide and every conv layer's description is longer: two spaces keep the
// shapes apart from it.
TEST_CASE("the summary keeps a long layer description apart from its parameter shapes") {
    std::string text = fashion_autoencoder<float>(1)->summary();
    CAPTURE(text);
    CHECK(text.find(")weight") == std::string::npos);
    CHECK(text.find("padding=1) ") != std::string::npos);
    CHECK(text.find("output_padding=1) ") != std::string::npos);
}

// ---------------------------------------------------------------------------------------------------------
// Gradients

namespace {

// Unflatten -> Conv2d(stride 2, pad 1) -> Tanh -> pool -> Upsample -> ConvTranspose2d(groups 2,
// output_padding) -> Sigmoid -> Flatten: (2, 64) rows -> (2, 4, 4, 4) -> (2, 4, 2, 2) -> (2, 4, 4, 4) ->
// (2, 2, 8, 8) -> (2, 128).
std::shared_ptr<Sequential<double>> small_autoencoder(bool max_pool) {
    std::mt19937_64 rng(8);
    auto net = std::make_shared<Sequential<double>>();
    net->add(std::make_shared<Unflatten<double>>(std::array<std::size_t, 3>{1, 8, 8}))
        .add(std::make_shared<Conv2d<double>>(1, 4, rng, Conv2dLayerOptions{.stride = {2, 2}, .padding = {1, 1}}));
    net->add(std::make_shared<Tanh<double>>());
    if (max_pool) {
        net->add(std::make_shared<MaxPool2d<double>>());
    } else {
        net->add(std::make_shared<AvgPool2d<double>>());
    }
    net->add(std::make_shared<Upsample<double>>())
        .add(std::make_shared<ConvTranspose2d<double>>(
            4, 2, rng,
            Conv2dLayerOptions{.stride = {2, 2}, .padding = {1, 1}, .groups = 2, .output_padding = {1, 1}}))
        .add(std::make_shared<Sigmoid<double>>())
        .add(std::make_shared<Flatten<double>>());
    return net;
}

}  // namespace

TEST_CASE("gradcheck over every parameter and the input; a broken conv backward fails, naming its input") {
    for (bool max_pool : {true, false}) {
        CAPTURE(max_pool);
        auto net = small_autoencoder(max_pool);
        Var<double> x = Var<double>::parameter(test::random_array<double>({2, 64}, 5), "x");
        Var<double> target(test::random_array<double>({2, 128}, 6, 0, 1));
        // The sum of squared errors (mse times the 256 elements): gradients of order 0.1 to 1, so that a
        // gradient 1% off clears gradcheck's atol of 1e-5.
        auto loss = [&] { return mse(net->forward(x), target) * 256.0; };
        std::vector<Var<double>> inputs = net->parameters();
        inputs.push_back(x);
        const std::vector<std::string> names{"1.weight", "1.bias", "5.weight", "5.bias", "x"};

        GradcheckReport report = gradcheck(loss, inputs);
        CAPTURE(report.str());
        CHECK(report);
        REQUIRE(report.inputs.size() == names.size());
        for (std::size_t i = 0; i < names.size(); ++i) {
            CHECK(report.inputs[i].name == names[i]);
            CHECK(report.inputs[i].checked == inputs[i].size());
        }

        // Each conv op's backward scaled by 1.01 on one input: the check fails for what that gradient
        // reaches and passes the rest. conv2d's input 0 is the unflattened x; conv_transpose2d's is the
        // upsampled image, so breaking it breaks everything before it.
        struct Broken {
            std::string op;
            std::size_t input;
            std::vector<std::string> failing;
        };
        const std::vector<Broken> faults{
            {"conv2d", 0, {"x"}},
            {"conv2d", 1, {"1.weight"}},
            {"conv2d", 2, {"1.bias"}},
            {"conv_transpose2d", 0, {"1.weight", "1.bias", "x"}},
            {"conv_transpose2d", 1, {"5.weight"}},
            {"conv_transpose2d", 2, {"5.bias"}},
        };
        for (const Broken& b : faults) {
            CAPTURE(b.op);
            CAPTURE(b.input);
            testing::FaultScope fault({.op = b.op, .kind = testing::FaultKind::scale, .input = b.input});
            REQUIRE(testing::active_fault() != nullptr);  // built with TAPEGRAD_FAULTS, or this proves nothing
            GradcheckReport broken = gradcheck(loss, inputs);
            CAPTURE(broken.str());
            CHECK_FALSE(broken);
            for (const std::string& name : names) {
                CAPTURE(name);
                bool fails = std::find(b.failing.begin(), b.failing.end(), name) != b.failing.end();
                CHECK(broken[name].passed == !fails);
                if (fails) {
                    CHECK(broken.str().find(name) != std::string::npos);
                }
            }
        }
        CHECK(testing::active_fault() == nullptr);
        CHECK(gradcheck(loss, inputs));  // the scopes ended: the same check passes again
    }
}

TEST_CASE("zero_grad clears every parameter's gradient; train and eval reach every layer") {
    auto net = small_autoencoder(true);
    CHECK(net->training());
    net->eval();
    CHECK_FALSE(net->training());
    for (std::size_t i = 0; i < net->size(); ++i) {
        CAPTURE(i);
        CHECK_FALSE((*net)[i].training());
    }
    net->train();
    for (std::size_t i = 0; i < net->size(); ++i) {
        CHECK((*net)[i].training());
    }
    Var<double> x(test::random_array<double>({2, 64}, 1));
    test::weighted_sum(net->forward(x)).backward();
    std::vector<Var<double>> params = net->parameters();
    REQUIRE(params.size() == 4);
    for (const Var<double>& p : params) {
        CAPTURE(p.name());
        REQUIRE(p.grad().defined());
        CHECK(p.grad().shape() == p.shape());
        CHECK(test::moments(p.grad().value()).max_abs > 0);
    }
    net->zero_grad();
    for (const Var<double>& p : params) {
        CAPTURE(p.name());
        CHECK_FALSE(p.grad().defined());
    }
    // eval changes no value: these layers have no training-only behaviour.
    Array<double> before = net->forward(x).value();
    net->eval();
    CHECK(net->forward(x).value() == before);
}

// ---------------------------------------------------------------------------------------------------------
// Errors

TEST_CASE("channels that do not split into the groups are a ValueError at construction") {
    CHECK_THROWS_WITH_AS(Conv2d<double>(3, 4, {.groups = 2}),
                         "Conv2d: 3 input and 4 output channels must be above 0 and split into 2 groups", ValueError);
    CHECK_THROWS_WITH_AS(Conv2d<double>(4, 6, {.groups = 4}),
                         "Conv2d: 4 input and 6 output channels must be above 0 and split into 4 groups", ValueError);
    CHECK_THROWS_WITH_AS(ConvTranspose2d<double>(4, 3, {.groups = 2}),
                         "ConvTranspose2d: 4 input and 3 output channels must be above 0 and split into 2 groups",
                         ValueError);
    CHECK_THROWS_WITH_AS(Conv2d<float>(0, 4), "Conv2d: 0 input and 4 output channels must be above 0", ValueError);
    CHECK_THROWS_WITH_AS(Conv2d<float>(2, 4, {.groups = 0}), "Conv2d: groups must be above 0", ValueError);
    CHECK_THROWS_WITH_AS(Conv2d<float>(2, 4, {.kernel = {0, 3}}), "Conv2d: kernel (0, 3) must be above 0", ValueError);
    CHECK_THROWS_WITH_AS(AvgPool2d<float>({.dilation = {2, 2}}), "AvgPool2d: takes no dilation, given (2, 2)",
                         ValueError);
}

TEST_CASE("a wrong input is a ShapeError naming the op and both shapes") {
    SUBCASE("Conv2d, wrong channels") {
        Conv2d<double> conv(3, 8);
        Var<double> x(test::random_array<double>({2, 4, 5, 5}, 1));
        CHECK_THROWS_WITH_AS(conv(x), "conv2d: input has 4 channels, weight expects 3: (2, 4, 5, 5) * (8, 3, 3, 3)",
                             ShapeError);
        Conv2d<double> grouped(4, 8, {.groups = 2});
        Var<double> six(test::random_array<double>({1, 6, 5, 5}, 1));
        CHECK_THROWS_WITH_AS(
            grouped(six), "conv2d: input has 6 channels, weight expects 4 (2 groups of 2): (1, 6, 5, 5) * (8, 2, 3, 3)",
            ShapeError);
    }
    SUBCASE("Conv2d, not an image, or too small") {
        Conv2d<double> conv(1, 2, {.kernel = {5, 5}});
        Var<double> rows(test::random_array<double>({2, 784}, 1));
        CHECK_THROWS_WITH_AS(
            conv(rows), "conv2d: needs 4-D values (NCHW, and a weight (O, C/groups, kh, kw)): (2, 784) * (2, 1, 5, 5)",
            ShapeError);
        Var<double> small(test::random_array<double>({1, 1, 3, 3}, 1));
        CHECK_THROWS_WITH_AS(conv(small),
                             "conv2d: the image (3, 3) padded by (0, 0) is smaller than the kernel (5, 5) dilated by "
                             "(1, 1): (1, 1, 3, 3) * (2, 1, 5, 5)",
                             ShapeError);
    }
    SUBCASE("ConvTranspose2d, wrong channels or output padding") {
        ConvTranspose2d<double> deconv(4, 2);
        Var<double> x(test::random_array<double>({1, 3, 5, 5}, 1));
        CHECK_THROWS_WITH_AS(deconv(x),
                             "conv_transpose2d: input has 3 channels, weight expects 4: (1, 3, 5, 5) * (4, 2, 3, 3)",
                             ShapeError);
        // torch checks this at forward too (and takes output padding below the dilation as well).
        ConvTranspose2d<double> padded(4, 2, {.output_padding = {1, 1}});
        Var<double> four(test::random_array<double>({1, 4, 5, 5}, 1));
        CHECK_THROWS_WITH_AS(padded(four), "conv_transpose2d: output padding (1, 1) must be below the stride (1, 1)",
                             ValueError);
    }
    SUBCASE("Unflatten, wrong width or not rows") {
        Unflatten<double> unflatten({1, 28, 28});
        Var<double> x(test::random_array<double>({2, 100}, 1));
        CHECK_THROWS_WITH_AS(unflatten(x), "Unflatten(dim=1, unflattened_size=(1, 28, 28)): input has shape (2, 100), expected (batch, 784)",
                             ShapeError);
        Var<double> image(test::random_array<double>({2, 1, 28, 28}, 1));
        CHECK_THROWS_WITH_AS(unflatten(image),
                             "Unflatten(dim=1, unflattened_size=(1, 28, 28)): input has shape (2, 1, 28, 28), expected (batch, 784)", ShapeError);
    }
    SUBCASE("Flatten of a 1-D value") {
        Var<double> x(test::random_array<double>({5}, 1));
        CHECK_THROWS_WITH_AS(Flatten<double>()(x), "Flatten: needs a batch of values, (N, ...): (5,)", ShapeError);
        Var<double> scalar = Var<double>::scalar(1.0);
        CHECK_THROWS_AS(Flatten<double>()(scalar), ShapeError);
    }
    SUBCASE("pooling and Upsample need images") {
        Var<double> rows(test::random_array<double>({2, 16}, 1));
        CHECK_THROWS_WITH_AS(MaxPool2d<double>()(rows), "max_pool2d: needs a 4-D value (NCHW): (2, 16)", ShapeError);
        CHECK_THROWS_WITH_AS(AvgPool2d<double>()(rows), "avg_pool2d: needs a 4-D value (NCHW): (2, 16)", ShapeError);
        CHECK_THROWS_WITH_AS(Upsample<double>()(rows), "upsample_nearest2d: needs a 4-D value (NCHW): (2, 16)",
                             ShapeError);
    }
}

// An empty batch keeps its row width, as torch's (0, 3, 4) -> (0, 12): the autoencoder gives (0, 784) rows
// for (0, 784) ones.
TEST_CASE("an empty batch keeps its row width through Flatten") {
    Var<double> empty(Array<double>(xt::zeros<double>({0, 3, 4})));
    CHECK(Flatten<double>()(empty).shape() == Shape{0, 12});
    Var<double> rows(Array<double>(xt::zeros<double>({0, 784})));
    CHECK(fashion_autoencoder<double>(1)->forward(rows).shape() == Shape{0, 784});
}

// ---------------------------------------------------------------------------------------------------------
// float and double

// The same seed draws the same numbers for both (drawn in double, then rounded), so the float model holds
// the double model's weights rounded to float, and both compute the same function.
TEST_CASE("float and double layers hold the same weights and agree to float's precision") {
    auto d = fashion_autoencoder<double>(9);
    auto f = fashion_autoencoder<float>(9);
    std::vector<Var<double>> pd = d->parameters();
    std::vector<Var<float>> pf = f->parameters();
    REQUIRE(pd.size() == pf.size());
    for (std::size_t i = 0; i < pd.size(); ++i) {
        CAPTURE(pd[i].name());
        CHECK(pf[i].name() == pd[i].name());
        Array<float> rounded = xt::cast<float>(pd[i].value());
        CHECK(pf[i].value() == rounded);
    }
    Array<double> rows = test::random_array<double>({2, 784}, 10, 0, 1);
    Array<float> rows_f = xt::cast<float>(rows);
    Array<double> yd = d->forward(Var<double>(rows)).value();
    Array<float> yf = f->forward(Var<float>(rows_f)).value();
    CHECK(test::close_to(yf, yd, 10 * test::tolerance<float>()));
    // And a layer at a time, before the sigmoid squeezes the differences: the first conv on the rows.
    Var<double> image_d = Unflatten<double>({1, 28, 28})(Var<double>(rows));
    Var<float> image_f = Unflatten<float>({1, 28, 28})(Var<float>(rows_f));
    CHECK(test::close_to((*f)[1](image_f).value(), (*d)[1](image_d).value(), 10 * test::tolerance<float>()));
    Array<double> h = test::random_array<double>({2, 32, 7, 7}, 11);
    Array<float> h_f = xt::cast<float>(h);
    CHECK(test::close_to((*f)[5](Var<float>(h_f)).value(), (*d)[5](Var<double>(h)).value(),
                         10 * test::tolerance<float>()));
}

