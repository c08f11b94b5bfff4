// Shared by the tests that work with files: a scratch folder removed at the end of scope, whole-file
// reads and writes, gzip's own command, and Debian's python3 with numpy to write and check files
// independently of our code.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>

namespace tapegrad::test {

// `arg` in single quotes for the shell.
inline std::string shell_quoted(const std::string& arg) {
    std::string quoted = "'";
    for (char c : arg) {
        if (c == '\'') {
            quoted += "'\\''";
        } else {
            quoted += c;
        }
    }
    quoted += '\'';
    return quoted;
}

// The names of the entries of a folder, sorted.
inline std::vector<std::string> listing(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

// A fresh folder under the system's temporary directory, named after `prefix`, the pid and a count of
// the folders this process made, so that neither parallel binaries nor two folders of one test meet;
// removed with everything in it at the end of scope.
class TempDir {
public:
    const std::filesystem::path path;

    explicit TempDir(const std::string& prefix) : path(fresh_path(prefix)) {
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }

    // The path of `name` in the folder, as a string.
    std::string operator/(const std::string& name) const { return (path / name).string(); }
    // The names of the folder's entries, sorted.
    std::vector<std::string> files() const { return listing(path); }

private:
    static std::filesystem::path fresh_path(const std::string& prefix) {
        static std::atomic<int> counter{0};
        std::string name = prefix;
        name += '_';
        name += std::to_string(::getpid());
        name += '_';
        name += std::to_string(counter++);
        return std::filesystem::temp_directory_path() / name;
    }
};

// The whole file, byte for byte ("" when it cannot be opened).
inline std::string read_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// Writes `bytes` as the whole file, replacing what was there.
inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Compresses `path` to `path`.gz with gzip's own command, so that a reader is checked against files zlib
// did not write through our code; returns the new file's path.
inline std::string gzip(const std::string& path) {
    std::string gz = path + ".gz";
    std::string command = "gzip -nc ";
    command += shell_quoted(path);
    command += " > ";
    command += shell_quoted(gz);
    REQUIRE(std::system(command.c_str()) == 0);
    return gz;
}

// Runs a Python program with Debian's python3, with os, sys and numpy as np imported and `folder` as d
// (argv[1]). Returns what it printed, stdout and stderr together; fails the test, showing that output,
// when the program fails. The program is written to `folder`/script.py, removed after a run that succeeds.
inline std::string run_python(const std::filesystem::path& folder, const std::string& code) {
    std::filesystem::path script = folder / "script.py";
    std::ofstream(script) << "import os, sys\nimport numpy as np\nd = sys.argv[1]\n" << code << "\n";
    std::string command = "/usr/bin/python3 ";
    command += shell_quoted(script.string());
    command += ' ';
    command += shell_quoted(folder.string());
    command += " 2>&1";
    std::FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
        out.append(buffer, n);
    }
    int status = ::pclose(pipe);
    INFO(out);
    REQUIRE(status == 0);
    std::filesystem::remove(script);
    return out;
}

inline std::string run_python(const TempDir& dir, const std::string& code) { return run_python(dir.path, code); }

}  // namespace tapegrad::test
