// Autoencoder = encoder + decoder + a loss recipe.
//
// Built from the encoder's layer sizes, input first and latent last ({64, 32, 8}); the decoder mirrors
// them ({8, 32, 64}). Hidden layers take `activation`, the latent layer `latent_activation`, the output
// `output_activation`. With tied weights each decoder layer uses the transpose of its mirror encoder
// weight (in the graph: transpose(W)) and has only its own bias.
//
// A variant overrides loss() (and, when its encoder differs, encode()): see denoising.hpp, sparse.hpp,
// contractive.hpp, variational.hpp, and examples/ for one written outside the library.
//
// Instantiated for float and double in models/autoencoder.cpp.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tapegrad/nn/init.hpp"
#include "tapegrad/nn/linear.hpp"
#include "tapegrad/nn/module.hpp"

namespace tapegrad::models {

struct AutoencoderConfig {
    std::vector<std::size_t> sizes;              // encoder: input first, latent last; at least two
    std::string activation = "relu";             // hidden layers
    std::string latent_activation = "identity";  // the code
    std::string output_activation = "sigmoid";   // the reconstruction
    bool tied = false;
    nn::Init init = nn::Init::torch_default;
    std::uint64_t seed = 0;
    // A convolutional encoder and decoder: the channels of each convolution (kernel 3, stride 2, padding 1:
    // each halves the image's side, rounding up), applied to the input's image before the dense layers
    // sizes[1..]; the decoder mirrors them with transposed convolutions. Empty for a dense model.
    std::vector<std::size_t> channels{};
    // The image each input row holds, {channels, height, width}; empty: one channel, square.
    std::vector<std::size_t> image{};

    std::size_t input_size() const { return sizes.front(); }
    bool convolutional() const { return !channels.empty(); }
    // The image of an input row, checked against the input size: ValueError when it does not fit.
    std::array<std::size_t, 3> image_shape() const;
    std::size_t latent_size() const { return sizes.back(); }
    // JSON text, as checkpoints store it, and back (throws ValueError on a bad one).
    std::string to_json() const;
    static AutoencoderConfig from_json(const std::string& text);
};

// The random numbers of a stochastic variant (corruption, the variational noise): fresh at every draw,
// or, when fixed, the same at every draw, which is what a gradient check of the loss needs.
class NoiseSource {
public:
    explicit NoiseSource(std::uint64_t seed) : seed_(seed), rng_(seed) {}
    void fix(bool on) { fixed_ = on; }
    bool fixed() const { return fixed_; }
    std::uint64_t seed() const { return seed_; }
    std::mt19937_64& draw() {
        if (fixed_) {
            rng_.seed(seed_);
        }
        return rng_;
    }

private:
    std::uint64_t seed_;
    bool fixed_ = false;
    std::mt19937_64 rng_;
};

// The part of a global batch that a loss() is given, when a Trainer splits each batch across the ranks
// of an MPI job (TrainerOptions::distributed). Not split (global_rows 0): the batch is x, whole.
struct BatchShard {
    std::size_t begin = 0;        // x's first row, as a row of the global batch
    std::size_t rows = 0;         // x's rows that count; 0 on a rank whose part is empty, which computes on
                                  // one row of the batch to meet the others at every sum, and counts it 0
    std::size_t global_rows = 0;  // the global batch's rows; 0: not split
    bool split() const { return global_rows > 0; }
};

// A named part of the last loss(), beside its total: what a variant's penalty is doing.
struct LossTerm {
    std::string_view name;
    double value = 0;
};

template <class T>
class Autoencoder : public nn::Module<T> {
public:
    explicit Autoencoder(AutoencoderConfig config);

    virtual Var<T> encode(const Var<T>& x);
    virtual Var<T> decode(const Var<T>& z);
    Var<T> reconstruct(const Var<T>& x) { return decode(encode(x)); }
    Var<T> forward(const Var<T>& x) override { return reconstruct(x); }

    // The training objective on a batch; the vanilla recipe is the reconstruction's MSE.
    virtual Var<T> loss(const Var<T>& x);
    // Each sample's reconstruction MSE, computed without recording: (samples,).
    Array<T> reconstruction_error(const Array<T>& x);

