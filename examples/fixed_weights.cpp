// Tutorial 003 (EXPERIMENTS.md): an autoencoder "from scratch" in numpy, two experiments.
//
//   network  The 3-2-3 ReLU network with the tutorial's fixed weights, x = [1.0, 0.8, 0.5]: its code, its
//            output and their MSE through tapegrad's ops, in double and in float, and the gradient of that
//            MSE by both weight matrices, checked against central differences. Nothing is trained and
//            nothing is random: both protocols compute the same numbers, the tutorial's arithmetic being
//            right; the corrected one says what the numbers mean.
//   image    The tutorial's 784-100-784 pass: a 28 x 28 grayscale image / 255 (a Fashion-MNIST test image
//            here; the tutorial's 'image.png' is not given) through weights drawn from np.random.rand,
//            U[0, 1), ReLU after both layers, over seeds: the output's scale, its MSE against the input
//            and its correlation with the input. Corrected: the same 784-100-784 trained on Fashion-MNIST
//            with the library's Trainer, beside PCA with 100 components and the mean image.
#include <algorithm>
#include <cmath>
#include <limits>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <xtensor/xview.hpp>

#include "tutorial.hpp"
#include "tapegrad/autodiff.hpp"
#include "tapegrad/models/figures.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/io/file.hpp"

using namespace tapegrad;
using namespace tapegrad::examples;

