// Tutorial 004 (EXPERIMENTS.md), "Autoencoders from Scratch: A Comprehensive Guide": its numbers made
// runnable. Many are illustrative (its forward passes print "example values" from no given weights);
// these are the ones its own inputs determine or its own recipe can reproduce.
//
//   arithmetic     its worked MSEs and its parameter count, from its own vectors, through tapegrad's ops
//   step-by-step   its 5 x 8 data through 8-4-2-4-8 (ReLU everywhere but the linear output, Xavier,
//                  per-sample SGD, lr 0.01, 50 epochs, its backward) over seeds, against the losses it
//                  prints; also its fit() recipe (global min-max scaling, batch 32). Corrected: the MSE's
//                  own gradient with Adam, for its model (whose ReLU units die) and for one with tanh, a
//                  linear code and centred features, beside PCA with 1 and 2 components and the mean.
//   pca-comparison its "Comparison with PCA", which sets the autoencoder's test error against PCA's
//                  training error, on the digits (/16, scikit-learn's split, random_state 42).
//   compression    its "compression vs quality" curve, encoding_dims 2, 5, 10, 20, 50, on the digits.
//
// Its anomaly threshold, the 95th percentile of the training errors, is a right recipe: no experiment.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <xtensor/xview.hpp>

#include "guide_objective.hpp"
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

using Vector = std::vector<double>;

// ---- arithmetic -----------------------------------------------------------------------------------------

Var<double> var_of(const Vector& v) {
    Array<double> a = xt::empty<double>(Shape{v.size()});
    std::copy(v.begin(), v.end(), a.begin());
    return Var<double>(std::move(a));
}

double mse_of(const Vector& a, const Vector& b) {
    Var<double> diff = var_of(a) - var_of(b);
    return mean(diff * diff).item();
}

double sum_of_squares(const Vector& a, const Vector& b) {
    Var<double> diff = var_of(a) - var_of(b);
    return sum(diff * diff).item();
}

// One line of the table: what the guide printed beside what its inputs give.
void compare(Results& r, const std::string& name, const std::string& what, double printed, double ours) {
    r.printed(name, printed);
    r.measured(name, spread_of({ours}));
    fmt::print("{:<58} {:>10.7g} {:>12.7g}  {}\n", what, printed, ours,
               std::abs(printed - ours) <= 1e-9 * std::max(1.0, std::abs(ours)) ? "right" : "WRONG");
}

int run_arithmetic(const TutorialArgs& args) {
    Results r("004", "arithmetic", args);
    fmt::print("the guide's worked numbers from its own inputs (tapegrad ops, double; nothing random)\n");
    fmt::print("{:<58} {:>10} {:>12}\n", "", "guide", "its inputs");
    compare(r, "mse_6d", "6-D example: MSE([2.5 1.3 0.8 3.2 1.9 2.1], [2.4 ... 2.0])", 0.025,
            mse_of({2.5, 1.3, 0.8, 3.2, 1.9, 2.1}, {2.4, 1.4, 0.9, 3.0, 1.8, 2.0}));
    Vector sample_1 = {1.0, 2.0, 1.5, 3.0, 2.5, 1.8, 2.2, 1.3};
    Vector output_1 = {1.1, 1.8, 1.6, 2.7, 2.3, 1.9, 2.0, 1.4};
    compare(r, "mse_step_3", "step 3: MSE(sample 1, its x_hat)", 0.03125, mse_of(sample_1, output_1));
    Vector new_sample = {1.05, 1.95, 1.55, 2.95, 2.45, 1.75, 2.15, 1.35};
    Vector reconstructed = {1.02, 1.98, 1.53, 2.97, 2.43, 1.77, 2.13, 1.36};
    compare(r, "reconstruction_error_step_8", "step 8: reconstruction_error = MSE(new_sample, reconstructed)",
            0.0042, mse_of(new_sample, reconstructed));
    double squares = sum_of_squares(new_sample, reconstructed);
    r.json["step_8_sum_of_squares"] = squares;
    fmt::print("{:<58} {:>10} {:>12.7g}  (the guide's 0.0042 is neither)\n", "  the same squared errors summed", "",
               squares);

    // 100 -> 50 -> 10 -> 50 -> 100, a tapegrad model of it.
    models::Autoencoder<float> model(guide_config({100, 50, 10}, 0));
    compare(r, "parameters_encoder", "parameters, encoder 100-50-10", 5560,
            static_cast<double>(model.encoder().parameter_count()));
    compare(r, "parameters_decoder", "parameters, decoder 10-50-100", 5650,
            static_cast<double>(model.decoder().parameter_count()));
    compare(r, "parameters", "parameters, 100-50-10-50-100", 11210, static_cast<double>(model.parameter_count()));
    r.write(args.out);
    return 0;
}