    const AutoencoderConfig& config() const { return config_; }
    // "vanilla", "denoising", ...: what a checkpoint records to rebuild the model. make_autoencoder
    // (factory.hpp) sets it from the registry, with the options it was made with, so that a registered
    // variant need not say them itself; "vanilla" and "{}" for a model made by hand. A variant may
    // override both.
    virtual std::string variant() const { return variant_; }
    // The variant's own options as JSON text ("{}" for vanilla).
    virtual std::string options_json() const { return options_; }
    void set_variant(std::string name, std::string options_json) {
        variant_ = std::move(name);
        options_ = std::move(options_json);
    }
    // The parts of the last loss() (sparse: the mean code activation and its KL against rho; contractive:
    // the Jacobian's squared norm; variational: the KL and the ELBO), for progress lines and metrics.
    // Empty when the loss is the reconstruction's MSE alone. Recorded without allocating.
    virtual std::span<const LossTerm> loss_terms() const { return {}; }
    // The generator the loss draws from (the denoising corruption, the variational sample), or nullptr:
    // the trainer checkpoints its state, gradient checks fix it.
    virtual NoiseSource* noise_source() { return nullptr; }
    std::string describe() const override;

    nn::Sequential<T>& encoder() { return *encoder_; }
    nn::Sequential<T>& decoder() { return *decoder_; }

    // Which part of the global batch the next loss() gets (the Trainer sets it around each step).
    void set_shard(const BatchShard& shard) { shard_ = shard; }
    const BatchShard& shard() const { return shard_; }

protected:
    // What a loss that looks across the batch uses, so that it stays the same objective when the batch is
    // split across ranks:
    // - batch_mean(v): v's mean over the rows of the global batch, (rows, k) to (k,): the sum of every
    //   rank's rows (the differentiable all_reduce) over the global rows; mean(v, 0) when not split.
    // - draw_over_batch(values, rows, width, draw): `draw(data, n)` changes n values in place with the
    //   variant's generator; run over a buffer of the global batch with this part's rows (`values`, rows
    //   by width) in their place, so that each row gets the noise it gets in one process and every rank's
    //   generator ends where one process's does. A stand-in row (BatchShard::rows 0) is the global batch's
    //   first and gets its noise, so that it holds defined values. Not split: draw(values, rows * width).
    // A loss that is a mean over its rows of per-row terms, plus terms of the parameters alone, needs
    // neither: the Trainer weighs each rank's loss by its share of the rows.
    Var<T> batch_mean(const Var<T>& v);
    template <class Draw>
    void draw_over_batch(T* values, std::size_t rows, std::size_t width, Draw&& draw) {
        if (!shard_.split()) {
            draw(values, rows * width);
            return;
        }
        noise_buffer_.assign(shard_.global_rows * width, T(0));
        std::size_t own = rows * width;  // this part's rows, or the stand-in row
        std::copy(values, values + own, noise_buffer_.begin() + static_cast<std::ptrdiff_t>(shard_.begin * width));
        draw(noise_buffer_.data(), noise_buffer_.size());
        std::copy_n(noise_buffer_.begin() + static_cast<std::ptrdiff_t>(shard_.begin * width), own, values);
    }

    // For variants whose encoder ends differently (the variational one doubles the latent layer).
    Autoencoder(AutoencoderConfig config, std::size_t encoder_output);

private:
    void build(std::size_t encoder_output);
    // The convolutional layers around the dense ones, when the configuration has channels: returns the
    // size of a flattened feature map, where the dense layers start.
    std::size_t build_conv_encoder(std::mt19937_64& rng);
    void build_conv_decoder(std::mt19937_64& rng);
    void check_memory(const std::vector<std::size_t>& sizes, std::size_t encoder_output) const;

    AutoencoderConfig config_;
    std::string variant_ = "vanilla";
    std::string options_ = "{}";
    nn::Sequential<T>* encoder_ = nullptr;
    nn::Sequential<T>* decoder_ = nullptr;
    BatchShard shard_{};
    std::vector<T> noise_buffer_;
};

// A decoder layer that reuses an encoder layer's weight transposed: y = x W^T + b.
template <class T>
class TiedLinear : public nn::Module<T> {
public:
    TiedLinear(const nn::Linear<T>& mirror, std::mt19937_64& rng, nn::Init init);
    Var<T> forward(const Var<T>& x) override;
    Var<T> forward_activated(const Var<T>& x, Activation act) override;
    std::string describe() const override;

private:
    Var<T> weight_;  // the mirror's, not registered here: it is the encoder's parameter
    Var<T> bias_;
};

// Decodes `steps` points evenly spaced on the segment between the codes of a and b (each one sample,
// shaped (features,)), a's first and b's last: (steps, features). Shows whether the code space between
// two samples holds plausible samples or a blur of both.
template <class T>
Array<T> interpolate(Autoencoder<T>& model, const Array<T>& a, const Array<T>& b, std::size_t steps);

extern template class Autoencoder<float>;
extern template class Autoencoder<double>;
extern template class TiedLinear<float>;
extern template class TiedLinear<double>;

}  // namespace tapegrad::models
