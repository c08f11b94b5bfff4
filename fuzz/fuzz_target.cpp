// One libFuzzer program per target of targets.hpp, this file compiled with TAPEGRAD_FUZZ_TARGET set to the
// target's name (fuzz/meson.build). Each input is written to a file with the target's extension in a
// folder of its own and read back through the target's readers; a refusal whose message does not name
// the file stops the run (__builtin_trap), as a crash or a sanitizer report does, and libFuzzer saves the
// input (make fuzz saves it under fuzz/regressions/<target>/).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "samples.hpp"
#include "targets.hpp"
#include "tapegrad/nn/io/npz.hpp"

#ifndef TAPEGRAD_FUZZ_TARGET
#error "compile with -DTAPEGRAD_FUZZ_TARGET=\"<target>\""
#endif

namespace {

namespace fs = std::filesystem;
using tapegrad::fuzz::Target;

const Target* target = nullptr;
fs::path folder;

void remove_folder() {
    std::error_code ignored;
    fs::remove_all(folder, ignored);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    target = &tapegrad::fuzz::find_target(TAPEGRAD_FUZZ_TARGET);
    // /dev/shm when there is one: every input is a file write and read.
    fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    folder = base / ("tapegrad-fuzz-" + std::string(target->name) + "-" + std::to_string(::getpid()));
    fs::create_directories(folder);
    std::atexit(remove_folder);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    std::string path = (folder / tapegrad::fuzz::file_name(*target, bytes)).string();
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out) {
            std::fprintf(stderr, "fuzz %s: cannot write %s\n", TAPEGRAD_FUZZ_TARGET, path.c_str());
            std::abort();
        }
    }
    std::string wrong = tapegrad::fuzz::verdict(*target, path);
    fs::remove(path);
    if (!wrong.empty()) {
        std::fprintf(stderr, "\nfuzz %s: a refusal that breaks the rule: %s\n", TAPEGRAD_FUZZ_TARGET, wrong.c_str());
        __builtin_trap();
    }
    return 0;
}

// Half the mutations are libFuzzer's own, on the bytes as they are. The other half reach inside the
// containers: a gzip file is inflated, mutated and compressed again, an .npz's member mutated and zipped
// again, so that the CRCs of gzip and zip do not stop the change before tapegrad's parsing sees it.
extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

namespace {

// libFuzzer's mutation of `bytes`, allowed to grow by a quarter (at least 64 bytes).
std::string mutated(std::string bytes) {
    std::size_t size = bytes.size();
    bytes.resize(size + std::max<std::size_t>(64, size / 4));
    bytes.resize(LLVMFuzzerMutate(reinterpret_cast<std::uint8_t*>(bytes.data()), size, bytes.size()));
    return bytes;
}

}  // namespace

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
    std::minstd_rand rng(seed);
    if (rng() % 2 == 0) {
        return LLVMFuzzerMutate(data, size, max_size);
    }
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    std::string out;
    constexpr std::size_t limit = std::size_t{1} << 20;
    try {
        if (auto inflated = tapegrad::fuzz::gunzip_bytes(bytes, limit)) {
            out = tapegrad::fuzz::gzip_bytes(mutated(std::move(*inflated)));
        } else if (target->extension == ".npz") {
            auto files = tapegrad::fuzz::unzip_bytes(bytes, limit);
            if (files && !files->empty()) {
                auto& content = (*files)[rng() % files->size()].second;
                content = mutated(std::move(content));
                out = tapegrad::nn::detail::zip_in_memory(*files, "fuzz", rng() % 4 == 0);
            }
        }
    } catch (const std::exception&) {
        out.clear();  // a name libzip will not write again, say: libFuzzer's own mutation instead
    }
    if (out.empty() || out.size() > max_size) {
        return LLVMFuzzerMutate(data, size, max_size);
    }
    std::copy(out.begin(), out.end(), data);
    return out.size();
}
