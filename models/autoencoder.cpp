#include "tapegrad/models/autoencoder.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <xtensor/xbuilder.hpp>

#include "tapegrad/autodiff/distributed.hpp"
#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/nn/activations.hpp"
#include "tapegrad/nn/conv.hpp"
#include "tapegrad/nn/losses.hpp"

namespace tapegrad::models {

std::string AutoencoderConfig::to_json() const {
    nlohmann::json j = {{"sizes", sizes},
                        {"activation", activation},
                        {"latent_activation", latent_activation},
                        {"output_activation", output_activation},
                        {"tied", tied},
                        {"init", std::string(nn::to_string(init))},
                        {"seed", seed}};
    if (convolutional()) {
        j["channels"] = channels;
        j["image"] = image;
    }
    return j.dump();
}

AutoencoderConfig AutoencoderConfig::from_json(const std::string& text) {
    try {
        nlohmann::json j = nlohmann::json::parse(text);
        AutoencoderConfig c;
        // Whole numbers only (nlohmann converts 1.8e20 or -1 to size_t without a check), and sizes no
        // layer could hold: a weight of at most 2^31 elements.
        const nlohmann::json& sizes = j.at("sizes");
        if (!sizes.is_array()) {
            tapegrad::detail::throw_value_error(fmt::format("autoencoder config: sizes must be a list, got {}", sizes.dump()));
        }
        for (const nlohmann::json& size : sizes) {
            if (!size.is_number_unsigned() || size.get<std::uint64_t>() == 0 ||
                size.get<std::uint64_t>() > (std::uint64_t(1) << 24)) {
                tapegrad::detail::throw_value_error(
                    fmt::format("autoencoder config: sizes must be whole numbers from 1 to 2^24, got {}", size.dump()));
            }
            c.sizes.push_back(size.get<std::size_t>());
        }
        for (std::size_t i = 0; i + 1 < c.sizes.size(); ++i) {
            if (c.sizes[i] * c.sizes[i + 1] > (std::size_t(1) << 31)) {
                tapegrad::detail::throw_value_error(fmt::format(
                    "autoencoder config: a {} x {} weight is more than 2^31 elements", c.sizes[i], c.sizes[i + 1]));
            }
        }
        c.activation = j.at("activation").get<std::string>();
        c.latent_activation = j.at("latent_activation").get<std::string>();
        c.output_activation = j.at("output_activation").get<std::string>();
        c.tied = j.at("tied").get<bool>();
        c.init = nn::parse_init(j.at("init").get<std::string>());
        if (!j.at("seed").is_number_unsigned()) {
            tapegrad::detail::throw_value_error(
                fmt::format("autoencoder config: seed must be a whole number from 0, got {}", j.at("seed").dump()));
        }
        c.seed = j.at("seed").get<std::uint64_t>();
        for (const char* key : {"channels", "image"}) {
            std::vector<std::size_t>& list = key == std::string_view("channels") ? c.channels : c.image;
            if (!j.contains(key)) {
                continue;
            }
            for (const nlohmann::json& v : j.at(key)) {
                if (!v.is_number_unsigned() || v.get<std::uint64_t>() == 0 || v.get<std::uint64_t>() > 65535) {
                    tapegrad::detail::throw_value_error(fmt::format(
                        "autoencoder config: {} must be whole numbers from 1 to 65535, got {}", key, v.dump()));
                }
                list.push_back(v.get<std::size_t>());
            }
        }
        if (c.convolutional()) {
            c.image_shape();
        }
        return c;
    } catch (const nlohmann::json::exception& e) {
        tapegrad::detail::throw_value_error(fmt::format("autoencoder config: {}", e.what()));
    }
}

std::array<std::size_t, 3> AutoencoderConfig::image_shape() const {
    std::size_t input = sizes.empty() ? 0 : sizes.front();
    if (image.empty()) {
        auto side = static_cast<std::size_t>(std::lround(std::sqrt(static_cast<double>(input))));
        if (side * side != input || input == 0) {
            tapegrad::detail::throw_value_error(fmt::format(
                "autoencoder: a convolutional model needs images: {} input features are no square; give the image "
                "(channels, height, width)",
                input));
        }
        return {1, side, side};
    }
    if (image.size() != 3 || image[0] * image[1] * image[2] != input) {
        tapegrad::detail::throw_value_error(
            fmt::format("autoencoder: the image [{}] does not hold the {} input features (channels, height, width)",
                        fmt::join(image, ", "), input));
    }
    return {image[0], image[1], image[2]};
}

template <class T>
TiedLinear<T>::TiedLinear(const nn::Linear<T>& mirror, std::mt19937_64& rng, nn::Init init) : weight_(mirror.weight()) {
    // This layer maps mirror.out -> mirror.in.
    bias_ = this->register_parameter("bias",
                                     nn::init_bias<T>(init, mirror.out_features(), mirror.in_features(), rng));
}

template <class T>
Var<T> TiedLinear<T>::forward(const Var<T>& x) {
    return linear_transposed(x, weight_, bias_);
}

template <class T>
Var<T> TiedLinear<T>::forward_activated(const Var<T>& x, Activation act) {
    return linear_transposed(x, weight_, bias_, act);
}

template <class T>
std::string TiedLinear<T>::describe() const {
    return fmt::format("TiedLinear({}, {}) = {}^T", weight_.shape()[1], weight_.shape()[0], weight_.name());
}

template <class T>
Autoencoder<T>::Autoencoder(AutoencoderConfig config) : config_(std::move(config)) {
    build(config_.sizes.empty() ? 0 : config_.latent_size());
}

template <class T>
Autoencoder<T>::Autoencoder(AutoencoderConfig config, std::size_t encoder_output) : config_(std::move(config)) {
    build(encoder_output);
}

// A model larger than the machine's memory is refused before anything is allocated: std::bad_alloc
// halfway through the layers would say nothing of what was asked for.
template <class T>
void Autoencoder<T>::check_memory(const std::vector<std::size_t>& s, std::size_t encoder_output) const {
    double parameters = 0;  // in double: 10^8 x 10^8 does not wrap
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
        double out = i + 2 == s.size() ? double(encoder_output) : double(s[i + 1]);
        parameters += double(s[i]) * out + out;                                  // encoder
        parameters += (config_.tied ? 0.0 : double(s[i]) * double(s[i + 1])) + double(s[i]);  // decoder
    }
    double bytes = parameters * sizeof(T);
    double memory = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
    if (memory > 0 && bytes > memory) {
        tapegrad::detail::throw_value_error(fmt::format(
            "autoencoder: sizes {} ask for {:.3g} parameters ({:.1f} GB as {}), more than this machine's memory "
            "({:.1f} GB)",
            fmt::join(s, "-"), parameters, bytes / 1e9, sizeof(T) == 4 ? "float32" : "float64", memory / 1e9));
    }
}

