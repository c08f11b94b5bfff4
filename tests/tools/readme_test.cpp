// README.md is tested like code: every command it shows runs, in the order shown, in a fresh folder
// (epochs cut down, Fashion-MNIST training limited to 2000 rows, so that the whole README takes seconds);
// every `make` target it names exists; the C++ program it shows is examples/engine.cpp, and what it says
// that program prints is what it prints.
#include <cmath>
#include <map>
#include <regex>
#include <set>

#include "cli.hpp"

using namespace cli;

namespace {

struct Block {
    std::string language;  // after the opening fence: "cpp", or ""
    std::vector<std::string> lines;
};

std::vector<Block> fenced_blocks(const std::string& text) {
    std::vector<Block> blocks;
    bool inside = false;
    for (const std::string& line : lines_of(text)) {
        if (line.rfind("```", 0) == 0) {
            if (!inside) {
                blocks.push_back({line.substr(3), {}});
            }
            inside = !inside;
        } else if (inside) {
            blocks.back().lines.push_back(line);
        }
    }
    return blocks;
}

std::vector<std::string> words_of(const std::string& command) {
    std::vector<std::string> words;
    std::istringstream in(command);
    for (std::string w; in >> w;) {
        if (w.size() >= 2 && w.front() == '\'' && w.back() == '\'') {
            w = w.substr(1, w.size() - 2);
        }
        words.push_back(w);
    }
    return words;
}

// The build folder that TAPEGRAD_CLI (<build>/tools/tapegrad) lives in.
std::string build_root() {
    return fs::path(TAPEGRAD_CLI).parent_path().parent_path().string();
}

// A README command made quick: `--epochs N` becomes ceil(N / 30) (20 and 30 become 1, 60 becomes 2, so
// that a resume to 60 after 30 still trains), and training on Fashion-MNIST takes its first 2000 rows.
std::vector<std::string> quick(std::vector<std::string> words) {
    bool fashion = false;
    for (std::size_t i = 0; i + 1 < words.size(); ++i) {
        if (words[i] == "--epochs") {
            words[i + 1] = std::to_string(static_cast<int>(std::ceil(std::stod(words[i + 1]) / 30)));
        }
        fashion = fashion || (words[i] == "--data" && words[i + 1] == "fashion-mnist");
    }
    if (fashion && words.size() > 1 && (words[1] == "train" || words[1] == "compare" || words[1] == "anomaly")) {
        words.insert(words.end(), {"--limit", "2000"});
    }
    return words;
}

}  // namespace

TEST_CASE("every command the README shows runs as shown, in order") {
    std::string readme = read_bytes("README.md");
    REQUIRE_FALSE(readme.empty());
    std::string makefile = read_bytes("Makefile");
    TempDir dir("tapegrad_readme_test");
    int commands = 0;
    for (const Block& block : fenced_blocks(readme)) {
        if (block.language == "cpp") {
            continue;
        }
        for (std::string line : block.lines) {
            line = line.substr(0, line.find("  #"));
            std::vector<std::string> words = words_of(line);
            if (words.empty()) {
                continue;
            }
            CAPTURE(line);
            if (words[0] == "make") {
                REQUIRE(words.size() == 2);
                CHECK(std::regex_search(makefile, std::regex("(^|\n)" + words[1] + ":")));
                continue;
            }
            // `mpirun -np N build/...`: run under this machine's mpirun, told that it may run as root and
            // put more ranks than cores (mpirun_options; skipped, and said, without MPI).
            std::vector<std::string> launcher;
            if (words[0] == "mpirun" && words.size() > 3 && words[3].rfind("build/", 0) == 0) {
                if (std::string_view(TAPEGRAD_MPIRUN).empty()) {
                    MESSAGE("skipped, no MPI in this build or no mpirun: " << line);
                    continue;
                }
                REQUIRE(words[1] == "-np");
                launcher = mpirun_options(std::stoi(words[2]));
                launcher.insert(launcher.begin(), TAPEGRAD_MPIRUN);
                words.erase(words.begin(), words.begin() + 3);
            }
            if (words[0].rfind("build/", 0) != 0) {
                continue;  // output shown, not a command
            }
            words = quick(words);
            std::string program = build_root() + "/" + words[0].substr(6);
            words.erase(words.begin());
            // Relative paths in the commands land in the temporary folder.
            std::vector<std::string> args = {"-c", "cd \"$0\" && exec \"$@\"", dir.path.string()};
            args.insert(args.end(), launcher.begin(), launcher.end());
            args.push_back(program);
            args.insert(args.end(), words.begin(), words.end());
            Run r = run_program("/bin/sh", args, dir);
            check_ok(r);
            ++commands;
        }
    }
    CHECK(commands >= 14);
    // What they wrote is where the README says.
    for (const char* file : {"runs/sparse/checkpoint.npz", "runs/sparse/history.csv", "runs/sparse/metrics.json",
                             "runs/sparse/grads.npz", "runs/compare/rate_distortion.png", "runs/anomaly/roc.png",
                             "runs/pca/metrics.json", "runs/conv/checkpoint.npz", "runs/toy2d/results.json", "runs/a/checkpoint.npz"}) {
        CAPTURE(file);
        CHECK(fs::exists(dir.path / file));
    }
    if (!std::string_view(TAPEGRAD_MPIRUN).empty()) {
        CHECK(fs::exists(dir.path / "runs/mpi/checkpoint.npz"));
        CHECK(fs::exists(dir.path / "runs/mpi/metrics.json"));
    }
}