namespace {

// ---- network: the 3-2-3 ReLU network -------------------------------------------------------------------

// What the tutorial's Display_Data() printed.
constexpr double printed_mse = 0.198864666666677;
const std::vector<double> printed_encoder = {1.29, 1.06};
const std::vector<double> printed_decoder = {1.585, 1.0, 0.963};

// The tutorial's numbers are double literals; in float each is rounded once, here.
template <class T>
Array<T> matrix(std::initializer_list<std::initializer_list<double>> rows) {
    return xt::cast<T>(Array<double>(rows));
}

template <class T>
struct Network {
    // np.dot(wEncoder, xi) with xi a vector: here xi is a (3, 1) column and the products are matmuls.
    Var<T> x = Var<T>(matrix<T>({{1.0}, {0.8}, {0.5}}));
    Var<T> w_encoder = Var<T>::parameter(matrix<T>({{0.8, 0.3, 0.5}, {0.4, 0.7, 0.2}}), "w_encoder");
    Var<T> w_decoder = Var<T>::parameter(matrix<T>({{0.9, 0.4}, {0.2, 0.7}, {0.5, 0.3}}), "w_decoder");
};

template <class T>
struct NetworkPass {
    Var<T> code;            // relu(W_enc x), (2, 1): the tutorial's "Encoder"
    Var<T> reconstruction;  // relu(W_dec code), (3, 1): its "Decoder"
    Var<T> mse;             // mean over the 3 dimensions of (x - reconstruction)^2
};

template <class T>
NetworkPass<T> network_pass(const Network<T>& n) {
    Var<T> code = relu(matmul(n.w_encoder, n.x));
    Var<T> reconstruction = relu(matmul(n.w_decoder, code));
    Var<T> diff = n.x - reconstruction;
    return {code, reconstruction, mean(diff * diff)};
}

template <class T>
std::vector<double> values_of(const Var<T>& v) {
    return std::vector<double>(v.value().begin(), v.value().end());
}

std::string bracketed(const std::vector<double>& v, int digits) {
    std::vector<std::string> parts;
    for (double x : v) {
        parts.push_back(fmt::format("{:.{}g}", x, digits));
    }
    return fmt::format("[{}]", fmt::join(parts, " "));
}

// Prints the pass as Display_Data() does (numpy's 8 significant digits for the vectors; the MSE to 15, as
// the tutorial shows it, and to the precision of T), and returns its numbers.
template <class T>
nlohmann::json report_pass(const char* label) {
    Network<T> n;
    NetworkPass<T> p = network_pass(n);
    std::vector<double> code = values_of(p.code);
    std::vector<double> out = values_of(p.reconstruction);
    double mse = static_cast<double>(p.mse.item());
    fmt::print("{:<16} Encoder: {}  Decoder: {}  Mean Squared Error: {:.15g} ({:.{}g})\n", label, bracketed(code, 8),
               bracketed(out, 8), mse, mse, std::numeric_limits<T>::max_digits10);
    return {{"encoder", code}, {"decoder", out}, {"mse", mse}};
}

int run_network(const TutorialArgs& args) {
    Results r("003", "network", args);
    r.printed("mse", printed_mse);
    r.json["tutorial_printed_encoder"] = printed_encoder;
    r.json["tutorial_printed_decoder"] = printed_decoder;
    fmt::print("the tutorial's 3-2-3 ReLU network, fixed weights, x = [1.0, 0.8, 0.5] (nothing random: seeds unused)\n");
    fmt::print("{:<16} Encoder: [1.29 1.06]  Decoder: [1.585 1. 0.963]  Mean Squared Error: {:.15g}\n",
               "tutorial printed", printed_mse);
    nlohmann::json in_double = report_pass<double>("ours, double");
    nlohmann::json in_float = report_pass<float>("ours, float");
    r.json["double"] = in_double;
    r.json["float"] = in_float;
    double mse = in_double["mse"].get<double>();
    r.measured("mse", spread_of({mse}));
    fmt::print("by hand: ((1 - 1.585)^2 + (0.8 - 1)^2 + (0.5 - 0.963)^2) / 3 = 0.596594 / 3 = 0.19886466...; "
               "ours - tutorial's = {:.2g}\n",
               mse - printed_mse);

    // The gradient the tutorial never takes: which way training would move the weights.
    Network<double> n;
    network_pass(n).mse.backward();
    fmt::print("d MSE / d W_enc (2x3, row by row) = {}\nd MSE / d W_dec (3x2, row by row) = {}\n", bracketed(values_of(n.w_encoder.grad()), 6),
               bracketed(values_of(n.w_decoder.grad()), 6));
    r.json["grad_w_encoder"] = values_of(n.w_encoder.grad());
    r.json["grad_w_decoder"] = values_of(n.w_decoder.grad());
    GradcheckReport check = gradcheck([&] { return network_pass(n).mse; }, {n.w_encoder, n.w_decoder});
    double worst = std::max(check["w_encoder"].max_abs_error, check["w_decoder"].max_abs_error);
    fmt::print("gradcheck (central differences, double): {}, {} elements, largest error {:.2g}\n",
               check.passed ? "passed" : "FAILED", check.checked, worst);
    r.json["gradcheck"] = {{"passed", check.passed}, {"checked", check.checked}, {"max_abs_error", worst}};

    if (args.protocol == Protocol::corrected) {
        // The arithmetic needs no correction; what the numbers are called does.
        std::vector<double> out = in_double["decoder"];
        std::vector<double> grads = values_of(n.w_encoder.grad());
        for (double g : values_of(n.w_decoder.grad())) {
            grads.push_back(g);
        }
        bool all_positive = std::ranges::all_of(grads, [](double g) { return g > 0; });
        fmt::print("note: one forward pass of weights written by hand, not an autoencoder that learned anything: "
                   "the output {} overshoots the input [1 0.8 0.5] by {:.3g}, {:.3g}, {:.3g}, and its first value "
                   "lies above the input's largest, 1. The gradient is {} in every element{}\n",
                   bracketed(out, 8), out[0] - 1.0, out[1] - 0.8, out[2] - 0.5,
                   all_positive ? "positive" : "not positive",
                   all_positive ? ": a gradient step shrinks every weight and so lowers every output towards x" : "");
    }
    r.write(args.out);
    return check.passed ? 0 : 1;
}

// ---- image: the 784-100-784 pass ------------------------------------------------------------------------

constexpr std::size_t side = 28;
constexpr std::size_t pixels = side * side;
constexpr std::size_t hidden = 100;
constexpr std::size_t shown = 8;  // test images in a figure, the chosen one first

struct ImageOptions {
    std::size_t image = 0;  // the test row the tutorial's measures are taken on
    std::size_t train_rows = 10000;
    int epochs = 50;
};

Array<double> uniform01(std::size_t rows, std::size_t cols, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    Array<double> w = xt::empty<double>(Shape{rows, cols});
    for (double& v : w) {
        v = u(rng);
    }
    return w;
}

// The tutorial's pass on each row of `images` (n, 784), in double as numpy computes it:
// relu(W_dec relu(W_enc x)) with W_enc (100, 784) and W_dec (784, 100) drawn from U[0, 1).
Array<double> untrained_pass(const Array<double>& images, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    Var<double> w_encoder(uniform01(hidden, pixels, rng));
    Var<double> w_decoder(uniform01(pixels, hidden, rng));
    NoGrad off;
    Var<double> code = relu(matmul(Var<double>(images), transpose(w_encoder)));
    return relu(matmul(code, transpose(w_decoder))).value();
}

double pearson(const Array<double>& a, const Array<double>& b) {
    Array<double> da = a - xt::mean(a)();
    Array<double> db = b - xt::mean(b)();
    return xt::sum(da * db)() / std::sqrt(xt::sum(da * da)() * xt::sum(db * db)());
}

double mse_of(const Array<double>& a, const Array<double>& b) { return xt::mean(xt::square(a - b))(); }

// imshow's default: each image stretched to its own [min, max], the way the tutorial's figure shows the
// output; a constant image becomes mid-grey.
Array<float> rescaled_rows(const Array<double>& rows) {
    Array<float> out = xt::empty<float>(rows.shape());
    for (std::size_t i = 0; i < rows.shape(0); ++i) {
        auto row = xt::row(rows, static_cast<std::ptrdiff_t>(i));
        double lo = xt::amin(row)();
        double hi = xt::amax(row)();
        auto target = xt::row(out, static_cast<std::ptrdiff_t>(i));
        if (hi > lo) {
            target = xt::cast<float>((row - lo) / (hi - lo));
        } else {
            target = 0.5f;
        }
    }
    return out;
}

Array<double> row_of(const Array<double>& a, std::size_t i) {
    return xt::row(a, static_cast<std::ptrdiff_t>(i));
}

struct ImageData {
    nn::Dataset test;     // Fashion-MNIST's test split, / 255
    Array<double> shown;  // (8, 784): its rows image, image + 1, ...
    Array<double> image;  // (784,): the first of them, the one measured
};

ImageData load_images(const ImageOptions& o) {
    ImageData d{.test = nn::load_dataset("fashion-mnist", "test"), .shown = {}, .image = {}};
    if (o.image + shown > d.test.size()) {
        tapegrad::detail::throw_value_error(fmt::format("fixed_weights image: --image {} leaves fewer than {} test "
                                                        "images after it (the test split has {})",
                                                        o.image, shown, d.test.size()));
    }
    // In double before dividing, as numpy's image / 255.0.
    d.shown = xt::cast<double>(xt::view(d.test.x, xt::range(o.image, o.image + shown), xt::all())) / 255.0;
    d.test.x /= 255.0f;
    d.image = row_of(d.shown, 0);
    return d;
}

int run_image_tutorial(const TutorialArgs& args, const ImageOptions& o) {
    Results r("003", "image", args);
    ImageData d = load_images(o);
    double sum = xt::sum(d.image)();
    double variance = xt::variance(d.image)();
    // E[W_enc x] = sum(x) / 2 per code unit, all positive so ReLU passes them; each output adds 100 of
    // them times weights of mean 1/2, independent of the code: E[output pixel] = 100 * 1/2 * sum(x) / 2.
    double expected_scale = 25.0 * sum;
    fmt::print("the tutorial's 784-100-784 pass, weights U[0, 1), ReLU after both layers, on Fashion-MNIST test "
               "image {} (/255: pixel sum {:.2f}, variance over its pixels {:.4f})\n",
               o.image, sum, variance);
    fmt::print("expected output per pixel from E[w] = 1/2: 100 * 1/2 * (sum / 2) = 25 * sum = {:.1f}\n",
               expected_scale);
    std::vector<double> scale, ratio, mse, correlation, shown_correlation, between_outputs;
    for (std::uint64_t seed : args.seed_list()) {
        Array<double> out = untrained_pass(d.shown, seed);
        Array<double> mine = row_of(out, 0);
        scale.push_back(xt::mean(mine)());
        ratio.push_back(scale.back() / expected_scale);
        mse.push_back(mse_of(mine, d.image));
        correlation.push_back(pearson(mine, d.image));
        for (std::size_t i = 0; i < shown; ++i) {
            shown_correlation.push_back(pearson(row_of(out, i), row_of(d.shown, i)));
            // The output of another image: the same random weights make nearly the same picture.
            if (i > 0) {
                between_outputs.push_back(pearson(row_of(out, i), mine));
            }
        }
        fmt::print("seed {:>3}: output mean {:.1f} ({:.4f} of expected), MSE to the input {:.4g}, Pearson r with "
                   "the input {:+.4f}\n",
                   seed, scale.back(), ratio.back(), mse.back(), correlation.back());
    }
    r.json["image"] = o.image;
    r.json["input_pixel_sum"] = sum;
    r.json["input_variance"] = variance;
    r.json["expected_output_mean"] = expected_scale;
    r.measured("output_mean", spread_of(scale));
    r.measured("output_mean_over_expected", spread_of(ratio));
    r.measured("mse_to_input", spread_of(mse));
    r.measured("pearson_with_input", spread_of(correlation));
    r.measured("pearson_with_input_8_images", spread_of(shown_correlation));
    r.measured("pearson_between_outputs", spread_of(between_outputs));
    fmt::print("over {} seeds: output mean {}; MSE to the input {} (the input's variance: {:.4f}); Pearson r with "
               "the input {}\n",
               args.seeds, describe(spread_of(scale), 1), describe(spread_of(mse), 0), variance,
               describe(spread_of(correlation)));
    Spread others = spread_of(shown_correlation);
    Spread between = spread_of(between_outputs);
    fmt::print("the 8 figure images x {} seeds: Pearson r of each output with its input {:.4f} +- {:.4f} ({:.4f} to "
               "{:.4f}); of the output of image {} with those of the 7 others {:.4f} +- {:.4f} ({:.4f} to {:.4f}): "
               "the picture is the weights', not the input's\n",
               args.seeds, others.mean, others.sd, others.min, others.max, o.image, between.mean, between.sd,
               between.min, between.max);

    // The tutorial's figure, its way: "Base Image" is the input (in colour there; Fashion-MNIST is
    // grayscale), "Reconstructed Image" the input again, and "Mid level constructed Image" the output,
    // which imshow stretches to its own range.
    Array<double> first = untrained_pass(d.shown, args.first_seed);
    Array<float> input = xt::cast<float>(d.shown);
    models::write_comparison(args.out + "/tutorial_figure.png", {input, input, rescaled_rows(first)}, side, side, 0,
                             {.row_labels = {"'Base Image' = input", "'Reconstructed' = input",
                                             "'Mid level' = output"}});
    r.figure("tutorial_figure.png");
    fmt::print("tutorial_figure.png: the tutorial's three panels for 8 test images (seed {}): its 'Reconstructed "
               "Image' is the input, its 'Mid level constructed Image' the output stretched to [min, max]\n",
               args.first_seed);
    r.write(args.out);
    return 0;
}

int run_image_corrected(const TutorialArgs& args, const ImageOptions& o) {
    Results r("003", "image", args);
    ImageData d = load_images(o);
    nn::Dataset all = nn::load_dataset("fashion-mnist", "train");
    nn::Dataset train = nn::select_rows(all, [&](std::size_t row) { return row < o.train_rows; });
    train.x /= 255.0f;
    const nn::Dataset& test = d.test;
    Array<float> image = xt::cast<float>(xt::view(d.shown, xt::range(0, 1), xt::all()));
    fmt::print("784-100-784 (ReLU code, sigmoid output) trained on the first {} Fashion-MNIST training images / 255, "
               "Trainer defaults (Adam lr 1e-3, batch 128, 10% validation), {} epochs; test image {} and the "
               "{} test images\n",
               train.size(), o.epochs, o.image, test.size());

    Array<float> mean_image = xt::mean(train.x, {0});
    double mean_image_mse = xt::mean(xt::square(image - mean_image))();
    double mean_test_mse = xt::mean(xt::square(test.x - mean_image))();
    models::Pca<float> pca({.components = hidden});
    pca.fit(train.x);
    double pca_image_mse = xt::mean(pca.reconstruction_error(image))();
    double pca_test_mse = xt::mean(pca.reconstruction_error(test.x))();
    fmt::print("baselines: mean image: image MSE {:.5f}, test MSE {:.5f}; PCA 100: image MSE {:.5f}, test MSE "
               "{:.5f}\n",
               mean_image_mse, mean_test_mse, pca_image_mse, pca_test_mse);

    std::vector<double> image_mse, test_mse;
    Array<float> first_reconstruction;
    Array<float> shown = xt::cast<float>(d.shown);
    for (std::uint64_t seed : args.seed_list()) {
        models::Autoencoder<float> model({.sizes = {pixels, hidden}, .latent_activation = "relu",
                                          .output_activation = "sigmoid", .seed = seed});
        models::Trainer<float>(model, {.epochs = o.epochs, .seed = seed}).fit(train);
        image_mse.push_back(xt::mean(model.reconstruction_error(image))());
        test_mse.push_back(xt::mean(model.reconstruction_error(test.x))());
        fmt::print("seed {:>3}: image MSE {:.5f}, test MSE {:.5f}\n", seed, image_mse.back(), test_mse.back());
        if (seed == args.first_seed) {
            NoGrad off;
            first_reconstruction = model.reconstruct(Var<float>(shown)).value();
        }
    }
    r.json["image"] = o.image;
    r.json["train_rows"] = train.size();
    r.json["epochs"] = o.epochs;
    r.json["mean_image"] = {{"image_mse", mean_image_mse}, {"test_mse", mean_test_mse}};
    r.json["pca_100"] = {{"image_mse", pca_image_mse}, {"test_mse", pca_test_mse}};
    r.measured("trained_image_mse", spread_of(image_mse));
    r.measured("trained_test_mse", spread_of(test_mse));
    fmt::print("over {} seeds: image MSE {}, test MSE {} (PCA 100: {:.5f}, {:.5f}; mean image: {:.5f}, {:.5f})\n",
               args.seeds, describe(spread_of(image_mse), 5), describe(spread_of(test_mse), 5), pca_image_mse,
               pca_test_mse, mean_image_mse, mean_test_mse);

    Array<double> untrained = untrained_pass(d.shown, args.first_seed);
    models::write_comparison(args.out + "/reconstructions.png",
                             {shown, rescaled_rows(untrained), first_reconstruction, pca.reconstruct(shown)},
                             side, side, 0,
                             {.row_labels = {"input", "untrained, rescaled", "trained AE", "PCA, 100"}});
    r.figure("reconstructions.png");
    fmt::print("reconstructions.png: 8 test images; the untrained pass (seed {}) stretched to [min, max] per image "
               "(its values run from {:.0f} to {:.0f}), the trained autoencoder (seed {}), PCA with 100 components\n",
               args.first_seed, xt::amin(untrained)(), xt::amax(untrained)(), args.first_seed);
    r.write(args.out);
    return 0;
}

// The files a run writes into --out, which an earlier run's must not silently replace.
std::vector<std::string> files_of(const std::string& experiment, Protocol protocol) {
    if (experiment == "network") {
        return {"results.json"};
    }
    return {"results.json", protocol == Protocol::tutorial ? "tutorial_figure.png" : "reconstructions.png"};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tutorial 003: the 3-2-3 network with fixed weights, and the 784-100-784 pass"};
    app.require_subcommand(1);
    TutorialArgs network_args;
    CLI::App* network = app.add_subcommand("network", "the 3-2-3 ReLU network with the tutorial's fixed weights");
    add_tutorial_options(*network, network_args);
    TutorialArgs image_args;
    image_args.seeds = 10;
    ImageOptions image_options;
    CLI::App* image = app.add_subcommand("image", "the 784-100-784 pass on a Fashion-MNIST test image");
    add_tutorial_options(*image, image_args);
    image->add_option("--image", image_options.image, "the Fashion-MNIST test row measured (the figure shows it "
                                                      "and the 7 after it)")
        ->capture_default_str();
    image->add_option("--train-rows", image_options.train_rows, "corrected: training images (the first ones)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    image->add_option("--epochs", image_options.epochs, "corrected: training epochs")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    if (auto code = parse_command_line(app, argc, argv)) {
        return *code;
    }

    bool is_network = network->parsed();
    std::string experiment = is_network ? "network" : "image";
    TutorialArgs& args = is_network ? network_args : image_args;
    if (args.out.empty()) {
        args.out = fmt::format("runs/tutorials/003-{}-{}", experiment, to_string(args.protocol));
    }
    configure_blas(argv, args.threads);
    try {
        claim_run_folder("fixed_weights " + experiment, args.out, files_of(experiment, args.protocol), args.overwrite);
        if (is_network) {
            return run_network(args);
        }
        return args.protocol == Protocol::tutorial ? run_image_tutorial(args, image_options)
                                                   : run_image_corrected(args, image_options);
    } catch (const Error& e) {
        fmt::print(stderr, "{}\n", e.what());
        return 1;
    }
}
