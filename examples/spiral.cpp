// Tutorial 001, the spiral (EXPERIMENTS.md): a 2 -> 1 -> 2 autoencoder on points along a spiral, against PCA
// with one component. The tutorial's code was lost; its text remains (the seed file). What it says:
// encoder h = s(W x + b) with a nonlinear s (sigmoid and ReLU are named), a decoder with a weight and a bias
// and no activation, the MSE, backpropagation and "weight updates" of gradient descent; figures of the data
// with its reconstruction, of the 1-D codes along the spiral and of the reconstruction error over the
// plane. It concludes that the decoder "learns a continuous manifold through the data" and that the codes
// "naturally order the data along its principal variation".
//
// Our reading of the lost code, --protocol tutorial: 2 -> 1 -> 2, h = sigmoid(w . x + b) (the first
// function the text names), x_hat = v h + c (linear: the text gives the decoder no activation); Glorot
// normal weights, zero biases; plain full-batch gradient descent on the MSE (mean over points and both
// coordinates). The text gives no learning rate and no epoch count: we take lr 0.5 and 5000 steps, which
// take the loss to its floor (loss_tutorial.png), so that what the model cannot do is not mistaken for
// training cut short. With one hidden unit and a linear decoder, x_hat = v h + c lies on one straight line
// whatever h is: the model can do no better than PCA with one component, whose line is the best there is,
// and its "manifold" is a segment. The program measures that (MSE against PCA's, how far off one line the
// reconstructions lie) and the rank correlation of the code with the position along the spiral.
//
// --protocol corrected (the default): a network that can follow the spiral, 2 -> 32 -> 32 -> 1 -> 32 ->
// 32 -> 2 with tanh hidden layers, a linear code and output, Glorot weights, Adam in mini-batches; the
// same figures and measures, and whether its codes are monotone along the spiral.
//
// The data: n = 1000 points per seed, t ~ U(0, 1) the position along the spiral, angle 3 pi t (one turn
// and a half), radius t, plus N(0, 0.04^2) noise on each coordinate; std::mt19937_64 seeded with the seed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <xtensor/xview.hpp>

#include "toy_plots.hpp"
#include "tutorial.hpp"
#include "tapegrad/autodiff.hpp"
#include "tapegrad/models/figures.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/models/trainer.hpp"

using namespace tapegrad;
using namespace tapegrad::examples;

