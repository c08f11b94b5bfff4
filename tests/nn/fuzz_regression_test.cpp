// The fuzz targets' rule, in the normal suite: every input a fuzzer ever failed on (fuzz/regressions/<target>/)
// and truncated and bit-flipped variants of real files go through the same readers as the fuzzers
// (fuzz/targets.cpp), and each either loads or is refused by an exception whose message names the file.
//
// A saved input runs in a child process of its own, with a memory limit and a time limit: one that still
// crashes, hangs or asks for gigabytes then fails its check, named, rather than taking the suite down.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "samples.hpp"
#include "scratch.hpp"
#include "targets.hpp"

using namespace tapegrad;
namespace fs = std::filesystem;
using test::TempDir;

namespace {

#if defined(__SANITIZE_ADDRESS__)
#define TAPEGRAD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TAPEGRAD_ASAN 1
#endif
#endif

#ifdef TAPEGRAD_ASAN
// AddressSanitizer reserves terabytes of address space, so an address-space limit cannot bound a child;
// its allocator calls this hook instead, before the memory is touched (libFuzzer's -malloc_limit_mb).
extern "C" int __sanitizer_install_malloc_and_free_hooks(void (*)(const volatile void*, std::size_t),
                                                         void (*)(const volatile void*));
void stop_huge_allocation(const volatile void*, std::size_t size) {
    if (size > (std::size_t{2} << 30)) {
        static const char message[] = "fuzz_regression: an allocation of more than 2 GiB\n";
        ::write(2, message, sizeof message - 1);
        ::_exit(3);
    }
}
#endif

std::string signal_name(int signal) {
    const char* name = ::strsignal(signal);
    return name != nullptr ? name : std::to_string(signal);
}

// fuzz::verdict in a child process limited to 2 GiB of memory and 60 seconds: its verdict, or how the
// child ended when it did not give one (the sanitizer's report, if any, is on stderr).
std::string isolated_verdict(const fuzz::Target& target, const std::string& path) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        // doctest's handlers would report the crash as the child's own test run, with a summary line that
        // `make test` would count: a crash here ends the child, and the parent says how.
        for (int signal : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
            std::signal(signal, SIG_DFL);
        }
#ifdef TAPEGRAD_ASAN
        __sanitizer_install_malloc_and_free_hooks(stop_huge_allocation, nullptr);
#else
        // What the process has mapped already (libraries, BLAS threads' stacks), and 2 GiB more.
        std::size_t pages = 0;
        if (std::FILE* statm = std::fopen("/proc/self/statm", "r")) {
            if (std::fscanf(statm, "%zu", &pages) != 1) {
                pages = 0;
            }
            std::fclose(statm);
        }
        rlim_t bytes = pages * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) + (rlim_t{2} << 30);
        rlimit limit{bytes, bytes};
        ::setrlimit(RLIMIT_AS, &limit);
#endif
        ::alarm(60);
        std::string result = fuzz::verdict(target, path);
        result = result.empty() ? "ok" : result;
        ::write(fds[1], result.data(), result.size());
        ::_exit(0);  // no destructors, no leak check: the child's only job is done
    }
    ::close(fds[1]);
    std::string result;
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) {
        result.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        return "killed by " + signal_name(WTERMSIG(status)) +
               (WTERMSIG(status) == SIGALRM ? " (more than 60 seconds)" : "");
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return "exited with status " + std::to_string(WEXITSTATUS(status)) + " (a sanitizer's report?)";
    }
    return result == "ok" ? "" : result;
}

}  // namespace

TEST_CASE("every input a fuzzer failed on loads or is refused naming the file") {
    TempDir dir("tapegrad_fuzz_regression_test");
    fs::path root = "fuzz/regressions";
    REQUIRE(fs::is_directory(root));
    std::size_t inputs = 0;
    for (const std::string& name : test::listing(root)) {
        if (!fs::is_directory(root / name)) {
            continue;  // README.md
        }
        CAPTURE(name);
        const fuzz::Target* target = nullptr;
        CHECK_NOTHROW(target = &fuzz::find_target(name));
        if (target == nullptr) {
            continue;
        }
        for (const std::string& file : test::listing(root / name)) {
            if (file.starts_with('.')) {
                continue;
            }
            std::string bytes = test::read_bytes(root / name / file);
            // The reader sees the input under a name of the target's kind, as the fuzzer wrote it.
            std::string path = dir / fuzz::file_name(*target, bytes, "regression");
            test::write_bytes(path, bytes);
            CAPTURE(file);
            CHECK(isolated_verdict(*target, path) == "");
            ++inputs;
        }
    }
    MESSAGE(inputs << " saved inputs");
}

TEST_CASE("real files load, and their damaged variants load or are refused naming the file") {
    TempDir dir("tapegrad_fuzz_regression_test");
    constexpr std::size_t variants_per_file = 60;
    for (const fuzz::Target& target : fuzz::targets()) {
        CAPTURE(target.name);
        std::size_t refused = 0;
        std::size_t count = 0;
        for (const fuzz::Sample& real : fuzz::real_files(target, dir.path)) {
            std::string path = dir / fuzz::file_name(target, real.bytes, real.stem);
            test::write_bytes(path, real.bytes);
            CAPTURE(path);
            CHECK(fuzz::verdict(target, path) == "");
            if (real.loads) {
                CHECK_NOTHROW(target.reads.front()(path));
            }
            for (const fuzz::Sample& variant : fuzz::variants(real, variants_per_file, 2)) {
                std::string damaged = dir / fuzz::file_name(target, variant.bytes, "variant");
                test::write_bytes(damaged, variant.bytes);
                CAPTURE(variant.stem);
                CHECK(fuzz::verdict(target, damaged) == "");
                try {
                    target.reads.front()(damaged);
                } catch (const std::exception&) {
                    ++refused;
                }
                ++count;
            }
        }
        // Damage is noticed: a reader that accepted everything would not be checking much.
        CHECK(refused > 0);
        MESSAGE(target.name << ": " << count << " variants, " << refused << " refused");
    }
}
