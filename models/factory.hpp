// Autoencoders by name: a registry of variants, which users add to, and what the CLI and checkpoints
// use to build a model from its description (variant, configuration, the variant's options) and to
// describe one so that it can be rebuilt.
//
// Each variant's options are declared once (name, type, range, default, meaning): make_autoencoder
// checks and fills a model's options from the declaration, `tapegrad variants` prints it, the CLI's
// --model and --options check against it, and the description a checkpoint stores holds every option
// filled in, so that a later default cannot change what an old checkpoint means.
//
// A variant of a user's own, registered before the CLI runs, is one of them everywhere:
//
//     struct Jitter {  // the loss of the input plus N(0, level^2) noise against the clean input
//         static VariantInfo info() {
//             return {.name = "jitter", .summary = "MSE of the reconstruction of a jittered input",
//                     .options = {{.name = "level", .default_value = "0.1", .min = 0,
//                                  .meaning = "the noise's standard deviation"},
//                                 {.name = "seed", .type = OptionSpec::Type::integer, .min = 0,
//                                  .meaning = "seed of the noise"}},
//                     .noise = "the jitter"};
//         }
//         template <class T>  // options: every declared option, checked and filled in (<nlohmann/json.hpp>)
//         static std::shared_ptr<Autoencoder<T>> make(const AutoencoderConfig& c, const nlohmann::json& options) {
//             return std::make_shared<JitterAutoencoder<T>>(c, options.at("level").get<double>(),
//                                                           options.at("seed").get<std::uint64_t>());
//         }
//     };
//     int main(int argc, char** argv) {
//         tapegrad::models::register_variant<Jitter>();
//         return tapegrad::cli::main(argc, argv);  // train --model jitter, evaluate, grad, gradcheck, ...
//     }
//
// The model a maker returns says who it is: its variant() is the registered name, its options_json()
// holds every declared option (what a checkpoint records to rebuild it), and its noise_source() is its
// generator exactly when the declaration names a noise. make_autoencoder checks all three.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tapegrad/models/autoencoder.hpp"

namespace tapegrad::models {

struct OptionSpec {
    // number: a finite number in the range; integer: a whole number in the range (a seed: min 0 and no
    // max, [0, 2^64)); text: one of the choices.
    enum class Type { number, integer, text };
    std::string name{};
    Type type = Type::number;
    // JSON text of the default ("0.05", "\"masking\""); empty for a seed (an integer from 0) that
    // defaults to the model's own seed (AutoencoderConfig::seed, the CLI's --seed).
    std::string default_value{};
    // Numbers and integers: the range allowed; an open end excludes its bound.
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
    // What its loss draws at random ("the corruption"), or empty when it draws nothing. Such a model's
    // noise_source() is its generator: the trainer checkpoints its state, so that a resumed run draws
    // what an unbroken one would, and gradient checks fix it. The CLI's --seed help names it.
    std::string noise{};
};

// How a variant is built: from the configuration and its options, every declared one present and
// checked (complete_options).
template <class T>
using VariantMaker = std::shared_ptr<Autoencoder<T>> (*)(const AutoencoderConfig& config,
                                                         const nlohmann::json& options);

// Adds a variant to the registry, after those already there. ValueError when the name is taken or is
// not a word of lowercase letters, digits, '-' and '_', or when the declaration does not hold together
// (an option named twice, a default outside its own range, an unknown activation, a learning rate not
// above 0), naming what is wrong. Safe to call from several threads; a variant stays registered.
void register_variant(VariantInfo info, VariantMaker<float> make_float, VariantMaker<double> make_double);

// The same for a struct V with `static VariantInfo info()` and `template <class T> static
// std::shared_ptr<Autoencoder<T>> make(const AutoencoderConfig&, const nlohmann::json&)`, as above.
// Returns true, so that a namespace-scope `const bool registered = register_variant<V>();` registers V
// before main (an error there ends the program before main: prefer a call in main).
template <class V>
bool register_variant() {
    register_variant(V::info(), &V::template make<float>, &V::template make<double>);
    return true;
}

// Every registered variant, in the order registered: vanilla, denoising, sparse, contractive,
// variational (the built-in ones, always first), then a user's.
std::vector<VariantInfo> variant_infos();
// ValueError naming the known variants for an unknown name.
const VariantInfo& variant_info(std::string_view name);
// "vanilla, denoising, sparse, contractive, variational", and any registered after them.
std::string variant_names();

// The variant's options with every declared option present: the given ones checked (type and range),
// the others at their defaults, a seed left out taken from `model_seed`. ValueError for an unknown
// option, a wrong type or a value out of range, naming the option and what it allows.
std::string complete_options(std::string_view variant, const std::string& options_json, std::uint64_t model_seed);

// options_json holds the variant's options ("{}" for the defaults); see complete_options. ValueError
// when the variant's maker returns a model that does not say who it is (see the top of this file).
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
