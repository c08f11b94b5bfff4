// What the tests of the tutorials' experiments share: running an experiment's program as a user runs it
// (tests/tools/cli.hpp), reading the results.json it writes (examples/tutorial.hpp), and checking a
// figure the tutorial printed against the spread of ours over seeds.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "../tools/cli.hpp"

#ifndef TAPEGRAD_EXAMPLE
#error "TAPEGRAD_EXAMPLE must be the path of the experiment's program"
#endif

namespace tutorial {

using cli::json;

// Runs the experiment's program with `args` and --out in `dir`, checks it succeeded, returns results.json.
inline json run(const std::vector<std::string>& args, const cli::TempDir& dir, const std::string& out = "run") {
    std::vector<std::string> all = args;
    all.push_back("--out");
    all.push_back((dir.path / out).string());
    cli::Run r = cli::run_program(TAPEGRAD_EXAMPLE, all, dir);
    cli::check_ok(r);
    json results = cli::read_json((dir.path / out / "results.json").string());
    for (const auto& figure : results.at("figures")) {
        cli::check_png((dir.path / out / figure.get<std::string>()).string());
    }
    return results;
}

// The tutorial's `printed` value lies within k standard deviations of the mean of ours (the range of
// ours counts too, for a handful of seeds whose sd happens to be small).
inline void check_inside_spread(const json& results, const std::string& measured, double printed, double k = 3) {
    const json& s = results.at("measured").at(measured);
    double mean = s.at("mean").get<double>();
    double sd = s.at("sd").get<double>();
    double lo = std::min(s.at("min").get<double>(), mean - k * sd);
    double hi = std::max(s.at("max").get<double>(), mean + k * sd);
    INFO(measured << ": the tutorial's " << printed << " against ours " << s.dump());
    CHECK(printed >= lo);
    CHECK(printed <= hi);
}

// The tutorial's `printed` value lies inside the 99% prediction interval of one more draw from what our
// seeds drew: mean +- t sd sqrt(1 + 1/n), with Student's t at 0.995 for n - 1 degrees of freedom because
// sd is estimated from the same n values. For the 2 to 10 seeds a test can afford; wider than 3 sd
// there, which over so few seeds fails for draws that come from the same distribution.
inline void check_inside_prediction_interval(const json& results, const std::string& measured, double printed) {
    constexpr std::array<double, 9> t_0995 = {63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250};
    const json& s = results.at("measured").at(measured);
    std::size_t n = s.at("values").size();
    REQUIRE(n >= 2);
    REQUIRE(n <= t_0995.size() + 1);
    double mean = s.at("mean").get<double>();
    double half_width = t_0995[n - 2] * s.at("sd").get<double>() * std::sqrt(1 + 1.0 / static_cast<double>(n));
    INFO(measured << ": the tutorial's " << printed << " against ours " << s.dump() << ", interval " << mean
                  << " +- " << half_width);
    CHECK(std::abs(printed - mean) <= half_width);
}

inline double mean_of(const json& results, const std::string& measured) {
    return results.at("measured").at(measured).at("mean").get<double>();
}

}  // namespace tutorial
