#include "tapegrad/models/factory.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tapegrad/models/contractive.hpp"
#include "tapegrad/models/denoising.hpp"
#include "tapegrad/models/sparse.hpp"
#include "tapegrad/models/variational.hpp"
#include "tapegrad/nn/activations.hpp"

namespace tapegrad::models {

namespace {

using Json = nlohmann::json;
using tapegrad::detail::throw_value_error;

// Declarations read their defaults off the options' own structs, so that the two cannot drift.
OptionSpec number(std::string name, double value, double min, bool min_open, double max, bool max_open,
                  std::string meaning) {
    return {.name = std::move(name), .type = OptionSpec::Type::number, .default_value = Json(value).dump(),
            .min = min, .max = max, .min_open = min_open, .max_open = max_open, .meaning = std::move(meaning)};
}

OptionSpec text(std::string name, std::string value, std::vector<std::string> choices, std::string meaning) {
    return {.name = std::move(name), .type = OptionSpec::Type::text, .default_value = Json(value).dump(),
            .choices = std::move(choices), .meaning = std::move(meaning)};
}

OptionSpec seed(std::string meaning) {
    return {.name = "seed", .type = OptionSpec::Type::integer, .min = 0,
            .max = static_cast<double>(std::numeric_limits<std::uint64_t>::max()), .meaning = std::move(meaning)};
}

constexpr double inf = std::numeric_limits<double>::infinity();

// The built-in variants, registered as a user's are: a declaration and how to build it from a
// configuration and its completed options.
struct Vanilla {
    static VariantInfo info() { return {.name = "vanilla", .summary = "MSE of the reconstruction"}; }
    template <class T>
    static std::shared_ptr<Autoencoder<T>> make(const AutoencoderConfig& c, const Json&) {
        return std::make_shared<Autoencoder<T>>(c);
    }
};

struct Denoising {
    static VariantInfo info() {
        DenoisingOptions d;
        return {.name = "denoising",
                .summary = "MSE of the reconstruction of a corrupted input against the clean one",
                .options = {text("corruption", std::string(to_string(d.corruption)),
                                 {"masking", "gaussian", "salt_and_pepper"},
                                 "masking sets each value to 0 with probability level, gaussian adds N(0, level^2), "
                                 "salt_and_pepper sets values to 0 or 1 with probability level"),
                            number("level", d.level, 0, false, inf, false,
                                   "the probability a value is corrupted (masking, salt_and_pepper: at most 1), or "
                                   "the Gaussian noise's standard deviation"),
                            seed("seed of the corruption's random numbers")},
                .noise = "the corruption"};
    }
    template <class T>
    static std::shared_ptr<Autoencoder<T>> make(const AutoencoderConfig& c, const Json& j) {
        DenoisingOptions o{.corruption = parse_corruption(j.at("corruption").get<std::string>()),
                           .level = j.at("level").get<double>(),
                           .seed = j.at("seed").get<std::uint64_t>()};
        return std::make_shared<DenoisingAutoencoder<T>>(c, o);
    }
};

struct Sparse {
    static VariantInfo info() {
        SparseOptions d;
        return {.name = "sparse",
                .summary = "MSE + beta * sum_j KL(rho || mean activation of code unit j) + lambda / 2 * ||W||^2",
                .latent_activation = "sigmoid",
                .activation = "tanh",  // relu units died under the KL's first gradients: 21 of 32 on one seed
                .lr = 1e-2,
                .options = {number("rho", d.rho, 0, true, 1, true, "target mean activation of each code unit"),
                            number("beta", d.beta, 0, false, inf, false, "weight of the sparsity penalty (the KL)"),
                            number("lambda", d.lambda, 0, false, inf, false,
                                   "weight decay on the weights, biases excluded")},
                .terms = {"reconstruction_mse", "mean_code_activation", "sparsity_kl", "weight_decay"}};
    }
    template <class T>
    static std::shared_ptr<Autoencoder<T>> make(const AutoencoderConfig& c, const Json& j) {
        SparseOptions o{.rho = j.at("rho").get<double>(), .beta = j.at("beta").get<double>(),
                        .lambda = j.at("lambda").get<double>()};
        return std::make_shared<SparseAutoencoder<T>>(c, o);
    }
};

struct Contractive {
    static VariantInfo info() {
        ContractiveOptions d;
        return {.name = "contractive",
                .summary = "MSE + lambda * ||d code / d input||_F^2, averaged over the batch",
                .options = {number("lambda", d.lambda, 0, false, inf, false, "weight of the Jacobian penalty")},
                .terms = {"reconstruction_mse", "jacobian_sq_norm"}};
    }
    template <class T>
    static std::shared_ptr<Autoencoder<T>> make(const AutoencoderConfig& c, const Json& j) {
        return std::make_shared<ContractiveAutoencoder<T>>(c, ContractiveOptions{.lambda = j.at("lambda").get<double>()});
    }
};

struct Variational {
    static VariantInfo info() {
        VariationalOptions d;
        return {.name = "variational",
                .summary = "negative ELBO: reconstruction summed over features + KL(q(z|x) || N(0, I))",
                .activation = "tanh",
                .lr = 1e-2,
                .options = {text("reconstruction", d.reconstruction, {"auto", "mse", "bce"},
                                 "squared error, binary cross-entropy (a sigmoid output, data in [0, 1]), or auto: "
                                 "bce where the output is a sigmoid, mse otherwise"),
                            seed("seed of the sampling noise eps ~ N(0, I)")},
                .terms = {"reconstruction", "kl", "elbo"},
                .noise = "the sample eps ~ N(0, I)"};
    }
    template <class T>
    static std::shared_ptr<Autoencoder<T>> make(const AutoencoderConfig& c, const Json& j) {
        VariationalOptions o{.reconstruction = j.at("reconstruction").get<std::string>(),
                             .seed = j.at("seed").get<std::uint64_t>()};
        return std::make_shared<VariationalAutoencoder<T>>(c, o);
    }
};

struct Entry {
    VariantInfo info;
    VariantMaker<float> make_float;
    VariantMaker<double> make_double;
};

bool in_range(const OptionSpec& spec, double v) {
    bool above = spec.min_open ? v > spec.min : v >= spec.min;
    bool below = spec.max_open ? v < spec.max : v <= spec.max;
    return above && below;
}

// 2^64: an integer option with no upper bound takes what a JSON parser reads as a whole number.
constexpr double two_to_64 = 18446744073709551616.0;

// What `value` must be for `spec`, or "" when it is that.
std::string wanted(const OptionSpec& spec, const Json& value) {
    switch (spec.type) {
    case OptionSpec::Type::text:
        if (!value.is_string() ||
            std::find(spec.choices.begin(), spec.choices.end(), value.get<std::string>()) == spec.choices.end()) {
            return fmt::format("one of {}", spec.range());
        }
        return "";
    case OptionSpec::Type::integer: {
        // nlohmann converts a float or a negative number to an unsigned one without a check: 7e48 is
        // undefined behaviour, -1 becomes 2^64 - 1. Only a number read as a whole one passes.
        bool seed_like = spec.min == 0 && !spec.min_open && spec.max >= two_to_64;
        std::string what = seed_like ? "a whole number from 0" : fmt::format("a whole number in {}", spec.range());
        if (!value.is_number_integer() || !in_range(spec, value.get<double>())) {
            return what;
        }
        return "";
    }
    case OptionSpec::Type::number:
        if (!value.is_number() || !std::isfinite(value.get<double>()) || !in_range(spec, value.get<double>())) {
            return fmt::format("a number in {}", spec.range());
        }
        return "";
    }
    return "?";
}

void check_option(std::string_view variant, const OptionSpec& spec, const Json& value) {
    std::string what = wanted(spec, value);
    if (!what.empty()) {
        throw_value_error(fmt::format("{}: option {} must be {}, got {}", variant, spec.name, what, value.dump()));
    }
}

bool is_word(std::string_view name) {
    return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

// A declaration that does not hold together is refused when it is registered, not when a user first
// asks for the option: each default passes its own check, names are words and unique.
void check_declaration(const VariantInfo& info) {
    auto refuse = [&](const std::string& what) {
        throw_value_error(fmt::format("register_variant: {}: {}", info.name, what));
    };
    if (!is_word(info.name)) {
        throw_value_error(fmt::format("register_variant: the name \"{}\" is not a word of lowercase letters, digits, "
                                      "'-' and '_'",
                                      info.name));
    }
    if (info.summary.empty()) {
        refuse("no summary: give its objective in one line");
    }
    for (const std::string* activation : {&info.activation, &info.latent_activation}) {
        try {
            nn::make_activation<float>(*activation);
        } catch (const Error& e) {
            refuse(e.what());
        }
    }
    if (!(info.lr > 0) || !std::isfinite(info.lr)) {
        refuse(fmt::format("learning rate {} is not a number above 0", info.lr));
    }
    for (std::size_t i = 0; i < info.options.size(); ++i) {
        const OptionSpec& spec = info.options[i];
        if (!is_word(spec.name)) {
            refuse(fmt::format("option name \"{}\" is not a word of lowercase letters, digits, '-' and '_'",
                               spec.name));
        }
        for (std::size_t j = 0; j < i; ++j) {
            if (info.options[j].name == spec.name) {
                refuse(fmt::format("option {} is declared twice", spec.name));
            }
        }
        if (spec.meaning.empty()) {
            refuse(fmt::format("option {} has no meaning: say what it does", spec.name));
        }
        if (spec.type == OptionSpec::Type::text && spec.choices.empty()) {
            refuse(fmt::format("option {} is text with no choices", spec.name));
        }
        if (spec.type != OptionSpec::Type::text && !(spec.min <= spec.max)) {
            refuse(fmt::format("option {} has an empty range {}", spec.name, spec.range()));
        }
        if (spec.default_value.empty()) {
            if (spec.type != OptionSpec::Type::integer || !in_range(spec, 0) || spec.max < two_to_64) {
                refuse(fmt::format("option {} has no default (only a seed, an integer in [0, 2^64), may leave it "
                                   "to the model's seed)",
                                   spec.name));
            }
            continue;
        }
        Json value;
        try {
            value = Json::parse(spec.default_value);
        } catch (const nlohmann::json::exception&) {
            refuse(fmt::format(
                "option {}: its default {} is not JSON text (a text default is quoted: \"\\\"masking\\\"\")",
                spec.name, spec.default_value));
        }
        std::string what = wanted(spec, value);
        if (!what.empty()) {
            refuse(fmt::format("option {}: its default {} is not {}", spec.name, spec.default_value, what));
        }
    }
}

// Every variant known to this process: the built-in ones, then those registered, in order. A
// function-local static, so that a user's registration at namespace scope (before main, in any order
// with this library's own statics) finds the built-in ones there. A deque: references handed out stay
// valid when a variant is added.
class Registry {
public:
    Registry() {
        add(entry<Vanilla>());
        add(entry<Denoising>());
        add(entry<Sparse>());
        add(entry<Contractive>());
        add(entry<Variational>());
    }

    void add(Entry e) {
        check_declaration(e.info);
        if (e.make_float == nullptr || e.make_double == nullptr) {
            throw_value_error(fmt::format("register_variant: {}: a maker is null", e.info.name));
        }
        std::lock_guard lock(mutex_);
        for (const Entry& known : entries_) {
            if (known.info.name == e.info.name) {
                throw_value_error(fmt::format("register_variant: a variant named \"{}\" is registered already "
                                              "(known: {})",
                                              e.info.name, names()));
            }
        }
        entries_.push_back(std::move(e));
    }

    const Entry& find(std::string_view name) {
        std::lock_guard lock(mutex_);
        for (const Entry& e : entries_) {
            if (e.info.name == name) {
                return e;
            }
        }
        throw_value_error(fmt::format("model: unknown variant \"{}\" (known: {})", name, names()));
    }

    std::vector<VariantInfo> infos() {
        std::lock_guard lock(mutex_);
        std::vector<VariantInfo> v;
        for (const Entry& e : entries_) {
            v.push_back(e.info);
        }
        return v;
    }

    std::string names_text() {
        std::lock_guard lock(mutex_);
        return names();
    }

private:
    template <class V>
    static Entry entry() {
        return {V::info(), &V::template make<float>, &V::template make<double>};
    }

    std::string names() const {  // with the mutex held
        std::vector<std::string_view> names;
        for (const Entry& e : entries_) {
            names.push_back(e.info.name);
        }
        return fmt::format("{}", fmt::join(names, ", "));
    }

    std::mutex mutex_;
    std::deque<Entry> entries_;
};

Registry& registry() {
    static Registry r;
    return r;
}

const Entry& find(std::string_view name) {
    return registry().find(name);
}

// The model a maker returned says who it is, or a checkpoint of it would rebuild another model.
template <class T>
void check_made(const Entry& e, Autoencoder<T>* model) {
    const VariantInfo& info = e.info;
    if (model == nullptr) {
        throw_value_error(fmt::format("{}: its maker returned no model", info.name));
    }
    if (model->variant() != info.name) {
        throw_value_error(fmt::format("{}: the model made says its variant() is \"{}\": it must return \"{}\", the "
                                      "name it is registered under, for a checkpoint to rebuild it",
                                      info.name, model->variant(), info.name));
    }
    Json described;
    try {
        described = Json::parse(model->options_json());
    } catch (const nlohmann::json::exception& ex) {
        throw_value_error(fmt::format("{}: the model's options_json() is not JSON: {}", info.name, ex.what()));
    }
    std::vector<std::string_view> missing;
    for (const OptionSpec& spec : info.options) {
        if (!described.is_object() || !described.contains(spec.name)) {
            missing.push_back(spec.name);
        }
    }
    if (!missing.empty()) {
        throw_value_error(fmt::format("{}: the model's options_json() {} leaves out {}: it must hold every declared "
                                      "option, for a checkpoint to rebuild the model",
                                      info.name, model->options_json(), fmt::join(missing, ", ")));
    }
    bool draws = model->noise_source() != nullptr;
    if (draws && info.noise.empty()) {
        throw_value_error(fmt::format("{}: the model has a noise_source() but the declaration names no noise: say what "
                                      "its loss draws (VariantInfo::noise)",
                                      info.name));
    }
    if (!draws && !info.noise.empty()) {
        throw_value_error(fmt::format("{}: the declaration names a noise ({}) but the model's noise_source() is null: "
                                      "return its generator, for the trainer to checkpoint it",
                                      info.name, info.noise));
    }
}

std::string number_text(double v) {
    if (std::isinf(v)) {
        return v > 0 ? "inf" : "-inf";
    }
    return fmt::format("{:g}", v);
}

}  // namespace

std::string_view OptionSpec::type_name() const {
    switch (type) {
    case Type::number: return "number";
    case Type::integer: return "integer";
    case Type::text: return "text";
    }
    return "?";
}

std::string OptionSpec::range() const {
    if (type == Type::text) {
        return fmt::format("{}", fmt::join(choices, " | "));
    }
    if (type == Type::integer && max >= two_to_64) {
        return fmt::format("{}{}, 2^64)", min_open || std::isinf(min) ? '(' : '[', number_text(min));
    }
    return fmt::format("{}{}, {}{}", min_open || std::isinf(min) ? '(' : '[', number_text(min), number_text(max),
                       max_open || std::isinf(max) ? ')' : ']');
}

std::string OptionSpec::default_text() const {
    if (default_value.empty()) {
        return "the model's seed";
    }
    Json j = Json::parse(default_value);
    return j.is_string() ? j.get<std::string>() : j.dump();
}

void register_variant(VariantInfo info, VariantMaker<float> make_float, VariantMaker<double> make_double) {
    registry().add({std::move(info), make_float, make_double});
}

std::vector<VariantInfo> variant_infos() {
    return registry().infos();
}

const VariantInfo& variant_info(std::string_view name) {
    return find(name).info;
}

std::string variant_names() {
    return registry().names_text();
}

std::string complete_options(std::string_view variant, const std::string& options_json, std::uint64_t model_seed) {
    const VariantInfo& info = find(variant).info;
    Json given;
    try {
        given = Json::parse(options_json);
    } catch (const nlohmann::json::exception& e) {
        throw_value_error(fmt::format("{}: bad options {}: {}", variant, options_json, e.what()));
    }
    if (!given.is_object()) {
        throw_value_error(fmt::format("{}: options must be a JSON object, got {}", variant, options_json));
    }
    Json full = Json::object();
    for (const OptionSpec& spec : info.options) {
        if (given.contains(spec.name)) {
            check_option(variant, spec, given[spec.name]);
            full[spec.name] = given[spec.name];
            given.erase(spec.name);
        } else {
            full[spec.name] = spec.default_value.empty() ? Json(model_seed) : Json::parse(spec.default_value);
        }
    }
    if (!given.empty()) {
        std::vector<std::string_view> known;
        for (const OptionSpec& spec : info.options) {
            known.push_back(spec.name);
        }
        throw_value_error(fmt::format("{}: unknown option{} {} ({})", variant, given.size() == 1 ? "" : "s",
                                      given.dump(),
                                      known.empty() ? std::string("it has none")
                                                    : fmt::format("known: {}", fmt::join(known, ", "))));
    }
    return full.dump();
}

template <class T>
std::shared_ptr<Autoencoder<T>> make_autoencoder(const std::string& variant, const AutoencoderConfig& config,
                                                 const std::string& options_json) {
    const Entry& e = find(variant);
    Json options = Json::parse(complete_options(variant, options_json, config.seed));
    std::shared_ptr<Autoencoder<T>> model;
    if constexpr (std::is_same_v<T, float>) {
        model = e.make_float(config, options);
    } else {
        model = e.make_double(config, options);
    }
    if (model != nullptr) {
        model->set_variant(e.info.name, options.dump());
    }
    check_made(e, model.get());
    return model;
}

template <class T>
std::string describe_model(const Autoencoder<T>& model) {
    Json j = {{"variant", model.variant()},
              {"config", Json::parse(model.config().to_json())},
              {"options", Json::parse(model.options_json())}};
    return j.dump();
}

template <class T>
std::shared_ptr<Autoencoder<T>> model_from_description(const std::string& description) {
    try {
        // A description holds a few levels; one nested thousands deep would make dump() below recurse
        // once a level (a stack overflow from about 60000): refused while parsing.
        static constexpr int deepest = 64;
        Json j = Json::parse(description, [](int depth, Json::parse_event_t, Json&) {
            if (depth > deepest) {
                throw_value_error(fmt::format("model description: nested deeper than {} levels", deepest));
            }
            return true;
        });
        return make_autoencoder<T>(j.at("variant").get<std::string>(), AutoencoderConfig::from_json(j.at("config").dump()),
                                   j.at("options").dump());
    } catch (const nlohmann::json::exception& e) {
        throw_value_error(fmt::format("model description: {}", e.what()));
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
