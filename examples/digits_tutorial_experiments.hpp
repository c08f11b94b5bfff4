// The experiments of tutorial 002, by the name a user runs them with, and the files each writes.
#pragma once

#include <string>
#include <vector>

#include "digits_tutorial_anomaly.hpp"
#include "digits_tutorial_compare.hpp"
#include "digits_tutorial_images.hpp"
#include "digits_tutorial_latent.hpp"

namespace tapegrad::examples::digits {

struct Experiment {
    std::string name;
    std::string help;
    std::vector<std::string> files;  // what it writes into --out: claim_output_folder guards them
    void (*run)(Context&, Results&);
};

inline const std::vector<Experiment>& experiments() {
    static const std::vector<Experiment> all = {
        {"samples", "the first training digit of each class and its pixel values",
         {"results.json", "samples.png", "pixel_values.png"},
         samples},
        {"compare", "autoencoders for d = 2, 4, 8, 16, 32 against PCA: loss curves, reconstructions, 2-D codes",
         {"results.json", "loss_curves.png", "reconstructions.png", "mse_against_latent.png", "latent_2d.png"},
         compare},
        {"epochs", "the recipe trained longer, test MSE by epoch against PCA: why the tutorial's loses",
         {"results.json", "test_mse_by_epoch.png"},
         epochs},
        {"noise", "clean, masked (0.4) and Gaussian (sigma 0.3, clipped) test digits",
         {"results.json", "noise_types.png"},
         noise},
        {"denoising", "a denoising autoencoder, latent 16, masking 0.3", {"results.json", "denoising.png"}, denoising},
        {"anomaly", "trained on the digit 1, the other digits anomalies: thresholds, precision, recall, F1, ROC",
         {"results.json", "error_histogram.png", "anomaly_roc.png"},
         anomaly},
        {"sweep", "rate-distortion: d = 1, 2, 4, ..., 64 with hidden layers of max(d + 4, 32)",
         {"results.json", "rate_distortion.png"},
         sweep},
        {"interpolation", "from the first 3 of the test set to its first 8 in code space, latent 16",
         {"results.json", "interpolation.png"},
         interpolation},
    };
    return all;
}

}  // namespace tapegrad::examples::digits