// ---- step-by-step: the 5 x 8 example --------------------------------------------------------------------

// The guide's dataset, 5 samples x 8 features, and the new sample of its step 8.
Array<float> guide_rows() {
    return {{1.0f, 2.0f, 1.5f, 3.0f, 2.5f, 1.8f, 2.2f, 1.3f},
            {1.2f, 1.9f, 1.6f, 2.8f, 2.3f, 1.7f, 2.1f, 1.4f},
            {0.9f, 2.1f, 1.4f, 3.2f, 2.6f, 1.9f, 2.3f, 1.2f},
            {1.1f, 2.0f, 1.5f, 2.9f, 2.4f, 1.8f, 2.0f, 1.3f},
            {1.0f, 1.8f, 1.7f, 3.1f, 2.7f, 2.0f, 2.4f, 1.5f}};
}
Array<float> guide_new_sample() { return {{1.05f, 1.95f, 1.55f, 2.95f, 2.45f, 1.75f, 2.15f, 1.35f}}; }

// The epochs its step 7 prints, and what it prints for them.
const std::vector<int> reported_epochs = {1, 10, 20, 50};
const Vector guide_losses = {0.048, 0.022, 0.012, 0.005};

// Code units that take one value on every sample, and so carry nothing: a ReLU code unit that no input
// reaches is 0 on all of them, passes no gradient, and stays dead; a linear one is constant when every
// hidden unit before it is dead.
int dead_code_units(models::Autoencoder<float>& model, const Array<float>& x) {
    NoGrad off;
    Array<float> codes = model.encode(Var<float>(x)).value();
    Array<float> spread = xt::amax(codes, {0}) - xt::amin(codes, {0});
    return static_cast<int>(std::count_if(spread.begin(), spread.end(), [](float v) { return v <= 1e-6f; }));
}

double mse_against(const Array<float>& a, const Array<float>& b) {
    return static_cast<double>(xt::mean(xt::square(a - b))());
}

Array<float> reconstructed(models::Autoencoder<float>& model, const Array<float>& x) {
    NoGrad off;
    return model.reconstruct(Var<float>(x)).value();
}

// One run's record: the loss by epoch (in the units the run trains in), and the trained model's MSE on the
// 5 rows and on the new sample, in the data's own units.
struct StepRun {
    Vector loss_by_epoch;
    double final_mse = 0;
    double new_sample_mse = 0;
    int dead_before = 0;
    int dead_after = 0;
    bool collapsed = false;  // the same reconstruction for every row: at best the mean predictor
};

// What is done to X before training, and undone after: nothing (the guide's steps), the guide's fit()
// (one min and one max for all values, to [0, 1]), or centring each feature (as PCA does).
enum class Preprocess { raw, min_max, centred };

