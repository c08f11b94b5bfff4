// Anomaly metrics: percentile against numpy (Debian's python3-numpy) to the last bit, detection counts
// and scikit-learn's zero_division=0 conventions on hand-counted cases, ROC-AUC against a brute-force
// count of pairs, and the ROC curve against scikit-learn's documented example and its own area.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "scratch.hpp"
#include "tapegrad/autodiff/error.hpp"
#include "tapegrad/models/anomaly.hpp"

using namespace tapegrad;
using namespace tapegrad::models;

namespace {

constexpr double nan_value = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();

// numpy.percentile(values, q) for every q, one repr a line, read back exactly.
std::vector<double> numpy_percentiles(const std::vector<double>& values, const std::vector<double>& qs) {
    test::TempDir dir("tapegrad_anomaly_test");
    std::ofstream out(dir / "percentile.txt");
    out << fmt::format("{}\n", fmt::join(values, " "));  // fmt prints the shortest exact representation
    out << fmt::format("{}\n", fmt::join(qs, " "));
    out.close();
    std::string printed = test::run_python(
        dir, "f = open(os.path.join(d, 'percentile.txt')); v = np.array(f.readline().split(), float); "
             "q = np.array(f.readline().split(), float); "
             "print('\\n'.join(repr(float(np.percentile(v, t))) for t in q))");
    std::vector<double> got;
    std::istringstream lines(printed);
    for (std::string line; std::getline(lines, line);) {
        got.push_back(std::stod(line));
    }
    return got;
}

// Probability that a random anomaly outscores a random normal sample, ties one half, over all pairs.
double brute_force_auc(const std::vector<double>& scores, const std::vector<bool>& is_anomaly) {
    double wins = 0;
    double pairs = 0;
    for (std::size_t i = 0; i < scores.size(); ++i) {
        for (std::size_t j = 0; j < scores.size(); ++j) {
            if (is_anomaly[i] && !is_anomaly[j]) {
                wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
                pairs += 1;
            }
        }
    }
    return wins / pairs;
}

// Scores with many ties (a few distinct values) and labels holding both classes.
void random_case(std::uint64_t seed, std::size_t n, std::vector<double>& scores, std::vector<bool>& is_anomaly) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> level(0, 7);
    std::bernoulli_distribution anomaly(0.3);
    do {
        scores.assign(n, 0);
        is_anomaly.assign(n, false);
        for (std::size_t i = 0; i < n; ++i) {
            scores[i] = level(rng) * 0.25;
            is_anomaly[i] = anomaly(rng);
        }
    } while (std::count(is_anomaly.begin(), is_anomaly.end(), true) == 0 ||
             std::count(is_anomaly.begin(), is_anomaly.end(), false) == 0);
}

double trapezoid_area(const RocCurve& c) {
    double area = 0;
    for (std::size_t i = 1; i < c.thresholds.size(); ++i) {
        area += (c.false_positive_rate[i] - c.false_positive_rate[i - 1]) *
                (c.true_positive_rate[i] + c.true_positive_rate[i - 1]) / 2;
    }
    return area;
}

}  // namespace

TEST_CASE("percentile: hand-worked values of numpy's linear method") {
    std::vector<double> v = {4, 1, 3, 2};  // unsorted on purpose
    CHECK(percentile(v, 0) == 1);
    CHECK(percentile(v, 25) == 1.75);  // position 0.75
    CHECK(percentile(v, 50) == 2.5);
    CHECK(percentile(v, 75) == 3.25);
    CHECK(percentile(v, 100) == 4);
    std::vector<double> one_to_ten = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    CHECK(percentile(one_to_ten, 90) == 9.1);  // position 8.1
    std::vector<double> single = {5};
    CHECK(percentile(single, 0) == 5);
    CHECK(percentile(single, 37) == 5);
    CHECK(percentile(single, 100) == 5);
    std::vector<double> same = {2, 2, 2};
    CHECK(percentile(same, 61.8) == 2);
}

