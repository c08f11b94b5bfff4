// Comma-separated numbers, one sample per line, plain or gzip (recognised by gzip's magic bytes).
//
// Every row must have as many cells as the first; each cell is a finite number (spaces around it are
// ignored), and the label column, when there is one, holds integers. Blank lines are skipped; quoting is
// not supported (a header may not hold the delimiter inside quotes). Errors name the line and column,
// both 1-based as an editor shows them: `csv data.csv: line 3, column 2: not a number: "abc"`.
#pragma once

#include <optional>
#include <string>

#include "tapegrad/nn/dataset.hpp"
#include "tapegrad/nn/io/file.hpp"

namespace tapegrad::nn {

struct CsvOptions {
    // Unset: detected, the first line is a header when one of its cells is not a number.
    std::optional<bool> header = std::nullopt;
    // Unset: no labels. Otherwise the column holding them, 0-based; negative counts from the end (-1 is
    // the last column).
    std::optional<int> label_column = std::nullopt;
    char delimiter = ',';
};

// The dataset is named after the path.
Dataset read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace tapegrad::nn