namespace {

template <class T>
void add_activation(nn::Sequential<T>& seq, const std::string& name) {
    if (name != "identity") {
        seq.add(nn::make_activation<T>(name));
    }
}

// The sides of the image after each convolution of kernel 3, stride 2, padding 1: ceil(side / 2).
std::vector<std::size_t> halved_sides(std::size_t side, std::size_t layers) {
    std::vector<std::size_t> sides{side};
    for (std::size_t i = 0; i < layers; ++i) {
        sides.push_back((sides.back() - 1) / 2 + 1);
    }
    return sides;
}

nn::Conv2dLayerOptions halving(nn::Init init, Pair output_padding = {0, 0}) {
    return {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .output_padding = output_padding, .init = init};
}

}  // namespace

template <class T>
void Autoencoder<T>::build(std::size_t encoder_output) {
    const std::vector<std::size_t>& s = config_.sizes;
    if (s.size() < 2 || std::find(s.begin(), s.end(), 0) != s.end()) {
        tapegrad::detail::throw_value_error(fmt::format(
            "autoencoder: sizes must list at least the input and the latent size, all above 0, got [{}]",
            fmt::join(s, ", ")));
    }
    if (config_.tied && encoder_output != config_.latent_size()) {
        tapegrad::detail::throw_value_error("autoencoder: tied weights need an encoder that ends at the latent size");
    }
    if (config_.tied && config_.convolutional()) {
        tapegrad::detail::throw_value_error("autoencoder: tied weights are for dense models, not convolutional ones");
    }
    std::mt19937_64 rng(config_.seed);
    encoder_ = &this->register_module("encoder", std::make_shared<nn::Sequential<T>>());
    // The dense layers' sizes: from the input, or from the flattened feature map the convolutions leave.
    std::vector<std::size_t> dense = s;
    if (config_.convolutional()) {
        dense[0] = build_conv_encoder(rng);
    }
    check_memory(dense, encoder_output);
    nn::LinearOptions linear{.init = config_.init};
    std::vector<std::shared_ptr<nn::Linear<T>>> encoder_layers;
    for (std::size_t i = 0; i + 1 < dense.size(); ++i) {
        bool last = i + 2 == dense.size();
        encoder_layers.push_back(
            std::make_shared<nn::Linear<T>>(dense[i], last ? encoder_output : dense[i + 1], rng, linear));
        encoder_->add(encoder_layers.back());
        add_activation(*encoder_, last ? config_.latent_activation : config_.activation);
    }
    decoder_ = &this->register_module("decoder", std::make_shared<nn::Sequential<T>>());
    for (std::size_t i = dense.size() - 1; i > 0; --i) {
        if (config_.tied) {
            decoder_->add(std::make_shared<TiedLinear<T>>(*encoder_layers[i - 1], rng, config_.init));
        } else {
            decoder_->add(std::make_shared<nn::Linear<T>>(dense[i], dense[i - 1], rng, linear));
        }
        bool output = i == 1 && !config_.convolutional();
        add_activation(*decoder_, output ? config_.output_activation : config_.activation);
    }
    if (config_.convolutional()) {
        build_conv_decoder(rng);
    }
}

