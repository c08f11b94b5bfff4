// Autoencoders by name: what the CLI and checkpoints use to build a model from its description
// (variant, configuration, the variant's options), and to describe one so that it can be rebuilt.
//
// Each variant's options are declared once (name, type, range, default, meaning): make_autoencoder
// checks and fills a model's options from the declaration, `tapegrad variants` prints it, and the
// description a checkpoint stores holds every option filled in, so that a later default cannot change
// what an old checkpoint means.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tapegrad/models/autoencoder.hpp"

namespace tapegrad::models {

struct OptionSpec {
    enum class Type { number, integer, text };
    std::string name{};
    Type type = Type::number;
    // JSON text of the default ("0.05", "\"masking\""); empty for a seed that defaults to the model's
    // own seed (AutoencoderConfig::seed, the CLI's --seed).
    std::string default_value{};
    // Numbers: the range allowed; an open end excludes its bound.
    double min = -std::numeric_limits<double>::infinity();
    double max = std::numeric_limits<double>::infinity();
    bool min_open = false;
    bool max_open = false;
    std::vector<std::string> choices{};  // text: the values allowed
    std::string meaning{};

    std::string_view type_name() const;  // "number", "integer", "text"
    std::string range() const;           // "(0, 1)", "[0, inf)", "masking | gaussian | salt_and_pepper"
    std::string default_text() const;    // the default as printed: 0.05, masking, the model's seed
};

struct VariantInfo {
    std::string name{};
    std::string summary{};                       // one line: the objective
    std::string latent_activation = "identity";  // the code's activation unless one is asked for
    // What trains the variant well from its defaults (measured on digits and Fashion-MNIST, 20 epochs of
    // Adam): the hidden layers' activation and the learning rate, unless asked for others.
    std::string activation = "relu";
    double lr = 5e-3;
    std::vector<OptionSpec> options{};
    std::vector<std::string> terms{};  // the names of its loss_terms(), what its penalty is doing
};

// vanilla, denoising, sparse, contractive, variational, in that order.
std::span<const VariantInfo> variant_infos();
// ValueError naming the known variants for an unknown name.
const VariantInfo& variant_info(std::string_view name);
// "vanilla, denoising, sparse, contractive, variational"
std::string variant_names();

// The variant's options with every declared option present: the given ones checked (type and range),
// the others at their defaults, a seed left out taken from `model_seed`. ValueError for an unknown
// option, a wrong type or a value out of range, naming the option and what it allows.
std::string complete_options(std::string_view variant, const std::string& options_json, std::uint64_t model_seed);

// options_json holds the variant's options ("{}" for the defaults); see complete_options.
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