// EXPERIMENTS.md's commands take minutes to hours (`make experiments` runs them); here each is checked
// against its program: the program and its subcommand exist, every option it gives is one the program
// takes, every experiment appears under both protocols, and no two commands write into the same folder.
TEST_CASE("every command EXPERIMENTS.md shows is one its program takes, under both protocols") {
    std::string text = read_bytes("EXPERIMENTS.md");
    REQUIRE_FALSE(text.empty());
    TempDir dir("tapegrad_experiments_test");
    std::map<std::string, std::set<std::string>> protocols;  // "guide step-by-step" -> {"tutorial", ...}
    std::set<std::string> outs;
    for (const Block& block : fenced_blocks(text)) {
        for (const std::string& line : block.lines) {
            std::vector<std::string> words = words_of(line);
            if (words.empty() || words[0].rfind("build/examples/", 0) != 0) {
                continue;
            }
            CAPTURE(line);
            std::string program = build_root() + "/" + words[0].substr(6);
            std::vector<std::string> help_args;
            std::string experiment = words[0].substr(15);
            if (words.size() > 1 && words[1].rfind("--", 0) != 0) {
                help_args.push_back(words[1]);
                experiment += " " + words[1];
            }
            help_args.push_back("--help");
            Run help = run_program(program, help_args, dir);
            REQUIRE(help.status == 0);
            // Options given before the subcommand fall through to it: the program's own help lists them.
            Run program_help = run_program(program, {"--help"}, dir);
            REQUIRE(program_help.status == 0);
            help.out += program_help.out;
            for (std::size_t i = 1; i < words.size(); ++i) {
                if (words[i].rfind("--", 0) == 0) {
                    CAPTURE(words[i]);
                    CHECK(std::regex_search(help.out, std::regex(words[i] + "[ ,\n]")));
                }
                if (i + 1 < words.size() && words[i] == "--protocol") {
                    protocols[experiment].insert(words[i + 1]);
                }
                if (i + 1 < words.size() && words[i] == "--out") {
                    CHECK(outs.insert(words[i + 1]).second);
                }
            }
        }
    }
    CHECK(protocols.size() >= 12);
    for (const auto& [experiment, seen] : protocols) {
        CAPTURE(experiment);
        CHECK(seen == std::set<std::string>{"tutorial", "corrected"});
    }
}

