#include "report.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <xtensor/xview.hpp>

#include "tapegrad/models/factory.hpp"
#include "tapegrad/models/figures.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/models/variational.hpp"
#include "tapegrad/nn/checkpoint.hpp"
#include "tapegrad/nn/data.hpp"

namespace tapegrad::tools {

void Report::print() const {
    fmt::print("test MSE: autoencoder {:.6f} | PCA with {} components {:.6f} | mean image {:.6f}\n", test_mse, latent,
               pca_mse, mean_mse);
    if (!std::isnan(test_elbo)) {
        fmt::print("test ELBO per sample: {:.4f}\n", test_elbo);
    }
    if (collapsed()) {
        fmt::print("warning: the autoencoder does no better than the mean image: it has likely collapsed to one "
                   "output (try a lower learning rate, another activation or initialiser)\n");
    }
}

nlohmann::json Report::to_json() const {
    nlohmann::json j = {{"variant", variant},       {"latent", latent},     {"test_mse", test_mse},
                        {"pca_test_mse", pca_mse},  {"mean_image_test_mse", mean_mse}, {"collapsed", collapsed()}};
    if (!std::isnan(test_elbo)) {
        j["test_elbo"] = test_elbo;
    }
    return j;
}

template <class T>
Report evaluate_model(models::Autoencoder<T>& model, const Split& split, const std::string& variant) {
    Report r;
    r.variant = variant;
    r.latent = model.config().latent_size();
    Array<T> x = xt::cast<T>(split.test.x);
    r.test_mse = static_cast<double>(xt::mean(model.reconstruction_error(x))());
    r.pca_mse = pca_mse(split.train, split.test, r.latent);
    r.mean_mse = mean_baseline_mse(split.train, split.test);
    if (auto* vae = dynamic_cast<models::VariationalAutoencoder<T>*>(&model)) {
        // A one-sample estimate with the noise fixed to its seed, so that every evaluation of the same
        // weights reports the same number.
        bool fixed = vae->noise().fixed();
        vae->noise().fix(true);
        NoGrad off;
        vae->loss(Var<T>(x));
        r.test_elbo = vae->last_elbo();
        vae->noise().fix(fixed);
    }
    return r;
}

nlohmann::json write_figures(const std::string& out, models::Autoencoder<float>& model, const Split& split,
                             const models::History& history) {
    nlohmann::json written;
    std::vector<double> epochs;
    std::vector<double> train_loss;
    std::vector<double> validation_mse;
    for (const auto& r : history.epochs) {
        epochs.push_back(r.epoch);
        train_loss.push_back(r.train_loss);
        validation_mse.push_back(r.validation_mse);
    }
    std::string loss = out + "/loss.png";
    models::plot_lines(loss, fmt::format("{} autoencoder: loss by epoch", model.variant()), "epoch", "loss",
                       {{"train loss", epochs, train_loss}, {"validation MSE", epochs, validation_mse}},
                       {.log_y = true});
    written["loss"] = loss;

    std::size_t n = std::min<std::size_t>(16, split.test.size());
    std::vector<std::size_t> first(n);
    std::iota(first.begin(), first.end(), std::size_t{0});
    Array<float> originals = nn::select_rows(split.test, first).x;
    if (split.image_side > 0) {
        NoGrad off;
        Array<float> reconstructions = model.reconstruct(Var<float>(originals)).value();
        std::string path = out + "/reconstructions.png";
        models::write_comparison(path, {originals, reconstructions}, split.image_side, split.image_side);
        written["reconstructions"] = path;
    }

    std::size_t m = std::min<std::size_t>(2000, split.test.size());
    std::vector<std::size_t> rows(m);
    std::iota(rows.begin(), rows.end(), std::size_t{0});
    nn::Dataset sample = nn::select_rows(split.test, rows);
    Array<double> codes;
    {
        NoGrad off;
        codes = xt::cast<double>(model.encode(Var<float>(sample.x)).value());
    }
    std::string how = "the code";
    if (codes.shape(1) > 2) {
        models::Pca<double> pca({.components = 2});
        codes = pca.fit(codes).encode(codes);
        how = "first two principal components of the code";
    }
    if (codes.shape(1) == 2) {
        std::vector<double> xs(m);
        std::vector<double> ys(m);
        for (std::size_t i = 0; i < m; ++i) {
            xs[i] = codes(i, 0);
            ys[i] = codes(i, 1);
        }
        std::vector<std::int64_t> labels = sample.has_labels() ? sample.labels : std::vector<std::int64_t>(m, 0);
        std::string path = out + "/latent.png";
        models::plot_scatter(path, fmt::format("test codes by label ({})", how), "1st", "2nd", xs, ys, labels);
        written["latent"] = path;
    }
    return written;
}

template <class T>
std::shared_ptr<models::Autoencoder<T>> load_model(const std::string& checkpoint) {
    nlohmann::json config = nlohmann::json::parse(nn::read_checkpoint_config(checkpoint));
    auto model = models::model_from_description<T>(config.at("model").dump());
    nn::load_checkpoint<T>(checkpoint, *model);
    return model;
}

template Report evaluate_model<float>(models::Autoencoder<float>&, const Split&, const std::string&);
template Report evaluate_model<double>(models::Autoencoder<double>&, const Split&, const std::string&);
template std::shared_ptr<models::Autoencoder<float>> load_model<float>(const std::string&);
template std::shared_ptr<models::Autoencoder<double>> load_model<double>(const std::string&);

}  // namespace tapegrad::tools
