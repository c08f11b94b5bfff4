#include "report.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <xtensor/xview.hpp>

#include "run.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/models/figures.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"
#include "tapegrad/nn/data.hpp"

namespace tapegrad::tools {

void Report::print() const {
    if (best_epoch > 0 && best_epoch == last_epoch) {
        fmt::print("weights: epoch {}, the best and the last (validation MSE {:.6f})\n", last_epoch, best_validation_mse);
    } else if (best_epoch > 0) {
        fmt::print("weights: the best epoch's, {} of {} (validation MSE {:.6f})\n", best_epoch, last_epoch,
                   best_validation_mse);
    }
    fmt::print("test MSE: autoencoder {:.6f} | PCA with {} components {:.6f} | mean image {:.6f}\n", test_mse, latent,
               pca_mse, mean_mse);
    if (!std::isnan(last_test_mse)) {
        fmt::print("test MSE at the last epoch's weights (epoch {}): autoencoder {:.6f}\n", last_epoch, last_test_mse);
    }
    if (!terms.empty()) {
        std::string text;
        for (const auto& [name, value] : terms) {
            text += fmt::format("{}{} {:.6g}", text.empty() ? "" : ", ", name, value);
            if (name == "elbo") {
                fmt::print("test ELBO per sample: {:.4f}\n", value);
            }
        }
        fmt::print("test loss terms: {}\n", text);
    }
    if (collapsed()) {
        fmt::print("warning: the autoencoder does no better than the mean image: it has likely collapsed to one "
                   "output (too few steps, or a penalty that outweighs the reconstruction: train longer, or lower "
                   "the variant's penalty; {} variants lists its options)\n",
                   program());
    } else if (worse_than_pca()) {
        fmt::print("warning: PCA with as many components reconstructs the test set better ({:.6f} against the "
                   "autoencoder's {:.6f}): more epochs or other options may close the gap ({} variants lists "
                   "them)\n",
                   pca_mse, test_mse, program());
    }
}

nlohmann::json Report::to_json() const {
    nlohmann::json j = {{"variant", variant},         {"latent", latent},
                        {"test_mse", test_mse},       {"pca_test_mse", pca_mse},
                        {"mean_image_test_mse", mean_mse}, {"collapsed", collapsed()},
                        {"worse_than_pca", worse_than_pca()}};
    if (best_epoch > 0) {
        j["weights"] = {{"best_epoch", best_epoch},
                        {"last_epoch", last_epoch},
                        {"best_validation_mse", best_validation_mse},
                        {"test_mse_last_epoch", std::isnan(last_test_mse) ? test_mse : last_test_mse}};
    }
    if (!terms.empty()) {
        nlohmann::json t = nlohmann::json::object();
        for (const auto& [name, value] : terms) {
            t[name] = value;
        }
        j["test_loss_terms"] = t;
        if (t.contains("elbo")) {
            j["test_elbo"] = t["elbo"];
        }
    }
    return j;
}

template <class T>
Report evaluate_model(models::Autoencoder<T>& model, const Split& split) {
    Report r;
    r.variant = model.variant();
    r.latent = model.config().latent_size();
    Array<T> x = xt::cast<T>(split.test.x);
    r.test_mse = static_cast<double>(xt::mean(model.reconstruction_error(x))());
    r.pca_mse = pca_mse(split.train, split.test, r.latent);
    r.mean_mse = mean_baseline_mse(split.train, split.test);
    if (!model.loss_terms().empty()) {
        // The loss on the test part, in chunks, with the noise fixed to its seed: every evaluation of the
        // same weights reports the same numbers.
        models::NoiseSource* noise = model.noise_source();
        bool fixed = noise != nullptr && noise->fixed();
        if (noise != nullptr) {
            noise->fix(true);
        }
        std::vector<double> sums(model.loss_terms().size(), 0.0);
        std::size_t n = split.test.size();
        for (std::size_t begin = 0; begin < n; begin += 1000) {
            std::size_t end = std::min(n, begin + 1000);
            std::vector<std::size_t> rows(end - begin);
            std::iota(rows.begin(), rows.end(), begin);
            NoGrad off;
            model.loss(Var<T>(xt::cast<T>(nn::select_rows(split.test, rows).x)));
            for (std::size_t t = 0; t < sums.size(); ++t) {
                sums[t] += model.loss_terms()[t].value * double(end - begin);
            }
        }
        for (std::size_t t = 0; t < sums.size(); ++t) {
            r.terms.emplace_back(std::string(model.loss_terms()[t].name), sums[t] / double(n));
        }
        if (noise != nullptr) {
            noise->fix(fixed);
        }
    }
    return r;
}

Report evaluate_checkpoint(const std::string& checkpoint, const Split& split,
                           std::shared_ptr<models::Autoencoder<float>>* best) {
    auto model = load_model<float>(checkpoint);
    Report last = evaluate_model(*model, split);
    models::History history = models::read_history(checkpoint);
    Report report = last;
    auto saved = nn::read_checkpoint_arrays<float>(checkpoint, "best/");
    if (!saved.empty()) {
        auto params = model->named_parameters();
        for (auto& [name, array] : saved) {
            auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.name == name; });
            if (it == params.end() || it->var.shape() != array.shape()) {
                tapegrad::detail::throw_value_error(
                    fmt::format("checkpoint {}: best/{} does not fit the model", checkpoint, name));
            }
            it->var.mutable_value() = std::move(array);
        }
        report = evaluate_model(*model, split);
        report.last_test_mse = last.test_mse;
    }
    report.best_epoch = history.best_epoch;
    report.last_epoch = static_cast<int>(history.epochs.size());
    report.best_validation_mse = history.best_validation_mse;
    if (best != nullptr) {
        *best = model;
    }
    return report;
}

