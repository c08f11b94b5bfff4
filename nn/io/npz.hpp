// NumPy's .npz: a zip of .npy files, one per named array, as numpy.savez writes and numpy.load opens.
// Checkpoints are built on it (parameters by full name, optimizer state, configuration as JSON text).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tapegrad/nn/io/npy.hpp"

namespace tapegrad::nn {

// One array of an .npz. `name` is numpy's key, without the ".npy" the archive stores:
// numpy.load(path)[name]. Text is stored as a 0-d unicode array, so str(numpy.load(path)[name]) gives
// it back.
struct NpzEntry {
    std::string name;
    NpyValue value;
};

// Writes the entries uncompressed (as numpy.savez does) and atomically: the archive goes to a temporary
// file in the same folder, is fsynced and renamed over `path`, so a crash mid-write leaves the previous
// file intact; on any error the temporary is removed and `path` untouched. Empty or repeated names and
// text that is not UTF-8 are refused (ValueError) before anything is written.
void write_npz(const std::string& path, const std::vector<NpzEntry>& entries);

// Every entry, in the archive's order, each kept in its own kind (see NpyValue); reads what numpy.savez
// and numpy.savez_compressed write. Throws FileError naming the file and, where it applies, the entry:
// `npz model.npz: entry encoder.0.weight: truncated: expected 4096 bytes of data, found 100`.
std::vector<NpzEntry> read_npz(const std::string& path);

// The entry called `name`, or nullptr.
const NpzEntry* find_entry(const std::vector<NpzEntry>& entries, std::string_view name);

namespace detail {

// A zip of `files` (name, bytes) in memory, stored as numpy.savez writes them or deflated as
// numpy.savez_compressed does; of two files of one name, the last. Throws FileError starting with `what`
// when libzip refuses.
std::string zip_in_memory(const std::vector<std::pair<std::string, std::string>>& files, std::string_view what,
                          bool deflate = false);

}  // namespace detail

}  // namespace tapegrad::nn
