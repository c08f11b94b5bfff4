// tapegrad compare, anomaly and pca: the experiments researchers run first.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <tuple>

#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"
#include "tapegrad/models/anomaly.hpp"
#include "tapegrad/models/figures.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/data.hpp"

namespace tapegrad::tools {

namespace {

struct ExperimentArgs {
    DataOptions data;
    ModelOptions model;
    models::TrainerOptions trainer{.epochs = 30, .batch_size = 64, .lr = 1e-2};
    std::string out;
    bool overwrite = false;
};

void add_training_options(CLI::App& app, ExperimentArgs& args) {
    add_data_options(app, args.data);
    add_model_options(app, args.model);
    app.add_option("--epochs", args.trainer.epochs, "training epochs")->check(positive_whole)->capture_default_str();
    app.add_option("--batch-size", args.trainer.batch_size, "mini-batch size")
        ->check(positive_whole)
        ->capture_default_str();
    app.add_option("--lr", args.trainer.lr, "learning rate (Adam)")->check(positive)->capture_default_str();
    app.add_option("--out", args.out, "folder for metrics.json and figures")->capture_default_str();
    add_overwrite_option(app, args.overwrite);
}

std::shared_ptr<models::Autoencoder<float>> train_model(const ExperimentArgs& args, const Split& split,
                                                        const nn::Dataset& train, std::size_t latent) {
    ModelOptions o = args.model;
    o.latent = latent;
    if (!o.dims.empty()) {
        o.dims.back() = latent;
    }
    auto model = build_model<float>(o, train.dim(), split.low, split.high);
    models::Trainer<float>(*model, args.trainer).fit(train);
    return model;
}

struct CompareArgs : ExperimentArgs {
    std::vector<std::size_t> latents = {2, 4, 8, 16, 32};
};

int run_compare(const CompareArgs& args) {
    Split split = load_split(args.data);
    for (std::size_t latent : args.latents) {
        if (latent > split.train.dim()) {
            tapegrad::detail::throw_value_error(
                fmt::format("compare: --latents {}: a code of {} units is no compression of {} features", latent,
                            latent, split.train.dim()));
        }
    }
    claim_out("compare", args.out, {"metrics.json", "rate_distortion.png"}, args.overwrite);
    std::filesystem::create_directories(args.out);
    fmt::print("rate-distortion on {}: {} autoencoder ({} epochs each) beside PCA\n", args.data.data,
               args.model.variant, args.trainer.epochs);
    fmt::print("{:>7} {:>16} {:>12} {:>12}\n", "latent", "autoencoder MSE", "PCA MSE", "AE / PCA");
    double mean_mse = mean_baseline_mse(split.train, split.test);
    nlohmann::json rows = nlohmann::json::array();
    models::Series ae{"autoencoder", {}, {}};
    models::Series pca{"PCA", {}, {}};
    for (std::size_t latent : args.latents) {
        auto model = train_model(args, split, split.train, latent);
        double ae_mse = xt::mean(model->reconstruction_error(split.test.x))();
        double pca_value = pca_mse(split.train, split.test, latent);
        // With as many components as features PCA reconstructs exactly: a ratio to its rounding error
        // would be a meaningless 1e28.
        bool exact = pca_value <= 1e-12 * mean_mse;
        fmt::print("{:>7} {:>16.6f} {:>12.6f} {:>12}\n", latent, ae_mse, pca_value,
                   exact ? std::string("PCA exact") : fmt::format("{:.3f}", ae_mse / pca_value));
        rows.push_back({{"latent", latent}, {"autoencoder_test_mse", ae_mse}, {"pca_test_mse", pca_value}});
        for (auto* s : {&ae, &pca}) {
            s->x.push_back(double(latent));
        }
        ae.y.push_back(ae_mse);
        pca.y.push_back(pca_value);
    }
    std::string figure = args.out + "/rate_distortion.png";
    models::plot_lines(figure, fmt::format("test MSE against latent size on {}", args.data.data), "latent size",
                       "test MSE", {ae, pca}, {.log_x = true, .log_y = true});
    write_json(args.out + "/metrics.json",
               {{"data", args.data.data},
                {"variant", args.model.variant},
                {"mean_image_test_mse", mean_mse},
                {"rows", rows},
                {"figure", figure}});
    fmt::print("mean-image baseline {:.6f}; wrote {}/metrics.json, {}\n", mean_mse, args.out, figure);
    return 0;
}

struct AnomalyArgs : ExperimentArgs {
    std::int64_t normal = 1;
    double percentile = 95;
    double calibration = 0.2;  // of the normal training rows, kept out of training to set the threshold on
};

int run_anomaly(const AnomalyArgs& args) {
    Split split = load_split(args.data);
    if (!split.train.has_labels()) {
        tapegrad::detail::throw_value_error(fmt::format("anomaly: {} has no labels to tell normal from anomalous",
                                                        args.data.data));
    }
    nn::Dataset normal = nn::filter_by_label(split.train, {args.normal});
    if (normal.size() < 2) {
        tapegrad::detail::throw_value_error(fmt::format("anomaly: {} training samples with label {} in {}: too few to "
                                                        "learn the normal class from",
                                                        normal.size(), args.normal, args.data.data));
    }
    // The threshold is a percentile of the scores of normal rows the model never saw. Its own training rows
    // score lower than unseen normals: on the digits, the 95th percentile of the training 1s' scores flagged
    // 18.9% of the test 1s, not 5% (EXPERIMENTS.md, tutorial 002's anomaly experiment).
    nn::Dataset fit_rows = normal;
    nn::Dataset calibration_rows = normal;
    if (args.calibration > 0) {
        std::tie(fit_rows, calibration_rows) = nn::train_test_split(normal, args.calibration, args.model.seed);
    }
    claim_out("anomaly", args.out, {"metrics.json", "roc.png"}, args.overwrite);
    std::filesystem::create_directories(args.out);
    auto model = train_model(args, split, fit_rows, args.model.latent);
    Array<float> calibration_scores = model->reconstruction_error(calibration_rows.x);
    Array<float> test_scores = model->reconstruction_error(split.test.x);
    std::vector<double> normal_scores(calibration_scores.begin(), calibration_scores.end());
    std::vector<double> scores(test_scores.begin(), test_scores.end());
    std::vector<bool> is_anomaly;
    for (std::int64_t label : split.test.labels) {
        is_anomaly.push_back(label != args.normal);
    }
    models::Detection d = models::detect_at_percentile(normal_scores, args.percentile, scores, is_anomaly);
    double auc = models::roc_auc(scores, is_anomaly);
    std::string source = args.calibration > 0
                             ? fmt::format("the scores of {} normal training samples held out of training",
                                           calibration_rows.size())
                             : "the training samples' own scores (--calibration 0)";
    fmt::print("anomaly detection on {}: trained on label {} only ({} samples); threshold = {}th percentile of {} "
               "= {:.6f}\n",
               args.data.data, args.normal, fit_rows.size(), args.percentile, source, d.threshold);
    fmt::print("test: {} samples, {} anomalies; precision {:.4f} recall {:.4f} F1 {:.4f} ROC-AUC {:.4f}\n",
               scores.size(), d.true_positives + d.false_negatives, d.precision, d.recall, d.f1, auc);
    fmt::print("test normals flagged: {} of {} ({:.1f}%, against the {:.4g}% the percentile aims at)\n",
               d.false_positives, d.false_positives + d.true_negatives,
               100.0 * double(d.false_positives) / double(std::max<std::size_t>(1, d.false_positives + d.true_negatives)),
               100 - args.percentile);
    models::RocCurve roc = models::roc_curve(scores, is_anomaly);
    std::string figure = args.out + "/roc.png";
    // Where the threshold puts the detector on the curve.
    double fpr = d.false_positives + d.true_negatives > 0
                     ? double(d.false_positives) / double(d.false_positives + d.true_negatives)
                     : 0.0;
    models::plot_lines(figure, fmt::format("ROC: label {} normal, others anomalous (AUC {:.3f})", args.normal, auc),
                       "false positive rate", "true positive rate",
                       {{"autoencoder", roc.false_positive_rate, roc.true_positive_rate}, {"chance", {0, 1}, {0, 1}}},
                       {.marks = {{fpr, d.recall,
                                   fmt::format("threshold {:.4g} ({}th percentile)", d.threshold, args.percentile)}}});
    write_json(args.out + "/metrics.json", {{"data", args.data.data},
                                            {"normal_label", args.normal},
                                            {"percentile", args.percentile},
                                            {"training_samples", fit_rows.size()},
                                            {"calibration_fraction", args.calibration},
                                            {"calibration_samples", args.calibration > 0 ? calibration_rows.size() : 0},
                                            {"detection", nlohmann::json::parse(d.to_json())},
                                            {"roc_auc", auc},
                                            {"figure", figure}});
    fmt::print("wrote {}/metrics.json, {}\n", args.out, figure);
    return 0;
}

struct PcaArgs {
    DataOptions data;
    std::size_t components = 2;
    std::string out = "runs/pca";
    bool overwrite = false;
};

int run_pca(const PcaArgs& args) {
    claim_out("pca", args.out, {"metrics.json"}, args.overwrite);
    Split split = load_split(args.data);
    models::Pca<double> pca({.components = args.components});
    pca.fit(xt::cast<double>(split.train.x));
    double train_mse = xt::mean(pca.reconstruction_error(xt::cast<double>(split.train.x)))();
    double test_mse = xt::mean(pca.reconstruction_error(xt::cast<double>(split.test.x)))();
    const Array<double>& ratio = pca.explained_variance_ratio();
    fmt::print("PCA of {} with {} components: explained variance ratio {:.4f} in all ({:.4f} for the first); "
               "reconstruction MSE train {:.6f}, test {:.6f}\n",
               args.data.data, args.components, xt::sum(ratio)(), ratio(0), train_mse, test_mse);
    std::filesystem::create_directories(args.out);
    write_json(args.out + "/metrics.json",
               {{"data", args.data.data},
                {"components", args.components},
                {"explained_variance", std::vector<double>(pca.explained_variance().begin(), pca.explained_variance().end())},
                {"explained_variance_ratio", std::vector<double>(ratio.begin(), ratio.end())},
                {"train_mse", train_mse},
                {"test_mse", test_mse}});
    fmt::print("wrote {}/metrics.json\n", args.out);
    return 0;
}

}  // namespace

Command add_compare(CLI::App& app) {
    auto args = std::make_shared<CompareArgs>();
    args->out = "runs/compare";
    add_training_options(app, *args);
    app.add_option("--latents", args->latents, "latent sizes to sweep, each at most the features")
        ->delimiter(',')
        ->check(positive_whole)
        ->capture_default_str();
    return [args] { return run_compare(*args); };
}

Command add_anomaly(CLI::App& app) {
    auto args = std::make_shared<AnomalyArgs>();
    args->out = "runs/anomaly";
    args->model.latent = 8;
    add_training_options(app, *args);
    app.add_option("--normal", args->normal, "the label trained on; every other label is an anomaly")
        ->capture_default_str();
    app.add_option("--percentile", args->percentile,
                   "threshold: this percentile of the scores of held-out normal training samples")
        ->check(CLI::Range(0.0, 100.0))
        ->capture_default_str();
    app.add_option("--calibration", args->calibration,
                   "the part of the normal training samples held out of training to set the threshold on (0: "
                   "the threshold comes from the training samples' own scores, which flags more unseen normals)")
        ->check(CLI::Range(0.0, 0.9))
        ->capture_default_str();
    return [args] { return run_anomaly(*args); };
}

Command add_pca(CLI::App& app) {
    auto args = std::make_shared<PcaArgs>();
    add_data_options(app, args->data);
    app.add_option("--components", args->components, "principal components")
        ->check(positive_whole)
        ->capture_default_str();
    app.add_option("--out", args->out, "folder for metrics.json")->capture_default_str();
    add_overwrite_option(app, args->overwrite);
    return [args] { return run_pca(*args); };
}

}  // namespace tapegrad::tools
