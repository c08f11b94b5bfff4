#include "common.hpp"

#include <cmath>

#include <fmt/format.h>
#include <xtensor/xmath.hpp>

#include "tapegrad/models/factory.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/datasets.hpp"
#include "tapegrad/nn/file.hpp"

namespace tapegrad::tools {

const CLI::Validator positive(
    [](std::string& text) {
        double value = 0;
        try {
            value = std::stod(text);
        } catch (const std::exception&) {
            return "not a number: " + text;
        }
        return value > 0 ? std::string() : "must be above 0, got " + text;
    },
    "POSITIVE");

void add_data_options(CLI::App& app, DataOptions& o) {
    app.add_option("--data", o.data, "a bundled data set (digits, fashion-mnist) or a .csv, .npy or IDX file")
        ->capture_default_str();
    app.add_option("--test-fraction", o.test_fraction, "test part, for data without a test split of its own")
        ->check(CLI::Range(0.01, 0.99))
        ->capture_default_str();
    app.add_option("--data-seed", o.seed, "seed of the test split")->capture_default_str();
    app.add_option("--scale", o.scale, "feature scaling fitted on the training part")
        ->check(CLI::IsMember({"minmax", "standard", "none"}))
        ->capture_default_str();
    app.add_option("--limit", o.limit, "use only the first N training rows (0: all)")->capture_default_str();
}

Split load_split(const DataOptions& o) {
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
        nn::MinMaxScaler scaler(nn::MinMaxScaler::Scope::global);
        split.train.x = scaler.fit_transform(split.train.x);
        split.test.x = scaler.transform(split.test.x);
    } else if (o.scale == "standard") {
        nn::StandardScaler scaler;
        split.train.x = scaler.fit_transform(split.train.x);
        split.test.x = scaler.transform(split.test.x);
    }
    auto side = static_cast<std::size_t>(std::lround(std::sqrt(double(split.train.dim()))));
    split.image_side = side * side == split.train.dim() ? side : 0;
    return split;
}

void add_model_options(CLI::App& app, ModelOptions& o) {
    app.add_option("--model", o.variant, "vanilla, denoising, sparse, contractive, variational")
        ->check(CLI::IsMember({"vanilla", "denoising", "sparse", "contractive", "variational"}))
        ->capture_default_str();
    app.add_option("--dims", o.dims, "the encoder's sizes, input first and latent last (e.g. 64,32,8)")
        ->delimiter(',');
    app.add_option("--hidden", o.hidden, "hidden sizes between input and latent (e.g. 256)")->delimiter(',');
    app.add_option("--latent", o.latent, "latent units")->check(positive)->capture_default_str();
    app.add_option("--activation", o.activation, "hidden activation")->capture_default_str();
    app.add_option("--latent-activation", o.latent_activation, "the code's activation");
    app.add_option("--output-activation", o.output_activation, "the reconstruction's activation")
        ->capture_default_str();
    app.add_flag("--tied", o.tied, "decoder weights are the encoder's, transposed");
    app.add_option("--init", o.init, "weight initialiser")->capture_default_str();
    app.add_option("--seed", o.seed, "seed of the weights and the model's noise")->capture_default_str();
    app.add_option("--options", o.options,
                   "the variant's options as JSON, e.g. '{\"corruption\": \"masking\", \"level\": 0.3}'")
        ->capture_default_str();
}

models::AutoencoderConfig model_config(const ModelOptions& o, std::size_t input) {
    models::AutoencoderConfig c;
    if (!o.dims.empty()) {
        if (o.dims.front() != input) {
            tapegrad::detail::throw_value_error(
                fmt::format("model: --dims starts with {}, but the data has {} features", o.dims.front(), input));
        }
        c.sizes = o.dims;
    } else {
        c.sizes.push_back(input);
        c.sizes.insert(c.sizes.end(), o.hidden.begin(), o.hidden.end());
        c.sizes.push_back(o.latent);
    }
    c.activation = o.activation;
    c.latent_activation = !o.latent_activation.empty() ? o.latent_activation
                          : o.variant == "sparse"        ? "sigmoid"
                                                         : "identity";
    c.output_activation = o.output_activation;
    c.tied = o.tied;
    c.init = nn::parse_init(o.init);
    c.seed = o.seed;
    return c;
}

template <class T>
std::shared_ptr<models::Autoencoder<T>> build_model(const ModelOptions& o, std::size_t input) {
    return models::make_autoencoder<T>(o.variant, model_config(o, input), o.options);
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

template std::shared_ptr<models::Autoencoder<float>> build_model<float>(const ModelOptions&, std::size_t);
template std::shared_ptr<models::Autoencoder<double>> build_model<double>(const ModelOptions&, std::size_t);

}  // namespace tapegrad::tools