TEST_CASE("percentile: equals numpy.percentile to the last bit") {
    std::vector<double> qs = {0, 100, 50, 1, 5, 10, 12.5, 25, 33.3, 50.0000001, 66.6, 75, 90, 95, 97.5, 99,
                              99.5, 99.9, 1e-9, 100 - 1e-9};
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> u(0, 100);
    for (int i = 0; i < 40; ++i) {
        qs.push_back(u(rng));
    }
    for (std::size_t n : {1, 2, 3, 10, 37, 1000}) {
        CAPTURE(n);
        std::vector<double> values(n);
        std::lognormal_distribution<double> score(-3, 1.5);  // reconstruction errors are skewed like this
        for (double& x : values) {
            x = score(rng);
        }
        values[n / 2] = -values[n / 2];  // one negative value
        std::vector<double> want = numpy_percentiles(values, qs);
        REQUIRE(want.size() == qs.size());
        for (std::size_t k = 0; k < qs.size(); ++k) {
            CAPTURE(qs[k]);
            CHECK(percentile(values, qs[k]) == want[k]);
        }
    }
}

TEST_CASE("detect: a hand-counted example") {
    std::vector<double> scores = {0.1, 0.5, 0.9, 0.3, 0.7, 0.2};
    std::vector<bool> is_anomaly = {false, true, true, false, false, true};
    // Flagged above 0.4: 0.5 and 0.9 (anomalies), 0.7 (normal). Passed: 0.1, 0.3 (normal), 0.2 (anomaly).
    Detection d = detect(scores, is_anomaly, 0.4);
    CHECK(d.threshold == 0.4);
    CHECK(d.true_positives == 2);
    CHECK(d.false_positives == 1);
    CHECK(d.true_negatives == 2);
    CHECK(d.false_negatives == 1);
    CHECK(d.precision == doctest::Approx(2.0 / 3));
    CHECK(d.recall == doctest::Approx(2.0 / 3));
    CHECK(d.f1 == doctest::Approx(2.0 / 3));
    CHECK(d.accuracy == doctest::Approx(4.0 / 6));

    SUBCASE("a score equal to the threshold is not flagged") {
        Detection at = detect(scores, is_anomaly, 0.5);
        CHECK(at.true_positives == 1);  // 0.9 only
        CHECK(at.false_positives == 1);
        CHECK(at.false_negatives == 2);
        CHECK(at.precision == 0.5);
        CHECK(at.recall == doctest::Approx(1.0 / 3));
        CHECK(at.f1 == doctest::Approx(2 * 0.5 * (1.0 / 3) / (0.5 + 1.0 / 3)));
    }
    SUBCASE("to_json carries every field") {
        nlohmann::json j = nlohmann::json::parse(d.to_json());
        CHECK(j.size() == 9);
        CHECK(j.at("threshold").get<double>() == 0.4);
        CHECK(j.at("true_positives").get<std::size_t>() == 2);
        CHECK(j.at("false_positives").get<std::size_t>() == 1);
        CHECK(j.at("true_negatives").get<std::size_t>() == 2);
        CHECK(j.at("false_negatives").get<std::size_t>() == 1);
        CHECK(j.at("precision").get<double>() == d.precision);
        CHECK(j.at("recall").get<double>() == d.recall);
        CHECK(j.at("f1").get<double>() == d.f1);
        CHECK(j.at("accuracy").get<double>() == d.accuracy);
        CHECK(d.to_json().rfind("{\"threshold\":", 0) == 0);  // the struct's order, not sorted keys
    }
}

