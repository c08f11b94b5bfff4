// Tutorial 002, sections 1 and 7: sample digits with their pixel values, the noise types, and the
// denoising autoencoder (latent 16, masking 0.3, trained against the clean input).
#pragma once

#include <xtensor/xsort.hpp>

#include "digits_tutorial_recipe.hpp"
#include "tapegrad/models/denoising.hpp"
#include "tapegrad/models/figures.hpp"

namespace tapegrad::examples::digits {

// The first training digit of each class, 0 to 9, and its 64 pixel values: the tutorial's first figure
// draws them as bars under each image; here each digit's values are one line, lifted by the digit, so
// that ten lines of 64 values stay apart. Nothing here is random: the protocol and seeds change nothing.
inline void samples(Context& c, Results& r) {
    std::vector<std::size_t> first;
    for (std::int64_t digit = 0; digit < 10; ++digit) {
        auto at = std::find(c.data.train.labels.begin(), c.data.train.labels.end(), digit);
        first.push_back(static_cast<std::size_t>(at - c.data.train.labels.begin()));
    }
    Array<float> images = nn::select_rows(c.data.train, first).x;
    models::write_image_grid(c.path("samples.png"), images, 8, 8, 10, {.scale = 8, .row_labels = {"digits 0 to 9"}});
    std::vector<models::Series> lines;
    for (std::size_t k = 0; k < 10; ++k) {
        models::Series s{fmt::format("digit {}", k), {}, {}};
        for (std::size_t p = 0; p < 64; ++p) {
            s.x.push_back(double(p));
            s.y.push_back(double(k) + 0.9 * images(k, p));
        }
        lines.push_back(std::move(s));
    }
    models::plot_lines(c.path("pixel_values.png"),
                       "pixel values of the first training digit of each class (digit k: k + 0.9 x value)",
                       "pixel (row-major, 0-63)", "digit + 0.9 x pixel value in [0, 1]", lines);
    r.json["training_rows"] = first;
    r.figure("samples.png");
    r.figure("pixel_values.png");
}

// The tutorial's add_masking_noise and add_gaussian_noise through the library's corruption: masking sets
// each pixel to 0 with probability `level`; Gaussian adds N(0, level^2), and the tutorial clips the sum
// to [0, 1], which models::DenoisingAutoencoder does not (its noise is unbounded).
inline Array<float> corrupted(const Array<float>& x, models::Corruption kind, double level, std::uint64_t seed,
                              bool clip) {
    models::DenoisingAutoencoder<float> noise(Recipe{Protocol::tutorial}.config(16, seed),
                                              {.corruption = kind, .level = level, .seed = seed});
    Array<float> out = noise.corrupt(x);
    return clip ? Array<float>(xt::clip(out, 0.0f, 1.0f)) : out;
}

// Nothing to correct here but the clipping, which both protocols do as the tutorial does; the numbers
// say what it changes: the MSE each corruption adds to the test digits, with and without the clip.
inline void noise(Context& c, Results& r) {
    const Array<float>& x = c.data.test.x;
    std::vector<double> masking, clipped, unclipped, clipped_changed;
    Array<float> first_masked, first_noisy;
    for (std::uint64_t seed : c.args.seed_list()) {
        Array<float> masked = corrupted(x, models::Corruption::masking, 0.4, stream(seed, 600), false);
        Array<float> noisy = corrupted(x, models::Corruption::gaussian, 0.3, stream(seed, 601), false);
        Array<float> clipped_noisy = xt::clip(noisy, 0.0f, 1.0f);
        masking.push_back(mse_between(masked, x));
        unclipped.push_back(mse_between(noisy, x));
        clipped.push_back(mse_between(clipped_noisy, x));
        // The share of the Gaussian draws the clip cuts off (mostly on the black background).
        clipped_changed.push_back(static_cast<double>(xt::mean(xt::cast<double>(xt::not_equal(noisy, clipped_noisy)))()));
        if (seed == c.args.first_seed) {
            first_masked = rows(masked, 0, 8);
            first_noisy = rows(clipped_noisy, 0, 8);
        }
    }
    r.measured("mse_to_clean_masking_0.4", spread_of(masking));
    r.measured("mse_to_clean_gaussian_0.3_clipped", spread_of(clipped));
    r.measured("mse_to_clean_gaussian_0.3_unclipped", spread_of(unclipped));
    r.measured("share_of_pixels_clipped", spread_of(clipped_changed));
    fmt::print("MSE each corruption adds to the test digits: masking 0.4 {}; Gaussian 0.3 clipped to [0, 1] {}, "
               "unclipped {}; the clip changes {} of the pixels\n",
               describe(spread_of(masking)), describe(spread_of(clipped)), describe(spread_of(unclipped)),
               describe(spread_of(clipped_changed), 3));
    models::write_comparison(c.path("noise_types.png"), {rows(x, 0, 8), first_masked, first_noisy}, 8, 8, 0,
                             {.row_labels = {"clean", "masking 0.4", "Gaussian 0.3, clipped"},
                              .column_labels = digit_names(c.data.test.labels, {0, 1, 2, 3, 4, 5, 6, 7})});
    r.figure("noise_types.png");
}

inline void denoising(Context& c, Results& r) {
    // The notebook's "Epoch 50/50, Loss: ..." of its denoising run (what its own code prints).
    r.printed("final_train_loss", 0.048660);
    r.json["tutorial_claims"] = {"Denoising helps: Training with corruption forces robust feature learning"};
    fmt::print("denoising autoencoder 64-32-16-32-64, masking 0.3, {}\n", c.recipe.describe(50));
    const Array<float>& x = c.data.test.x;
    std::vector<double> final_loss, noisy_mse, denoised_mse, plain_noisy_mse, dae_clean_mse, plain_clean_mse;
    std::vector<Array<float>> figure;
    for (std::uint64_t seed : c.args.seed_list()) {
        Trained dae = train<models::DenoisingAutoencoder<float>>(
            c.recipe, c.data.train, 50, seed, c.recipe.config(16, seed),
            models::DenoisingOptions{.corruption = models::Corruption::masking, .level = 0.3, .seed = stream(seed, 700)});
        // The same architecture and recipe on clean inputs: what the corruption in training buys.
        Trained plain = train(c.recipe, c.data.train, 50, seed, c.recipe.config(16, seed));
        Array<float> noisy = corrupted(x, models::Corruption::masking, 0.3, stream(seed, 701), false);
        Array<float> denoised = reconstruct(*dae.model, noisy);
        Array<float> plain_denoised = reconstruct(*plain.model, noisy);
        final_loss.push_back(train_losses(dae.history).back());
        noisy_mse.push_back(mse_between(noisy, x));
        denoised_mse.push_back(mse_between(denoised, x));
        plain_noisy_mse.push_back(mse_between(plain_denoised, x));
        dae_clean_mse.push_back(test_mse(*dae.model, x));
        plain_clean_mse.push_back(test_mse(*plain.model, x));
        fmt::print("seed {}: final train loss {:.5f}; test MSE to the clean digits: corrupted {:.5f}, denoised {:.5f}, "
                   "plain autoencoder on the corrupted {:.5f}\n",
                   seed, final_loss.back(), noisy_mse.back(), denoised_mse.back(), plain_noisy_mse.back());
        if (seed == c.args.first_seed) {
            figure = {rows(x, 0, 8), rows(noisy, 0, 8), rows(denoised, 0, 8), rows(plain_denoised, 0, 8)};
        }
    }
    r.measured("final_train_loss", spread_of(final_loss));
    r.measured("corrupted_test_mse", spread_of(noisy_mse));
    r.measured("denoised_test_mse", spread_of(denoised_mse));
    r.measured("plain_on_corrupted_test_mse", spread_of(plain_noisy_mse));
    r.measured("denoising_on_clean_test_mse", spread_of(dae_clean_mse));
    r.measured("plain_on_clean_test_mse", spread_of(plain_clean_mse));
    models::write_comparison(c.path("denoising.png"), figure, 8, 8, 0,
                             {.row_labels = {"clean", "corrupted (masking 0.3)", "denoised", "plain AE on corrupted"},
                              .column_labels = digit_names(c.data.test.labels, {0, 1, 2, 3, 4, 5, 6, 7})});
    r.figure("denoising.png");
}

}  // namespace tapegrad::examples::digits
