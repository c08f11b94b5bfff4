// Real files for each fuzz target, made by tapegrad's own writers (write_npy, write_npz, save_checkpoint,
// describe_model), cut from the bundled digits and from Debian's Fashion-MNIST, and their truncated and
// bit-flipped variants. The seed generator (make_seeds.cpp) writes them as the fuzzers' first corpus; the
// regression test (tests/nn/fuzz_regression_test.cpp) puts the same files through the readers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "targets.hpp"

namespace tapegrad::fuzz {

struct Sample {
    std::string stem;   // names the file, with file_name(): "fashion-3" gives fashion-3.idx or fashion-3.idx.gz
    std::string bytes;  // the file's content
    // The target's first read loads it. False for real files another read is for (a float64 checkpoint for
    // the float model) and for every variant, which may load or not.
    bool loads = false;
};

// Where Fashion-MNIST's test images and labels are, when Debian's dataset-fashion-mnist is installed.
inline constexpr const char* fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

// The real files of `target`; `scratch` is an existing folder for the writers, which write to paths.
// IDX files are a few images of Fashion-MNIST when it is installed, else made up of a gradient.
std::vector<Sample> real_files(const Target& target, const std::filesystem::path& scratch);

// `count` variants of `sample`, the same for the same seed: about a third cut short (at every length up to
// 64 bytes, then at lengths spread over the rest), the others with one bit flipped or one byte set to
// 0x00 or 0xff; a gzip file also gets its inflated content damaged and compressed again, so that the
// damage reaches the reader rather than stopping at gzip's checksum.
std::vector<Sample> variants(const Sample& sample, std::size_t count, std::uint64_t seed);

// The containers around the formats, in memory, so that a variant (or a fuzzer's mutation) can damage
// what is inside and wrap it again: gzip checks a CRC of what it inflates, and a zip of each of its files,
// which would otherwise stop nearly every change before it reached tapegrad's own parsing.
//
// gzip's format (zlib), as `gzip -n` writes it; and back, nullopt unless the bytes are a whole gzip
// stream inflating to at most `limit` bytes.
std::string gzip_bytes(std::string_view bytes);
std::optional<std::string> gunzip_bytes(std::string_view bytes, std::size_t limit = std::size_t{1} << 24);

// A zip's files (name, content) in the archive's order, read by libzip; nullopt when it cannot open the
// archive or read a file, or when the files inflate to more than `limit` bytes in all.
using ZipFiles = std::vector<std::pair<std::string, std::string>>;
std::optional<ZipFiles> unzip_bytes(std::string_view bytes, std::size_t limit = std::size_t{1} << 24);

}  // namespace tapegrad::fuzz
