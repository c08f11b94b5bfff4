// Writes the fuzzers' seed corpora: for each target, its real files (samples.hpp) and variants of them,
// into <out>/<target>/, replacing what was there. make fuzz runs it as build-fuzz/fuzz/make_seeds
// build-fuzz/fuzz/seeds; nothing it writes is committed.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "samples.hpp"
#include "targets.hpp"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_seeds <folder>\n");
        return 2;
    }
    constexpr std::size_t variants_per_file = 24;
    fs::path out = argv[1];
    fs::path scratch = out / ".scratch";
    try {
        for (const auto& target : tapegrad::fuzz::targets()) {
            fs::path dir = out / std::string(target.name);
            fs::remove_all(dir);
            fs::create_directories(dir);
            fs::create_directories(scratch);
            std::size_t bytes = 0;
            auto write = [&](const tapegrad::fuzz::Sample& s) {
                std::ofstream(dir / tapegrad::fuzz::file_name(target, s.bytes, s.stem), std::ios::binary)
                    .write(s.bytes.data(), static_cast<std::streamsize>(s.bytes.size()));
                bytes = std::max(bytes, s.bytes.size());
            };
            for (const auto& real : tapegrad::fuzz::real_files(target, scratch)) {
                write(real);
                for (const auto& v : tapegrad::fuzz::variants(real, variants_per_file, 1)) {
                    write(v);
                }
            }
            auto written = std::distance(fs::directory_iterator(dir), fs::directory_iterator());
            std::printf("%-18s %4td seeds (largest %zu bytes) in %s\n", std::string(target.name).c_str(), written,
                        bytes, dir.c_str());
        }
        fs::remove_all(scratch);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "make_seeds: %s\n", e.what());
        return 1;
    }
    return 0;
}