TEST_CASE("detect: zero divisions give 0, as scikit-learn's zero_division=0") {
    std::vector<double> scores = {0.1, 0.5, 0.9};
    std::vector<bool> is_anomaly = {false, true, false};
    SUBCASE("nothing flagged: precision, recall and f1 are 0") {
        Detection d = detect(scores, is_anomaly, inf);
        CHECK(d.true_positives + d.false_positives == 0);
        CHECK(d.precision == 0);
        CHECK(d.recall == 0);
        CHECK(d.f1 == 0);
        CHECK(d.accuracy == doctest::Approx(2.0 / 3));
        CHECK(nlohmann::json::parse(d.to_json()).at("threshold").is_null());
    }
    SUBCASE("no anomaly and nothing flagged: all 0 but accuracy") {
        std::vector<bool> normal = {false, false, false};
        Detection d = detect(scores, normal, 1.0);
        CHECK(d.precision == 0);
        CHECK(d.recall == 0);
        CHECK(d.f1 == 0);
        CHECK(d.accuracy == 1);
    }
    SUBCASE("no anomaly, something flagged: precision 0 with a denominator, recall 0 without") {
        std::vector<bool> normal = {false, false, false};
        Detection d = detect(scores, normal, 0.2);
        CHECK(d.false_positives == 2);
        CHECK(d.precision == 0);
        CHECK(d.recall == 0);
        CHECK(d.f1 == 0);
        CHECK(d.accuracy == doctest::Approx(1.0 / 3));
    }
    SUBCASE("everything flagged at -inf") {
        Detection d = detect(scores, is_anomaly, -inf);
        CHECK(d.true_positives == 1);
        CHECK(d.false_positives == 2);
        CHECK(d.recall == 1);
        CHECK(d.precision == doctest::Approx(1.0 / 3));
        CHECK(d.f1 == doctest::Approx(0.5));
    }
}

TEST_CASE("detect_at_percentile: the threshold is the percentile of the normal training scores") {
    std::vector<double> train = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    std::vector<double> scores = {9.0, 9.2, 12, 0.5};
    std::vector<bool> is_anomaly = {true, true, true, false};
    Detection d = detect_at_percentile(train, 90, scores, is_anomaly);
    CHECK(d.threshold == percentile(train, 90));
    CHECK(d.threshold == 9.1);
    CHECK(d.true_positives == 2);  // 9.2 and 12; 9.0 is below 9.1
    CHECK(d.false_negatives == 1);
    CHECK(d.true_negatives == 1);
    CHECK(d.false_positives == 0);
    CHECK(d.precision == 1);
}

TEST_CASE("roc_auc: hand cases") {
    std::vector<bool> is_anomaly = {false, false, true, true};
    std::vector<double> perfect = {0.1, 0.2, 0.3, 0.4};
    std::vector<double> reversed = {0.4, 0.3, 0.2, 0.1};
    std::vector<double> tied = {0.7, 0.7, 0.7, 0.7};
    CHECK(roc_auc(perfect, is_anomaly) == 1);
    CHECK(roc_auc(reversed, is_anomaly) == 0);
    CHECK(roc_auc(tied, is_anomaly) == 0.5);

    // Anomalies 0.8, 0.4, 0.6 against normal 0.3, 0.6, 0.1, 0.5, counted pair by pair:
    //   0.8 beats all four: 4;  0.4 beats 0.3 and 0.1: 2;  0.6 beats 0.3, 0.1, 0.5 and ties 0.6: 3.5.
    // 9.5 of 3 * 4 = 12 pairs.
    std::vector<double> scores = {0.8, 0.3, 0.4, 0.6, 0.6, 0.1, 0.5};
    std::vector<bool> labels = {true, false, true, false, true, false, false};
    CHECK(roc_auc(scores, labels) == 9.5 / 12);
}

TEST_CASE("roc_auc: equals a brute-force count of pairs on random data with ties") {
    for (std::uint64_t seed = 0; seed < 30; ++seed) {
        std::size_t n = 2 + seed * 7;
        CAPTURE(seed);
        CAPTURE(n);
        std::vector<double> scores;
        std::vector<bool> is_anomaly;
        random_case(seed, n, scores, is_anomaly);
        CHECK(roc_auc(scores, is_anomaly) == doctest::Approx(brute_force_auc(scores, is_anomaly)).epsilon(1e-14));
    }
}

TEST_CASE("roc_curve: scikit-learn's documented example") {
    // sklearn.metrics.roc_curve([1, 1, 2, 2], [0.1, 0.4, 0.35, 0.8], pos_label=2)
    std::vector<double> scores = {0.1, 0.4, 0.35, 0.8};
    std::vector<bool> is_anomaly = {false, false, true, true};
    RocCurve c = roc_curve(scores, is_anomaly);
    CHECK(c.false_positive_rate == std::vector<double>{0, 0, 0.5, 0.5, 1});
    CHECK(c.true_positive_rate == std::vector<double>{0, 0.5, 0.5, 1, 1});
    CHECK(c.thresholds == std::vector<double>{inf, 0.8, 0.4, 0.35, 0.1});
    CHECK(trapezoid_area(c) == roc_auc(scores, is_anomaly));
}

