// Experiment 2 on scikit-learn's 8x8 digits (values / 16, a seeded 80/20 split), what `make demo` runs:
//   1. rate-distortion: a 64-32-d-32-64 autoencoder for d = 2, 4, 8, 16, 32 beside PCA with d components;
//   2. a denoising autoencoder (masking 0.3): clean / corrupted / denoised test digits;
//   3. anomaly detection: trained on the digit 1 only, every other digit an anomaly;
//   4. interpolation between a 3 and an 8, in code space and, for contrast, in pixel space.
// Every figure and number goes into --out (runs/demo): metrics.json and PNGs.
#include <chrono>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <xtensor/xview.hpp>

#include "tapegrad/autodiff.hpp"
#include "tapegrad/models/anomaly.hpp"
#include "tapegrad/models/denoising.hpp"
#include "tapegrad/models/figures.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/io/file.hpp"

using namespace tapegrad;
using namespace tapegrad::models;

namespace {

struct Setup {
    nn::Dataset train;
    nn::Dataset test;
    int epochs = 150;
    std::string out;
};

AutoencoderConfig digits_config(std::size_t latent) {
    return {.sizes = {64, 32, latent}, .activation = "relu", .latent_activation = "identity",
            .output_activation = "sigmoid", .init = nn::Init::xavier_uniform, .seed = 1};
}

TrainerOptions trainer_options(int epochs) {
    return {.epochs = epochs, .batch_size = 32, .lr = 3e-3, .validation_fraction = 0.1, .seed = 2};
}

double mean_of(const Array<float>& a) { return static_cast<double>(xt::mean(a)()); }

double pca_test_mse(const Setup& s, std::size_t k) {
    Pca<float> pca({.components = k});
    return mean_of(pca.fit(s.train.x).reconstruction_error(s.test.x));
}

nlohmann::json rate_distortion(const Setup& s) {
    fmt::print("\n1. test MSE against latent size: 64-32-d-32-64 autoencoder beside PCA with d components\n");
    fmt::print("{:>7} {:>16} {:>10} {:>10}\n", "latent", "autoencoder", "PCA", "AE / PCA");
    nlohmann::json rows = nlohmann::json::array();
    Series ae{"autoencoder 64-32-d-32-64", {}, {}};
    Series pca{"PCA, d components", {}, {}};
    for (std::size_t d : {2, 4, 8, 16, 32}) {
        Autoencoder<float> model(digits_config(d));
        Trainer<float>(model, trainer_options(s.epochs)).fit(s.train);
        double ae_mse = mean_of(model.reconstruction_error(s.test.x));
        double pca_mse = pca_test_mse(s, d);
        fmt::print("{:>7} {:>16.5f} {:>10.5f} {:>10.3f}\n", d, ae_mse, pca_mse, ae_mse / pca_mse);
        rows.push_back({{"latent", d}, {"autoencoder_test_mse", ae_mse}, {"pca_test_mse", pca_mse}});
        ae.x.push_back(double(d));
        pca.x.push_back(double(d));
        ae.y.push_back(ae_mse);
        pca.y.push_back(pca_mse);
        if (d == 2) {  // the 2-D code, straight from the model
            Array<float> codes;
            {
                NoGrad off;
                codes = model.encode(Var<float>(s.test.x)).value();
            }
            std::vector<double> xs(codes.shape(0));
            std::vector<double> ys(codes.shape(0));
            for (std::size_t i = 0; i < xs.size(); ++i) {
                xs[i] = codes(i, 0);
                ys[i] = codes(i, 1);
            }
            plot_scatter(s.out + "/latent_2d.png", "digits: 2-D codes of the test set, by digit", "code 1", "code 2",
                         xs, ys, s.test.labels);
        }
    }
    plot_lines(s.out + "/rate_distortion.png", "digits: test MSE against latent size", "latent size d", "test MSE",
               {ae, pca}, {.log_x = true, .log_y = true});
    return rows;
}

nlohmann::json denoising(const Setup& s) {
    fmt::print("\n2. denoising autoencoder, masking 0.3, latent 16\n");
    DenoisingAutoencoder<float> model(digits_config(16), {.corruption = Corruption::masking, .level = 0.3, .seed = 3});
    Trainer<float>(model, trainer_options(s.epochs)).fit(s.train);
    Array<float> corrupted = model.corrupt(s.test.x);
    Array<float> denoised;
    {
        NoGrad off;
        denoised = model.reconstruct(Var<float>(corrupted)).value();
    }
    auto mse_to_clean = [&](const Array<float>& a) { return static_cast<double>(xt::mean(xt::square(a - s.test.x))()); };
    double corrupted_mse = mse_to_clean(corrupted);
    double denoised_mse = mse_to_clean(denoised);
    fmt::print("test MSE to the clean digits: corrupted {:.5f}, denoised {:.5f}\n", corrupted_mse, denoised_mse);
    std::size_t n = 16;
    auto first = [&](const Array<float>& a) { return Array<float>(xt::view(a, xt::range(0, n), xt::all())); };
    write_comparison(s.out + "/denoising.png", {first(s.test.x), first(corrupted), first(denoised)}, 8, 8, 0,
                     {.row_labels = {"clean", "corrupted", "denoised"}});
    return {{"corrupted_test_mse", corrupted_mse}, {"denoised_test_mse", denoised_mse}};
}

nlohmann::json anomaly(const Setup& s) {
    fmt::print("\n3. anomaly detection: trained on the digit 1 only, latent 4\n");
    // The threshold is set on 1s held out of training: the model's own training rows score lower than
    // unseen 1s, and a percentile of their scores flags about four times as many test 1s as it promises
    // (EXPERIMENTS.md, tutorial 002's anomaly experiment).
    nn::Dataset ones = nn::filter_by_label(s.train, {1});
    auto [fit_ones, held_out_ones] = nn::train_test_split(ones, 0.2, 4);
    Autoencoder<float> model(digits_config(4));
    Trainer<float>(model, trainer_options(s.epochs)).fit(fit_ones);
    Array<float> held_out_scores = model.reconstruction_error(held_out_ones.x);
    Array<float> test_scores = model.reconstruction_error(s.test.x);
    std::vector<double> normal(held_out_scores.begin(), held_out_scores.end());
    std::vector<double> scores(test_scores.begin(), test_scores.end());
    std::vector<bool> is_anomaly;
    for (std::int64_t label : s.test.labels) {
        is_anomaly.push_back(label != 1);
    }
    Detection d = detect_at_percentile(normal, 95, scores, is_anomaly);
    double auc = roc_auc(scores, is_anomaly);
    fmt::print("{} training 1s, {} more held out; threshold (95th percentile of the held-out 1s' scores) {:.5f}\n",
               fit_ones.size(), held_out_ones.size(), d.threshold);
    fmt::print("test 1s flagged as anomalies: {} of {}\n", d.false_positives, d.false_positives + d.true_negatives);
    fmt::print("test: {} anomalies among {}: precision {:.4f} recall {:.4f} F1 {:.4f} ROC-AUC {:.4f}\n",
               d.true_positives + d.false_negatives, scores.size(), d.precision, d.recall, d.f1, auc);
    RocCurve roc = roc_curve(scores, is_anomaly);
    // The threshold's operating point on the curve: the share of normal digits it flags, of anomalies it catches.
    double fpr = double(d.false_positives) / double(std::max<std::size_t>(1, d.false_positives + d.true_negatives));
    plot_lines(s.out + "/anomaly_roc.png", fmt::format("digits: trained on 1s, the rest anomalous (AUC {:.3f})", auc),
               "false positive rate", "true positive rate",
               {{"autoencoder", roc.false_positive_rate, roc.true_positive_rate}, {"chance", {0, 1}, {0, 1}}},
               {.marks = {{fpr, d.recall, fmt::format("threshold {:.4g}", d.threshold)}}});
    nlohmann::json j = nlohmann::json::parse(d.to_json());
    j["roc_auc"] = auc;
    j["training_samples"] = fit_ones.size();
    j["held_out_samples"] = held_out_ones.size();
    return j;
}

nlohmann::json interpolation(const Setup& s) {
    fmt::print("\n4. interpolation from a 3 to an 8, latent 8\n");
    Autoencoder<float> model(digits_config(8));
    Trainer<float>(model, trainer_options(s.epochs)).fit(s.train);
    auto first_of = [&](std::int64_t digit) {
        for (std::size_t i = 0; i < s.test.size(); ++i) {
            if (s.test.labels[i] == digit) {
                return std::make_pair(i, Array<float>(xt::row(s.test.x, static_cast<std::ptrdiff_t>(i))));
            }
        }
        tapegrad::detail::throw_value_error(fmt::format("demo: no {} in the test set", digit));
    };
    auto [i3, three] = first_of(3);
    auto [i8, eight] = first_of(8);
    const std::size_t steps = 10;
    Array<float> in_code = interpolate(model, three, eight, steps);
    Array<float> in_pixels = xt::empty<float>(Shape{steps, 64});
    for (std::size_t i = 0; i < steps; ++i) {
        float t = float(i) / float(steps - 1);
        xt::row(in_pixels, static_cast<std::ptrdiff_t>(i)) = (1 - t) * three + t * eight;
    }
    write_comparison(s.out + "/interpolation.png", {in_code, in_pixels}, 8, 8, 0,
                     {.row_labels = {"in code space", "pixel blend"}});
    fmt::print("test samples {} (a 3) and {} (an 8): code-space path above, pixel-space blend below\n", i3, i8);
    return {{"from_test_row", i3}, {"to_test_row", i8}, {"steps", steps}};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tapegrad demo: autoencoders against PCA on the bundled digits"};
    Setup s;
    s.out = "runs/demo";
    app.add_option("--out", s.out, "folder for metrics.json and the figures");
    app.add_option("--epochs", s.epochs, "epochs per model")->check(CLI::PositiveNumber);
    bool overwrite = false;
    app.add_flag("--overwrite", overwrite, "replace what --out holds of an earlier run");
    CLI11_PARSE(app, argc, argv);
    std::vector<std::string> removed;
    try {
        removed = nn::claim_output_folder("digits_demo", s.out,
                                          {"metrics.json", "rate_distortion.png", "latent_2d.png", "denoising.png",
                                           "anomaly_roc.png", "interpolation.png"},
                                          overwrite);
    } catch (const Error& e) {
        fmt::print(stderr, "{}\n", e.what());
        return 1;
    }
    configure_blas(argv, 1);
    auto start = std::chrono::steady_clock::now();
    fmt::print("tapegrad demo: digits, autoencoders against PCA\nBLAS: {}\n", blas_summary());
    if (!removed.empty()) {
        fmt::print("--overwrite: removed {} from {}\n", fmt::join(removed, ", "), s.out);
    }

    nn::Dataset digits = nn::load_dataset("digits");
    auto [train, test] = nn::train_test_split(digits, 0.2, 0);
    nn::MinMaxScaler scaler(nn::MinMaxScaler::Scope::global);  // the pixels' 0..16 become 0..1
    train.x = scaler.fit_transform(train.x);
    test.x = scaler.transform(test.x);
    s.train = std::move(train);
    s.test = std::move(test);
    Array<float> mean_image = xt::mean(s.train.x, {0});
    double mean_mse = static_cast<double>(xt::mean(xt::square(s.test.x - mean_image))());
    fmt::print("{} training and {} test digits; predicting the mean image gives test MSE {:.5f}\n", s.train.size(),
               s.test.size(), mean_mse);
    std::filesystem::create_directories(s.out);

    nlohmann::json metrics = {{"data", "digits"}, {"epochs", s.epochs}, {"mean_image_test_mse", mean_mse}};
    metrics["rate_distortion"] = rate_distortion(s);
    metrics["denoising"] = denoising(s);
    metrics["anomaly"] = anomaly(s);
    metrics["interpolation"] = interpolation(s);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics["seconds"] = seconds;
    nn::detail::write_file_atomically(s.out + "/metrics.json", metrics.dump(2) + "\n", "metrics");
    fmt::print("\nwrote {0}/metrics.json and {0}/{{rate_distortion,latent_2d,denoising,anomaly_roc,interpolation}}.png "
               "in {1:.1f} s\n",
               s.out, seconds);
    return 0;
}
