// The convolutional autoencoder's ops-only epoch: see conv_floor.hpp.
#include "conv_floor.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <utility>

#include <fmt/format.h>

#include "tapegrad/autodiff.hpp"

namespace bench {

using namespace tapegrad;
using Clock = std::chrono::steady_clock;

namespace {

// Kernel 3, stride 2, padding 1, as models::Autoencoder builds every convolution.
constexpr Pair kernel{3, 3};
constexpr Conv2dOptions halving{.stride = {2, 2}, .padding = {1, 1}};

std::size_t halved(std::size_t side) { return (side - 1) / 2 + 1; }

// The transposed convolution from `small` back to `large`: a doubling less one, plus the output padding.
ConvTranspose2dOptions doubling(std::size_t large_h, std::size_t large_w, std::size_t small_h, std::size_t small_w) {
    return {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {large_h + 1 - 2 * small_h, large_w + 1 - 2 * small_w}};
}

// The activation a linear layer applies in its own op (nn::Sequential fuses these), or none.
std::optional<Activation> fused(const std::string& name) {
    if (name == "relu") return Activation::relu;
    if (name == "sigmoid") return Activation::sigmoid;
    if (name == "tanh") return Activation::tanh;
    return std::nullopt;
}

// Operands with values like the network's (activations in [0, 1), weights and gradients small), never
// denormal, so that no op is timed on a slow path training would not take.
class Operands {
public:
    explicit Operands(std::uint64_t seed) : rng_(seed) {}
    Var<float> operator()(const Shape& shape, float scale) {
        Array<float> a = Array<float>::from_shape(shape);
        std::uniform_real_distribution<float> unit(0.0f, 1.0f);
        for (float& v : a) {
            v = scale * unit(rng_);
        }
        return Var<float>(std::move(a));
    }

private:
    std::mt19937_64 rng_;
};

// One layer's place in the network: its weight's name and shape, what it maps from and to.
struct ConvLayer {
    std::string name;
    std::size_t in, out, h, w, ho, wo;  // (in, h, w) -> (out, ho, wo)
};

struct DenseLayer {
    std::string name;
    std::size_t in, out;
    std::optional<Activation> act;
};

// The layers of `config`'s model in forward order, as models/autoencoder.cpp builds them, with the model's
// parameter names: "encoder.1". Weight shapes: Conv2d (out, in, 3, 3), ConvTranspose2d (in, out, 3, 3),
// Linear (in, out).
struct Layers {
    std::vector<ConvLayer> encoder_convs, decoder_convs;
    std::vector<DenseLayer> encoder_dense, decoder_dense;
};

Layers layers_of(const models::AutoencoderConfig& config) {
    auto [c, h, w] = config.image_shape();
    std::vector<std::size_t> ch{c}, hs{h}, ws{w};
    for (std::size_t out : config.channels) {
        ch.push_back(out);
        hs.push_back(halved(hs.back()));
        ws.push_back(halved(ws.back()));
    }
    Layers l;
    std::size_t L = config.channels.size();
    // encoder: Unflatten, then (Conv2d, activation) per channel count, Flatten, then (Linear, activation?).
    std::size_t index = 1;
    for (std::size_t i = 0; i < L; ++i) {
        l.encoder_convs.push_back({fmt::format("encoder.{}", index), ch[i], ch[i + 1], hs[i], ws[i], hs[i + 1], ws[i + 1]});
        index += config.activation == "identity" ? 1 : 2;
    }
    ++index;  // Flatten
    std::vector<std::size_t> dense = config.sizes;
    dense[0] = ch[L] * hs[L] * ws[L];
    for (std::size_t i = 0; i + 1 < dense.size(); ++i) {
        const std::string& act = i + 2 == dense.size() ? config.latent_activation : config.activation;
        l.encoder_dense.push_back({fmt::format("encoder.{}", index), dense[i], dense[i + 1], fused(act)});
        index += act == "identity" ? 1 : 2;
    }
    // decoder: (Linear, activation) mirrored, Unflatten, (ConvTranspose2d, activation) mirrored, Flatten.
    index = 0;
    for (std::size_t i = dense.size() - 1; i > 0; --i) {
        l.decoder_dense.push_back({fmt::format("decoder.{}", index), dense[i], dense[i - 1], fused(config.activation)});
        index += config.activation == "identity" ? 1 : 2;
    }
    ++index;  // Unflatten
    for (std::size_t i = L; i-- > 0;) {
        l.decoder_convs.push_back({fmt::format("decoder.{}", index), ch[i + 1], ch[i], hs[i + 1], ws[i + 1], hs[i], ws[i]});
        index += (i == 0 ? config.output_activation : config.activation) == "identity" ? 1 : 2;
    }
    return l;
}

// The weights the replay expects, in forward order, against the model's: a difference is an error that
// names the parameter.
void check_against(const Layers& l, const models::Autoencoder<float>& model) {
    std::vector<std::pair<std::string, Shape>> expected;
    for (const ConvLayer& c : l.encoder_convs) expected.push_back({c.name, {c.out, c.in, 3, 3}});
    for (const DenseLayer& d : l.encoder_dense) expected.push_back({d.name, {d.in, d.out}});
    for (const DenseLayer& d : l.decoder_dense) expected.push_back({d.name, {d.in, d.out}});
    for (const ConvLayer& c : l.decoder_convs) expected.push_back({c.name, {c.in, c.out, 3, 3}});
    std::vector<std::pair<std::string, Shape>> actual;
    for (const nn::NamedParameter<float>& p : model.named_parameters()) {
        if (p.name.ends_with(".weight")) {
            actual.push_back({p.name.substr(0, p.name.size() - 7), p.var.shape()});
        }
    }
    for (std::size_t i = 0; i < std::max(expected.size(), actual.size()); ++i) {
        auto text = [](const auto& list, std::size_t k) {
            return k < list.size() ? fmt::format("{}.weight {}", list[k].first, to_string(list[k].second))
                                   : std::string("nothing");
        };
        if (i >= expected.size() || i >= actual.size() || expected[i] != actual[i]) {
            throw std::runtime_error(fmt::format("conv floor: weight {} of the model is {}, the replay expects {}",
                                                 i, text(actual, i), text(expected, i)));
        }
    }
}

double conv_flops(std::size_t n, const ConvLayer& c) {
    // The convolution between the larger side and the smaller: 2 multiply-adds per tap, channel pair and
    // output pixel of the smaller side.
    std::size_t small = std::min(c.ho * c.wo, c.h * c.w);
    return 2.0 * double(n) * double(c.in * c.out * small) * 9.0;
}

std::string shapes(const Shape& a, std::string_view sep, const Shape& b) {
    return fmt::format("{} {} {}", to_string(a), sep, to_string(b));
}

// The calls of one step on a batch of n, each on its own pre-made operands.
std::vector<OpCall> step_calls(const Layers& l, std::size_t n, std::uint64_t seed) {
    Operands make(seed);
    std::vector<OpCall> forward, backward;
    for (std::size_t i = 0; i < l.encoder_convs.size(); ++i) {
        const ConvLayer& c = l.encoder_convs[i];
        Var<float> x = make({n, c.in, c.h, c.w}, 1.0f);
        Var<float> w = make({c.out, c.in, 3, 3}, 0.1f);
        Var<float> b = make({c.out}, 0.1f);
        Var<float> dy = make({n, c.out, c.ho, c.wo}, 1e-3f);
        double f = conv_flops(n, c);
        forward.push_back({c.name, "forward", "conv2d", shapes(x.shape(), "*", w.shape()), f,
                           [=] { conv2d(x, w, b, halving); }});
        std::vector<OpCall> back;
        if (i > 0) {  // the first layer's input, the data, takes no gradient
            ConvTranspose2dOptions t = doubling(c.h, c.w, c.ho, c.wo);
            back.push_back({c.name, "dx", "conv_transpose2d", shapes(dy.shape(), "*", w.shape()), f,
                            [=] { conv_transpose2d(dy, w, t); }});
        }
        back.push_back({c.name, "dW", "conv2d_weight_grad", shapes(x.shape(), "and", dy.shape()), f,
                        [=] { conv2d_weight_grad(x, dy, kernel, halving); }});
        backward.insert(backward.begin(), back.begin(), back.end());
    }
    auto dense = [&](const DenseLayer& d) {
        Var<float> x = make({n, d.in}, 1.0f);
        Var<float> w = make({d.in, d.out}, 0.05f);
        Var<float> b = make({d.out}, 0.05f);
        Var<float> dy = make({n, d.out}, 1e-3f);
        // The products' outputs, written in place as Grads::add_matmul writes into a gradient.
        auto dx = std::make_shared<std::vector<float>>(n * d.in);
        auto dw = std::make_shared<std::vector<float>>(d.in * d.out);
        double f = 2.0 * double(n * d.in * d.out);
        std::optional<Activation> act = d.act;
        forward.push_back({d.name, "forward", act ? fmt::format("linear {}", to_string(*act)) : "linear",
                           shapes(x.shape(), "x", w.shape()), f,
                           [=] { act ? linear(x, w, b, *act) : linear(x, w, b); }});
        // dx (n, in) = dy (n, out) W^T; dW (in, out) = x^T (in, n) dy (n, out).
        std::size_t in = d.in, out = d.out;
        OpCall dx_call{d.name, "dx", "gemm", shapes(dy.shape(), "x", Shape{out, in}) + " (W^T)", f, [=] {
                           gemm<float>(false, true, n, in, out, 1.0f, dy.value().data(), out, w.value().data(), out,
                                       0.0f, dx->data(), in);
                       }};
        OpCall dw_call{d.name, "dW", "gemm", shapes(Shape{in, n}, "x", dy.shape()) + " (x^T)", f, [=] {
                           gemm<float>(true, false, in, out, n, 1.0f, x.value().data(), in, dy.value().data(), out,
                                       0.0f, dw->data(), out);
                       }};
        backward.insert(backward.begin(), {dx_call, dw_call});
    };
    for (const DenseLayer& d : l.encoder_dense) dense(d);
    for (const DenseLayer& d : l.decoder_dense) dense(d);
    for (const ConvLayer& c : l.decoder_convs) {
        Var<float> x = make({n, c.in, c.h, c.w}, 1.0f);
        Var<float> w = make({c.in, c.out, 3, 3}, 0.1f);
        Var<float> b = make({c.out}, 0.1f);
        Var<float> dy = make({n, c.out, c.ho, c.wo}, 1e-3f);
        ConvTranspose2dOptions t = doubling(c.ho, c.wo, c.h, c.w);
        double f = conv_flops(n, c);
        forward.push_back({c.name, "forward", "conv_transpose2d", shapes(x.shape(), "*", w.shape()), f,
                           [=] { conv_transpose2d(x, w, b, t); }});
        OpCall dx_call{c.name, "dx", "conv2d", shapes(dy.shape(), "*", w.shape()), f,
                       [=] { conv2d(dy, w, halving); }};
        OpCall dw_call{c.name, "dW", "conv2d_weight_grad", shapes(dy.shape(), "and", x.shape()), f,
                       [=] { conv2d_weight_grad(dy, x, kernel, halving); }};
        backward.insert(backward.begin(), {dx_call, dw_call});
    }
    forward.insert(forward.end(), backward.begin(), backward.end());
    return forward;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

ConvOpsEpoch::ConvOpsEpoch(const models::Autoencoder<float>& model, std::size_t rows, std::size_t batch,
                           std::uint64_t seed)
    : rows_(rows), batch_(batch) {
    if (!model.config().convolutional()) {
        throw std::runtime_error("conv floor: the model has no convolutions");
    }
    Layers layers = layers_of(model.config());
    check_against(layers, model);
    full_ = step_calls(layers, batch, seed);
    if (rows % batch != 0) {
        rest_ = step_calls(layers, rows % batch, seed + 1);
    }
    seconds_.assign(full_.size(), 0.0);
    product_seconds_.assign(full_.size(), 0.0);
}

double ConvOpsEpoch::run() {
    NoGrad off;
    std::fill(seconds_.begin(), seconds_.end(), 0.0);
    std::fill(product_seconds_.begin(), product_seconds_.end(), 0.0);
    flops_ = 0;
    count_product_time(true);
    auto start = Clock::now();
    for (std::size_t first = 0; first < rows_; first += batch_) {
        std::vector<OpCall>& step = rows_ - first >= batch_ ? full_ : rest_;
        for (std::size_t i = 0; i < step.size(); ++i) {
            double products = product_time().seconds;
            auto call_start = Clock::now();
            step[i].run();
            seconds_[i] += seconds_since(call_start);
            product_seconds_[i] += product_time().seconds - products;
            flops_ += step[i].flops;
        }
    }
    double seconds = seconds_since(start);
    count_product_time(false);
    return seconds;
}

}  // namespace bench