StepRun train_steps(models::Autoencoder<float>& model, const Array<float>& x, const models::TrainerOptions& options,
                    Preprocess preprocess) {
    nn::MinMaxScaler scaler(nn::MinMaxScaler::Scope::global);
    Array<float> centre = xt::mean(x, {0});
    auto to_model = [&](const Array<float>& a) -> Array<float> {
        switch (preprocess) {
            case Preprocess::min_max: return scaler.transform(a);
            case Preprocess::centred: return a - centre;
            default: return a;
        }
    };
    auto to_data = [&](const Array<float>& a) -> Array<float> {
        switch (preprocess) {
            case Preprocess::min_max: return scaler.inverse_transform(a);
            case Preprocess::centred: return a + centre;
            default: return a;
        }
    };
    scaler.fit(x);
    Array<float> input = to_model(x);
    StepRun run;
    run.dead_before = dead_code_units(model, input);
    models::History history =
        models::Trainer<float>(model, options).fit(nn::Dataset{.x = input, .labels = {}, .name = "guide's 5 x 8"});
    for (const models::EpochRecord& e : history.epochs) {
        // The guide's objective reports its MSE as a term; a plain model's loss is the MSE itself.
        run.loss_by_epoch.push_back(e.terms.empty() ? e.train_loss : e.terms[0].second);
    }
    run.dead_after = dead_code_units(model, input);
    Array<float> output = to_data(reconstructed(model, input));
    run.collapsed = xt::amax(xt::amax(output, {0}) - xt::amin(output, {0}))() <= 1e-5f;
    run.final_mse = mse_against(output, x);
    Array<float> sample = guide_new_sample();
    run.new_sample_mse = mse_against(to_data(reconstructed(model, to_model(sample))), sample);
    return run;
}

struct StepSummary {
    std::vector<StepRun> runs;
    Spread at(int epoch) const {
        Vector v;
        for (const StepRun& r : runs) {
            v.push_back(r.loss_by_epoch.at(static_cast<std::size_t>(epoch - 1)));
        }
        return spread_of(v);
    }
    template <class F>
    Spread of(F StepRun::*field) const {
        Vector v;
        for (const StepRun& r : runs) {
            v.push_back(static_cast<double>(r.*field));
        }
        return spread_of(v);
    }
    int runs_with_dead(int StepRun::*field) const {
        return static_cast<int>(std::ranges::count_if(runs, [&](const StepRun& r) { return r.*field > 0; }));
    }
};

// Records the spreads of a set of runs under `prefix` and prints them beside the guide's figures.
void report_steps(Results& r, const std::string& prefix, const std::string& title, const StepSummary& s,
                  bool beside_guide) {
    fmt::print("\n{}\n", title);
    for (std::size_t i = 0; i < reported_epochs.size(); ++i) {
        int epoch = reported_epochs[i];
        if (static_cast<std::size_t>(epoch) > s.runs.front().loss_by_epoch.size()) {
            continue;
        }
        Spread at = s.at(epoch);
        std::string name = fmt::format("{}loss_epoch_{}", prefix, epoch);
        r.measured(name, at);
        if (beside_guide) {
            r.printed(name, guide_losses[i]);
        }
        fmt::print("  epoch {:>4}: loss {}{}\n", epoch, describe(at),
                   beside_guide ? fmt::format("   (guide: {})", guide_losses[i]) : "");
    }
    std::size_t last = s.runs.front().loss_by_epoch.size();
    if (last != static_cast<std::size_t>(reported_epochs.back())) {
        Spread at = s.at(static_cast<int>(last));
        r.measured(fmt::format("{}loss_epoch_{}", prefix, last), at);
        fmt::print("  epoch {:>4}: loss {}\n", last, describe(at));
    }
    r.measured(prefix + "final_mse", s.of(&StepRun::final_mse));
    r.measured(prefix + "new_sample_mse", s.of(&StepRun::new_sample_mse));
    r.measured(prefix + "dead_code_units_before", s.of(&StepRun::dead_before));
    r.measured(prefix + "dead_code_units_after", s.of(&StepRun::dead_after));
    r.json[prefix + "runs_with_a_dead_code_unit"] = s.runs_with_dead(&StepRun::dead_after);
    int collapsed = static_cast<int>(std::ranges::count_if(s.runs, [](const StepRun& run) { return run.collapsed; }));
    r.json[prefix + "collapsed_runs"] = collapsed;
    fmt::print("  trained, in the data's units: MSE on the 5 rows {}; on the guide's new sample {}\n",
               describe(s.of(&StepRun::final_mse), 6), describe(s.of(&StepRun::new_sample_mse), 6));
    fmt::print("  dead code units (one value on all 5 rows): {} runs of {} end with at least one ({} at initialisation); "
               "{} end with both\n",
               s.runs_with_dead(&StepRun::dead_after), s.runs.size(), s.runs_with_dead(&StepRun::dead_before),
               std::ranges::count_if(s.runs, [](const StepRun& run) { return run.dead_after == 2; }));
    fmt::print("  collapsed (the same output for all 5 rows: the mean predictor at best): {} runs of {}\n", collapsed,
               s.runs.size());
}

