// Anomaly detection with an autoencoder: train on the normal class only, score every sample by its
// reconstruction error, and flag a sample when its score is above a threshold taken at a percentile of
// the normal training scores (the 99th flags about 1% of normal data by construction). The metrics are
// scikit-learn's: precision, recall, F1 and accuracy at that threshold, and the ROC curve and its area,
// which do not depend on any threshold.
//
// Scores are doubles (copy a float reconstruction error into a std::vector<double>). Labels are a
// std::vector<bool>, true for an anomaly (the positive class), because that is what one builds from a
// dataset's labels (`label != normal_class`) and a std::span<const bool> cannot view one.
//
// Errors: ShapeError when scores and labels differ in length; ValueError for a NaN score (it has no
// rank and no side of a threshold), an empty input, a percentile outside [0, 100], and for a ROC with
// one class absent.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace tapegrad::models {

// numpy.percentile(values, q) with its default method, 'linear', to the last bit: the sorted values
// are interpolated at position (n - 1) * q / 100. q is in [0, 100]; values are finite (numpy turns an
// infinity into NaN in its interpolation, so one is rejected here) and not empty.
double percentile(std::span<const double> values, double q);

// The confusion counts and scores of one threshold. A ratio whose denominator is zero is 0, as
// scikit-learn's zero_division=0: precision when nothing is flagged, recall when there is no anomaly,
// F1 when neither flags nor anomalies exist (F1 is computed as 2 tp / (2 tp + fp + fn), which equals
// 2 P R / (P + R) whenever that is defined).
struct Detection {
    double threshold = 0;
    std::size_t true_positives = 0;   // anomalies flagged
    std::size_t false_positives = 0;  // normal samples flagged
    std::size_t true_negatives = 0;   // normal samples passed
    std::size_t false_negatives = 0;  // anomalies passed
    double precision = 0;
    double recall = 0;
    double f1 = 0;
    double accuracy = 0;

    // One JSON object with the fields above under the same names; an infinite threshold is written as
    // null, since JSON has no infinity.
    std::string to_json() const;
};

// Flags a sample when score > threshold (strictly: a sample scoring exactly the threshold passes).
// The threshold may be infinite, not NaN; at least one sample.
Detection detect(std::span<const double> scores, const std::vector<bool>& is_anomaly, double threshold);

// detect() at threshold = percentile(normal_training_scores, q): the training scores of the normal
// class the model was fitted on, not the scores under test.
Detection detect_at_percentile(std::span<const double> normal_training_scores, double q,
                               std::span<const double> scores, const std::vector<bool>& is_anomaly);

// The probability that a random anomaly scores above a random normal sample, ties counting one half:
// the Mann-Whitney U statistic over P anomalies and N normal samples, divided by P N. Equals
// scikit-learn's roc_auc_score and the trapezoid area under roc_curve. O(n log n); needs both classes.
double roc_auc(std::span<const double> scores, const std::vector<bool>& is_anomaly);

// scikit-learn's roc_curve(is_anomaly, scores, drop_intermediate=False), thresholds as in version 1.3
// and later: point i counts the samples with score >= thresholds[i]. The first point is (0, 0) at
// threshold +inf, then one point per distinct score, highest first; the last is (1, 1). Needs both
// classes. Note the >=, where detect() flags > threshold.
struct RocCurve {
    std::vector<double> false_positive_rate;
    std::vector<double> true_positive_rate;
    std::vector<double> thresholds;
};

RocCurve roc_curve(std::span<const double> scores, const std::vector<bool>& is_anomaly);

}  // namespace tapegrad::models
