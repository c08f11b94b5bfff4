#include "tapegrad/autodiff/error.hpp"

#include <vector>

#include <fmt/format.h>

namespace tapegrad {

std::string to_string(const Shape& shape) {
    if (shape.size() == 1) {
        return fmt::format("({},)", shape[0]);
    }
    return fmt::format("({})", fmt::join(shape, ", "));
}

std::string index_to_string(const Shape& shape, std::size_t flat) {
    std::vector<std::size_t> index(shape.size());
    for (std::size_t d = shape.size(); d-- > 0;) {
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    return fmt::format("[{}]", fmt::join(index, ", "));
}

namespace detail {
void throw_shape_error(std::string message) { throw ShapeError(std::move(message)); }
void throw_value_error(std::string message) { throw ValueError(std::move(message)); }
void throw_graph_error(std::string message) { throw GraphError(std::move(message)); }
void throw_numeric_error(std::string message) { throw NumericError(std::move(message)); }
}  // namespace detail

}  // namespace tapegrad
