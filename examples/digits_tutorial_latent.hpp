// Tutorial 002, sections 9 and 10: the rate-distortion sweep over the latent size, and interpolation
// between two test digits in code space.
#pragma once

#include "digits_tutorial_compare.hpp"
#include "digits_tutorial_recipe.hpp"
#include "tapegrad/models/figures.hpp"

namespace tapegrad::examples::digits {

// d = 1 ... 64 with hidden layers of max(d + 4, 32). The tutorial scores each on the first 200 test rows;
// the corrected protocol on all 360, beside PCA with d components scored on the same rows.
inline void sweep(Context& c, Results& r) {
    const std::vector<std::size_t> all = {1, 2, 4, 8, 12, 16, 24, 32, 48, 64};
    // What the notebook's own code prints ("d= 1: MSE=0.07264" ...).
    const std::vector<double> printed = {0.07264, 0.06842, 0.05364, 0.05232, 0.04955,
                                         0.04837, 0.05033, 0.03823, 0.03576, 0.03122};
    for (std::size_t i = 0; i < all.size(); ++i) {
        r.printed(fmt::format("ae_test_mse_d{}", all[i]), printed[i]);
    }
    const std::vector<std::size_t> latents = c.latents_or(all);
    r.json["tutorial_claims"] = {"Bottleneck matters: Smaller latent dimension = more compression = higher "
                                 "reconstruction error"};
    const std::size_t scored = c.tutorial() ? 200 : c.data.test.size();
    Array<float> x = rows(c.data.test.x, 0, scored);
    fmt::print("rate-distortion: 64-h-d-h-64, h = max(d + 4, 32), {}; scored on the first {} test rows\n",
               c.recipe.describe(30), scored);
    std::map<std::size_t, std::vector<double>> mse;
    std::vector<double> rises;  // per seed: how many steps up the d ladder raise the MSE
    for (std::uint64_t seed : c.args.seed_list()) {
        double previous = 0;
        int up = 0;
        for (std::size_t d : latents) {
            Trained t = train(c.recipe, c.data.train, 30, seed, c.recipe.config(d, seed, std::max<std::size_t>(d + 4, 32)));
            double e = test_mse(*t.model, x);
            mse[d].push_back(e);
            up += d != latents.front() && e > previous;
            previous = e;
            fmt::print("seed {} d={:2}: MSE={:.5f}\n", seed, d, e);
        }
        rises.push_back(up);
    }
    models::Series mean{fmt::format("autoencoder, mean of {} seeds", c.args.seeds), {}, {}};
    models::Series best{"autoencoder, best seed", {}, {}};
    models::Series worst{"autoencoder, worst seed", {}, {}};
    models::Series linear{"PCA with d components (fitted on the training digits)", {}, {}};
    for (std::size_t d : latents) {
        Spread s = spread_of(mse[d]);
        r.measured(fmt::format("ae_test_mse_d{}", d), s);
        models::Pca<float> pca({.components = d});
        double p = mean_of(pca.fit(c.data.train.x).reconstruction_error(x));
        r.measured(fmt::format("pca_test_mse_d{}", d), spread_of({p}));
        for (models::Series* series : {&mean, &best, &worst, &linear}) {
            series->x.push_back(double(d));
        }
        mean.y.push_back(s.mean);
        best.y.push_back(s.min);
        worst.y.push_back(s.max);
        linear.y.push_back(p);
    }
    r.measured("rises_with_d", spread_of(rises));
    std::vector<models::Series> series = {mean, best, worst, linear};
    if (c.args.seeds == 1) {
        series = {mean, linear};
    }
    models::plot_lines(c.path("rate_distortion.png"),
                       fmt::format("rate-distortion: MSE on the first {} test digits, {}", scored, c.protocol_name()),
                       "latent dimension d (the input has 64)", "reconstruction MSE", series,
                       {.marks = {{64, mean.y.back(), "d = 64, the input's dimension"}}});
    r.figure("rate_distortion.png");
}

// The first 3 and the first 8 of the test set, encoded by a d = 16 autoencoder (the tutorial reuses its
// section-3 model: 30 epochs), decoded at 10 evenly spaced points between their codes.
inline void interpolation(Context& c, Results& r) {
    auto first_of = [&](std::int64_t digit) {
        auto at = std::find(c.data.test.labels.begin(), c.data.test.labels.end(), digit);
        return static_cast<std::size_t>(at - c.data.test.labels.begin());
    };
    std::size_t i3 = first_of(3);
    std::size_t i8 = first_of(8);
    Array<float> three = xt::row(c.data.test.x, static_cast<std::ptrdiff_t>(i3));
    Array<float> eight = xt::row(c.data.test.x, static_cast<std::ptrdiff_t>(i8));
    const std::size_t steps = 10;
    fmt::print("interpolation from test row {} (a 3) to test row {} (an 8), latent 16, {}\n", i3, i8,
               c.recipe.describe(30));
    std::vector<Array<float>> paths;
    std::vector<std::string> labels;
    std::vector<double> start_mse, end_mse;
    for (std::uint64_t seed : c.args.seed_list()) {
        Trained t = train(c.recipe, c.data.train, 30, seed, c.recipe.config(16, seed));
        Array<float> path = models::interpolate(*t.model, three, eight, steps);
        start_mse.push_back(mse_between(xt::row(path, 0), three));
        end_mse.push_back(mse_between(xt::row(path, steps - 1), eight));
        fmt::print("seed {}: the path's ends against the digits: MSE {:.5f} (the 3), {:.5f} (the 8)\n", seed,
                   start_mse.back(), end_mse.back());
        if (paths.size() < 3) {
            paths.push_back(path);
            labels.push_back(fmt::format("code space, seed {}", seed));
        }
    }
    Array<float> blend = xt::empty<float>(Shape{steps, 64});
    for (std::size_t i = 0; i < steps; ++i) {
        float a = float(i) / float(steps - 1);  // np.linspace(0, 1, 10)
        xt::row(blend, static_cast<std::ptrdiff_t>(i)) = (1 - a) * three + a * eight;
    }
    paths.push_back(blend);
    labels.push_back("pixel blend");
    r.measured("start_reconstruction_mse", spread_of(start_mse));
    r.measured("end_reconstruction_mse", spread_of(end_mse));
    r.json["from_test_row"] = i3;
    r.json["to_test_row"] = i8;
    r.json["tutorial_claims"] = {"Standard autoencoders may have discontinuous latent spaces"};
    // Each step's alpha over its column, to two decimals: the tutorial's one-decimal titles read 0.4, then
    // 0.6 (4/9 and 5/9), as if a step were missing.
    std::vector<std::string> alphas;
    for (std::size_t i = 0; i < steps; ++i) {
        alphas.push_back(fmt::format("{:.2f}", double(i) / double(steps - 1)));
    }
    models::write_comparison(c.path("interpolation.png"), paths, 8, 8, 0,
                             {.row_labels = labels, .column_labels = alphas});
    r.figure("interpolation.png");
}

}  // namespace tapegrad::examples::digits