template <class T>
std::size_t Autoencoder<T>::build_conv_encoder(std::mt19937_64& rng) {
    auto [c, h, w] = config_.image_shape();
    encoder_->add(std::make_shared<nn::Unflatten<T>>(std::array<std::size_t, 3>{c, h, w}));
    std::size_t in = c;
    for (std::size_t out : config_.channels) {
        encoder_->add(std::make_shared<nn::Conv2d<T>>(in, out, rng, halving(config_.init)));
        add_activation(*encoder_, config_.activation);
        in = out;
    }
    encoder_->add(std::make_shared<nn::Flatten<T>>());
    std::size_t layers = config_.channels.size();
    return in * halved_sides(h, layers).back() * halved_sides(w, layers).back();
}

template <class T>
void Autoencoder<T>::build_conv_decoder(std::mt19937_64& rng) {
    auto [c, h, w] = config_.image_shape();
    const std::vector<std::size_t>& ch = config_.channels;
    std::vector<std::size_t> hs = halved_sides(h, ch.size());
    std::vector<std::size_t> ws = halved_sides(w, ch.size());
    decoder_->add(std::make_shared<nn::Unflatten<T>>(std::array<std::size_t, 3>{ch.back(), hs.back(), ws.back()}));
    for (std::size_t i = ch.size(); i-- > 0;) {
        // A transposed convolution doubles the side less one; the output padding adds it back to even sides.
        Pair output_padding{hs[i] + 1 - 2 * hs[i + 1], ws[i] + 1 - 2 * ws[i + 1]};
        std::size_t out = i == 0 ? c : ch[i - 1];
        decoder_->add(std::make_shared<nn::ConvTranspose2d<T>>(ch[i], out, rng, halving(config_.init, output_padding)));
        add_activation(*decoder_, i == 0 ? config_.output_activation : config_.activation);
    }
    decoder_->add(std::make_shared<nn::Flatten<T>>());
}

