#include "tapegrad/models/factory.hpp"

#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tapegrad/models/contractive.hpp"
#include "tapegrad/models/denoising.hpp"
#include "tapegrad/models/sparse.hpp"
#include "tapegrad/models/variational.hpp"

namespace tapegrad::models {

namespace {

// Reads `key` into `value` when present, and removes it, so that what is left over is unknown.
template <class V>
void take(nlohmann::json& j, const char* key, V& value) {
    if (j.contains(key)) {
        if constexpr (std::is_integral_v<V> && !std::is_same_v<V, bool>) {
            // nlohmann converts a float or a negative number to an unsigned one without a check: 7e48 is
            // undefined behaviour, -1 becomes 2^64 - 1.
            if (!j[key].is_number_unsigned()) {
                tapegrad::detail::throw_value_error(
                    fmt::format("option {}: expected a whole number from 0, got {}", key, j[key].dump()));
            }
        }
        value = j[key].get<V>();
        j.erase(key);
    }
}

void no_leftovers(const nlohmann::json& j, const std::string& variant) {
    if (!j.empty()) {
        tapegrad::detail::throw_value_error(
            fmt::format("{}: unknown option{} {}", variant, j.size() == 1 ? "" : "s", j.dump()));
    }
}

}  // namespace

template <class T>
std::shared_ptr<Autoencoder<T>> make_autoencoder(const std::string& variant, const AutoencoderConfig& config,
                                                 const std::string& options_json) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(options_json);
        if (variant == "vanilla") {
            no_leftovers(j, variant);
            return std::make_shared<Autoencoder<T>>(config);
        }
        if (variant == "denoising") {
            DenoisingOptions o;
            std::string corruption(to_string(o.corruption));
            take(j, "corruption", corruption);
            take(j, "level", o.level);
            take(j, "seed", o.seed);
            o.corruption = parse_corruption(corruption);
            no_leftovers(j, variant);
            return std::make_shared<DenoisingAutoencoder<T>>(config, o);
        }
        if (variant == "sparse") {
            SparseOptions o;
            take(j, "rho", o.rho);
            take(j, "beta", o.beta);
            take(j, "lambda", o.lambda);
            no_leftovers(j, variant);
            return std::make_shared<SparseAutoencoder<T>>(config, o);
        }
        if (variant == "contractive") {
            ContractiveOptions o;
            take(j, "lambda", o.lambda);
            no_leftovers(j, variant);
            return std::make_shared<ContractiveAutoencoder<T>>(config, o);
        }
        if (variant == "variational") {
            VariationalOptions o;
            take(j, "reconstruction", o.reconstruction);
            take(j, "seed", o.seed);
            no_leftovers(j, variant);
            return std::make_shared<VariationalAutoencoder<T>>(config, o);
        }
    } catch (const nlohmann::json::exception& e) {
        tapegrad::detail::throw_value_error(fmt::format("{}: bad options {}: {}", variant, options_json, e.what()));
    }
    tapegrad::detail::throw_value_error(fmt::format(
        "model: unknown variant \"{}\" (known: vanilla, denoising, sparse, contractive, variational)", variant));
}

template <class T>
std::string describe_model(const Autoencoder<T>& model) {
    nlohmann::json j = {{"variant", model.variant()},
                        {"config", nlohmann::json::parse(model.config().to_json())},
                        {"options", nlohmann::json::parse(model.options_json())}};
    return j.dump();
}

template <class T>
std::shared_ptr<Autoencoder<T>> model_from_description(const std::string& description) {
    try {
        // A description holds a few levels; one nested thousands deep would make dump() below recurse
        // once a level (a stack overflow from about 60000): refused while parsing.
        static constexpr int deepest = 64;
        nlohmann::json j = nlohmann::json::parse(description, [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
            if (depth > deepest) {
                tapegrad::detail::throw_value_error(
                    fmt::format("model description: nested deeper than {} levels", deepest));
            }
            return true;
        });
        return make_autoencoder<T>(j.at("variant").get<std::string>(),
                                   AutoencoderConfig::from_json(j.at("config").dump()), j.at("options").dump());
    } catch (const nlohmann::json::exception& e) {
        tapegrad::detail::throw_value_error(fmt::format("model description: {}", e.what()));
    }
}

template std::shared_ptr<Autoencoder<float>> make_autoencoder<float>(const std::string&, const AutoencoderConfig&,
                                                                     const std::string&);
template std::shared_ptr<Autoencoder<double>> make_autoencoder<double>(const std::string&, const AutoencoderConfig&,
                                                                       const std::string&);
template std::string describe_model<float>(const Autoencoder<float>&);
template std::string describe_model<double>(const Autoencoder<double>&);
template std::shared_ptr<Autoencoder<float>> model_from_description<float>(const std::string&);
template std::shared_ptr<Autoencoder<double>> model_from_description<double>(const std::string&);

}  // namespace tapegrad::models