namespace {

constexpr std::size_t points = 1000;
constexpr double turns = 1.5;
constexpr double noise = 0.04;

struct Setting {
    models::AutoencoderConfig config;
    models::TrainerOptions training;
    std::string name;
};

Setting setting(Protocol protocol, std::uint64_t seed) {
    if (protocol == Protocol::tutorial) {
        return {{.sizes = {2, 1}, .latent_activation = "sigmoid", .output_activation = "identity",
                 .init = nn::Init::xavier_normal, .seed = seed},
                {.epochs = 5000, .batch_size = points, .optimizer = "sgd", .lr = 0.5, .momentum = 0,
                 .validation_fraction = 0, .restore_best = false, .seed = seed},
                "2-1-2, sigmoid code, linear decoder, full-batch gradient descent, lr 0.5"};
    }
    return {{.sizes = {2, 32, 32, 1}, .activation = "tanh", .latent_activation = "identity",
             .output_activation = "identity", .init = nn::Init::xavier_uniform, .seed = seed},
            {.epochs = 1000, .batch_size = 50, .optimizer = "adam", .lr = 3e-3, .validation_fraction = 0,
             .restore_best = false, .seed = seed},
            "2-32-32-1-32-32-2 tanh, linear code and output, Adam lr 0.003, batches of 50"};
}

struct Spiral {
    nn::Dataset data;
    Array<double> x;             // the same points in double
    std::vector<double> position;  // t, the position along the spiral
};

Spiral spiral(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> uniform(0, 1);
    std::normal_distribution<double> jitter(0, noise);
    Spiral s;
    s.data.x = xt::empty<float>(Shape{points, 2});
    for (std::size_t i = 0; i < points; ++i) {
        double t = uniform(rng);
        double angle = 2 * std::numbers::pi * turns * t;
        s.data.x(i, 0) = static_cast<float>(t * std::cos(angle) + jitter(rng));
        s.data.x(i, 1) = static_cast<float>(t * std::sin(angle) + jitter(rng));
        s.position.push_back(t);
    }
    s.data.name = fmt::format("spiral, seed {}", seed);
    s.x = xt::cast<double>(s.data.x);
    return s;
}

double mse(const Array<double>& a, const Array<double>& b) { return xt::mean(xt::square(a - b))(); }

std::vector<double> ranks(const std::vector<double>& v) {
    std::vector<std::size_t> order(v.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
    std::vector<double> r(v.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        r[order[i]] = double(i);  // the values are continuous: no ties to share a rank
    }
    return r;
}

// Spearman's rank correlation: +-1 when the codes order the points as the spiral does (or reversed).
double rank_correlation(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> ra = ranks(a);
    std::vector<double> rb = ranks(b);
    double n = double(a.size());
    double mean = (n - 1) / 2;
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        ab += (ra[i] - mean) * (rb[i] - mean);
        aa += (ra[i] - mean) * (ra[i] - mean);
        bb += (rb[i] - mean) * (rb[i] - mean);
    }
    return ab / std::sqrt(aa * bb);
}

// The monotone pieces the codes cut the spiral into: the codes in order of position, smoothed by a running
// median of 15 points (the code's noise), then a new piece each time the code turns back by more than a
// tenth of its range from its last extreme. 1 for codes that order the spiral.
int monotone_pieces(const std::vector<double>& codes, const std::vector<double>& position) {
    std::vector<std::size_t> order(codes.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return position[a] < position[b]; });
    const std::size_t half = 7;
    std::vector<double> smooth;
    for (std::size_t i = half; i + half < order.size(); ++i) {
        std::vector<double> window;
        for (std::size_t j = i - half; j <= i + half; ++j) {
            window.push_back(codes[order[j]]);
        }
        std::nth_element(window.begin(), window.begin() + half, window.end());
        smooth.push_back(window[half]);
    }
    auto [lo, hi] = std::minmax_element(smooth.begin(), smooth.end());
    double turn = 0.1 * (*hi - *lo);
    int pieces = 1;
    int direction = 0;  // +1 rising, -1 falling, 0 until the code has moved by `turn` either way
    double low = smooth.front();  // the current piece's extreme (both, while the direction is unknown)
    double high = smooth.front();
    for (double v : smooth) {
        if (direction == 0) {
            low = std::min(low, v);
            high = std::max(high, v);
            direction = v > low + turn ? 1 : v < high - turn ? -1 : 0;
        } else if (direction > 0) {
            high = std::max(high, v);
            if (v < high - turn) {
                ++pieces;
                direction = -1;
                low = v;
            }
        } else {
            low = std::min(low, v);
            if (v > low + turn) {
                ++pieces;
                direction = 1;
                high = v;
            }
        }
    }
    return pieces;
}

// How far the reconstructions are from lying on one line: the sd across the best line through them over
// the sd along it (PCA's two explained variances); 0 for points on a line.
double off_line(const Array<double>& reconstruction) {
    models::Pca<double> pca({.components = 2});
    const Array<double>& variance = pca.fit(reconstruction).explained_variance();
    return std::sqrt(std::max(variance(1), 0.0) / variance(0));
}

struct Run {
    double ae_mse = 0;
    double pca_mse = 0;
    double rho = 0;        // rank correlation of the code with the position along the spiral
    int pieces = 0;        // monotone pieces of the code along the spiral
    double rho_pca = 0;    // rank correlation of the code with the PCA score
    double off_line = 0;
    std::vector<double> losses{};
    std::vector<double> codes{};
    Array<double> reconstruction{};
    Array<double> pca_reconstruction{};
    Array<double> curve{};    // the decoder's output along the codes' range
    Array<double> plane{};    // grid points of the plane
    Array<double> plane_error{};  // the reconstruction error at each
};

// The side of the grid of the error map: cells a hundredth of the plane's width, finer than the noise.
constexpr std::size_t plane_side = 100;

Array<double> grid_of(const Array<double>& x, std::size_t side) {
    double lo = xt::amin(x)() - 0.15;
    double hi = xt::amax(x)() + 0.15;
    Array<double> g = xt::empty<double>(Shape{side * side, 2});
    for (std::size_t i = 0; i < side; ++i) {
        for (std::size_t j = 0; j < side; ++j) {
            g(i * side + j, 0) = lo + (hi - lo) * double(j) / double(side - 1);
            g(i * side + j, 1) = lo + (hi - lo) * double(i) / double(side - 1);
        }
    }
    return g;
}

