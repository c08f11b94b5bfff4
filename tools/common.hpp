// What the tapegrad commands share: data loading with a test split and scaling, building a model from
// command-line options, the two baselines every run reports, and writing metrics.json.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "tapegrad/models/autoencoder.hpp"
#include "tapegrad/nn/dataset.hpp"
#include "tapegrad/nn/scaling.hpp"

namespace tapegrad::tools {

// Accepts numbers above 0, and says so in the help and the error (CLI11's PositiveNumber prints the
// largest double in full).
extern const CLI::Validator positive;

struct DataOptions {
    std::string data = "digits";  // a bundled name (digits, fashion-mnist) or a path (.csv, .npy, IDX)
    double test_fraction = 0.2;   // for data without a test split of its own
    std::uint64_t seed = 0;
    std::string scale = "minmax";  // minmax (one range for all features, as for images), standard, none
    std::size_t limit = 0;         // use only the first rows of the training data (0: all)
};

struct Split {
    nn::Dataset train;
    nn::Dataset test;
    std::size_t image_side = 0;  // square images of this side, or 0
};

void add_data_options(CLI::App& app, DataOptions& options);
// The data's training and test parts, scaled with parameters fitted on the training part.
Split load_split(const DataOptions& options);

struct ModelOptions {
    std::string variant = "vanilla";
    std::vector<std::size_t> dims;    // the whole encoder, input first; else input, hidden..., latent
    std::vector<std::size_t> hidden;
    std::size_t latent = 32;
    std::string activation = "relu";
    std::string latent_activation;   // default: sigmoid for sparse, identity otherwise
    std::string output_activation = "sigmoid";
    bool tied = false;
    std::string init = "torch_default";
    std::uint64_t seed = 0;
    std::string options = "{}";      // the variant's options as JSON
};

void add_model_options(CLI::App& app, ModelOptions& options);
models::AutoencoderConfig model_config(const ModelOptions& options, std::size_t input);
template <class T>
std::shared_ptr<models::Autoencoder<T>> build_model(const ModelOptions& options, std::size_t input);

// The two baselines that tell whether an autoencoder learned anything: the test MSE of predicting the
// training mean for every sample, and of PCA with as many components as the code has units.
double mean_baseline_mse(const nn::Dataset& train, const nn::Dataset& test);
double pca_mse(const nn::Dataset& train, const nn::Dataset& test, std::size_t components);

// Writes JSON atomically, pretty-printed.
void write_json(const std::string& path, const nlohmann::json& value);

}  // namespace tapegrad::tools
