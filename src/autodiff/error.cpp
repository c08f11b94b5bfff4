#include "tapegrad/autodiff/error.hpp"

#include <fmt/format.h>

namespace tapegrad {

std::string to_string(const Shape& shape) {
    if (shape.size() == 1) {
        return fmt::format("({},)", shape[0]);
    }
    return fmt::format("({})", fmt::join(shape, ", "));
}

namespace detail {
void throw_shape_error(std::string message) { throw ShapeError(std::move(message)); }
void throw_value_error(std::string message) { throw ValueError(std::move(message)); }
void throw_graph_error(std::string message) { throw GraphError(std::move(message)); }
void throw_numeric_error(std::string message) { throw NumericError(std::move(message)); }
}  // namespace detail

}  // namespace tapegrad
