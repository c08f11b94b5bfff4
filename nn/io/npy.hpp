// NumPy's .npy format: one array with a small text header ({'descr': '<f4', 'fortran_order': False,
// 'shape': (3, 4), }), as numpy.save writes and numpy.load reads.
//
// The reader is our own rather than xtensor's xt::load_npy, which accepts a truncated file silently,
// rejects format version 3.0, insists on the order of the header's keys, reads no other dtype than the
// one asked for and names no file. Like numpy's own reader, it checks the magic, the version (1.0, 2.0
// or 3.0), the header's three keys, and the byte count of the data against the shape (expected vs
// found): `npy data.npy: truncated: expected 4096 bytes of data, found 100`.
//
// Readable dtypes: float32, float64, int8..int64, uint8..uint64 and bool, in either byte order, C or
// Fortran order; and 0-d unicode ('<U{n}') as text. Other dtypes (float16, complex, bytes, objects,
// structured) are refused by name. Writing gives format 1.0 (2.0 for headers over 64 KiB), C order,
// little-endian, with the header padded to 64 bytes as numpy does.
//
// The templates are instantiated for float, double and std::int64_t in nn/io/npy.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "tapegrad/autodiff/var.hpp"
#include "tapegrad/nn/io/file.hpp"

namespace tapegrad::nn {

// An array as a .npy holds it, kept in its own kind: float32 and float64 stay float and double,
// integers and booleans of any width become int64, and a 0-d unicode array is text (UTF-8 here).
using NpyValue = std::variant<Array<float>, Array<double>, Array<std::int64_t>, std::string>;

// Reads any readable numeric dtype and converts it to T (int64 refuses floating-point data rather than
// rounding it). Throws FileError naming the file.
template <class T>
Array<T> read_npy(const std::string& path);

// Writes atomically (see detail::write_file_atomically): numpy.load opens the result.
template <class T>
void write_npy(const std::string& path, const Array<T>& a);

// The same in memory, for the entries of an .npz. `source` starts the messages, e.g. "npy data.npy"
// or "npz model.npz: entry encoder.0.weight".
template <class T>
std::string encode_npy(const Array<T>& a);
std::string encode_npy(const NpyValue& value);  // text becomes a 0-d '<U{n}', so str(array) gives it back
template <class T>
Array<T> decode_npy(std::string_view bytes, std::string_view source);
NpyValue decode_npy_value(std::string_view bytes, std::string_view source);

namespace detail {
// encode_npy(value) with `source` starting the message for text that is not UTF-8 (a ValueError).
std::string encode_npy_value(const NpyValue& value, std::string_view source);
// The size of the whole .npy (header and data) that `prefix` starts, from its header alone: how much an
// .npz reader should inflate.
std::size_t npy_size(std::string_view prefix, std::string_view source);
}  // namespace detail

// numpy's name of the value's dtype: "float32", "float64", "int64" or "str".
std::string_view dtype_name(const NpyValue& value);

extern template Array<float> read_npy<float>(const std::string&);
extern template Array<double> read_npy<double>(const std::string&);
extern template Array<std::int64_t> read_npy<std::int64_t>(const std::string&);
extern template void write_npy<float>(const std::string&, const Array<float>&);
extern template void write_npy<double>(const std::string&, const Array<double>&);
extern template void write_npy<std::int64_t>(const std::string&, const Array<std::int64_t>&);
extern template std::string encode_npy<float>(const Array<float>&);
extern template std::string encode_npy<double>(const Array<double>&);
extern template std::string encode_npy<std::int64_t>(const Array<std::int64_t>&);
extern template Array<float> decode_npy<float>(std::string_view, std::string_view);
extern template Array<double> decode_npy<double>(std::string_view, std::string_view);
extern template Array<std::int64_t> decode_npy<std::int64_t>(std::string_view, std::string_view);

}  // namespace tapegrad::nn
