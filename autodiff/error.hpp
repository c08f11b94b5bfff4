// Exceptions thrown by tapegrad. Every message has the form `op: what is wrong: details`, names the op
// (or file) and prints the shapes involved; the checks are always on, never `assert`.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include <xtensor/xarray.hpp>

namespace tapegrad {

// The shape of an array: xtensor's own small vector, inline for up to four dimensions.
using Shape = xt::xarray<double>::shape_type;

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Shapes that do not fit an op: `matmul: inner dimensions differ: (32, 64) x (32, 16)`.
class ShapeError : public Error {
public:
    using Error::Error;
};

// An argument outside an op's domain that is not a shape: an axis, an index, an exponent.
class ValueError : public Error {
public:
    using Error::Error;
};

// Misuse of the graph: backward on a freed tape, a non-scalar output without a seed.
class GraphError : public Error {
public:
    using Error::Error;
};

// Raised in checking mode at the first op whose forward or backward produced NaN or Inf.
class NumericError : public Error {
public:
    using Error::Error;
};

// numpy's notation: (), (5,), (32, 64).
std::string to_string(const Shape& shape);
// The index of flat element `flat` of an array of that shape, as errors print it: [2, 0].
std::string index_to_string(const Shape& shape, std::size_t flat);

namespace detail {
[[noreturn]] void throw_shape_error(std::string message);
[[noreturn]] void throw_value_error(std::string message);
[[noreturn]] void throw_graph_error(std::string message);
[[noreturn]] void throw_numeric_error(std::string message);
}  // namespace detail

}  // namespace tapegrad
