// A dataset: an (N, D) matrix of float samples, one per row, with optional integer labels.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::nn {

struct Dataset {
    Array<float> x;                    // (N, D)
    std::vector<std::int64_t> labels;  // one per row, or empty when the data has none
    std::string name;                  // "digits", "fashion-mnist/train", or the file's path
    std::vector<std::string> class_names{};  // the name of label k, when the data set has names

    std::size_t size() const { return x.dimension() == 2 ? x.shape(0) : 0; }
    std::size_t dim() const { return x.dimension() == 2 ? x.shape(1) : 0; }
    bool has_labels() const { return !labels.empty(); }
};

// Throws FileError at the first NaN or Inf of x, (N, D), naming its row and column (0-based, as numpy
// indexes): `npy data.npy: not finite: x[3, 2] is nan`. `source` starts the message.
void check_finite(const Array<float>& x, std::string_view source);

// Throws ShapeError unless x is (N, D) and labels are empty or N long; `op` starts the message.
void check_dataset(const Dataset& data, std::string_view op);

}  // namespace tapegrad::nn