TEST_CASE("the README's C++ program is examples/engine.cpp, and its output is what the program prints") {
    std::string readme = read_bytes("README.md");
    std::vector<Block> blocks = fenced_blocks(readme);
    auto cpp = std::find_if(blocks.begin(), blocks.end(), [](const Block& b) { return b.language == "cpp"; });
    REQUIRE(cpp != blocks.end());
    std::string source = read_bytes("examples/engine.cpp");
    std::string shown;
    for (const std::string& line : cpp->lines) {
        shown += line + "\n";
    }
    REQUIRE(source.find("#include <cstring>") != std::string::npos);
    CHECK(shown == source.substr(source.find("#include <cstring>")));

    // The two blocks after the program: its output, then its output with --break. The seconds vary, and
    // where a gradient is right its worst element, the values there and the errors are rounding, which
    // varies with the build (another -march, a sanitizer): on an "ok" line those are left out.
    REQUIRE(std::distance(cpp, blocks.end()) >= 3);
    TempDir dir("tapegrad_readme_test");
    auto seconds = std::regex("evaluations, [0-9.e+-]+ s;");
    auto rounding = std::regex("worst \\[[0-9, ]*\\]  analytic .*  ok$");
    auto same = [&](const std::string& line) {
        return std::regex_replace(std::regex_replace(line, seconds, ""), rounding, "worst ...  ok");
    };
    const std::pair<const Block*, std::vector<std::string>> shows[] = {{&*(cpp + 1), {}}, {&*(cpp + 2), {"--break"}}};
    for (const auto& [block, args] : shows) {
        CAPTURE(args.size());
        Run r = run_program(build_root() + "/examples/engine", args, dir);
        CHECK(r.status == (args.empty() ? 0 : 1));
        std::vector<std::string> printed = lines_of(r.out);
        REQUIRE(printed.size() == block->lines.size());
        for (std::size_t i = 0; i < printed.size(); ++i) {
            CHECK(same(printed[i]) == same(block->lines[i]));
        }
    }
}

TEST_CASE("the README's own variant is tests/tools/user_variant.cpp, from its declaration to its end") {
    std::string readme = read_bytes("README.md");
    std::vector<Block> blocks = fenced_blocks(readme);
    std::vector<const Block*> cpp;
    for (const Block& b : blocks) {
        if (b.language == "cpp") {
            cpp.push_back(&b);
        }
    }
    REQUIRE(cpp.size() >= 2);
    std::string shown;
    for (const std::string& line : cpp[1]->lines) {
        shown += line + "\n";
    }
    std::string source = read_bytes("tests/tools/user_variant.cpp");
    REQUIRE(source.find("struct Jitter {") != std::string::npos);
    CHECK(shown.find("struct Jitter {") != std::string::npos);
    CHECK(source.size() >= shown.size());
    CHECK(source.compare(source.size() - shown.size(), shown.size(), shown) == 0);
}

TEST_CASE("the README's k-sparse autoencoder is examples/k_sparse.cpp, and its broken check prints what is shown") {
    std::string readme = read_bytes("README.md");
    std::vector<Block> blocks = fenced_blocks(readme);
    auto program = std::find_if(blocks.begin(), blocks.end(), [](const Block& b) {
        return b.language == "cpp" && !b.lines.empty() && b.lines.back() == "}" &&
               std::find(b.lines.begin(), b.lines.end(), "struct TopK {  // each row's k largest values kept, the "
                                                         "others 0; dy passes where a value was kept") != b.lines.end();
    });
    REQUIRE(program != blocks.end());
    std::string shown;
    for (const std::string& line : program->lines) {
        shown += line + "\n";
    }
    std::string source = read_bytes("examples/k_sparse.cpp");
    CHECK(shown == source.substr(source.find("#include")));
    // The 40 lines: neither comments nor blank lines counted.
    std::size_t code = 0;
    for (const std::string& line : lines_of(source)) {
        std::size_t first = line.find_first_not_of(' ');
        code += first != std::string::npos && line.compare(first, 2, "//") != 0;
    }
    CHECK(code <= 40);

    auto output = std::find_if(blocks.begin(), blocks.end(), [](const Block& b) {
        return !b.lines.empty() && b.lines[0].rfind("Autoencoder[k-sparse]", 0) == 0;
    });
    REQUIRE(output != blocks.end());
    TempDir dir("tapegrad_readme_test");
    Run r = run_program("/usr/bin/env", {"TAPEGRAD_FAULT=top_k", build_root() + "/examples/k_sparse", "gradcheck",
                                         "--model", "k-sparse", "--dims", "64,16,8"},
                        dir);
    CHECK(r.status == 1);
    auto seconds = std::regex("evaluations, [0-9.e+-]+ s;");
    auto rounding = std::regex("worst \\[[0-9, ]*\\]  analytic .*  ok$");
    auto same = [&](const std::string& line) {
        return std::regex_replace(std::regex_replace(line, seconds, ""), rounding, "worst ...  ok");
    };
    std::vector<std::string> printed = lines_of(r.out);
    REQUIRE(printed.size() == output->lines.size());
    for (std::size_t i = 0; i < printed.size(); ++i) {
        CHECK(same(printed[i]) == same(output->lines[i]));
    }
}