// The loss by epoch over the seeds, their mean and, at each epoch, the lowest and the highest, with the
// guide's printed values (or the baselines) beside them.
void plot_steps(const std::string& path, const std::string& title, const std::string& y_label, const StepSummary& s,
                std::vector<models::Series> extra) {
    models::Series mean{fmt::format("mean of {} seeds", s.runs.size()), {}, {}};
    models::Series low{"lowest seed at each epoch", {}, {}};
    models::Series high{"highest seed at each epoch", {}, {}};
    for (std::size_t e = 1; e <= s.runs.front().loss_by_epoch.size(); ++e) {
        Spread at = s.at(static_cast<int>(e));
        for (models::Series* series : {&mean, &low, &high}) {
            series->x.push_back(static_cast<double>(e));
        }
        mean.y.push_back(at.mean);
        low.y.push_back(at.min);
        high.y.push_back(at.max);
    }
    std::vector<models::Series> series = {mean, low, high};
    for (models::Series& e : extra) {
        series.push_back(std::move(e));
    }
    models::plot_lines(path, title, "epoch", y_label, series, {.log_y = true});
}

models::Series guide_printed_series() {
    models::Series s{"the guide's printed losses", {}, guide_losses};
    for (int e : reported_epochs) {
        s.x.push_back(e);
    }
    return s;
}

int run_steps_tutorial(const TutorialArgs& args) {
    Results r("004", "step-by-step", args);
    Array<float> x = guide_rows();
    // Small Xavier weights and zero biases start the output near 0: the first losses are near mean(x^2).
    double zero_mse = static_cast<double>(xt::mean(xt::square(x))());
    r.json["zero_predictor_mse"] = zero_mse;
    fmt::print("the guide's 5 x 8 data through 8-4-2-4-8 (ReLU, ReLU code, linear output, Xavier uniform, zero "
               "biases), SGD lr 0.01, its gradient (4x the MSE's), 50 epochs; {} seeds. Predicting 0 gives MSE "
               "{:.4f}\n",
               args.seeds, zero_mse);
    StepSummary steps;
    StepSummary fit;
    double largest_difference = 0;
    for (std::uint64_t seed : args.seed_list()) {
        // As its steps 2-7 go: the raw data, one sample at a time.
        models::TrainerOptions per_sample{.epochs = 50, .batch_size = 1, .optimizer = "sgd", .lr = 0.01,
                                          .momentum = 0, .validation_fraction = 0, .restore_best = false,
                                          .seed = seed};
        GuideAutoencoder guide_model(guide_config({8, 4, 2}, seed));
        steps.runs.push_back(train_steps(guide_model, x, per_sample, Preprocess::raw));
        // The same run as plain SGD on the MSE at 4 times the rate: the same losses, to float rounding.
        models::Autoencoder<float> mse_model(guide_config({8, 4, 2}, seed));
        per_sample.lr = 0.04;
        StepRun same = train_steps(mse_model, x, per_sample, Preprocess::raw);
        for (std::size_t e = 0; e < same.loss_by_epoch.size(); ++e) {
            double a = steps.runs.back().loss_by_epoch[e];
            largest_difference = std::max(largest_difference, std::abs(same.loss_by_epoch[e] - a) / a);
        }
        // As its fit() code goes: global min-max scaling, batches of 32, which on 5 rows is the full batch.
        GuideAutoencoder batch(guide_config({8, 4, 2}, seed));
        fit.runs.push_back(train_steps(batch, x,
                                       {.epochs = 50, .batch_size = 32, .optimizer = "sgd", .lr = 0.01,
                                        .momentum = 0, .validation_fraction = 0, .restore_best = false, .seed = seed},
                                       Preprocess::min_max));
    }
    r.json["guide_step_vs_mse_sgd_at_4x_largest_relative_difference"] = largest_difference;
    report_steps(r, "", "as its steps 2-7: raw data, per-sample SGD; loss = per-sample MSE, averaged over the epoch",
                 steps, true);
    fmt::print("  the same runs as plain SGD on the MSE at lr 0.04: epoch losses within {:.1g} (relative) of these\n",
               largest_difference);
    // How often the guide's initialisation alone kills code units, over many more draws than runs.
    const int draws = 1000;
    int some_dead = 0;
    int all_dead = 0;
    for (int i = 0; i < draws; ++i) {
        GuideAutoencoder model(guide_config({8, 4, 2}, args.first_seed + static_cast<std::uint64_t>(i)));
        int dead = dead_code_units(model, x);
        some_dead += dead > 0;
        all_dead += dead == 2;
    }
    r.json["initialisations"] = {{"draws", draws}, {"with_a_dead_code_unit", some_dead}, {"with_both_dead", all_dead}};
    // The 5 rows are nearly parallel, so each ReLU is on for all of them or for none: a hidden unit is on
    // with probability 1/2, all 4 are off with 1/16 (then both code units are), and otherwise each code
    // unit is off with 1/2, independently (its weights are its own and symmetric about 0).
    fmt::print("  of {} initialisations, {} start with a dead code unit and {} with both (for exactly parallel rows: "
               "1/16 + 15/16 x 3/4 = 0.766 and 1/16 + 15/16 x 1/4 = 0.297 of them)\n",
               draws, some_dead, all_dead);
    r.printed("new_sample_mse", 0.0042);
    fmt::print("  (the guide: new sample's reconstruction_error 0.0042)\n");
    report_steps(r, "fit_", "as its fit() code: data min-max scaled to [0, 1] (one min, one max), batch 32 = all 5 "
                 "rows; loss in the scaled units", fit, false);
    plot_steps(args.out + "/step_by_step_loss.png",
               "guide step-by-step, its protocol: 8-4-2-4-8, per-sample SGD lr 0.01, its gradient",
               "loss (per-sample MSE, epoch average)", steps, {guide_printed_series()});
    r.figure("step_by_step_loss.png");
    plot_steps(args.out + "/fit_recipe_loss.png",
               "guide fit() recipe: min-max scaled, full batch (32 > 5 rows), SGD lr 0.01, its gradient",
               "loss (MSE in scaled units)", fit, {});
    r.figure("fit_recipe_loss.png");
    r.write(args.out);
    return 0;
}

