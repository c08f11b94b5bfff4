#include "tapegrad/nn/io/npz.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>

#include <fmt/format.h>

namespace tapegrad::nn {


// ---------------------------------------------------------------------------------------------------
// NPZ

namespace {

constexpr std::string_view npy_suffix = ".npy";

struct ZipCloser {
    void operator()(zip_t* archive) const { zip_discard(archive); }
};
struct ZipFileCloser {
    void operator()(zip_file_t* file) const { zip_fclose(file); }
};
struct ZipSourceFreer {
    void operator()(zip_source_t* source) const { zip_source_free(source); }
};
struct ZipError {
    zip_error_t error;
    ZipError() { zip_error_init(&error); }
    ~ZipError() { zip_error_fini(&error); }
    ZipError(const ZipError&) = delete;
    ZipError& operator=(const ZipError&) = delete;
};

}  // namespace

namespace detail {

// Built in memory because libzip writes a file through its own temporary and rename, without fsync:
// write_npz makes the bytes here and writes them with write_file_atomically.
std::string zip_in_memory(const std::vector<std::pair<std::string, std::string>>& files, std::string_view what,
                          bool deflate) {
    if (files.empty()) {
        // libzip writes nothing for an empty archive; a zip with no files is its end record alone.
        return std::string("PK\x05\x06", 4) + std::string(18, '\0');
    }
    auto fail = [&](std::string_view step, zip_error_t* error) {
        throw_file_error(
            fmt::format("{}: cannot build the zip: {}: {}", what, step, zip_error_strerror(error)));
    };
    ZipError error;
    std::unique_ptr<zip_source_t, ZipSourceFreer> buffer(zip_source_buffer_create(nullptr, 0, 0, &error.error));
    if (!buffer) {
        fail("buffer", &error.error);
    }
    std::unique_ptr<zip_t, ZipCloser> archive(zip_open_from_source(buffer.get(), ZIP_TRUNCATE, &error.error));
    if (!archive) {
        fail("open", &error.error);
    }
    // The archive owns the buffer from here; keep it alive past zip_close to read the result back.
    zip_source_keep(buffer.get());
    for (const auto& [name, bytes] : files) {
        // The data is not copied: `files` outlives zip_close.
        zip_source_t* source = zip_source_buffer(archive.get(), bytes.data(), bytes.size(), 0);
        if (source == nullptr) {
            fail(name, zip_get_error(archive.get()));
        }
        zip_int64_t index = zip_file_add(archive.get(), name.c_str(), source, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE);
        if (index < 0) {
            zip_source_free(source);
            fail(name, zip_get_error(archive.get()));
        }
        if (zip_set_file_compression(archive.get(), static_cast<zip_uint64_t>(index),
                                     deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0) != 0) {
            fail(name, zip_get_error(archive.get()));
        }
    }
    if (zip_close(archive.get()) != 0) {
        fail("close", zip_get_error(archive.get()));
    }
    archive.release();  // zip_close freed it
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_source_open(buffer.get()) != 0 || zip_source_stat(buffer.get(), &stat) != 0) {
        fail("read back", zip_source_error(buffer.get()));
    }
    std::string out(stat.size, '\0');
    zip_int64_t n = zip_source_read(buffer.get(), out.data(), stat.size);
    zip_source_close(buffer.get());
    if (n < 0 || static_cast<zip_uint64_t>(n) != stat.size) {
        fail("read back", zip_source_error(buffer.get()));
    }
    return out;
}

}  // namespace detail

namespace {

// Why libzip could not open `path`, in words that say whether it is a zip at all.
[[noreturn]] void throw_open_error(const std::string& path, std::string_view what, int code) {
    char head[4] = {};
    std::size_t got = 0;
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
        got = std::fread(head, 1, sizeof head, f);
        std::fclose(f);
    }
    bool starts_as_zip = got == 4 && std::memcmp(head, "PK\x03\x04", 4) == 0;
    ZipError error;
    zip_error_init_with_code(&error.error, code);
    switch (code) {
        case ZIP_ER_NOENT: detail::throw_file_error(fmt::format("{}: cannot open: No such file or directory", what));
        case ZIP_ER_NOZIP:
            // The zip's directory is at its end: a zip cut short starts like one and has none.
            if (got == 0) {
                detail::throw_file_error(fmt::format("{}: not a zip file: the file is empty", what));
            }
            if (starts_as_zip) {
                detail::throw_file_error(fmt::format("{}: truncated: the zip directory at its end is missing", what));
            }
            detail::throw_file_error(fmt::format("{}: not a zip file", what));
        case ZIP_ER_INCONS:
            detail::throw_file_error(fmt::format("{}: damaged zip: {}", what, zip_error_strerror(&error.error)));
        default: detail::throw_file_error(fmt::format("{}: cannot open: {}", what, zip_error_strerror(&error.error)));
    }
}

