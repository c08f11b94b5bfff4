// What the programs of the tutorials' experiments share (EXPERIMENTS.md): the options every one of them
// takes (--protocol, --seeds, --first-seed, --out, --overwrite, --threads), a figure measured over seeds
// as its spread, and the results.json they all write.
//
// --protocol tutorial runs an experiment as its tutorial wrote it (its data, initialisation, optimiser,
// step, epochs, split, threshold, and its own figures computed its way, labelled as such); --protocol
// corrected, the default, runs it right. Where a tutorial's run is random, the program runs it over
// several seeds and reports the spread, so that the tutorial's printed figure can be set against it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/nn/io/file.hpp"

namespace tapegrad::examples {

enum class Protocol { tutorial, corrected };

inline std::string_view to_string(Protocol p) { return p == Protocol::tutorial ? "tutorial" : "corrected"; }

struct TutorialArgs {
    Protocol protocol = Protocol::corrected;
    int seeds = 1;                // runs, seeds first_seed, first_seed + 1, ...
    std::uint64_t first_seed = 0;
    std::string out;
    bool overwrite = false;
    int threads = 1;

    std::vector<std::uint64_t> seed_list() const {
        std::vector<std::uint64_t> s;
        for (int i = 0; i < seeds; ++i) {
            s.push_back(first_seed + static_cast<std::uint64_t>(i));
        }
        return s;
    }
};

// The options every tutorial program takes; `seeds` and `out` arrive holding the program's defaults.
inline void add_tutorial_options(CLI::App& app, TutorialArgs& args) {
    app.add_option_function<std::string>(
           "--protocol",
           [&args](const std::string& name) {
               args.protocol = name == "tutorial" ? Protocol::tutorial : Protocol::corrected;
           },
           "tutorial: as the tutorial wrote it; corrected (the default): run right")
        ->check(CLI::IsMember({"tutorial", "corrected"}));
    app.add_option("--seeds", args.seeds, "runs, each with its own seed")->check(CLI::Range(1, 1000))->capture_default_str();
    app.add_option("--first-seed", args.first_seed, "the first run's seed")->capture_default_str();
    app.add_option("--out", args.out, "folder for results.json and the figures")->capture_default_str();
    app.add_flag("--overwrite", args.overwrite, "replace what an earlier run left in --out");
    app.add_option("--threads", args.threads, "BLAS threads")->check(CLI::Range(1, 1024))->capture_default_str();
}

// CLI11_PARSE with a usage error on one line: "toy2d: --seeds: Value 0 not in range [1 - 1000] (toy2d --help
// tells more)". Returns the exit code when the program should stop (after --help too), else nullopt.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string program = std::filesystem::path(argv[0]).filename().string();
        std::string message = e.what();
        std::replace(message.begin(), message.end(), '\n', ' ');
        fmt::print(stderr, "{}: {} ({} --help tells more)\n", program, message, program);
        return e.get_exit_code();
    }
    return std::nullopt;
}

// Claims `out` for the program's `files` (an earlier run's are kept unless `overwrite`; nn::claim_output_folder),
// says what --overwrite removed, and creates the folder.
inline void claim_run_folder(const std::string& program, const std::string& out, const std::vector<std::string>& files,
                             bool overwrite) {
    std::vector<std::string> removed = nn::claim_output_folder(program, out, files, overwrite);
    if (!removed.empty()) {
        fmt::print("--overwrite: removed {} from {}\n", fmt::join(removed, ", "), out);
    }
    std::filesystem::create_directories(out);
}

// A figure measured once per seed: its values, mean, sample standard deviation (0 for one value), range.
struct Spread {
    std::vector<double> values;
    double mean = 0;
    double sd = 0;
    double min = 0;
    double max = 0;
};

inline Spread spread_of(std::vector<double> values) {
    Spread s;
    s.values = std::move(values);
    if (s.values.empty()) {
        return s;
    }
    double n = static_cast<double>(s.values.size());
    for (double v : s.values) {
        s.mean += v / n;
    }
    double sq = 0;
    for (double v : s.values) {
        sq += (v - s.mean) * (v - s.mean);
    }
    s.sd = s.values.size() > 1 ? std::sqrt(sq / (n - 1)) : 0;
    auto [lo, hi] = std::minmax_element(s.values.begin(), s.values.end());
    s.min = *lo;
    s.max = *hi;
    return s;
}

// "0.2766 +- 0.0137 (0.2580-0.3012, 10 seeds)", or the value alone for one seed.
inline std::string describe(const Spread& s, int digits = 4) {
    if (s.values.size() == 1) {
        return fmt::format("{:.{}f}", s.mean, digits);
    }
    return fmt::format("{:.{}f} +- {:.{}f} ({:.{}f}-{:.{}f}, {} seeds)", s.mean, digits, s.sd, digits, s.min, digits,
                       s.max, digits, s.values.size());
}

inline nlohmann::json to_json(const Spread& s) {
    return {{"mean", s.mean}, {"sd", s.sd}, {"min", s.min}, {"max", s.max}, {"values", s.values}};
}

// results.json, the same frame for every experiment:
//   {"tutorial": "000", "experiment": "toy", "protocol": "tutorial", "seeds": [...],
//    "tutorial_printed": {name: value the tutorial printed}, "measured": {name: Spread as JSON},
//    "figures": [file names in --out], ...what else the experiment reports}
struct Results {
    nlohmann::json json;

    Results(std::string_view tutorial, std::string_view experiment, const TutorialArgs& args) {
        json = {{"tutorial", tutorial},
                {"experiment", experiment},
                {"protocol", to_string(args.protocol)},
                {"seeds", args.seed_list()},
                {"blas", blas_summary()},
                {"tutorial_printed", nlohmann::json::object()},
                {"measured", nlohmann::json::object()},
                {"figures", nlohmann::json::array()}};
    }
    void printed(const std::string& name, double value) { json["tutorial_printed"][name] = value; }
    void measured(const std::string& name, const Spread& s) { json["measured"][name] = to_json(s); }
    void figure(const std::string& file) { json["figures"].push_back(file); }
    void write(const std::string& out) const {
        std::string path = out + "/results.json";
        nn::detail::write_file_atomically(path, json.dump(2) + "\n", "results");
        fmt::print("wrote {}\n", path);
    }
};

}  // namespace tapegrad::examples