int run_steps_corrected(const TutorialArgs& args, int epochs) {
    Results r("004", "step-by-step", args);
    Array<float> x = guide_rows();
    Array<float> mean_row = xt::mean(x, {0});
    double mean_mse = mse_against(xt::zeros_like(x) + mean_row, x);
    Array<float> sample = guide_new_sample();
    double mean_sample_mse = mse_against(mean_row, xt::row(sample, 0));
    // PCA fitted on the 5 rows: its error there, and on the guide's new sample.
    auto pca_mse = [&](std::size_t k) {
        models::Pca<float> pca({.components = k});
        pca.fit(x);
        return std::pair{static_cast<double>(xt::mean(pca.reconstruction_error(x))()),
                         static_cast<double>(xt::mean(pca.reconstruction_error(sample))())};
    };
    auto [pca_1, pca_1_sample] = pca_mse(1);
    auto [pca_2, pca_2_sample] = pca_mse(2);
    fmt::print("the guide's 5 x 8 data, MSE on the 5 rows / on its new sample: each feature's mean {:.6f} / {:.6f}; "
               "PCA with 1 component {:.6f} / {:.6f}; with 2 {:.6f} / {:.6f}\n",
               mean_mse, mean_sample_mse, pca_1, pca_1_sample, pca_2, pca_2_sample);
    r.json["mean_predictor"] = {{"mse", mean_mse}, {"new_sample_mse", mean_sample_mse}};
    r.json["pca_1"] = {{"mse", pca_1}, {"new_sample_mse", pca_1_sample}};
    r.json["pca_2"] = {{"mse", pca_2}, {"new_sample_mse", pca_2_sample}};
    r.json["epochs"] = epochs;
    models::TrainerOptions adam{.epochs = epochs, .batch_size = 5, .lr = 1e-2, .validation_fraction = 0,
                                .restore_best = false};
    StepSummary as_built;
    StepSummary centred;
    for (std::uint64_t seed : args.seed_list()) {
        adam.seed = seed;
        models::Autoencoder<float> guide_model(guide_config({8, 4, 2}, seed));
        as_built.runs.push_back(train_steps(guide_model, x, adam, Preprocess::raw));
        // Centred features, tanh (one of the guide's own choices) and a linear code: no unit can die.
        models::AutoencoderConfig config = guide_config({8, 4, 2}, seed);
        config.activation = "tanh";
        config.latent_activation = "identity";
        models::Autoencoder<float> model(config);
        centred.runs.push_back(train_steps(model, x, adam, Preprocess::centred));
    }
    report_steps(r, "guide_model_",
                 fmt::format("8-4-2-4-8 as the guide builds it (ReLU code), raw data, the MSE's own gradient, Adam lr "
                             "1e-2, full batch, {} epochs; loss = MSE on the 5 rows",
                             epochs),
                 as_built, false);
    report_steps(r, "",
                 "8-4-2-4-8 with tanh, a linear code, centred features, the same training; loss = MSE on the 5 rows "
                 "in the data's units",
                 centred, false);
    auto flat = [&](const std::string& name, double y) {
        return models::Series{name, {1.0, double(epochs)}, {y, y}};
    };
    plot_steps(args.out + "/step_by_step_loss.png",
               fmt::format("guide step-by-step, corrected: centred data, tanh, linear code, Adam lr 1e-2, {} epochs", epochs),
               "MSE on the 5 rows", centred,
               {flat("mean predictor", mean_mse), flat("PCA, 1 component", pca_1), flat("PCA, 2 components", pca_2)});
    r.figure("step_by_step_loss.png");
    r.write(args.out);
    return 0;
}