TEST_CASE("roc_curve: one point per distinct score, ties moving diagonally") {
    std::vector<double> scores = {0.5, 0.2, 0.5};
    std::vector<bool> is_anomaly = {true, false, false};
    RocCurve c = roc_curve(scores, is_anomaly);
    CHECK(c.false_positive_rate == std::vector<double>{0, 0.5, 1});
    CHECK(c.true_positive_rate == std::vector<double>{0, 1, 1});
    CHECK(c.thresholds == std::vector<double>{inf, 0.5, 0.2});
    CHECK(trapezoid_area(c) == 0.75);
    CHECK(roc_auc(scores, is_anomaly) == 0.75);
}

TEST_CASE("roc_curve: from (0, 0) to (1, 1), monotone, with roc_auc as its area") {
    for (std::uint64_t seed = 100; seed < 120; ++seed) {
        std::size_t n = 3 + (seed - 100) * 11;
        CAPTURE(seed);
        CAPTURE(n);
        std::vector<double> scores;
        std::vector<bool> is_anomaly;
        random_case(seed, n, scores, is_anomaly);
        RocCurve c = roc_curve(scores, is_anomaly);
        const std::size_t m = c.thresholds.size();
        REQUIRE(m >= 2);
        REQUIRE(c.false_positive_rate.size() == m);
        REQUIRE(c.true_positive_rate.size() == m);
        CHECK(c.false_positive_rate.front() == 0);
        CHECK(c.true_positive_rate.front() == 0);
        CHECK(c.thresholds.front() == inf);
        CHECK(c.false_positive_rate.back() == 1);
        CHECK(c.true_positive_rate.back() == 1);
        for (std::size_t i = 1; i < m; ++i) {
            CAPTURE(i);
            CHECK(c.false_positive_rate[i] >= c.false_positive_rate[i - 1]);
            CHECK(c.true_positive_rate[i] >= c.true_positive_rate[i - 1]);
            CHECK(c.thresholds[i] < c.thresholds[i - 1]);
            // A point counts the samples scoring at least its threshold.
            auto at_least = [&](double s) { return s >= c.thresholds[i]; };
            std::size_t flagged = std::count_if(scores.begin(), scores.end(), at_least);
            std::size_t anomalies = std::count(is_anomaly.begin(), is_anomaly.end(), true);
            std::size_t normal = n - anomalies;
            CHECK(c.false_positive_rate[i] * double(normal) + c.true_positive_rate[i] * double(anomalies) ==
                  doctest::Approx(double(flagged)));
        }
        CHECK(trapezoid_area(c) == doctest::Approx(roc_auc(scores, is_anomaly)).epsilon(1e-14));
    }
}

TEST_CASE("percentile: errors") {
    std::vector<double> empty;
    std::vector<double> v = {1, 2, 3};
    std::vector<double> with_nan = {1, nan_value, 3};
    std::vector<double> with_inf = {1, 2, inf};
    std::vector<double> with_minus_inf = {-inf, 2, 3};
    CHECK_THROWS_WITH_AS(percentile(empty, 50), "percentile: values are empty: need at least one value", ValueError);
    CHECK_THROWS_WITH_AS(percentile(v, -1), "percentile: q is out of range: -1 is not in [0, 100]", ValueError);
    CHECK_THROWS_WITH_AS(percentile(v, 100.5), "percentile: q is out of range: 100.5 is not in [0, 100]", ValueError);
    CHECK_THROWS_WITH_AS(percentile(v, nan_value), "percentile: q is out of range: nan is not in [0, 100]", ValueError);
    CHECK_THROWS_WITH_AS(percentile(with_nan, 50), "percentile: values must be finite: values[1] is nan", ValueError);
    CHECK_THROWS_WITH_AS(percentile(with_inf, 50), "percentile: values must be finite: values[2] is inf", ValueError);
    CHECK_THROWS_WITH_AS(percentile(with_minus_inf, 50), "percentile: values must be finite: values[0] is -inf",
                         ValueError);
}

