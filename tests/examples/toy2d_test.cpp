// Tutorial 000 (examples/toy2d.cpp): its hand-written gradient is twice the true one, the program's
// training takes the tutorial's steps, and under --protocol tutorial on three seeds the figures the
// tutorial printed fall inside the spread of ours, while PCA done in one space is below both.
#include <cmath>
#include <random>
#include <vector>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xview.hpp>

#include "../../examples/ring_data.hpp"
#include "../../examples/toy_model.hpp"
#include "tutorial_checks.hpp"

using namespace tapegrad;

namespace {

using Params = std::vector<Array<double>>;  // we1 be1 we2 be2 wd1 bd1 wd2 bd2, the tutorial's order

// The tutorial's forward (cell 8): tanh after every layer; z[k] before the tanh, a[k] after (a[0] = x).
struct Forward {
    std::vector<Array<double>> z;
    std::vector<Array<double>> a;
};

Forward forward(const Array<double>& x, const Params& p) {
    Forward f{{}, {x}};
    for (std::size_t k = 0; k < 4; ++k) {
        f.z.push_back(xt::linalg::dot(f.a.back(), p[2 * k]) + p[2 * k + 1]);
        f.a.push_back(xt::tanh(f.z.back()));
    }
    return f;
}

// compute_loss: the mean over all N * 2 elements.
double tutorial_loss(const Array<double>& x, const Params& p) {
    return xt::mean(xt::square(x - forward(x, p).a.back()))();
}

Array<double> tanh_derivative(const Array<double>& z) { return 1.0 - xt::square(xt::tanh(z)); }

// The tutorial's backward pass, formula for formula: 2 (output - x) tanh'(z4), each weight's gradient
// divided by N, each bias's the mean over the rows.
Params tutorial_gradient(const Array<double>& x, const Params& p) {
    Forward f = forward(x, p);
    double n = double(x.shape(0));
    Params g(8);
    Array<double> d = 2.0 * (f.a[4] - x) * tanh_derivative(f.z[3]);  // d_output
    for (std::size_t k = 4; k-- > 0;) {
        g[2 * k] = xt::linalg::dot(xt::transpose(f.a[k]), d) / n;
        g[2 * k + 1] = xt::mean(d, {0});
        if (k > 0) {
            d = xt::linalg::dot(d, xt::transpose(p[2 * k])) * tanh_derivative(f.z[k - 1]);
        }
    }
    return g;
}

Params values_of(models::Autoencoder<double>& model) {
    Params p;
    for (auto& np : model.named_parameters()) {
        p.push_back(np.var.value());
    }
    return p;
}

// The tutorial's network with randn weights (and biases, or zeros).
struct TutorialModel : models::Autoencoder<double> {
    TutorialModel(std::uint64_t seed, bool random_biases)
        : models::Autoencoder<double>(examples::toy_config("tanh", nn::Init::zeros, seed)) {
        std::mt19937_64 rng(seed + 100);
        examples::tutorial_init<double>(*this, rng, random_biases);
    }
};

}  // namespace

TEST_CASE("toy2d: the tutorial's hand-written gradient is twice the true gradient of its loss") {
    for (std::uint64_t seed : {0, 1, 2}) {
        CAPTURE(seed);
        Array<double> x = examples::ring_points_raw(1000, seed);
        TutorialModel model(seed, true);
        model.zero_grad();
        model.loss(Var<double>(x)).backward();
        auto named = model.named_parameters();
        Params p = values_of(model);
        Params hand = tutorial_gradient(x, p);
        REQUIRE(named.size() == 8);
        for (std::size_t k = 0; k < 8; ++k) {
            CAPTURE(named[k].name);
            const Array<double>& engine = named[k].var.grad().value();
            REQUIRE(engine.shape() == hand[k].shape());
            for (std::size_t i = 0; i < engine.size(); ++i) {
                CAPTURE(i);
                double h = hand[k].flat(i);
                double e = engine.flat(i);
                CHECK(std::abs(h - 2 * e) <= 1e-12 * std::max(1.0, std::abs(h)));
                CHECK(std::abs(h - e) > 0.4 * std::abs(h));  // not the true gradient itself
                // The true gradient, by central differences of the tutorial's own loss.
                Params up = p;
                Params down = p;
                const double step = 1e-6;
                up[k].flat(i) += step;
                down[k].flat(i) -= step;
                double numeric = (tutorial_loss(x, up) - tutorial_loss(x, down)) / (2 * step);
                CHECK(e == doctest::Approx(numeric).epsilon(1e-6));
            }
        }
    }
}