// ---- the digits: PCA comparison and compression curve ---------------------------------------------------

struct Digits {
    nn::Dataset train;
    nn::Dataset test;
};

// The digits / 16, split as train_test_split(test_size=0.2, random_state) splits them.
Digits load_digits(std::uint32_t random_state) {
    nn::Dataset all = nn::load_dataset("digits");
    all.x /= 16.0f;
    auto [train, test] = nn::sklearn_train_test_split(all, 0.2, random_state);
    return {std::move(train), std::move(test)};
}

double mean_error(const Array<float>& errors) { return static_cast<double>(xt::mean(errors)()); }

struct PcaErrors {
    double train = 0;  // what the guide compares with
    double test = 0;   // what it should
};

PcaErrors pca_errors(const Digits& d, std::size_t components) {
    models::Pca<float> pca({.components = components});
    pca.fit(d.train.x);
    return {mean_error(pca.reconstruction_error(d.train.x)), mean_error(pca.reconstruction_error(d.test.x))};
}

constexpr std::size_t digits_hidden = 64;

// The autoencoder of a protocol, trained on the digits' training part, and its test MSE. Tutorial: the
// guide's objective by plain SGD, lr 0.01, batch 32, 50 epochs; corrected: the MSE by Adam (the Trainer's
// defaults, with its validation split and the best epoch kept), for `epochs`.
double autoencoder_test_mse(const Digits& d, std::size_t code, std::uint64_t seed, Protocol protocol, int epochs) {
    models::AutoencoderConfig config = guide_config({64, digits_hidden, code}, seed);
    if (protocol == Protocol::tutorial) {
        GuideAutoencoder model(config);
        models::Trainer<float>(model, {.epochs = 50, .batch_size = 32, .optimizer = "sgd", .lr = 0.01, .momentum = 0,
                                       .validation_fraction = 0, .restore_best = false, .seed = seed})
            .fit(d.train);
        return mean_error(model.reconstruction_error(d.test.x));
    }
    models::Autoencoder<float> model(config);
    models::Trainer<float>(model, {.epochs = epochs, .batch_size = 32, .seed = seed}).fit(d.train);
    return mean_error(model.reconstruction_error(d.test.x));
}

