// A trained model's test report (its MSE beside the two baselines) and its figures.
#pragma once

#include <cmath>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common.hpp"
#include "tapegrad/models/autoencoder.hpp"
#include "tapegrad/models/trainer.hpp"

namespace tapegrad::tools {

struct Report {
    std::string variant;
    std::size_t latent = 0;
    double test_mse = 0;
    double pca_mse = 0;   // PCA with as many components as the code has units
    double mean_mse = 0;  // predicting the training mean for every sample
    double test_elbo = std::nan("");  // variational only: per sample
    // An autoencoder no better than the mean image has most likely collapsed to one output.
    bool collapsed() const { return test_mse >= 0.98 * mean_mse; }
    void print() const;
    nlohmann::json to_json() const;
};

template <class T>
Report evaluate_model(models::Autoencoder<T>& model, const Split& split, const std::string& variant);

// loss.png (train loss and validation MSE by epoch), reconstructions.png (test originals above their
// reconstructions, for square images), latent.png (the test codes coloured by label: the code itself
// when 2-D, its first two principal components otherwise). Returns {"loss": path, ...}.
nlohmann::json write_figures(const std::string& out, models::Autoencoder<float>& model, const Split& split,
                             const models::History& history);

// The model a checkpoint describes, with the checkpoint's weights.
template <class T>
std::shared_ptr<models::Autoencoder<T>> load_model(const std::string& checkpoint);

}  // namespace tapegrad::tools
