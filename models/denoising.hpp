// Denoising autoencoder (Vincent et al. 2008): reconstructs the clean input from a corrupted one. The
// corruption is drawn afresh at every loss, from the model's own seeded generator.
#pragma once

#include <cstdint>
#include <vector>

#include "tapegrad/models/autoencoder.hpp"

namespace tapegrad::models {

enum class Corruption {
    masking,          // each element set to 0 with probability `level` (in steps of 1/65536)
    gaussian,         // N(0, level^2) added to each element
    salt_and_pepper,  // each element set, with probability `level`, to 0 or 1 (data scaled to [0, 1])
};

std::string_view to_string(Corruption c);
Corruption parse_corruption(std::string_view name);

struct DenoisingOptions {
    Corruption corruption = Corruption::masking;
    // 0.3 cost the Fashion-MNIST model of the README 2.3x PCA's test MSE (the test input is clean);
    // 0.1 gave 0.96x.
    double level = 0.1;
    std::uint64_t seed = 0;
};

template <class T>
class DenoisingAutoencoder : public Autoencoder<T> {
public:
    DenoisingAutoencoder(AutoencoderConfig config, DenoisingOptions options);

    // A corrupted copy of x, with fresh noise (unless fixed).
    Array<T> corrupt(const Array<T>& x);
    // MSE between the reconstruction of corrupt(x) and x itself.
    Var<T> loss(const Var<T>& x) override;

    std::string variant() const override { return "denoising"; }
    std::string options_json() const override;
    NoiseSource& noise() { return noise_; }
    NoiseSource* noise_source() override { return &noise_; }

private:
    void corrupt_in_place(T* v, std::size_t n);

    DenoisingOptions options_;
    NoiseSource noise_;
    std::vector<std::uint16_t> uniforms_;  // masking's draws for one batch, kept for the next
};

extern template class DenoisingAutoencoder<float>;
extern template class DenoisingAutoencoder<double>;

}  // namespace tapegrad::models