std::string read_entry(zip_t* archive, zip_uint64_t index, std::string_view source) {
    std::unique_ptr<zip_file_t, ZipFileCloser> file(zip_fopen_index(archive, index, 0));
    if (!file) {
        detail::throw_file_error(fmt::format("{}: cannot read: {}", source, zip_strerror(archive)));
    }
    // Grows with the data actually inflated, never with the size the directory claims, and only as far
    // as the npy header at its start declares: a member that inflates to gigabytes behind a header asking
    // for 48 bytes is refused after its first read.
    std::string bytes;
    std::size_t limit = 0;  // 0 until the header is read
    for (;;) {
        std::size_t old = bytes.size();
        std::size_t chunk = detail::next_read_size(old);
        bytes.resize(old + chunk);
        zip_int64_t n = zip_fread(file.get(), bytes.data() + old, chunk);
        if (n < 0) {
            detail::throw_file_error(fmt::format("{}: cannot read: {}", source, zip_file_strerror(file.get())));
        }
        bytes.resize(old + static_cast<std::size_t>(n));
        if (n == 0) {
            return bytes;
        }
        if (limit == 0) {
            limit = detail::npy_size(bytes, source);  // a header longer than the first read is refused as truncated
        }
        if (bytes.size() > limit) {
            detail::throw_file_error(fmt::format(
                "{}: trailing bytes: the member inflates beyond the {} bytes its npy header declares", source, limit));
        }
    }
}

}  // namespace

void write_npz(const std::string& path, const std::vector<NpzEntry>& entries) {
    std::string what = fmt::format("npz {}", path);
    std::set<std::string_view> seen;
    std::vector<std::pair<std::string, std::string>> files;
    files.reserve(entries.size());
    for (const NpzEntry& entry : entries) {
        if (entry.name.empty()) {
            tapegrad::detail::throw_value_error(fmt::format("{}: an entry has an empty name", what));
        }
        if (!seen.insert(entry.name).second) {
            tapegrad::detail::throw_value_error(fmt::format("{}: entry {} appears twice", what, entry.name));
        }
        files.emplace_back(entry.name + std::string(npy_suffix),
                           detail::encode_npy_value(entry.value, fmt::format("{}: entry {}", what, entry.name)));
    }
    detail::write_file_atomically(path, detail::zip_in_memory(files, what), what);
}

std::vector<NpzEntry> read_npz(const std::string& path) {
    std::string what = fmt::format("npz {}", path);
    int code = 0;
    std::unique_ptr<zip_t, ZipCloser> archive(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
    if (!archive) {
        throw_open_error(path, what, code);
    }
    zip_int64_t count = zip_get_num_entries(archive.get(), 0);
    // Everything goes into locals first: on an error nothing is returned half-read.
    std::vector<NpzEntry> entries;
    for (zip_int64_t i = 0; i < count; ++i) {
        auto index = static_cast<zip_uint64_t>(i);
        const char* raw = zip_get_name(archive.get(), index, 0);
        std::string name = raw != nullptr ? raw : "";
        if (name.empty() || name.back() == '/') {
            continue;  // folders hold no array
        }
        if (name.ends_with(npy_suffix)) {
            name.resize(name.size() - npy_suffix.size());
        }
        std::string source = fmt::format("{}: entry {}", what, name);
        std::string bytes = read_entry(archive.get(), index, source);
        entries.push_back({std::move(name), decode_npy_value(bytes, source)});
    }
    return entries;
}

const NpzEntry* find_entry(const std::vector<NpzEntry>& entries, std::string_view name) {
    auto it = std::find_if(entries.begin(), entries.end(), [&](const NpzEntry& e) { return e.name == name; });
    return it == entries.end() ? nullptr : &*it;
}

}  // namespace tapegrad::nn
