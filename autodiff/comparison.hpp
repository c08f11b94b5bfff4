// What gradcheck and the audit share: folding the comparison of analytic and numeric derivatives into an
// InputCheck, one element at a time. Internal to the library.
#pragma once

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tapegrad/autodiff/error.hpp"
#include "tapegrad/autodiff/input_check.hpp"

namespace tapegrad::detail {

// The index of element `flat` of a row-major array of this shape.
inline std::vector<std::size_t> unravel(const Shape& shape, std::size_t flat) {
    std::vector<std::size_t> index(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    return index;
}

// A report's JSON text into a file; a ValueError naming the check and the file when it cannot.
inline void write_report(const std::string& path, const std::string& json, std::string_view check) {
    std::ofstream out(path);
    out << json << "\n";
    if (!out) {
        throw_value_error(std::string(check) + ": cannot write " + path);
    }
}

// An input's check as its report's JSON writes it.
inline nlohmann::json to_json(const InputCheck& c) {
    return {{"name", c.name},
            {"shape", std::vector<std::size_t>(c.shape.begin(), c.shape.end())},
            {"passed", c.passed},
            {"checked", c.checked},
            {"failed", c.failed},
            {"kinks", c.kinks},
            {"kink_op", c.kink_op},
            {"worst", c.worst},
            {"analytic", c.analytic},
            {"numeric", c.numeric},
            {"max_abs_error", c.max_abs_error},
            {"max_rel_error", c.max_rel_error}};
}

class Comparison {
public:
    Comparison(InputCheck& check, double atol, double rtol) : check_(check), atol_(atol), rtol_(rtol) {}

    // An element passes when |a - n| <= atol + rtol |n|. One that fails where the finite difference
    // straddled a kink (`kink` names its op; empty when there was none) counts as a kink, not a failure.
    void add(double a, double n, std::string_view kink, std::vector<std::size_t> where) {
        ++check_.checked;
        double err = std::abs(a - n);
        bool ok = err <= atol_ + rtol_ * std::abs(n);
        if (!ok && !kink.empty()) {
            if (check_.kinks++ == 0) {
                check_.kink_op = std::string(kink);
            }
            return;
        }
        double scale = std::max(std::abs(a), std::abs(n));
        double rel = scale > 0 ? err / scale : 0;
        double badness = err / (atol_ + rtol_ * std::abs(n));
        // Ties in badness (all infinite when both tolerances are 0) go to the larger error; a NaN is worst.
        if (std::isnan(badness)) {
            badness = INFINITY;
        }
        if (first_ || badness > worst_badness_ || (badness == worst_badness_ && err > worst_error_)) {
            first_ = false;
            worst_badness_ = badness;
            worst_error_ = err;
            check_.worst = std::move(where);
            check_.analytic = a;
            check_.numeric = n;
        }
        check_.max_abs_error = std::max(check_.max_abs_error, err);
        check_.max_rel_error = std::max(check_.max_rel_error, rel);
        if (!ok) {
            ++check_.failed;
            check_.passed = false;
        }
    }

private:
    InputCheck& check_;
    double atol_;
    double rtol_;
    bool first_ = true;
    double worst_badness_ = -1;
    double worst_error_ = -1;
};

}  // namespace tapegrad::detail
