#include "tapegrad/nn/io/csv.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace tapegrad::nn {

namespace {

enum class Parsed { number, empty, not_number, not_finite, out_of_range };

std::string_view describe(Parsed p) {
    switch (p) {
        case Parsed::empty: return "empty cell";
        case Parsed::not_number: return "not a number";
        case Parsed::not_finite: return "not finite";
        case Parsed::out_of_range: return "out of float32 range";
        case Parsed::number: break;
    }
    return "";
}

bool is_space(char c, char delimiter) { return (c == ' ' || c == '\t') && c != delimiter; }

std::string_view trim(std::string_view s, char delimiter) {
    while (!s.empty() && is_space(s.front(), delimiter)) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back(), delimiter)) {
        s.remove_suffix(1);
    }
    return s;
}

// A cell as a finite number that fits in a float. from_chars rather than strtod: no locale, no copy, and
// it must consume the whole cell, so "3abc" is not 3.
Parsed parse(std::string_view s, double& value) {
    if (s.empty()) {
        return Parsed::empty;
    }
    std::string_view digits = s;
    if (digits.front() == '+') {
        digits.remove_prefix(1);  // from_chars takes no '+', numpy and pandas do
        if (digits.empty() || digits.front() == '-') {
            return Parsed::not_number;
        }
    }
    const char* end = digits.data() + digits.size();
    auto [p, ec] = std::from_chars(digits.data(), end, value);
    if (p != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
        return Parsed::not_number;
    }
    if (ec == std::errc::result_out_of_range) {
        // Also reported for values too small for a double, which are 0 to any float; strtod says which.
        value = std::strtod(std::string(digits).c_str(), nullptr);
    }
    if (std::isnan(value) || std::isinf(value)) {
        return ec == std::errc::result_out_of_range ? Parsed::out_of_range : Parsed::not_finite;
    }
    if (std::abs(value) > std::numeric_limits<float>::max()) {
        return Parsed::out_of_range;
    }
    return Parsed::number;
}

void split(std::string_view line, char delimiter, std::vector<std::string_view>& cells) {
    cells.clear();
    for (std::size_t start = 0;;) {
        std::size_t end = line.find(delimiter, start);
        cells.push_back(trim(line.substr(start, end == std::string_view::npos ? end : end - start), delimiter));
        if (end == std::string_view::npos) {
            return;
        }
        start = end + 1;
    }
}

std::string shown(std::string_view cell) {
    constexpr std::size_t longest = 40;
    return cell.size() <= longest ? std::string(cell) : fmt::format("{}...", cell.substr(0, longest));
}

}  // namespace

Dataset read_csv(const std::string& path, const CsvOptions& options) {
    std::string what = fmt::format("csv {}", path);
    std::string text = detail::read_file(path, what);
    std::vector<float> values;
    std::vector<std::int64_t> labels;
    std::vector<std::string_view> cells;
    std::size_t rows = 0;
    std::size_t columns = 0;
    std::size_t first_line = 0;  // 0 until the first non-blank line
    std::size_t label = std::string_view::npos;
    std::size_t line_number = 0;
    for (std::size_t pos = 0; pos < text.size();) {
        std::size_t end = std::min(text.find('\n', pos), text.size());
        std::string_view line(text.data() + pos, end - pos);
        pos = end + 1;
        ++line_number;
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (trim(line, options.delimiter).empty()) {
            continue;
        }
        split(line, options.delimiter, cells);
        if (first_line == 0) {
            first_line = line_number;
            columns = cells.size();
            if (options.label_column) {
                long c = *options.label_column < 0 ? static_cast<long>(columns) + *options.label_column
                                                   : *options.label_column;
                if (c < 0 || c >= static_cast<long>(columns)) {
                    tapegrad::detail::throw_value_error(fmt::format(
                        "{}: label column {} is out of range for {} columns", what, *options.label_column, columns));
                }
                label = static_cast<std::size_t>(c);
            }
            bool header = options.header.value_or(std::any_of(cells.begin(), cells.end(), [](std::string_view cell) {
                double v = 0;
                Parsed p = parse(cell, v);
                return p == Parsed::not_number || p == Parsed::empty;
            }));
            if (header) {
                continue;
            }
        }
        if (cells.size() != columns) {
            detail::throw_file_error(fmt::format("{}: line {}: {} columns, expected {} as on line {}", what,
                                                 line_number, cells.size(), columns, first_line));
        }
        for (std::size_t c = 0; c < columns; ++c) {
            double v = 0;
            Parsed p = parse(cells[c], v);
            if (p != Parsed::number) {
                detail::throw_file_error(fmt::format("{}: line {}, column {}: {}: \"{}\"", what, line_number, c + 1,
                                                     describe(p), shown(cells[c])));
            }
            if (c != label) {
                values.push_back(static_cast<float>(v));
                continue;
            }
            if (v != std::floor(v) || std::abs(v) > 9.0e15) {
                detail::throw_file_error(fmt::format("{}: line {}, column {}: label is not an integer: \"{}\"", what,
                                                     line_number, c + 1, shown(cells[c])));
            }
            labels.push_back(static_cast<std::int64_t>(v));
        }
        ++rows;
    }
    if (rows == 0) {
        detail::throw_file_error(fmt::format("{}: no data rows", what));
    }
    std::size_t dim = columns - (label == std::string_view::npos ? 0 : 1);
    if (dim == 0) {
        detail::throw_file_error(fmt::format("{}: no feature columns: the only column holds the labels", what));
    }
    Dataset data;
    data.x = xt::empty<float>(Shape{rows, dim});
    std::copy(values.begin(), values.end(), data.x.data());
    data.labels = std::move(labels);
    data.name = path;
    return data;
}

}  // namespace tapegrad::nn
