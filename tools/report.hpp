// A trained model's test report (its MSE beside the two baselines, at the best and the last epoch's
// weights) and its figures.
#pragma once

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common.hpp"
#include "tapegrad/models/autoencoder.hpp"
#include "tapegrad/models/trainer.hpp"

namespace tapegrad::tools {

struct Report {
    std::string variant;
    std::size_t latent = 0;
    double test_mse = 0;  // at the weights the run ends with: the best validation epoch's
    double pca_mse = 0;   // PCA with as many components as the code has units
    double mean_mse = 0;  // predicting the training mean for every sample
    // The variant's loss terms on the test set (Autoencoder::loss_terms), noise fixed to its seed.
    std::vector<std::pair<std::string, double>> terms;
    int best_epoch = 0;  // 0: not known (a model not from a checkpoint)
    int last_epoch = 0;
    double best_validation_mse = std::nan("");
    double last_test_mse = std::nan("");  // at the last epoch's weights, when they are not the best's

    // An autoencoder no better than the mean image has most likely collapsed to one output.
    bool collapsed() const { return test_mse >= 0.98 * mean_mse; }
    bool worse_than_pca() const { return test_mse > pca_mse; }
    void print() const;
    nlohmann::json to_json() const;
};

// The test report of `model` as it is, on the split's test part.
template <class T>
Report evaluate_model(models::Autoencoder<T>& model, const Split& split);

// The test report of a checkpoint that train wrote: its best epoch's weights and its last epoch's. The
// model with the best epoch's weights goes to `best` when given.
Report evaluate_checkpoint(const std::string& checkpoint, const Split& split,
                           std::shared_ptr<models::Autoencoder<float>>* best = nullptr);

// loss.png (the training objective and the validation MSE by epoch, each on its own labelled axis),
// reconstructions.png (test originals above their reconstructions, for square images), latent.png (the
// test codes coloured by label, named when the data names its classes: the code itself when 2-D, its
// first two principal components otherwise). Returns {"loss": path, ...}.
nlohmann::json write_figures(const std::string& out, models::Autoencoder<float>& model, const Split& split,
                             const models::History& history);

// The model a checkpoint describes, with the checkpoint's weights (the last epoch's).
template <class T>
std::shared_ptr<models::Autoencoder<T>> load_model(const std::string& checkpoint);

}  // namespace tapegrad::tools
