// What the tapegrad commands share: data loading with a test split and scaling, building a model from
// command-line options, checked option values, the two baselines every run reports, and metrics.json.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "tapegrad/models/autoencoder.hpp"
#include "tapegrad/nn/dataset.hpp"

namespace tapegrad::tools {

// The program as messages, help and hints name it: argv[0]'s file name ("tapegrad", or a user's program
// that hands its arguments to tapegrad::cli::main), set once by cli::main; "tapegrad" before that.
const std::string& program();
void set_program(const char* argv0);

// Checks that say what they allow, in the help and in the error. CLI11 reads "-5" into an unsigned
// option as 2^64 - 5 and prints the largest double in full for PositiveNumber: these look at the text.
extern const CLI::Validator positive;       // a finite number above 0
extern const CLI::Validator non_negative;   // a finite number from 0
extern const CLI::Validator whole;          // a whole number from 0
extern const CLI::Validator positive_whole; // a whole number from 1
extern const CLI::Validator below_one;      // a number in [0, 1)
extern const CLI::Validator activation;     // identity, relu, leaky_relu, sigmoid, tanh, softplus
extern const CLI::Validator initialiser;    // nn::parse_init's names

// Whether the option `name` ("--lr") was given on the command line of `app`.
bool given(const CLI::App& app, const std::string& name);

struct DataOptions {
    std::string data = "digits";  // a bundled name (digits, fashion-mnist) or a path (.csv, .npy, IDX)
    double test_fraction = 0.2;   // for data without a test split of its own
    std::uint64_t seed = 0;
    std::string scale = "minmax";  // minmax (one range for all features, as for images), standard, none
    std::size_t limit = 0;         // use only the first rows of the training data (0: all)

    // {"data", "test_fraction", "data_seed", "scale", "limit"}; a path is stored absolute, so that the
    // record means the same from another folder.
    nlohmann::json to_json() const;
    static DataOptions from_json(const nlohmann::json& j);
};

// The data options' command-line names and the record's keys, in the order they are listed.
inline const std::vector<std::pair<std::string, std::string>> data_option_keys = {
    {"--data", "data"}, {"--test-fraction", "test_fraction"}, {"--data-seed", "data_seed"}, {"--scale", "scale"},
    {"--limit", "limit"}};

struct Split {
    nn::Dataset train;
    nn::Dataset test;
    std::size_t image_side = 0;  // square images of this side, or 0
    nlohmann::json scaling;      // {"kind", and the fitted parameters}: what a checkpoint keeps
    float low = 0;               // the scaled training data's smallest and largest value
    float high = 0;
};

void add_data_options(CLI::App& app, DataOptions& options);
// The data's training and test parts. The scaling is fitted on the training part, or, when `scaling`
// holds fitted parameters (a checkpoint's), those are applied as they are.
Split load_split(const DataOptions& options, const nlohmann::json& scaling = nullptr);

struct ModelOptions {
    std::string variant = "vanilla";
    std::vector<std::size_t> dims;    // the whole encoder, input first; else input, hidden..., latent
    std::vector<std::size_t> hidden;
    std::size_t latent = 32;
    std::string activation;          // default: the variant's (VariantInfo::activation)
    std::string latent_activation;   // default: the variant's (VariantInfo::latent_activation)
    std::string output_activation;   // default: sigmoid for data in [0, 1], identity otherwise
    bool tied = false;
    std::string init = "torch_default";
    std::uint64_t seed = 0;
    std::string options = "{}";      // the variant's options as JSON
    std::vector<std::size_t> conv;   // channels of a convolutional encoder (empty: dense)
    std::vector<std::size_t> image;  // (channels, height, width) of an input row; empty: one channel, square
};

void add_model_options(CLI::App& app, ModelOptions& options);
// What the registered variants draw at random, from their declarations (VariantInfo::noise):
// "denoising: the corruption; variational: the sample eps ~ N(0, I)".
std::string noise_list();
// The configuration the options ask for on data of `input` features whose (scaled) values lie in
// [low, high]: a sigmoid output is refused for data it cannot reach, and is the default only for data
// in [0, 1].
models::AutoencoderConfig model_config(const ModelOptions& options, std::size_t input, float low = 0, float high = 1);
template <class T>
std::shared_ptr<models::Autoencoder<T>> build_model(const ModelOptions& options, std::size_t input, float low = 0,
                                                    float high = 1);

// The two baselines that tell whether an autoencoder learned anything: the test MSE of predicting the
// training mean for every sample, and of PCA with as many components as the code has units.
double mean_baseline_mse(const nn::Dataset& train, const nn::Dataset& test);
double pca_mse(const nn::Dataset& train, const nn::Dataset& test, std::size_t components);

// Writes JSON atomically, pretty-printed.
void write_json(const std::string& path, const nlohmann::json& value);

// No command destroys an earlier run's files unless told to: when `out` holds any of `files`, refuses
// (naming them, `other_way` and --overwrite), or with `overwrite` removes them, with a note.
void claim_out(const std::string& verb, const std::string& out, const std::vector<std::string>& files, bool overwrite,
               const std::string& other_way = "");
void add_overwrite_option(CLI::App& app, bool& overwrite);
// The same for a command that writes one file, `path`.
void claim_file(const std::string& verb, const std::string& path, bool overwrite);

// A note on stdout: what the program chose or overrode on the user's behalf.
void note(const std::string& text);

}  // namespace tapegrad::tools
