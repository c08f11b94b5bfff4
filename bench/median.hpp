// The median of a benchmark's timings: what each bench reports of its repeated runs.
#pragma once

#include <algorithm>
#include <vector>

inline double median(std::vector<double> xs) {
    std::sort(xs.begin(), xs.end());
    std::size_t n = xs.size();
    return n % 2 == 1 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}