std::string training_of(Protocol protocol, int epochs) {
    return protocol == Protocol::tutorial
               ? std::string("the guide's objective, SGD lr 0.01, batch 32, 50 epochs")
               : fmt::format("MSE, Adam lr 1e-3, batch 32, {} epochs, 10% validation, best epoch kept", epochs);
}

int run_pca_comparison(const TutorialArgs& args, int epochs) {
    Results r("004", "pca-comparison", args);
    Digits d = load_digits(42);
    PcaErrors pca = pca_errors(d, 10);
    fmt::print("digits / 16, scikit-learn's split (random_state 42): {} train, {} test rows; 64-{}-10-{}-64 autoencoder "
               "(ReLU, ReLU code, linear output, Xavier), {}\n",
               d.train.size(), d.test.size(), digits_hidden, digits_hidden, training_of(args.protocol, epochs));
    fmt::print("PCA with 10 components: training MSE {:.5f} (the guide's comparison), test MSE {:.5f} (the right "
               "one); test / training {:.4f}\n",
               pca.train, pca.test, pca.test / pca.train);
    r.json["pca_10_train_mse"] = pca.train;
    r.json["pca_10_test_mse"] = pca.test;
    Vector ae;
    for (std::uint64_t seed : args.seed_list()) {
        ae.push_back(autoencoder_test_mse(d, 10, seed, args.protocol, epochs));
        fmt::print("seed {:>3}: autoencoder test MSE {:.5f}\n", seed, ae.back());
    }
    Spread s = spread_of(ae);
    r.measured("autoencoder_test_mse", s);
    auto ratio = [&](double pca_error) {
        Vector v;
        for (double a : ae) {
            v.push_back(a / pca_error);
        }
        return spread_of(v);
    };
    r.measured("autoencoder_over_pca_train", ratio(pca.train));
    r.measured("autoencoder_over_pca_test", ratio(pca.test));
    fmt::print("autoencoder test MSE {}\n  / PCA's training MSE (the guide's way): {}\n  / PCA's test MSE (the right "
               "way):        {}\n",
               describe(s, 5), describe(ratio(pca.train), 3), describe(ratio(pca.test), 3));

    // The gap is not a property of split 42: PCA's training error against its test error on other splits.
    Vector gap;
    for (std::uint32_t state = 0; state < 10; ++state) {
        PcaErrors e = pca_errors(load_digits(state), 10);
        gap.push_back(e.test / e.train);
    }
    r.measured("pca_10_test_over_train_splits_0_9", spread_of(gap));
    fmt::print("PCA 10's test MSE / its training MSE over random_state 0..9: {}\n", describe(spread_of(gap), 3));
    r.write(args.out);
    return 0;
}

