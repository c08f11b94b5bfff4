// What the readers and writers share: FileError, and reading and writing whole files.
//
// Every message names the format and the file as the user gave it, then what is wrong, then the
// numbers: `npy data.npy: truncated: expected 4096 bytes of data, found 100`.
// Defined in nn/io/file.cpp.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "tapegrad/autodiff/error.hpp"

namespace tapegrad::nn {

// A file that cannot be read or written, or whose content is not what its format says: bad magic,
// truncated, dimensions that do not match the size, a non-numeric CSV cell, NaN or Inf in data.
class FileError : public Error {
public:
    using Error::Error;
};

namespace detail {

[[noreturn]] void throw_file_error(std::string message);

// The whole content of `path`, inflated when it starts with gzip's magic bytes (1f 8b). `what` starts
// the messages: "idx train.gz" gives `idx train.gz: truncated gzip stream: unexpected end of file`.
// Memory grows with the data actually read, never with a size a header claims.
std::string read_file(const std::string& path, std::string_view what);

// How many bytes a reader that has `read` so far asks for next: as many as it has (so that it reads a
// file in O(log size) steps), at least 64 KiB, at most 16 MiB. A small file costs a small buffer:
// no megabyte to clear for a 1 KiB header.
constexpr std::size_t next_read_size(std::size_t read) {
    constexpr std::size_t smallest = std::size_t{1} << 16;
    constexpr std::size_t largest = std::size_t{1} << 24;
    return read < smallest ? smallest : read > largest ? largest : read;
}

// Writes `bytes` to a temporary file in the folder of `path`, fsyncs it, renames it over `path` and
// fsyncs the folder: a crash leaves either the old file or the new one, never a mix. On any error the
// temporary is removed and `path` is untouched.
// The temporary is `.<name>.<pid>-<ticks>-<count>.tmp`: a process killed mid-write leaves it behind,
// never a partial `path`. An error says which step failed and why, in the system's words ("No space left
// on device", "File too large"), and that `path` is as it was.
void write_file_atomically(const std::string& path, std::string_view bytes, std::string_view what);

// Removes the temporaries that killed writers of `path` left beside it: those whose process no longer
// runs on this machine (a live writer's temporary is kept). Returns how many it removed. For a folder
// that one machine writes, as a training run's is.
std::size_t remove_stale_temporaries(const std::string& path);

}  // namespace detail

// A run never destroys another: when `folder` holds any of `files` (what `program` writes there), this
// throws ValueError naming them, `other_way` (e.g. "continue it with --resume ..., or ") and
// --overwrite; with `overwrite` it removes them and returns their names, for the caller to say so.
std::vector<std::string> claim_output_folder(std::string_view program, const std::string& folder,
                                             const std::vector<std::string>& files, bool overwrite,
                                             std::string_view other_way = "");

}  // namespace tapegrad::nn
