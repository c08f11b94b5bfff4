#include "tapegrad/nn/io/file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "tapegrad/autodiff/error.hpp"

namespace tapegrad::nn {

// ---------------------------------------------------------------------------------------------------
// Reading files, plain or gzip (declared in file.hpp, used by every reader but npy)

namespace detail {

void throw_file_error(std::string message) { throw FileError(std::move(message)); }

std::string read_file(const std::string& path, std::string_view what) {
    // gzopen reads a file without gzip's magic bytes as it is ("transparent" mode), so one loop serves both.
    errno = 0;
    gzFile file = gzopen(path.c_str(), "rb");
    if (file == nullptr) {
        throw_file_error(fmt::format("{}: cannot open: {}", what, errno != 0 ? std::strerror(errno) : "out of memory"));
    }
    std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(file, gzclose);
    gzbuffer(file, 1 << 17);
    std::string bytes;
    for (;;) {
        std::size_t old = bytes.size();
        std::size_t chunk = next_read_size(old);
        bytes.resize(old + chunk);
        errno = 0;
        int n = gzread(file, bytes.data() + old, static_cast<unsigned>(chunk));
        bytes.resize(old + static_cast<std::size_t>(std::max(n, 0)));
        int err = Z_OK;
        gzerror(file, &err);
        if (err == Z_ERRNO) {
            throw_file_error(fmt::format("{}: cannot read: {}", what, std::strerror(errno)));
        }
        if (err == Z_BUF_ERROR) {
            throw_file_error(fmt::format("{}: truncated gzip stream: unexpected end of file", what));
        }
        if (err != Z_OK) {
            // gzerror's own message starts with the path; ours names the file once, in `what`.
            throw_file_error(
                fmt::format("{}: damaged gzip stream: {}", what, err == Z_DATA_ERROR ? "corrupt data" : "zlib error"));
        }
        if (n <= 0) {
            break;
        }
    }
    return bytes;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------------
// Writing files atomically (declared in file.hpp): npz, npy, and whatever else must not be left half-written

namespace detail {

namespace {

std::string temporary_name(const std::filesystem::path& dir, const std::filesystem::path& name) {
    static std::atomic<unsigned> counter{0};
    auto ticks = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    // A leading dot keeps the temporary out of globs such as *.npz while it exists.
    return (dir / fmt::format(".{}.{}-{:x}-{}.tmp", name.string(), ::getpid(), ticks & 0xffffff, counter++)).string();
}

}  // namespace

void write_file_atomically(const std::string& path, std::string_view bytes, std::string_view what) {
    namespace fs = std::filesystem;
    fs::path target(path);
    fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    if (target.filename().empty()) {
        throw_file_error(fmt::format("{}: cannot write: the path names a folder", what));
    }
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
        tmp = temporary_name(dir, target.filename());
        fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) {
            break;
        }
    }
    if (fd < 0) {
        throw_file_error(
            fmt::format("{}: cannot create a temporary file in {}: {}", what, dir.string(), std::strerror(errno)));
    }
    std::size_t written = 0;
    // What the user needs from a failed write: which file, which step, the system's reason (No space left
    // on device, File too large, Disk quota exceeded) and that the file they had is still there.
    auto fail = [&](std::string_view step) {
        int error = errno;
        if (fd >= 0) {
            ::close(fd);
        }
        ::unlink(tmp.c_str());
        if (step == "rename") {
            throw_file_error(fmt::format("{}: cannot write: rename: {}", what, std::strerror(error)));
        }
        std::string progress = step == "write" ? fmt::format(" after {} of {} bytes", written, bytes.size()) : "";
        throw_file_error(fmt::format("{}: cannot write: {}{}: {}; {} is as it was", what, step, progress,
                                     std::strerror(error), path));
    };
    // A file replaced by a newer version keeps its permissions.
    struct stat old {};
    if (::stat(path.c_str(), &old) == 0 && S_ISREG(old.st_mode)) {
        ::fchmod(fd, old.st_mode & 07777);
    }
    const char* p = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = ENOSPC;  // a regular file that takes no bytes and reports no error is full
            }
            fail("write");
        }
        p += n;
        written += static_cast<std::size_t>(n);
        left -= static_cast<std::size_t>(n);
    }
    // Without the fsync, a crash after the rename could leave the new name on disk with no data behind it.
    if (::fsync(fd) != 0) {
        fail("fsync");
    }
    int closed = ::close(fd);
    fd = -1;
    if (closed != 0) {
        fail("close");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        fail("rename");
    }
    // The rename itself is durable only once the folder is; some filesystems cannot fsync a folder, and the
    // data is safe either way, so a failure here is not an error.
    int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        ::fsync(dir_fd);
        ::close(dir_fd);
    }
}

std::size_t remove_stale_temporaries(const std::string& path) {
    namespace fs = std::filesystem;
    fs::path target(path);
    fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    std::string prefix = fmt::format(".{}.", target.filename().string());
    std::size_t removed = 0;
    std::error_code error;
    for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
        std::string name = it->path().filename().string();
        if (!name.starts_with(prefix) || !name.ends_with(".tmp")) {
            continue;
        }
        // temporary_name's pattern: .<name>.<pid>-<ticks>-<count>.tmp
        std::size_t at = prefix.size();
        std::size_t dash = name.find('-', at);
        if (dash == std::string::npos || dash == at || dash - at > 9 ||
            name.find_first_not_of("0123456789", at) != dash) {
            continue;
        }
        auto pid = static_cast<pid_t>(std::stol(name.substr(at, dash - at)));
        if (pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) {
            std::error_code ignored;
            removed += fs::remove(it->path(), ignored) ? 1 : 0;
        }
    }
    return removed;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------------
// Output folders

std::vector<std::string> claim_output_folder(std::string_view program, const std::string& folder,
                                             const std::vector<std::string>& files, bool overwrite,
                                             std::string_view other_way) {
    std::vector<std::string> found;
    for (const std::string& name : files) {
        std::error_code error;
        if (std::filesystem::exists(std::filesystem::path(folder) / name, error)) {
            found.push_back(name);
        }
    }
    if (!found.empty() && !overwrite) {
        tapegrad::detail::throw_value_error(
            fmt::format("{}: {} already holds a run ({}): {}replace it with --overwrite, or choose another --out",
                        program, folder, fmt::join(found, ", "), other_way));
    }
    for (const std::string& name : found) {
        std::filesystem::remove(std::filesystem::path(folder) / name);
    }
    return found;
}

}  // namespace tapegrad::nn
