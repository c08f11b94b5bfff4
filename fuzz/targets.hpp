// The file readers under fuzzing, one target each, shared by the libFuzzer programs (fuzz_target.cpp),
// the seed generator (make_seeds.cpp) and the regression test (tests/nn/fuzz_regression_test.cpp), so
// that all three put a file through exactly the same calls.
//
// The rule every target checks: a file either loads, or is refused by an exception derived from
// std::exception whose message names the file as it was given. Anything else is a bug: a crash, a
// sanitizer report, a leak, a hang, an exception that does not say which file (std::bad_alloc from a size
// a header claims, a stray nlohmann::json or std::out_of_range error), or one that is not a std::exception.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tapegrad::fuzz {

struct Target {
    std::string_view name;       // "npy": the program is build-fuzz/fuzz/npy_fuzz
    std::string_view extension;  // of the file the input is written to: ".npy"
    // Each reads the file at `path` through tapegrad's readers, as a user's program would (with other
    // options, or into another model), and throws on a refusal. Every one is checked, even after another
    // refused the file.
    std::vector<void (*)(const std::string& path)> reads;
    // False only for model_description, whose input is JSON text that no file name travels with: there a
    // refusal must be a tapegrad::Error instead (ValueError: `model description: ...`).
    bool names_file = true;
};

// idx_images, idx_labels, csv, npy, checkpoint, checkpoint_config, model_description.
const std::vector<Target>& targets();
// The target called `name`; throws std::invalid_argument naming the known ones when there is none.
const Target& find_target(std::string_view name);

// The name to give a file holding `bytes` for `target`: "input" + the extension, + ".gz" when the bytes
// start with gzip's magic (the readers recognise gzip by its magic, not by the name; this is for people).
std::string file_name(const Target& target, std::string_view bytes, std::string_view stem = "input");

// Puts the file at `path` through the target. Empty when the file loaded or was refused as the rule above
// says; otherwise what went wrong, e.g. `std::bad_alloc: std::bad_alloc (the message does not name
// /tmp/x/input.npy)`.
std::string verdict(const Target& target, const std::string& path);

// describe_model's text of the model the checkpoint target loads into (an Autoencoder 4-3-2): the seeds
// are checkpoints of it, so that they load and their mutants get as far into the loading as they can.
std::string checkpoint_model_description();

// The model descriptions (JSON text) that the model_description target builds: at most this many
// parameters. A description may ask for any size and model_from_description builds what it is asked
// for; a bigger one that could exist is not refused, only skipped here, so that the fuzzer spends its
// time on the parsing rather than on filling gigabytes of weights. Sizes that cannot exist (negative,
// fractional, a weight whose size overflows) are not skipped: those must be refused.
inline constexpr double description_parameter_budget = 1e6;

}  // namespace tapegrad::fuzz