TEST_CASE("detect and detect_at_percentile: errors") {
    std::vector<double> scores = {0.1, 0.2, 0.3};
    std::vector<double> with_nan = {0.1, nan_value, 0.3};
    std::vector<bool> two = {true, false};
    std::vector<bool> three = {true, false, false};
    std::vector<double> no_scores;
    std::vector<bool> no_labels;
    CHECK_THROWS_WITH_AS(detect(scores, two, 0.5), "detect: scores and labels differ in length: 3 scores, 2 labels",
                         ShapeError);
    CHECK_THROWS_WITH_AS(detect(no_scores, no_labels, 0.5), "detect: no samples: scores and labels are empty",
                         ValueError);
    CHECK_THROWS_WITH_AS(detect(scores, three, nan_value), "detect: threshold is nan: it must be a number", ValueError);
    CHECK_THROWS_WITH_AS(detect(with_nan, three, 0.5), "detect: scores contain nan: scores[1] is nan", ValueError);

    std::vector<double> train = {1, 2, 3};
    std::vector<double> train_nan = {nan_value, 2, 3};
    CHECK_THROWS_WITH_AS(detect_at_percentile(train, 90, scores, two),
                         "detect_at_percentile: scores and labels differ in length: 3 scores, 2 labels", ShapeError);
    CHECK_THROWS_WITH_AS(detect_at_percentile(no_scores, 90, scores, three),
                         "detect_at_percentile: normal_training_scores are empty: need at least one value", ValueError);
    CHECK_THROWS_WITH_AS(detect_at_percentile(train, 101, scores, three),
                         "detect_at_percentile: q is out of range: 101 is not in [0, 100]", ValueError);
    CHECK_THROWS_WITH_AS(
        detect_at_percentile(train_nan, 90, scores, three),
        "detect_at_percentile: normal_training_scores must be finite: normal_training_scores[0] is nan", ValueError);
    CHECK_THROWS_WITH_AS(detect_at_percentile(train, 90, with_nan, three),
                         "detect_at_percentile: scores contain nan: scores[1] is nan", ValueError);
    CHECK_THROWS_WITH_AS(detect_at_percentile(train, 90, no_scores, no_labels),
                         "detect_at_percentile: no samples: scores and labels are empty", ValueError);
}

TEST_CASE("roc_auc and roc_curve: errors") {
    std::vector<double> scores = {0.1, 0.2, 0.3};
    std::vector<double> with_nan = {0.1, 0.2, nan_value};
    std::vector<bool> two = {true, false};
    std::vector<bool> mixed = {true, false, false};
    std::vector<bool> all_normal = {false, false, false};
    std::vector<bool> all_anomalies = {true, true, true};
    std::vector<double> no_scores;
    std::vector<bool> no_labels;
    CHECK_THROWS_WITH_AS(roc_auc(scores, two), "roc_auc: scores and labels differ in length: 3 scores, 2 labels",
                         ShapeError);
    CHECK_THROWS_WITH_AS(roc_auc(scores, all_normal), "roc_auc: one class is absent: 0 anomalies, 3 normal samples",
                         ValueError);
    CHECK_THROWS_WITH_AS(roc_auc(scores, all_anomalies), "roc_auc: one class is absent: 3 anomalies, 0 normal samples",
                         ValueError);
    CHECK_THROWS_WITH_AS(roc_auc(no_scores, no_labels), "roc_auc: one class is absent: 0 anomalies, 0 normal samples",
                         ValueError);
    CHECK_THROWS_WITH_AS(roc_auc(with_nan, mixed), "roc_auc: scores contain nan: scores[2] is nan", ValueError);

    CHECK_THROWS_WITH_AS(roc_curve(scores, two), "roc_curve: scores and labels differ in length: 3 scores, 2 labels",
                         ShapeError);
    CHECK_THROWS_WITH_AS(roc_curve(scores, all_normal),
                         "roc_curve: one class is absent: 0 anomalies, 3 normal samples", ValueError);
    CHECK_THROWS_WITH_AS(roc_curve(with_nan, mixed), "roc_curve: scores contain nan: scores[2] is nan", ValueError);
}
