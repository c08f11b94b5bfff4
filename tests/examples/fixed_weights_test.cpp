// Tutorial 003 (examples/fixed_weights.cpp): the 3-2-3 network's printed numbers, and the 784-100-784 pass
// on random positive weights against what its expectation says it does; the corrected run, briefly.
#include <cmath>

#include "tutorial_checks.hpp"

namespace {

void check_close(const cli::json& values, const std::vector<double>& expected, double tolerance) {
    REQUIRE(values.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        CAPTURE(i);
        CHECK(std::abs(values[i].get<double>() - expected[i]) < tolerance);
    }
}

}  // namespace

TEST_CASE("network: the tutorial's encoder, decoder and MSE, in double to 1e-12 and in float to 1e-6") {
    cli::TempDir dir("fixed_weights");
    cli::json r = tutorial::run({"network", "--protocol", "tutorial"}, dir);
    double printed = r["tutorial_printed"]["mse"].get<double>();
    double ours = tutorial::mean_of(r, "mse");
    INFO("the tutorial printed " << printed << ", ours " << ours);
    CHECK(std::abs(ours - printed) < 1e-12);
    // The tutorial's 0.198864666666677 is 1e-14 off the exact 0.596594 / 3; ours is the exact one to
    // double rounding.
    CHECK(std::abs(ours - 0.596594 / 3) < 1e-15);
    check_close(r["double"]["encoder"], r["tutorial_printed_encoder"], 1e-12);
    check_close(r["double"]["decoder"], r["tutorial_printed_decoder"], 1e-12);
    check_close(r["float"]["encoder"], r["tutorial_printed_encoder"], 1e-6);
    check_close(r["float"]["decoder"], r["tutorial_printed_decoder"], 1e-6);
    CHECK(std::abs(r["float"]["mse"].get<double>() - printed) < 1e-6);
    CHECK(r["gradcheck"]["passed"].get<bool>());
    CHECK(r["gradcheck"]["checked"].get<int>() == 12);
}

TEST_CASE("image, tutorial: random positive weights give an output of the expected scale that does not resemble "
          "the input") {
    cli::TempDir dir("fixed_weights");
    cli::json r = tutorial::run({"image", "--protocol", "tutorial", "--seeds", "3"}, dir);
    const cli::json& m = r["measured"];
    double variance = r["input_variance"].get<double>();
    // 25 * sum(x) from E[w] = 1/2, per output pixel: within a factor 1.25 either way on every seed.
    CHECK(m["output_mean_over_expected"]["min"].get<double>() > 0.8);
    CHECK(m["output_mean_over_expected"]["max"].get<double>() < 1.25);
    // Millions of times the input's own variance: no reconstruction at all.
    CHECK(m["mse_to_input"]["min"].get<double>() > 1e4 * variance);
    // What imshow's rescaling hides: the output is uncorrelated with its input and nearly the same
    // picture for every input.
    CHECK(std::abs(m["pearson_with_input"]["min"].get<double>()) < 0.2);
    CHECK(std::abs(m["pearson_with_input"]["max"].get<double>()) < 0.2);
    CHECK(m["pearson_between_outputs"]["min"].get<double>() > 0.9);
}

TEST_CASE("image, corrected: a briefly trained 784-100-784 beats the mean image") {
    cli::TempDir dir("fixed_weights");
    cli::json r =
        tutorial::run({"image", "--protocol", "corrected", "--seeds", "1", "--train-rows", "2000", "--epochs", "5"}, dir);
    CHECK(tutorial::mean_of(r, "trained_test_mse") < r["mean_image"]["test_mse"].get<double>());
    CHECK(tutorial::mean_of(r, "trained_image_mse") < r["mean_image"]["image_mse"].get<double>());
}

TEST_CASE("image: a test row past the end is a one-line error") {
    cli::TempDir dir("fixed_weights");
    cli::Run r = cli::run_program(TAPEGRAD_EXAMPLE, {"image", "--image", "9995", "--out", (dir.path / "o").string()}, dir);
    cli::check_one_line_error(r, "fixed_weights image: --image 9995", {"10000"});
}
