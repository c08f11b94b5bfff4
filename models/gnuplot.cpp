#include "gnuplot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "figure_common.hpp"
#include "tapegrad/models/images.hpp"

extern char** environ;

namespace tapegrad::models::detail {

namespace {

// A temporary file that is removed when it goes out of scope, whatever happens in between.
struct TempFile {
    std::string path;
    int fd = -1;

    TempFile(const std::string& what, const char* suffix) {
        auto dir = std::filesystem::temp_directory_path();
        std::string name = (dir / fmt::format("tapegrad-figure-XXXXXX{}", suffix)).string();
        fd = ::mkostemps(name.data(), static_cast<int>(std::strlen(suffix)), O_CLOEXEC);
        if (fd < 0) {
            detail::throw_figure_error(fmt::format("{}: cannot create a temporary file in {}: {}", what,
                                                   dir.string(), std::strerror(errno)));
        }
        path = name;
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        if (fd >= 0) {
            ::close(fd);
        }
        ::unlink(path.c_str());
    }
};

void write_all(const std::string& what, int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            detail::throw_figure_error(fmt::format("{}: cannot write the gnuplot script: {}", what,
                                                   std::strerror(errno)));
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

// What gnuplot said, without the blank lines around it and short enough for a message.
std::string tidy(std::string text) {
    auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) {
        return "";
    }
    text = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
    if (text.size() > 2000) {
        text = text.substr(0, 2000) + " ...";
    }
    return text;
}

}  // namespace

// gnuplot's standard error goes to a temporary file rather than a second pipe: a pipe would have to be
// drained while stdout is read, or gnuplot could block on a full one.
std::string run_gnuplot(const std::string& what, const std::string& program, const std::string& script) {
    TempFile script_file(what, ".gp");
    write_all(what, script_file.fd, script);
    TempFile errors(what, ".err");

    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        detail::throw_figure_error(fmt::format("{}: cannot run gnuplot: pipe: {}", what, std::strerror(errno)));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, errors.fd, 2);
    std::string dash_d = "-d";
    std::vector<char*> argv{const_cast<char*>(program.c_str()), dash_d.data(), script_file.path.data(), nullptr};
    pid_t pid = 0;
    int spawned = ::posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (spawned != 0) {
        ::close(out[0]);
        if (spawned == ENOENT) {
            std::string where = program == "gnuplot" ? "" : fmt::format(" at {}", program);
            detail::throw_figure_error(fmt::format("{}: gnuplot not found{}: install gnuplot-nox", what, where));
        }
        detail::throw_figure_error(fmt::format("{}: cannot run {}: {}", what, program, std::strerror(spawned)));
    }
    std::string png = read_all(out[0]);
    ::close(out[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ::lseek(errors.fd, 0, SEEK_SET);
    std::string said = tidy(read_all(errors.fd));
    std::string detail_text = said.empty() ? "" : ": " + said;
    if (WIFSIGNALED(status)) {
        detail::throw_figure_error(fmt::format("{}: gnuplot killed by signal {}{}", what, WTERMSIG(status),
                                               detail_text));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        detail::throw_figure_error(fmt::format("{}: gnuplot failed with exit status {}{}", what,
                                               WEXITSTATUS(status), detail_text));
    }
    constexpr std::string_view signature("\x89PNG\r\n\x1a\n", 8);
    if (png.size() < signature.size() || std::string_view(png).substr(0, signature.size()) != signature) {
        detail::throw_figure_error(fmt::format("{}: gnuplot wrote no png: {} bytes on its output{}", what,
                                               png.size(), detail_text));
    }
    return png;
}

}  // namespace tapegrad::models::detail
