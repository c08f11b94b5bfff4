// A parameter with its full name (`encoder.0.weight`): what a Module yields and an optimizer updates.
#pragma once

#include <string>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad::nn {

template <class T>
struct NamedParameter {
    std::string name;
    Var<T> var;
};

template <class T>
using ParameterList = std::vector<NamedParameter<T>>;

}  // namespace tapegrad::nn