Run run_seed(Protocol protocol, std::uint64_t seed) {
    Spiral s = spiral(seed);
    Setting set = setting(protocol, seed + 1);
    models::Autoencoder<double> model(set.config);
    models::History history = models::Trainer<double>(model, set.training).fit(s.data);
    Run run;
    for (const models::EpochRecord& e : history.epochs) {
        run.losses.push_back(e.train_loss);
    }
    models::Pca<double> pca({.components = 1});
    Array<double> scores = pca.fit(s.x).encode(s.x);
    run.pca_reconstruction = pca.decode(scores);
    run.pca_mse = mse(run.pca_reconstruction, s.x);
    NoGrad off;
    Array<double> codes = model.encode(Var<double>(s.x)).value();
    run.codes.assign(codes.begin(), codes.end());
    run.reconstruction = model.decode(Var<double>(codes)).value();
    run.ae_mse = mse(run.reconstruction, s.x);
    run.rho = rank_correlation(run.codes, s.position);
    run.pieces = monotone_pieces(run.codes, s.position);
    run.rho_pca = rank_correlation(run.codes, std::vector<double>(scores.begin(), scores.end()));
    run.off_line = off_line(run.reconstruction);
    auto [lo, hi] = std::minmax_element(run.codes.begin(), run.codes.end());
    Array<double> along = xt::linspace<double>(*lo, *hi, 2000);
    along.reshape({2000, 1});
    run.curve = model.decode(Var<double>(along)).value();
    run.plane = grid_of(s.x, plane_side);
    run.plane_error = model.reconstruction_error(run.plane);
    return run;
}

Spread spread_at(const std::vector<Run>& runs, auto field) {
    std::vector<double> v;
    for (const Run& r : runs) {
        v.push_back(field(r));
    }
    return spread_of(v);
}

void report(Results& r, const std::string& name, const std::string& what, const Spread& s) {
    r.measured(name, s);
    fmt::print("{:<52} {}\n", what, describe(s));
}

void add_points(const Array<double>& a, std::int64_t label, std::vector<double>& xs, std::vector<double>& ys,
                std::vector<std::int64_t>& labels) {
    for (std::size_t i = 0; i < a.shape(0); ++i) {
        xs.push_back(a(i, 0));
        ys.push_back(a(i, 1));
        labels.push_back(label);
    }
}

std::vector<double> column(const Array<double>& a, std::size_t j) {
    std::vector<double> out;
    for (std::size_t i = 0; i < a.shape(0); ++i) {
        out.push_back(a(i, j));
    }
    return out;
}