int run_compression(const TutorialArgs& args, int epochs) {
    Results r("004", "compression", args);
    Digits d = load_digits(42);
    const std::vector<std::size_t> codes = {2, 5, 10, 20, 50};
    fmt::print("compression vs quality on the digits: 64-{}-d-{}-64 for d in {}, {}; {} seeds\n", digits_hidden,
               digits_hidden, codes, training_of(args.protocol, epochs), args.seeds);
    fmt::print("{:>4} {:>34} {:>11} {:>11}\n", "d", "autoencoder test MSE", "PCA train", "PCA test");
    models::Series ae{"autoencoder, test MSE (mean over seeds)", {}, {}};
    models::Series ae_low{"autoencoder, lowest seed", {}, {}};
    models::Series ae_high{"autoencoder, highest seed", {}, {}};
    models::Series pca_train{"PCA, training MSE (the guide's comparison)", {}, {}};
    models::Series pca_test{"PCA, test MSE", {}, {}};
    nlohmann::json rows = nlohmann::json::array();
    for (std::size_t code : codes) {
        Vector v;
        for (std::uint64_t seed : args.seed_list()) {
            v.push_back(autoencoder_test_mse(d, code, seed, args.protocol, epochs));
        }
        Spread s = spread_of(v);
        PcaErrors pca = pca_errors(d, code);
        r.measured(fmt::format("autoencoder_test_mse_{}", code), s);
        rows.push_back({{"code", code}, {"pca_train_mse", pca.train}, {"pca_test_mse", pca.test}});
        fmt::print("{:>4} {:>34} {:>11.5f} {:>11.5f}\n", code, describe(s, 5), pca.train, pca.test);
        double x = static_cast<double>(code);
        for (models::Series* series : {&ae, &ae_low, &ae_high, &pca_train, &pca_test}) {
            series->x.push_back(x);
        }
        ae.y.push_back(s.mean);
        ae_low.y.push_back(s.min);
        ae_high.y.push_back(s.max);
        pca_train.y.push_back(pca.train);
        pca_test.y.push_back(pca.test);
    }
    r.json["pca"] = rows;
    std::vector<models::Series> series = {ae, pca_test};
    if (args.seeds > 1) {
        series.insert(series.begin() + 1, {ae_low, ae_high});
    }
    if (args.protocol == Protocol::tutorial) {
        series.push_back(pca_train);
    }
    models::plot_lines(args.out + "/compression.png",
                       fmt::format("digits, 64-{}-d-{}-64 ({}): reconstruction error against encoding dimension",
                                   digits_hidden, digits_hidden,
                                   args.protocol == Protocol::tutorial
                                       ? std::string("the guide's SGD, 50 epochs")
                                       : fmt::format("Adam, {} epochs", epochs)),
                       "encoding dimension d", "MSE (pixels / 16)", series, {.log_x = true, .log_y = true});
    r.figure("compression.png");
    r.write(args.out);
    return 0;
}

std::vector<std::string> files_of(const std::string& experiment) {
    if (experiment == "step-by-step") {
        return {"results.json", "step_by_step_loss.png", "fit_recipe_loss.png"};
    }
    if (experiment == "compression") {
        return {"results.json", "compression.png"};
    }
    return {"results.json"};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tutorial 004, the general guide: its worked numbers, its step-by-step training, its PCA "
                 "comparison and its compression curve"};
    app.require_subcommand(1);
    struct Experiment {
        std::string name;
        std::string help;
        int seeds;
        int epochs;  // the corrected protocol's, where it trains
        TutorialArgs args{};
        CLI::App* command = nullptr;
    };
    std::vector<Experiment> experiments = {
        {"arithmetic", "its worked MSEs and parameter count, from its own inputs", 1, 0},
        {"step-by-step", "its 5 x 8 example trained as it says, over seeds", 10, 2000},
        {"pca-comparison", "its autoencoder against PCA on the digits: test error against training error", 10, 200},
        {"compression", "its encoding-dimension curve on the digits, autoencoder against PCA", 10, 200},
    };
    for (Experiment& e : experiments) {
        e.args.seeds = e.seeds;
        e.command = app.add_subcommand(e.name, e.help);
        add_tutorial_options(*e.command, e.args);
        if (e.epochs > 0) {
            e.command->add_option("--epochs", e.epochs, "corrected: training epochs")
                ->check(CLI::PositiveNumber)
                ->capture_default_str();
        }
    }
    if (auto code = parse_command_line(app, argc, argv)) {
        return *code;
    }
    Experiment& e = *std::ranges::find_if(experiments, [](const Experiment& x) { return x.command->parsed(); });
    TutorialArgs& args = e.args;
    if (args.out.empty()) {
        args.out = fmt::format("runs/tutorials/004-{}-{}", e.name, to_string(args.protocol));
    }
    configure_blas(argv, args.threads);
    try {
        claim_run_folder("guide " + e.name, args.out, files_of(e.name), args.overwrite);
        bool tutorial = args.protocol == Protocol::tutorial;
        if (e.name == "arithmetic") {
            return run_arithmetic(args);
        }
        if (e.name == "step-by-step") {
            return tutorial ? run_steps_tutorial(args) : run_steps_corrected(args, e.epochs);
        }
        if (e.name == "pca-comparison") {
            return run_pca_comparison(args, e.epochs);
        }
        return run_compression(args, e.epochs);
    } catch (const Error& err) {
        fmt::print(stderr, "{}\n", err.what());
        return 1;
    }
}
