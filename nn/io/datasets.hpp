// Datasets by name or by path.
//
//   digits          scikit-learn's 8x8 digits, bundled (data/digits.csv.gz): 1797 x 64, values 0..16,
//                   labels 0..9. One split only: "train" and "all" both mean all of it; make a test set
//                   with train_test_split.
//   fashion-mnist   Fashion-MNIST from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist):
//                   split "train" is 60000 x 784, "test" 10000 x 784, raw pixels 0..255, labels 0..9.
//   a path          *.csv or *.csv.gz (header detected, no labels: read_csv takes a label column), *.npy
//                   ((N, D); (N,) is one feature, more dimensions are flattened per row), or an IDX images
//                   file (*-idx3-ubyte, or .gz of it) with its labels when the matching *-labels-idx1-ubyte
//                   file is beside it. Split "train" or "all": the whole file.
//
// Data is loaded fully into locals and checked (NaN or Inf is an error naming the file and the first bad
// row and column) before anything is returned.
#pragma once

#include <string>
#include <string_view>

#include "tapegrad/nn/io/csv.hpp"
#include "tapegrad/nn/dataset.hpp"
#include "tapegrad/nn/io/idx.hpp"
#include "tapegrad/nn/io/npy.hpp"

namespace tapegrad::nn {

// Where the bundled data lives: $TAPEGRAD_DATA when set; else the source tree's data/ while it holds the
// data (a build used where it was built); else the installed share/tapegrad (both set by meson).
std::string data_dir();

inline constexpr std::string_view fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

Dataset load_dataset(const std::string& name_or_path, const std::string& split = "train");

}  // namespace tapegrad::nn