template <class T>
Var<T> Autoencoder<T>::encode(const Var<T>& x) {
    return (*encoder_)(x);
}

template <class T>
Var<T> Autoencoder<T>::decode(const Var<T>& z) {
    return (*decoder_)(z);
}

template <class T>
Var<T> Autoencoder<T>::loss(const Var<T>& x) {
    return nn::mse(reconstruct(x), x);
}

template <class T>
Var<T> Autoencoder<T>::batch_mean(const Var<T>& v) {
    if (!shard_.split()) {
        return mean(v, 0);
    }
    Var<T> own = sum(v, 0);
    if (shard_.rows == 0) {
        own = own * T(0);  // the stand-in row counts for nothing
    }
    return all_reduce(own) * static_cast<T>(1.0 / double(shard_.global_rows));
}

template <class T>
Array<T> Autoencoder<T>::reconstruction_error(const Array<T>& x) {
    NoGrad off;
    Var<T> input(x);
    return nn::mse_per_sample(reconstruct(input), input).value();
}

template <class T>
std::string Autoencoder<T>::describe() const {
    std::string conv;
    if (config_.convolutional()) {
        auto [c, h, w] = config_.image_shape();
        conv = fmt::format("conv {} on {}x{}x{}, ", fmt::join(config_.channels, "-"), c, h, w);
    }
    return fmt::format("Autoencoder[{}]({}{}, {}, latent {}, output {}{})", variant(), conv,
                       fmt::join(config_.sizes, "-"), config_.activation, config_.latent_activation,
                       config_.output_activation, config_.tied ? ", tied" : "");
}

template <class T>
Array<T> interpolate(Autoencoder<T>& model, const Array<T>& a, const Array<T>& b, std::size_t steps) {
    std::size_t features = model.config().input_size();
    if (a.shape() != Shape{features} || b.shape() != Shape{features}) {
        tapegrad::detail::throw_shape_error(fmt::format("interpolate: needs two samples of shape ({},), got {} and {}",
                                                        features, tapegrad::to_string(a.shape()),
                                                        tapegrad::to_string(b.shape())));
    }
    if (steps < 2) {
        tapegrad::detail::throw_value_error(fmt::format("interpolate: needs at least 2 steps, got {}", steps));
    }
    NoGrad off;
    // (2, features), a's row then b's. Copied rather than xt::stack(xt::xtuple(a, b)): g++ 12 reports a false
    // -Warray-bounds inside xtensor's svector::insert, where stack adds the new axis to a 1-D shape.
    Array<T> pair = xt::empty<T>(Shape{2, features});
    std::copy_n(a.data(), features, pair.data());
    std::copy_n(b.data(), features, pair.data() + features);
    Var<T> ends(std::move(pair));
    Array<T> codes = model.encode(ends).value();  // (2, latent)
    std::size_t latent = codes.shape()[1];
    Array<T> path = xt::empty<T>(Shape{steps, latent});
    for (std::size_t i = 0; i < steps; ++i) {
        T t = static_cast<T>(i) / static_cast<T>(steps - 1);
        for (std::size_t j = 0; j < latent; ++j) {
            path(i, j) = (1 - t) * codes(0, j) + t * codes(1, j);
        }
    }
    return model.decode(Var<T>(path)).value();
}

template Array<float> interpolate<float>(Autoencoder<float>&, const Array<float>&, const Array<float>&, std::size_t);
template Array<double> interpolate<double>(Autoencoder<double>&, const Array<double>&, const Array<double>&,
                                           std::size_t);

template class Autoencoder<float>;
template class Autoencoder<double>;
template class TiedLinear<float>;
template class TiedLinear<double>;

}  // namespace tapegrad::models
