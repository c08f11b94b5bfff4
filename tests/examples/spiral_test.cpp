// Tutorial 001 (examples/spiral.cpp): its text printed no number, so its claims are what is checked. Read
// as 2 -> 1 -> 2 with a sigmoid code and a linear decoder, the model reconstructs on one straight line, no
// better than PCA with one component, with codes that follow PCA's projection and not the spiral; a
// network with hidden layers (--protocol corrected) follows the spiral, far below PCA's error.
#include <cmath>
#include <vector>

#include "tutorial_checks.hpp"

namespace {

std::vector<double> values(const cli::json& r, const char* name) {
    return r.at("measured").at(name).at("values").get<std::vector<double>>();
}

}  // namespace

TEST_CASE("spiral --protocol tutorial: a 2-1-2 autoencoder with a linear decoder is PCA at best, on a line") {
    cli::TempDir dir("spiral_test");
    cli::json r = tutorial::run({"--protocol", "tutorial", "--seeds", "3"}, dir);
    CHECK(r.at("protocol") == "tutorial");
    CHECK(r.at("tutorial_printed").empty());  // the lost code's output: nothing to set ours against
    CHECK(r.at("figures").size() == 4);
    std::vector<double> ae = values(r, "ae_mse");
    std::vector<double> pca = values(r, "pca_mse");
    REQUIRE(ae.size() == 3);
    for (std::size_t s = 0; s < ae.size(); ++s) {
        CAPTURE(s);
        // The reconstructions lie on one line, and PCA's line is the best one: not below, even by rounding.
        CHECK(ae[s] >= pca[s] * (1 - 1e-9));
        CHECK(ae[s] < pca[s] * 1.05);  // trained to PCA's floor, not cut short
    }
    for (double off : values(r, "off_line")) {
        CHECK(off < 1e-6);
    }
    // The code is a monotone function of one projection: it orders the points as PCA's score does, which
    // on a spiral of one and a half turns is not the order along the spiral.
    for (double rho : values(r, "rank_correlation_pca")) {
        CHECK(rho > 0.999);
    }
    for (double rho : values(r, "rank_correlation")) {
        CHECK(rho < 0.5);
    }
    for (double pieces : values(r, "monotone_pieces")) {
        CHECK(pieces >= 3);
    }
}

TEST_CASE("spiral --protocol corrected: hidden layers follow the spiral, far below PCA's error and off any line") {
    cli::TempDir dir("spiral_test");
    cli::json r = tutorial::run({"--seeds", "1"}, dir);
    CHECK(r.at("protocol") == "corrected");
    CHECK(r.at("figures").size() == 4);
    CHECK(tutorial::mean_of(r, "ae_over_pca") < 0.1);
    CHECK(tutorial::mean_of(r, "off_line") > 0.5);
}

TEST_CASE("spiral keeps an earlier run unless --overwrite") {
    cli::TempDir dir("spiral_test");
    std::vector<std::string> args = {"--protocol", "tutorial", "--seeds", "1"};
    tutorial::run(args, dir);
    std::vector<std::string> again = args;
    again.insert(again.end(), {"--out", (dir.path / "run").string()});
    cli::Run refused = cli::run_program(TAPEGRAD_EXAMPLE, again, dir);
    cli::check_one_line_error(refused, "spiral: ", {"already holds a run", "results.json", "--overwrite"});
    args.push_back("--overwrite");
    tutorial::run(args, dir);
}