TEST_CASE("toy2d: the program's training (SGD at lr 2 * 0.05 on the true gradient) takes the tutorial's steps") {
    const int steps = 5;
    std::uint64_t seed = 3;
    nn::Dataset data{.x = xt::cast<float>(examples::ring_points_raw(1000, seed)), .labels = {}, .name = "ring"};
    Array<double> x = xt::cast<double>(data.x);
    TutorialModel model(seed, false);
    Params p = values_of(model);
    std::vector<double> losses;
    for (int s = 0; s < steps; ++s) {
        losses.push_back(tutorial_loss(x, p));
        Params g = tutorial_gradient(x, p);
        for (std::size_t k = 0; k < 8; ++k) {
            p[k] -= examples::tutorial_lr * g[k];
        }
    }
    models::History history = models::Trainer<double>(model, examples::tutorial_training(1000, steps, seed)).fit(data);
    REQUIRE(history.epochs.size() == std::size_t(steps));
    for (int s = 0; s < steps; ++s) {
        CAPTURE(s);
        CHECK(history.epochs[std::size_t(s)].train_loss == doctest::Approx(losses[std::size_t(s)]).epsilon(1e-12));
    }
    Params trained = values_of(model);
    for (std::size_t k = 0; k < 8; ++k) {
        CAPTURE(k);
        CHECK(xt::amax(xt::abs(trained[k] - p[k]))() <= 1e-12);
    }
}

TEST_CASE("toy2d --protocol tutorial: its printed figures are inside our spread; PCA in one space is lower") {
    cli::TempDir dir("toy2d_test");
    cli::json r = tutorial::run({"--protocol", "tutorial", "--seeds", "3"}, dir);
    CHECK(r.at("protocol") == "tutorial");
    const cli::json& printed = r.at("tutorial_printed");
    // Untrained (randn weights and biases), PCA the tutorial's way, trained, and the loss at each epoch it
    // printed: every printed figure, each against ours under the same name.
    REQUIRE(printed.size() == 14);
    for (const auto& [name, value] : printed.items()) {
        CAPTURE(name);
        tutorial::check_inside_spread(r, name, value.get<double>());
    }
    // Seed by seed, PCA with both sides in the raw space is below the tutorial's mixed-space figure and
    // below the trained autoencoder: the tutorial's "the autoencoder beats PCA" compares across spaces.
    const cli::json& m = r.at("measured");
    auto values = [&](const char* name) { return m.at(name).at("values").get<std::vector<double>>(); };
    std::vector<double> raw = values("pca_raw_mse");
    std::vector<double> mixed = values("pca_mixed_space_mse");
    std::vector<double> trained = values("trained_mse");
    REQUIRE(raw.size() == 3);
    for (std::size_t s = 0; s < raw.size(); ++s) {
        CAPTURE(s);
        CHECK(raw[s] < mixed[s]);
        CHECK(raw[s] < trained[s]);
    }
    CHECK(tutorial::mean_of(r, "pca_standardised_mse") > tutorial::mean_of(r, "pca_mixed_space_mse"));
}

TEST_CASE("toy2d --protocol corrected: a linear output reaches PCA and no lower, a tanh output stays above") {
    cli::TempDir dir("toy2d_test");
    cli::json r = tutorial::run({"--seeds", "1", "--first-seed", "4"}, dir);
    CHECK(r.at("protocol") == "corrected");
    double linear_gap = tutorial::mean_of(r, "ae_linear_minus_pca");
    double tanh_gap = tutorial::mean_of(r, "ae_tanh_minus_pca");
    // Its reconstructions lie on a line, so it cannot go below PCA's best line at all.
    CHECK(linear_gap >= -1e-9);
    CHECK(linear_gap < 0.003);
    CHECK(tanh_gap > 0.01);
}

TEST_CASE("toy2d keeps an earlier run unless --overwrite") {
    cli::TempDir dir("toy2d_test");
    std::vector<std::string> args = {"--protocol", "tutorial", "--seeds", "1"};
    tutorial::run(args, dir);
    std::vector<std::string> again = args;
    again.insert(again.end(), {"--out", (dir.path / "run").string()});
    cli::Run refused = cli::run_program(TAPEGRAD_EXAMPLE, again, dir);
    cli::check_one_line_error(refused, "toy2d: ", {"already holds a run", "results.json", "--overwrite"});
    args.push_back("--overwrite");
    tutorial::run(args, dir);
}

TEST_CASE("toy2d: a usage error is one line that names the option and points to --help") {
    cli::TempDir dir("toy2d_test");
    for (const auto& [args, word] : std::vector<std::pair<std::vector<std::string>, std::string>>{
             {{"--seeds", "0"}, "--seeds"}, {{"--protocol", "as-written"}, "--protocol"}, {{"--bogus"}, "--bogus"}}) {
        cli::Run r = cli::run_program(TAPEGRAD_EXAMPLE, args, dir);
        cli::check_one_line_error(r, "toy2d: ", {word, "(toy2d --help tells more)"});
    }
}
