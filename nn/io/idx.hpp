// The IDX format of MNIST and Fashion-MNIST: a big-endian magic number (0x0000, an element type, the
// number of dimensions), the dimensions as big-endian 32-bit counts, then the elements. Plain or gzip
// (recognised by gzip's magic bytes, read through zlib).
//
// Only unsigned bytes are read (type 0x08): images 0x00000803 (N, rows, cols) and labels 0x00000801 (N).
// The size the dimensions claim is checked against the bytes actually there before the array is
// allocated: `idx train.gz: truncated: dimensions 60000 x 28 x 28 need 47040000 bytes of data, found 100`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tapegrad/nn/dataset.hpp"
#include "tapegrad/nn/io/file.hpp"

namespace tapegrad::nn {

// (N, rows * cols), the raw values 0..255 as floats, one image per row.
Array<float> read_idx_images(const std::string& path);

std::vector<std::int64_t> read_idx_labels(const std::string& path);

// Images and their labels; the counts must agree. The dataset is named after the images' path.
Dataset read_idx(const std::string& images_path, const std::string& labels_path);

}  // namespace tapegrad::nn
