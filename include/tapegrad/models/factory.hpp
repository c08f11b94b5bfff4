// Autoencoders by name: what the CLI and checkpoints use to build a model from its description
// (variant, configuration, the variant's options), and to describe one so that it can be rebuilt.
#pragma once

#include <memory>
#include <string>

#include "tapegrad/models/autoencoder.hpp"

namespace tapegrad::models {

// vanilla, denoising, sparse, contractive, variational.
inline constexpr std::string_view variants[] = {"vanilla", "denoising", "sparse", "contractive", "variational"};

// options_json holds the variant's options ("{}" for the defaults); unknown keys are errors.
template <class T>
std::shared_ptr<Autoencoder<T>> make_autoencoder(const std::string& variant, const AutoencoderConfig& config,
                                                 const std::string& options_json = "{}");

// {"variant": ..., "config": {...}, "options": {...}}: what a checkpoint stores as its model.
template <class T>
std::string describe_model(const Autoencoder<T>& model);
// The inverse: a model built from describe_model's text (weights freshly initialised).
template <class T>
std::shared_ptr<Autoencoder<T>> model_from_description(const std::string& description);

}  // namespace tapegrad::models