// The three figures the tutorial describes, for the first seed, and its loss curve.
void figures(const std::string& out, const std::string& tag, const std::string& what, std::uint64_t seed,
             const Run& run, const std::vector<Run>& runs, Results& r) {
    Spiral s = spiral(seed);
    std::vector<double> xs, ys;
    std::vector<std::int64_t> labels;
    add_points(s.x, 0, xs, ys, labels);
    add_points(run.pca_reconstruction, 1, xs, ys, labels);
    add_points(run.curve, 2, xs, ys, labels);
    add_points(run.reconstruction, 3, xs, ys, labels);
    models::plot_scatter(
        fmt::format("{}/reconstruction_{}.png", out, tag),
        fmt::format("{}, seed {}: the spiral and its reconstruction", what, seed), "x", "y", xs, ys, labels,
        {.width = 900, .height = 850,
         .label_names = {"data", fmt::format("PCA, 1 component (MSE {:.4f})", run.pca_mse),
                         "the decoder's curve over the codes' range, under the reconstructions",
                         fmt::format("autoencoder reconstructions (MSE {:.4f})", run.ae_mse)}});
    r.figure(fmt::format("reconstruction_{}.png", tag));

    models::plot_scatter(fmt::format("{}/codes_{}.png", out, tag),
                         fmt::format("{}, seed {}: code against position (rank correlation {:.3f})", what, seed,
                                     run.rho),
                         "position along the spiral, t", "1-D code", s.position, run.codes, {});
    r.figure(fmt::format("codes_{}.png", tag));

    // A log colour scale: the error spans decades, from the curve the decoder draws to the plane's corners.
    std::vector<double> grid_x(plane_side), grid_y(plane_side);
    for (std::size_t j = 0; j < plane_side; ++j) {
        grid_x[j] = run.plane(j, 0);
        grid_y[j] = run.plane(j * plane_side, 1);
    }
    Array<double> error = run.plane_error;
    error.reshape({plane_side, plane_side});
    models::plot_heatmap(fmt::format("{}/error_{}.png", out, tag),
                         fmt::format("{}, seed {}: reconstruction MSE over the plane", what, seed), "x", "y", grid_x,
                         grid_y, error,
                         {.width = 1100, .height = 900, .cb_label = "reconstruction MSE (mean over x and y)",
                          .log_cb = true, .points = {{"the spiral's points", column(s.x, 0), column(s.x, 1)}}});
    r.figure(fmt::format("error_{}.png", tag));

    // Each seed's loss over its own PCA's error: 1 is PCA's line, below it the autoencoder does better.
    std::vector<std::vector<double>> ratios;
    for (const Run& x : runs) {
        ratios.push_back(x.losses);
        for (double& v : ratios.back()) {
            v /= x.pca_mse;
        }
    }
    std::vector<models::Series> series = loss_envelope("autoencoder", ratios);
    series.push_back({"PCA with 1 component", {1, double(ratios.front().size())}, {1, 1}});
    models::plot_lines(fmt::format("{}/loss_{}.png", out, tag),
                       fmt::format("{}: training loss by epoch, {} seeds", what, runs.size()), "epoch",
                       "training MSE / PCA's MSE on the same points", series, {.log_y = true});
    r.figure(fmt::format("loss_{}.png", tag));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tutorial 001: a 2 -> 1 -> 2 autoencoder on a spiral, against PCA with one component"};
    TutorialArgs args;
    args.seeds = 3;
    args.out = "runs/spiral";
    add_tutorial_options(app, args);
    if (auto code = parse_command_line(app, argc, argv)) {
        return *code;
    }
    try {
        claim_run_folder(
            "spiral", args.out,
            {"results.json", "reconstruction_tutorial.png", "codes_tutorial.png", "error_tutorial.png",
             "loss_tutorial.png", "reconstruction_corrected.png", "codes_corrected.png", "error_corrected.png",
             "loss_corrected.png"},
            args.overwrite);
        configure_blas(argv, args.threads);
        Setting set = setting(args.protocol, 0);
        fmt::print("tutorial 001, protocol {}: {}; {} spiral points, seeds {}-{}\nBLAS: {}\n", to_string(args.protocol),
                   set.name, points, args.first_seed, args.first_seed + std::uint64_t(args.seeds) - 1, blas_summary());
        auto start = std::chrono::steady_clock::now();
        std::vector<Run> runs;
        for (std::uint64_t seed : args.seed_list()) {
            runs.push_back(run_seed(args.protocol, seed));
            const Run& run = runs.back();
            fmt::print("seed {}: autoencoder MSE {:.5f}, PCA {:.5f}, rank correlation {:+.3f} ({} monotone pieces), "
                       "off its line {:.2e}\n",
                       seed, run.ae_mse, run.pca_mse, run.rho, run.pieces, run.off_line);
        }
        Results r("001", "spiral", args);
        fmt::print("\nover {} seeds (mean +- sd, range)\n", args.seeds);
        report(r, "ae_mse", "autoencoder MSE", spread_at(runs, [](const Run& x) { return x.ae_mse; }));
        report(r, "pca_mse", "PCA, 1 component, MSE", spread_at(runs, [](const Run& x) { return x.pca_mse; }));
        report(r, "ae_over_pca", "autoencoder MSE / PCA MSE",
               spread_at(runs, [](const Run& x) { return x.ae_mse / x.pca_mse; }));
        report(r, "rank_correlation", "|rank correlation| of code and position",
               spread_at(runs, [](const Run& x) { return std::abs(x.rho); }));
        report(r, "rank_correlation_pca", "|rank correlation| of code and PCA's score",
               spread_at(runs, [](const Run& x) { return std::abs(x.rho_pca); }));
        report(r, "monotone_pieces", "monotone pieces of the code along the spiral",
               spread_at(runs, [](const Run& x) { return double(x.pieces); }));
        report(r, "off_line", "reconstructions: sd off their line / sd along it",
               spread_at(runs, [](const Run& x) { return x.off_line; }));
        std::vector<std::uint64_t> ordered;
        for (std::size_t k = 0; k < runs.size(); ++k) {
            if (runs[k].pieces == 1) {
                ordered.push_back(args.seed_list()[k]);
            }
        }
        fmt::print("seeds whose codes order the spiral (one monotone piece): {} of {}\n", ordered.size(), runs.size());
        r.json["seeds_ordering_the_spiral"] = ordered;
        std::string tag(to_string(args.protocol));
        std::string what = args.protocol == Protocol::tutorial ? "tutorial 001 as read, 2-1-2"
                                                               : "tutorial 001 corrected, 2-32-32-1-32-32-2";
        figures(args.out, tag, what, args.first_seed, runs.front(), runs, r);
        r.json["model"] = set.name;
        r.json["data"] = fmt::format("{} points: t ~ U(0, 1), angle 2 pi {} t, radius t, noise N(0, {}^2) per "
                                     "coordinate",
                                     points, turns, noise);
        r.json["epochs"] = set.training.epochs;
        r.json["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        r.write(args.out);
    } catch (const Error& e) {
        fmt::print(stderr, "{}\n", e.what());
        return 1;
    }
    return 0;
}
