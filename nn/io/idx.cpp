#include "tapegrad/nn/io/idx.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>

#include <fmt/format.h>

namespace tapegrad::nn {


// ---------------------------------------------------------------------------------------------------
// IDX

namespace {

constexpr unsigned char unsigned_byte = 0x08;

std::uint32_t big_endian(const std::string& bytes, std::size_t at) {
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    }
    return v;
}

struct Idx {
    std::string bytes;  // the whole file, inflated
    std::vector<std::size_t> dims;
    std::size_t offset = 0;  // where the elements start
};

// Reads and checks the header against `dimensions` (3 for images, 1 for labels), and the size the
// dimensions claim against the bytes there.
Idx read(const std::string& path, std::size_t dimensions) {
    std::string what = fmt::format("idx {}", path);
    Idx idx;
    idx.bytes = detail::read_file(path, what);
    const std::string& b = idx.bytes;
    auto kind = [](std::size_t n) { return n == 3 ? "images" : "labels"; };
    std::uint32_t expected = 0x0800u | static_cast<std::uint32_t>(dimensions);
    if (b.size() < 4) {
        detail::throw_file_error(
            fmt::format("{}: truncated: {} bytes, too short for the magic number", what, b.size()));
    }
    std::uint32_t magic = big_endian(b, 0);
    if (magic >> 16 != 0) {
        detail::throw_file_error(fmt::format("{}: bad magic {:#010x}: not an IDX file", what, magic));
    }
    auto type = static_cast<unsigned char>(b[2]);
    std::size_t ndims = static_cast<unsigned char>(b[3]);
    if (type != unsigned_byte) {
        detail::throw_file_error(
            fmt::format("{}: bad magic {:#010x}: element type {:#04x} is not read (unsigned bytes, "
                        "{:#04x}, are)",
                        what, magic, type, unsigned_byte));
    }
    if (ndims != dimensions) {
        std::string found = ndims == 1 || ndims == 3 ? fmt::format(" ({})", kind(ndims)) : "";
        detail::throw_file_error(fmt::format("{}: bad magic {:#010x}{}: expected {:#010x} ({})", what, magic, found,
                                             expected, kind(dimensions)));
    }
    idx.offset = 4 + 4 * ndims;
    if (b.size() < idx.offset) {
        detail::throw_file_error(
            fmt::format("{}: truncated: expected a header of {} bytes, found {}", what, idx.offset, b.size()));
    }
    std::size_t claimed = 1;
    for (std::size_t d = 0; d < ndims; ++d) {
        idx.dims.push_back(big_endian(b, 4 + 4 * d));
        if (__builtin_mul_overflow(claimed, idx.dims.back(), &claimed)) {
            detail::throw_file_error(fmt::format("{}: dimensions {} overflow", what, fmt::join(idx.dims, " x ")));
        }
    }
    std::size_t found = b.size() - idx.offset;
    if (found != claimed) {
        detail::throw_file_error(fmt::format("{}: {}: dimensions {} need {} bytes of data, found {}", what,
                                             found < claimed ? "truncated" : "trailing bytes",
                                             fmt::join(idx.dims, " x "), claimed, found));
    }
    return idx;
}

}  // namespace

Array<float> read_idx_images(const std::string& path) {
    Idx idx = read(path, 3);
    std::size_t n = idx.dims[0];
    std::size_t d = idx.dims[1] * idx.dims[2];
    Array<float> x = xt::empty<float>(Shape{n, d});
    const auto* src = reinterpret_cast<const unsigned char*>(idx.bytes.data() + idx.offset);
    float* out = x.data();
    for (std::size_t i = 0; i < n * d; ++i) {
        out[i] = static_cast<float>(src[i]);
    }
    return x;
}

std::vector<std::int64_t> read_idx_labels(const std::string& path) {
    Idx idx = read(path, 1);
    const auto* src = reinterpret_cast<const unsigned char*>(idx.bytes.data() + idx.offset);
    return std::vector<std::int64_t>(src, src + idx.dims[0]);
}

Dataset read_idx(const std::string& images_path, const std::string& labels_path) {
    Array<float> x = read_idx_images(images_path);
    std::vector<std::int64_t> labels = read_idx_labels(labels_path);
    if (labels.size() != x.shape(0)) {
        detail::throw_file_error(
            fmt::format("idx {}: {} labels for {} images in {}", labels_path, labels.size(), x.shape(0), images_path));
    }
    return Dataset{std::move(x), std::move(labels), images_path};
}

}  // namespace tapegrad::nn
