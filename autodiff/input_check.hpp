// What a check of derivatives found for one input, element by element (or direction by direction):
// gradcheck's report has one per input, the tape audit one per input of each entry.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

struct InputCheck {
    std::string name;  // the input's name, or "input k" when it has none
    Shape shape;
    bool passed = true;
    std::size_t checked = 0;      // elements (directions in fast mode) compared
    std::size_t failed = 0;       // of those, out of tolerance and not at a kink
    std::size_t kinks = 0;        // whose finite difference straddled a kink: not counted as failures
    std::string kink_op;          // the op of the first such kink
    std::vector<std::size_t> worst;  // index of the worst element (in fast mode: {direction})
    double analytic = 0;          // at the worst element
    double numeric = 0;
    double max_abs_error = 0;     // over the elements compared, kinks excluded
    double max_rel_error = 0;     // |a - n| / max(|a|, |n|)
};

}  // namespace tapegrad
