// What the figures of tutorials 000 and 001 (examples/toy2d.cpp, examples/spiral.cpp) share: a loss curve
// over seeds drawn as its mean and its range, readable where ten lines of ten colours would not be.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "tutorial.hpp"
#include "tapegrad/models/figures.hpp"

namespace tapegrad::examples {

// Mean, min and max over runs (seeds) of each epoch's value, of the runs where it is finite; the mean alone
// for one run. runs[s][e] is run s's value at epoch e + 1; every run has the same length.
inline std::vector<models::Series> loss_envelope(const std::string& name,
                                                 const std::vector<std::vector<double>>& runs) {
    models::Series mean{name + ": mean over seeds", {}, {}};
    models::Series lo{name + ": lowest over seeds", {}, {}};
    models::Series hi{name + ": highest over seeds", {}, {}};
    for (std::size_t e = 0; e < runs.front().size(); ++e) {
        std::vector<double> at;
        for (const auto& run : runs) {
            if (std::isfinite(run[e])) {
                at.push_back(run[e]);
            }
        }
        Spread s = spread_of(at.empty() ? std::vector<double>{NAN} : at);
        for (models::Series* series : {&mean, &lo, &hi}) {
            series->x.push_back(double(e + 1));
        }
        mean.y.push_back(s.mean);
        lo.y.push_back(s.min);
        hi.y.push_back(s.max);
    }
    return runs.size() == 1 ? std::vector<models::Series>{mean} : std::vector<models::Series>{mean, lo, hi};
}

// A horizontal line across the epochs at `value`, its value in the key.
inline models::Series level(const std::string& name, double value, int epochs) {
    return {fmt::format("{} ({:.4f})", name, value), {1, double(epochs)}, {value, value}};
}

}  // namespace tapegrad::examples
