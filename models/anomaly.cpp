#include "tapegrad/models/anomaly.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tapegrad/autodiff/error.hpp"

namespace tapegrad::models {

namespace {

// Every check takes the name of the function the user called, so that detect_at_percentile's errors
// say detect_at_percentile and name its own arguments.

void check_lengths(std::string_view op, std::span<const double> scores, const std::vector<bool>& is_anomaly) {
    if (scores.size() != is_anomaly.size()) {
        tapegrad::detail::throw_shape_error(fmt::format("{}: scores and labels differ in length: {} scores, {} labels",
                                                        op, scores.size(), is_anomaly.size()));
    }
}

// A NaN has no rank and is on neither side of a threshold: comparing it would silently pass the sample
// in detect() and break the strict weak ordering std::sort relies on.
void check_no_nan(std::string_view op, std::span<const double> scores) {
    for (std::size_t i = 0; i < scores.size(); ++i) {
        if (std::isnan(scores[i])) {
            tapegrad::detail::throw_value_error(fmt::format("{}: scores contain nan: scores[{}] is nan", op, i));
        }
    }
}

double percentile_of(std::string_view op, std::string_view name, std::span<const double> values, double q) {
    if (values.empty()) {
        tapegrad::detail::throw_value_error(fmt::format("{}: {} are empty: need at least one value", op, name));
    }
    if (!(q >= 0 && q <= 100)) {
        tapegrad::detail::throw_value_error(fmt::format("{}: q is out of range: {} is not in [0, 100]", op, q));
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (!std::isfinite(values[i])) {
            tapegrad::detail::throw_value_error(
                fmt::format("{}: {} must be finite: {}[{}] is {}", op, name, name, i, values[i]));
        }
    }
    std::vector<double> sorted(values.begin(), values.end());
    std::sort(sorted.begin(), sorted.end());
    const std::size_t last = sorted.size() - 1;
    // numpy's operations in numpy's order, so that the result agrees to the last bit: q / 100 first,
    // then the position (n - 1) * q, then _lerp, which interpolates from the nearer of the two ends.
    const double position = static_cast<double>(last) * (q / 100);
    if (position >= static_cast<double>(last)) {
        return sorted[last];
    }
    const double below = std::floor(position);
    const std::size_t i = static_cast<std::size_t>(below);
    const double gamma = position - below;
    const double a = sorted[i];
    const double b = sorted[i + 1];
    const double diff = b - a;
    // Volatile keeps -march=native from fusing the product and the sum into one FMA, which rounds once
    // where numpy rounds twice.
    volatile double step = gamma >= 0.5 ? diff * (1 - gamma) : diff * gamma;
    return gamma >= 0.5 ? b - step : a + step;
}

double ratio(std::size_t numerator, std::size_t denominator) {
    return denominator == 0 ? 0.0 : static_cast<double>(numerator) / static_cast<double>(denominator);
}

// detect() with the lengths already checked.
Detection detect_checked(std::string_view op, std::span<const double> scores, const std::vector<bool>& is_anomaly,
                         double threshold) {
    if (scores.empty()) {
        tapegrad::detail::throw_value_error(fmt::format("{}: no samples: scores and labels are empty", op));
    }
    if (std::isnan(threshold)) {
        tapegrad::detail::throw_value_error(fmt::format("{}: threshold is nan: it must be a number", op));
    }
    check_no_nan(op, scores);
    Detection d;
    d.threshold = threshold;
    for (std::size_t i = 0; i < scores.size(); ++i) {
        const bool flagged = scores[i] > threshold;
        if (is_anomaly[i]) {
            ++(flagged ? d.true_positives : d.false_negatives);
        } else {
            ++(flagged ? d.false_positives : d.true_negatives);
        }
    }
    d.precision = ratio(d.true_positives, d.true_positives + d.false_positives);
    d.recall = ratio(d.true_positives, d.true_positives + d.false_negatives);
    d.f1 = ratio(2 * d.true_positives, 2 * d.true_positives + d.false_positives + d.false_negatives);
    d.accuracy = ratio(d.true_positives + d.true_negatives, scores.size());
    return d;
}

// The samples of one distinct score.
struct TieGroup {
    double score;
    std::size_t anomalies;
    std::size_t normal;
};

struct RankedScores {
    std::vector<TieGroup> groups;  // highest score first
    std::size_t anomalies = 0;
    std::size_t normal = 0;
};

// Sorts once and merges equal scores: both roc_auc and roc_curve count per distinct score. Throws when
// a class is absent, where the ROC divides by zero (scikit-learn warns and returns NaN).
RankedScores rank_scores(std::string_view op, std::span<const double> scores, const std::vector<bool>& is_anomaly) {
    check_lengths(op, scores, is_anomaly);
    check_no_nan(op, scores);
    std::vector<std::pair<double, bool>> samples(scores.size());
    RankedScores ranked;
    for (std::size_t i = 0; i < scores.size(); ++i) {
        samples[i] = {scores[i], is_anomaly[i]};
        ++(is_anomaly[i] ? ranked.anomalies : ranked.normal);
    }
    if (ranked.anomalies == 0 || ranked.normal == 0) {
        tapegrad::detail::throw_value_error(fmt::format("{}: one class is absent: {} anomalies, {} normal samples",
                                                        op, ranked.anomalies, ranked.normal));
    }
    std::sort(samples.begin(), samples.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    for (const auto& [score, anomaly] : samples) {
        if (ranked.groups.empty() || ranked.groups.back().score != score) {
            ranked.groups.push_back({score, 0, 0});
        }
        ++(anomaly ? ranked.groups.back().anomalies : ranked.groups.back().normal);
    }
    return ranked;
}

}  // namespace

double percentile(std::span<const double> values, double q) { return percentile_of("percentile", "values", values, q); }

std::string Detection::to_json() const {
    // ordered_json keeps the fields in the struct's order, which reads better than sorted keys.
    nlohmann::ordered_json j;
    j["threshold"] = std::isfinite(threshold) ? nlohmann::ordered_json(threshold) : nlohmann::ordered_json(nullptr);
    j["true_positives"] = true_positives;
    j["false_positives"] = false_positives;
    j["true_negatives"] = true_negatives;
    j["false_negatives"] = false_negatives;
    j["precision"] = precision;
    j["recall"] = recall;
    j["f1"] = f1;
    j["accuracy"] = accuracy;
    return j.dump();
}

Detection detect(std::span<const double> scores, const std::vector<bool>& is_anomaly, double threshold) {
    check_lengths("detect", scores, is_anomaly);
    return detect_checked("detect", scores, is_anomaly, threshold);
}

Detection detect_at_percentile(std::span<const double> normal_training_scores, double q,
                               std::span<const double> scores, const std::vector<bool>& is_anomaly) {
    constexpr std::string_view op = "detect_at_percentile";
    check_lengths(op, scores, is_anomaly);
    const double threshold = percentile_of(op, "normal_training_scores", normal_training_scores, q);
    return detect_checked(op, scores, is_anomaly, threshold);
}

double roc_auc(std::span<const double> scores, const std::vector<bool>& is_anomaly) {
    const RankedScores ranked = rank_scores("roc_auc", scores, is_anomaly);
    // U counts, over (anomaly, normal) pairs, 1 when the anomaly scores higher and 1/2 on a tie; this is
    // what the rank-sum formula with average ranks computes. Counted in halves it is an exact integer.
    std::uint64_t twice_u = 0;
    std::uint64_t normal_below = ranked.normal;
    for (const TieGroup& g : ranked.groups) {
        normal_below -= g.normal;
        twice_u += static_cast<std::uint64_t>(g.anomalies) * (2 * normal_below + g.normal);
    }
    return static_cast<double>(twice_u) /
           (2.0 * static_cast<double>(ranked.anomalies) * static_cast<double>(ranked.normal));
}

RocCurve roc_curve(std::span<const double> scores, const std::vector<bool>& is_anomaly) {
    const RankedScores ranked = rank_scores("roc_curve", scores, is_anomaly);
    RocCurve curve;
    const std::size_t points = ranked.groups.size() + 1;
    curve.false_positive_rate.reserve(points);
    curve.true_positive_rate.reserve(points);
    curve.thresholds.reserve(points);
    curve.false_positive_rate.push_back(0);
    curve.true_positive_rate.push_back(0);
    curve.thresholds.push_back(std::numeric_limits<double>::infinity());  // flags nothing
    std::size_t true_positives = 0;
    std::size_t false_positives = 0;
    for (const TieGroup& g : ranked.groups) {
        true_positives += g.anomalies;
        false_positives += g.normal;
        curve.false_positive_rate.push_back(ratio(false_positives, ranked.normal));
        curve.true_positive_rate.push_back(ratio(true_positives, ranked.anomalies));
        curve.thresholds.push_back(g.score);
    }
    return curve;
}

}  // namespace tapegrad::models
