#include "common.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>
#include <xtensor/xmath.hpp>
#include <xtensor/xsort.hpp>

#include "tapegrad/models/factory.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/nn/activations.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/io/datasets.hpp"
#include "tapegrad/nn/io/file.hpp"
#include "tapegrad/nn/init.hpp"
#include "tapegrad/nn/scaling.hpp"

namespace tapegrad::tools {

namespace {

using tapegrad::detail::throw_value_error;

// A validator from a test of the option's text: the test returns what is wrong, or "" when nothing is.
CLI::Validator check(std::string name, std::function<std::string(const std::string&)> test) {
    return CLI::Validator([test = std::move(test)](std::string& text) { return test(text); }, std::move(name));
}

std::optional<double> number(const std::string& text) {
    try {
        std::size_t used = 0;
        double value = std::stod(text, &used);
        return used == text.size() ? std::optional(value) : std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

bool digits_only(const std::string& text) {
    return !text.empty() && text.size() <= 20 && text.find_first_not_of("0123456789") == std::string::npos;
}

std::string& program_name() {
    static std::string name = "tapegrad";
    return name;
}

}  // namespace

const std::string& program() {
    return program_name();
}

void set_program(const char* argv0) {
    std::string name = argv0 != nullptr ? std::filesystem::path(argv0).filename().string() : "";
    program_name() = name.empty() ? "tapegrad" : name;
}

const CLI::Validator positive = check("POSITIVE", [](const std::string& text) {
    auto v = number(text);
    return v && std::isfinite(*v) && *v > 0 ? std::string() : "must be a number above 0, got " + text;
});

const CLI::Validator non_negative = check("NON-NEGATIVE", [](const std::string& text) {
    auto v = number(text);
    return v && std::isfinite(*v) && *v >= 0 ? std::string() : "must be a number from 0, got " + text;
});

const CLI::Validator whole = check("WHOLE", [](const std::string& text) {
    return digits_only(text) ? std::string() : "must be a whole number from 0, got " + text;
});

const CLI::Validator positive_whole = check("WHOLE>0", [](const std::string& text) {
    return digits_only(text) && text.find_first_not_of('0') != std::string::npos
               ? std::string()
               : "must be a whole number from 1, got " + text;
});

const CLI::Validator below_one = check("[0, 1)", [](const std::string& text) {
    auto v = number(text);
    return v && *v >= 0 && *v < 1 ? std::string() : "must be a number in [0, 1), got " + text;
});

const CLI::Validator activation = check("ACTIVATION", [](const std::string& text) {
    try {
        nn::make_activation<float>(text);
        return std::string();
    } catch (const Error& e) {
        return std::string(e.what());
    }
});

const CLI::Validator initialiser = check("INIT", [](const std::string& text) {
    try {
        nn::parse_init(text);
        return std::string();
    } catch (const Error& e) {
        return std::string(e.what());
    }
});

bool given(const CLI::App& app, const std::string& name) {
    const CLI::Option* option = app.get_option_no_throw(name);
    return option != nullptr && option->count() > 0;
}

nlohmann::json DataOptions::to_json() const {
    bool bundled = data == "digits" || data == "fashion-mnist";
    std::string where = bundled ? data : std::filesystem::absolute(data).lexically_normal().string();
    return {{"data", where}, {"test_fraction", test_fraction}, {"data_seed", seed}, {"scale", scale}, {"limit", limit}};
}

DataOptions DataOptions::from_json(const nlohmann::json& j) {
    DataOptions o;
    o.data = j.at("data").get<std::string>();
    o.test_fraction = j.at("test_fraction").get<double>();
    o.seed = j.at("data_seed").get<std::uint64_t>();
    o.scale = j.at("scale").get<std::string>();
    o.limit = j.at("limit").get<std::size_t>();
    return o;
}

void add_data_options(CLI::App& app, DataOptions& o) {
    app.add_option("--data", o.data, "a bundled data set (digits, fashion-mnist) or a .csv, .npy or IDX file")
        ->capture_default_str();
    app.add_option("--test-fraction", o.test_fraction, "test part, for data without a test split of its own")
        ->check(CLI::Range(0.01, 0.99))
        ->capture_default_str();
    app.add_option("--data-seed", o.seed, "seed of the test split")->check(whole)->capture_default_str();
    app.add_option("--scale", o.scale, "feature scaling fitted on the training part")
        ->check(CLI::IsMember({"minmax", "standard", "none"}))
        ->capture_default_str();
    app.add_option("--limit", o.limit, "use only the first N training rows (0: all)")
        ->check(whole)
        ->capture_default_str();
}

namespace {

nlohmann::json state_json(const std::string& kind, const nn::ScalerState& state) {
    nlohmann::json j = {{"kind", kind}};
    for (const auto& [name, array] : state) {
        j[name] = {{"shape", array.shape()}, {"values", std::vector<double>(array.begin(), array.end())}};
    }
    return j;
}

nn::ScalerState state_of(const nlohmann::json& j) {
    nn::ScalerState state;
    for (const auto& [name, value] : j.items()) {
        if (name == "kind") {
            continue;
        }
        auto shape = value.at("shape").get<std::vector<std::size_t>>();
        auto values = value.at("values").get<std::vector<double>>();
        Array<double> a = xt::empty<double>(shape);
        if (a.size() != values.size()) {
            throw_value_error(fmt::format("scaling: {} has {} values for shape {}", name, values.size(),
                                          tapegrad::to_string(a.shape())));
        }
        std::copy(values.begin(), values.end(), a.begin());
        state.emplace_back(name, std::move(a));
    }
    return state;
}

// Scales both parts: fitted on the training part, or with `stored` parameters when there are some.
template <class Scaler>
nlohmann::json scale_with(Scaler scaler, const std::string& kind, Split& split, const nlohmann::json& stored) {
    if (stored.is_object() && stored.value("kind", "") == kind) {
        scaler.load_state(state_of(stored));
    } else {
        scaler.fit(split.train.x);
    }
    split.train.x = scaler.transform(split.train.x);
    split.test.x = scaler.transform(split.test.x);
    return state_json(kind, scaler.state());
}

}  // namespace

Split load_split(const DataOptions& o, const nlohmann::json& scaling) {
    Split split;
    if (o.data == "fashion-mnist") {
        split.train = nn::load_dataset(o.data, "train");
        split.test = nn::load_dataset(o.data, "test");
    } else {
        auto [train, test] = nn::train_test_split(nn::load_dataset(o.data), o.test_fraction, o.seed);
        split.train = std::move(train);
        split.test = std::move(test);
    }
    if (o.limit > 0 && o.limit < split.train.size()) {
        std::vector<std::size_t> rows(o.limit);
        std::iota(rows.begin(), rows.end(), std::size_t{0});
        split.train = nn::select_rows(split.train, rows);
    }
    if (o.scale == "minmax") {
        split.scaling = scale_with(nn::MinMaxScaler(nn::MinMaxScaler::Scope::global), "minmax", split, scaling);
    } else if (o.scale == "standard") {
        split.scaling = scale_with(nn::StandardScaler(), "standard", split, scaling);
    } else {
        split.scaling = {{"kind", "none"}};
    }
    auto side = static_cast<std::size_t>(std::lround(std::sqrt(double(split.train.dim()))));
    split.image_side = side * side == split.train.dim() ? side : 0;
    if (split.train.x.size() > 0) {
        split.low = xt::amin(split.train.x)();
        split.high = xt::amax(split.train.x)();
    }
    return split;
}

void add_model_options(CLI::App& app, ModelOptions& o) {
    // The variants registered when the command line is declared: the built-in ones and a user's.
    std::vector<std::string> names;
    for (const auto& info : models::variant_infos()) {
        names.push_back(info.name);
    }
    app.add_option("--model", o.variant,
                   fmt::format("{} (their options: {} variants)", fmt::join(names, ", "), program()))
        ->check(CLI::Validator(
            [names](std::string& name) -> std::string {
                if (std::find(names.begin(), names.end(), name) != names.end()) {
                    return "";
                }
                // The architecture is not a variant: every objective trains on a convolutional model.
                std::string hint = name == "conv" ? "; a convolutional model is --conv CHANNELS (e.g. --conv 16,32) "
                                                    "with any of them"
                                                  : "";
                return fmt::format("{} not in {{{}}}{}", name, fmt::join(names, ","), hint);
            },
            fmt::format("{{{}}}", fmt::join(names, ","))))
        ->capture_default_str();
    app.add_option("--dims", o.dims, "the encoder's sizes, input first and latent last (e.g. 64,32,8)")
        ->delimiter(',')
        ->check(positive_whole);
    app.add_option("--hidden", o.hidden, "hidden sizes between input and latent (e.g. 256)")
        ->delimiter(',')
        ->check(positive_whole);
    app.add_option("--latent", o.latent, "latent units")->check(positive_whole)->capture_default_str();
    app.add_option("--activation", o.activation,
                   o.activation.empty()
                       ? fmt::format("hidden activation (default: the variant's, as {} variants lists)", program())
                       : "hidden activation")
        ->check(activation)
        ->capture_default_str();
    app.add_option("--latent-activation", o.latent_activation, "the code's activation (default: the variant's)")
        ->check(activation);
    app.add_option("--output-activation", o.output_activation,
                   "the reconstruction's activation (default: sigmoid for data scaled into [0, 1], else identity)")
        ->check(activation);
    app.add_flag("--tied", o.tied, "decoder weights are the encoder's, transposed");
    app.add_option("--conv", o.conv,
                   "a convolutional encoder and decoder with these channels (e.g. 16,32: 3x3 kernels, stride 2, "
                   "padding 1) before the dense layers; any variant")
        ->delimiter(',')
        ->check(positive_whole);
    app.add_option("--image", o.image,
                   "the image each row holds, channels,height,width (default with --conv: 1 channel, square)")
        ->delimiter(',')
        ->expected(3)
        ->check(positive_whole);
    app.add_option("--init", o.init, "weight initialiser")->check(initialiser)->capture_default_str();
    app.add_option("--seed", o.seed,
                   fmt::format("seed of the weights and of the model's noise ({}) unless --options gives that its "
                               "own seed",
                               noise_list()))
        ->check(whole)
        ->capture_default_str();
    app.add_option("--options", o.options,
                   fmt::format("the variant's options as a JSON object, e.g. '{{\"level\": 0.3}}' ({} variants "
                               "lists each variant's)",
                               program()))
        ->capture_default_str();
}

std::string noise_list() {
    std::vector<std::string> noises;
    for (const auto& info : models::variant_infos()) {
        if (!info.noise.empty()) {
            noises.push_back(fmt::format("{}: {}", info.name, info.noise));
        }
    }
    return fmt::format("{}", fmt::join(noises, "; "));
}

models::AutoencoderConfig model_config(const ModelOptions& o, std::size_t input, float low, float high) {
    models::AutoencoderConfig c;
    if (!o.dims.empty()) {
        if (o.dims.front() != input) {
            throw_value_error(fmt::format("model: --dims starts with {}, but the data has {} features", o.dims.front(),
                                          input));
        }
        c.sizes = o.dims;
    } else {
        c.sizes.push_back(input);
        c.sizes.insert(c.sizes.end(), o.hidden.begin(), o.hidden.end());
        c.sizes.push_back(o.latent);
    }
    const models::VariantInfo& info = models::variant_info(o.variant);
    c.activation = !o.activation.empty() ? o.activation : info.activation;
    c.latent_activation = !o.latent_activation.empty() ? o.latent_activation
                                                        : info.latent_activation;
    // A sigmoid reaches (0, 1) only: on standardised data (negative values, values above 1) it cannot
    // reconstruct, and ends worse than the mean image.
    bool unit_range = low >= 0 && high <= 1;
    if (o.output_activation.empty()) {
        c.output_activation = unit_range ? "sigmoid" : "identity";
    } else {
        c.output_activation = o.output_activation;
        if (!unit_range && (o.output_activation == "sigmoid" || o.output_activation == "tanh")) {
            throw_value_error(fmt::format(
                "model: a {} output cannot reach the data, which is scaled to [{:.4g}, {:.4g}]: use "
                "--output-activation identity, or --scale minmax",
                o.output_activation, low, high));
        }
    }
    c.tied = o.tied;
    c.channels = o.conv;
    c.image = o.image;
    if (!c.image.empty() && c.channels.empty()) {
        throw_value_error("model: --image describes the input of a convolutional model: give --conv too");
    }
    c.init = nn::parse_init(o.init);
    c.seed = o.seed;
    return c;
}

template <class T>
std::shared_ptr<models::Autoencoder<T>> build_model(const ModelOptions& o, std::size_t input, float low, float high) {
    return models::make_autoencoder<T>(o.variant, model_config(o, input, low, high), o.options);
}

double mean_baseline_mse(const nn::Dataset& train, const nn::Dataset& test) {
    Array<double> mean = xt::mean(xt::cast<double>(train.x), {0});
    Array<double> diff = xt::cast<double>(test.x) - mean;
    return xt::mean(diff * diff)();
}

double pca_mse(const nn::Dataset& train, const nn::Dataset& test, std::size_t components) {
    models::Pca<double> pca({.components = std::min({components, train.dim(), train.size()})});
    pca.fit(xt::cast<double>(train.x));
    return xt::mean(pca.reconstruction_error(xt::cast<double>(test.x)))();
}

void write_json(const std::string& path, const nlohmann::json& value) {
    nn::detail::write_file_atomically(path, value.dump(2) + "\n", "metrics " + path);
}

void claim_out(const std::string& verb, const std::string& out, const std::vector<std::string>& files, bool overwrite,
               const std::string& other_way) {
    std::vector<std::string> removed = nn::claim_output_folder(verb, out, files, overwrite, other_way);
    if (!removed.empty()) {
        note(fmt::format("--overwrite: removed {} from {}", fmt::join(removed, ", "), out));
    }
}

void claim_file(const std::string& verb, const std::string& path, bool overwrite) {
    std::filesystem::path p(path);
    std::string folder = p.has_parent_path() ? p.parent_path().string() : ".";
    claim_out(verb, folder, {p.filename().string()}, overwrite);
}

void add_overwrite_option(CLI::App& app, bool& overwrite) {
    app.add_flag("--overwrite", overwrite, "replace what --out holds of an earlier run");
}

void note(const std::string& text) {
    fmt::print("note: {}\n", text);
}

template std::shared_ptr<models::Autoencoder<float>> build_model<float>(const ModelOptions&, std::size_t, float,
                                                                        float);
template std::shared_ptr<models::Autoencoder<double>> build_model<double>(const ModelOptions&, std::size_t, float,
                                                                          float);

}  // namespace tapegrad::tools