namespace {

// interpolation.png: the decoded path between the codes of the first two test rows of different labels (the
// first two rows without labels), above the blend of their pixels: whether the code space between two
// images holds images or a blur of both.
std::string write_interpolation(models::Autoencoder<float>& model, const Split& split, const std::string& out) {
    const nn::Dataset& test = split.test;
    std::size_t b = 1;
    while (test.has_labels() && b + 1 < test.size() && test.labels[b] == test.labels[0]) {
        ++b;
    }
    const std::size_t steps = 8;
    Array<float> from = xt::row(test.x, 0);
    Array<float> to = xt::row(test.x, static_cast<std::ptrdiff_t>(b));
    Array<float> in_code = models::interpolate(model, from, to, steps);
    Array<float> in_pixels = xt::empty<float>(in_code.shape());
    std::vector<std::string> alphas;
    for (std::size_t i = 0; i < steps; ++i) {
        float t = static_cast<float>(i) / static_cast<float>(steps - 1);
        xt::row(in_pixels, static_cast<std::ptrdiff_t>(i)) = (1 - t) * from + t * to;
        alphas.push_back(fmt::format("{:.2f}", t));
    }
    std::string path = out + "/interpolation.png";
    models::write_comparison(path, {in_code, in_pixels}, split.image_side, split.image_side, 0,
                             {.row_labels = {"in code space", "pixel blend"}, .column_labels = alphas});
    return path;
}

}  // namespace

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
    // The objective (MSE plus the variant's penalty, or a negative ELBO) and the MSE are not one
    // quantity: each on its own labelled axis, logarithmic where it is positive throughout.
    auto positive = [](const std::vector<double>& v) {
        return std::all_of(v.begin(), v.end(), [](double x) { return !(x <= 0); });
    };
    std::string loss = out + "/loss.png";
    models::plot_lines(loss, fmt::format("{} autoencoder: training by epoch", model.variant()), "epoch",
                       "train objective (" + model.variant() + " loss)",
                       {{"train objective", epochs, train_loss},
                        {"validation MSE", epochs, validation_mse, models::Axis::right}},
                       {.log_y = positive(train_loss), .y2_label = "validation MSE", .log_y2 = positive(validation_mse)});
    written["loss"] = loss;

    std::size_t n = std::min<std::size_t>(16, split.test.size());
    std::vector<std::size_t> first(n);
    std::iota(first.begin(), first.end(), std::size_t{0});
    Array<float> originals = nn::select_rows(split.test, first).x;
    if (split.image_side > 0) {
        NoGrad off;
        Array<float> reconstructions = model.reconstruct(Var<float>(originals)).value();
        std::string path = out + "/reconstructions.png";
        models::write_comparison(path, {originals, reconstructions}, split.image_side, split.image_side, 8,
                                 {.row_labels = {"original", "reconstructed"}});
        written["reconstructions"] = path;
        if (split.test.size() >= 2) {
            written["interpolation"] = write_interpolation(model, split, out);
        }
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
        models::plot_scatter(path, fmt::format("test codes by label ({})", how), "1st", "2nd", xs, ys, labels,
                             {.label_names = sample.class_names});
        written["latent"] = path;
    }
    return written;
}

template <class T>
std::shared_ptr<models::Autoencoder<T>> load_model(const std::string& checkpoint) {
    auto model = models::model_from_description<T>(CheckpointRecord::read(checkpoint).model.dump());
    nn::load_checkpoint<T>(checkpoint, *model);
    return model;
}

template Report evaluate_model<float>(models::Autoencoder<float>&, const Split&);
template Report evaluate_model<double>(models::Autoencoder<double>&, const Split&);
template std::shared_ptr<models::Autoencoder<float>> load_model<float>(const std::string&);
template std::shared_ptr<models::Autoencoder<double>> load_model<double>(const std::string&);

}  // namespace tapegrad::tools
