// Tutorial 002, section 8: anomaly detection. A 64-32-8-32-64 autoencoder trained on the training set's
// 1s only; every test digit is scored by its reconstruction MSE, the 1s being normal and the rest
// anomalies, and flagged above the 95th percentile of normal scores.
//
// Whose scores: the tutorial takes the percentile of the TEST normals' scores, so the threshold is
// fitted on the data it is then judged on (2 of its 28 test 1s lie above it by construction). The
// corrected protocol holds 20% of the training 1s out of training and takes the threshold from them;
// both protocols also report the threshold of the training 1s the model was fitted on (what `make demo`
// does, which overfitting pulls low) and the tutorial's, on the same model, and the ROC-AUC, which
// needs no threshold.
#pragma once

#include "digits_tutorial_recipe.hpp"
#include "tapegrad/models/anomaly.hpp"
#include "tapegrad/models/figures.hpp"

namespace tapegrad::examples::digits {

inline std::vector<double> scores_of(Autoencoder<float>& model, const Array<float>& x) {
    Array<float> e = model.reconstruction_error(x);
    return {e.begin(), e.end()};
}

// A density histogram as a step line over `bins` equal bins spanning the values (matplotlib's
// hist(values, bins, density=True)), closed down to 0 at both ends. With `log`, the bins are equal in
// log10 of the values and the density is per unit of log10, for a log x axis.
inline models::Series histogram(const std::string& name, const std::vector<double>& values, int bins, bool log) {
    auto scale = [log](double v) { return log ? std::log10(v) : v; };
    auto unscale = [log](double v) { return log ? std::pow(10.0, v) : v; };
    auto [min, max] = std::minmax_element(values.begin(), values.end());
    double lo = scale(*min);
    double width = (scale(*max) - lo) / bins;
    std::vector<double> counts(bins, 0.0);
    for (double v : values) {
        counts[std::clamp(static_cast<int>((scale(v) - lo) / width), 0, bins - 1)] += 1;
    }
    models::Series s{name, {*min}, {0}};
    for (int i = 0; i < bins; ++i) {
        double density = counts[i] / (double(values.size()) * width);
        s.x.insert(s.x.end(), {unscale(lo + i * width), unscale(lo + (i + 1) * width)});
        s.y.insert(s.y.end(), {density, density});
    }
    s.x.push_back(*max);
    s.y.push_back(0);
    return s;
}

struct Threshold {
    std::string key;    // in results.json: threshold_<key>, precision_<key>, ...
    std::string label;  // in the figures' keys
    double value = 0;
};

inline void anomaly_figures(const Context& c, const std::vector<double>& scores, const std::vector<bool>& is_anomaly,
                            const std::vector<Threshold>& thresholds) {
    std::vector<double> normal, anomalous;
    for (std::size_t i = 0; i < scores.size(); ++i) {
        (is_anomaly[i] ? anomalous : normal).push_back(scores[i]);
    }
    // The tutorial's axes are linear; once trained, the two groups lie a decade apart, which a log axis shows.
    bool log = !c.tutorial();
    models::Series n = histogram("normal (test 1s)", normal, 30, log);
    models::Series a = histogram("anomaly (other test digits)", anomalous, 30, log);
    std::vector<models::Series> series = {n, a};
    double top = std::max(*std::max_element(n.y.begin(), n.y.end()), *std::max_element(a.y.begin(), a.y.end()));
    for (const Threshold& t : thresholds) {
        series.push_back({t.label, {t.value, t.value}, {0, top}});
    }
    models::plot_lines(c.path("error_histogram.png"),
                       fmt::format("reconstruction error of the test digits, seed {}, {}", c.args.first_seed,
                                   c.protocol_name()),
                       log ? "reconstruction error (MSE, log scale)" : "reconstruction error (MSE)",
                       log ? "density per unit of log10 error" : "density", series, {.log_x = log});
    double auc = models::roc_auc(scores, is_anomaly);
    models::RocCurve roc = models::roc_curve(scores, is_anomaly);
    std::vector<models::Series> curves = {{"autoencoder", roc.false_positive_rate, roc.true_positive_rate},
                                          {"chance", {0, 1}, {0, 1}}};
    // Each threshold's operating point as a one-point series, named in the key: once trained, they all lie
    // on the top edge, where labels beside them would overlap.
    for (const Threshold& t : thresholds) {
        models::Detection d = models::detect(scores, is_anomaly, t.value);
        double fpr = double(d.false_positives) / double(d.false_positives + d.true_negatives);
        curves.push_back({t.label, {fpr}, {d.recall}});
    }
    models::plot_lines(c.path("anomaly_roc.png"),
                       fmt::format("ROC, trained on 1s, seed {}, {} (AUC {:.3f})", c.args.first_seed,
                                   c.protocol_name(), auc),
                       "false positive rate (test 1s flagged)", "true positive rate (recall)", curves);
}

inline void anomaly(Context& c, Results& r) {
    // What the notebook's own code prints (section 8).
    r.printed("precision_test_normals", 0.979);
    r.printed("recall_test_normals", 0.286);
    r.printed("f1_test_normals", 0.443);
    r.printed("final_train_loss", 0.054472);
    r.json["tutorial_claims"] = {"Anomaly detection: High reconstruction error indicates out-of-distribution inputs"};
    nn::Dataset ones = nn::filter_by_label(c.data.train, {1});
    std::vector<bool> is_anomaly;
    for (std::int64_t label : c.data.test.labels) {
        is_anomaly.push_back(label != 1);
    }
    fmt::print("anomaly detection: 64-32-8-32-64 trained on {} training 1s{}, {}; {} test 1s, {} other test digits\n",
               ones.size(), c.tutorial() ? "" : " less 20% held out", c.recipe.describe(50),
               std::count(is_anomaly.begin(), is_anomaly.end(), false),
               std::count(is_anomaly.begin(), is_anomaly.end(), true));
    std::map<std::string, std::vector<double>> m;
    for (std::uint64_t seed : c.args.seed_list()) {
        nn::Dataset fit_on = ones;
        nn::Dataset held_out;
        if (!c.tutorial()) {
            std::tie(fit_on, held_out) = nn::train_test_split(ones, 0.2, stream(seed, 800));
        }
        Trained t = train(c.recipe, fit_on, 50, seed, c.recipe.config(8, seed));
        std::vector<double> scores = scores_of(*t.model, c.data.test.x);
        std::vector<double> test_normals;
        for (std::size_t i = 0; i < scores.size(); ++i) {
            if (!is_anomaly[i]) {
                test_normals.push_back(scores[i]);
            }
        }
        std::vector<Threshold> thresholds = {
            {"test_normals", "95th percentile of the test 1s (the tutorial's)", models::percentile(test_normals, 95)},
            {"training_normals", "95th percentile of the training 1s",
             models::percentile(scores_of(*t.model, fit_on.x), 95)}};
        if (!c.tutorial()) {
            thresholds.push_back({"held_out_normals", "95th percentile of the held-out training 1s",
                                  models::percentile(scores_of(*t.model, held_out.x), 95)});
        }
        m["final_train_loss"].push_back(train_losses(t.history).back());
        m["roc_auc"].push_back(models::roc_auc(scores, is_anomaly));
        std::string line;
        for (const Threshold& th : thresholds) {
            models::Detection d = models::detect(scores, is_anomaly, th.value);
            double fpr = double(d.false_positives) / double(d.false_positives + d.true_negatives);
            m["threshold_" + th.key].push_back(th.value);
            m["precision_" + th.key].push_back(d.precision);
            m["recall_" + th.key].push_back(d.recall);
            m["f1_" + th.key].push_back(d.f1);
            m["false_positive_rate_" + th.key].push_back(fpr);
            line += fmt::format("\n  {:<17} threshold {:.5f}: precision {:.3f} recall {:.3f} F1 {:.3f}, {:.1f}% of "
                                "test 1s flagged",
                                th.key, th.value, d.precision, d.recall, d.f1, 100 * fpr);
        }
        fmt::print("seed {}: final train loss {:.5f}, ROC-AUC {:.4f}{}\n", seed, m["final_train_loss"].back(),
                   m["roc_auc"].back(), line);
        if (seed == c.args.first_seed) {
            anomaly_figures(c, scores, is_anomaly, thresholds);
        }
    }
    for (const auto& [name, values] : m) {
        r.measured(name, spread_of(values));
    }
    r.json["training_normals"] = ones.size();
    r.json["test_normals"] = std::count(is_anomaly.begin(), is_anomaly.end(), false);
    r.json["test_anomalies"] = std::count(is_anomaly.begin(), is_anomaly.end(), true);
    r.figure("error_histogram.png");
    r.figure("anomaly_roc.png");
}

}  // namespace tapegrad::examples::digits
