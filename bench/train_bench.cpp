// Training speed on real data: an autoencoder on Fashion-MNIST, float32, one BLAS thread, Adam (lr 1e-3),
// batch 128 shuffled each epoch, pixels / 255, for a few timed epochs; then the plain reconstruction MSE on
// the 10000 test images. Two models (--model):
//   dense   784-256-64-256-784, ReLU hidden layers and code, sigmoid output
//   conv    Conv(1->16, 3x3, stride 2, padding 1) ReLU, Conv(16->32, same) ReLU, Flatten, Linear(1568 -> 64)
//           (no activation on the code), Linear(64 -> 1568) ReLU, Unflatten, ConvTranspose(32->16, 3x3,
//           stride 2, padding 1, output padding 1) ReLU, ConvTranspose(16->1, same) Sigmoid, Flatten:
//           models::Autoencoder with channels {16, 32} and sizes {784, 64}
// and the variants:
//   vanilla    MSE
//   denoising  trained on masked inputs (each element zeroed with probability 0.3, fresh each batch)
//              against the clean ones
//   sparse     dense only: sigmoid code (the KL penalty needs codes in (0, 1)), the UFLDL objective
//              MSE + beta sum_j KL(rho || rho_hat_j) + lambda / 2 sum ||W||^2, rho 0.05, beta 0.1, lambda 1e-5
// The floor an epoch cannot go under with these kernels: for the dense model, the matrix products one epoch
// needs, the same shapes through the same call (tapegrad::gemm, whichever backend it chose) with nothing
// in between; for the conv model, one epoch of the step's convolutions and linear products alone, the same
// op calls on the same shapes under NoGrad (bench/conv_floor.hpp), each call timed, which says where the
// step's time goes. Each training epoch is followed by one such epoch, and the floor ratio is the median of
// epoch / floor epoch over the pairs. The products inside training are timed too (tapegrad::product_time:
// the linear ops' bias and activation included, and for the conv model every product the convolutions
// make, added over threads), which splits the floor's gap into products that ran slower inside training
// than alone and the work besides them. --gemm-only times the floor epoch alone. Each run also reports its
// peak resident memory (getrusage's ru_maxrss; a dense training run's includes the products' operands,
// 1.56M floats, 6.3 MB).
// bench/train_torch.py trains the same models in PyTorch; bench/run_train.py runs both and compares.
//
//   train_bench [--model dense|conv] [--variant vanilla|denoising|sparse] [--epochs N] [--threads N]
//               [--gemm-only] [--json]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>

#include "tapegrad/autodiff.hpp"
#include "tapegrad/models/autoencoder.hpp"
#include "tapegrad/models/denoising.hpp"
#include "tapegrad/models/sparse.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/optim.hpp"

#include "conv_floor.hpp"
#include "median.hpp"

using namespace tapegrad;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    std::string model = "dense";
    std::string variant = "vanilla";
    int epochs = 3;
    std::size_t batch_size = 128;
    double lr = 1e-3;
    double level = 0.3;  // denoising: masking probability
    double rho = 0.05;   // sparse
    double beta = 0.1;
    double lambda = 1e-5;
    std::uint64_t seed = 0;
    int threads = 1;
    bool gemm_only = false;
    bool json = false;
};

// The encoder's sizes after the input's, which the data gives; the decoder mirrors them.
const std::vector<std::size_t> hidden_sizes = {256, 64};
// The conv model's: its convolutions' channels, then its code.
const std::vector<std::size_t> conv_channels = {16, 32};
constexpr std::size_t conv_latent = 64;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

double peak_rss_mb() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_maxrss) / 1024.0;  // kilobytes on Linux
}

nn::Dataset load_scaled(const std::string& split) {
    nn::Dataset data = nn::load_dataset("fashion-mnist", split);
    for (float& v : data.x) {
        v /= 255.0f;
    }
    return data;
}

std::unique_ptr<models::Autoencoder<float>> make_model(const Options& o, std::size_t input_size) {
    models::AutoencoderConfig config;
    config.sizes = {input_size};
    config.sizes.insert(config.sizes.end(), hidden_sizes.begin(), hidden_sizes.end());
    config.activation = "relu";
    config.output_activation = "sigmoid";
    config.init = nn::Init::torch_default;
    config.seed = o.seed;
    if (o.model == "conv") {
        config.sizes = {input_size, conv_latent};
        config.channels = conv_channels;
        config.latent_activation = "identity";
        if (o.variant == "denoising") {
            return std::make_unique<models::DenoisingAutoencoder<float>>(
                config, models::DenoisingOptions{.corruption = models::Corruption::masking, .level = o.level, .seed = o.seed + 1});
        }
        return std::make_unique<models::Autoencoder<float>>(config);
    }
    if (o.variant == "sparse") {
        config.latent_activation = "sigmoid";
        return std::make_unique<models::SparseAutoencoder<float>>(
            config, models::SparseOptions{.rho = o.rho, .beta = o.beta, .lambda = o.lambda});
    }
    config.latent_activation = "relu";
    if (o.variant == "denoising") {
        return std::make_unique<models::DenoisingAutoencoder<float>>(
            config, models::DenoisingOptions{.corruption = models::Corruption::masking, .level = o.level, .seed = o.seed + 1});
    }
    return std::make_unique<models::Autoencoder<float>>(config);
}

// One epoch as models::Trainer runs it, without its validation pass and progress line. Returns the mean
// training objective over the epoch's samples.
double train_epoch(models::Autoencoder<float>& model, nn::Adam<float>& adam, const nn::Dataset& train,
                   const Options& o, int epoch) {
    model.train();
    nn::Batches batches(train, {.batch_size = o.batch_size, .seed = o.seed}, static_cast<std::uint64_t>(epoch));
    double total = 0;
    for (const nn::Batch& batch : batches) {
        Var<float> x(batch.x);
        adam.zero_grad();
        Var<float> loss = model.loss(x);
        loss.backward();
        adam.step();
        total += double(loss.item()) * double(batch.x.shape(0));
    }
    return total / double(train.size());
}

// Plain reconstruction MSE over every pixel of `data`, whatever the variant's objective.
double test_mse(models::Autoencoder<float>& model, const nn::Dataset& data) {
    model.eval();
    double sum = 0;
    for (const nn::Batch& batch : nn::Batches(data, {.batch_size = 1000, .shuffle = false})) {
        Array<float> per_sample = model.reconstruction_error(batch.x);
        for (float v : per_sample) {
            sum += v;
        }
    }
    return sum / double(data.size());
}

// The products of one training step for a batch of `rows`, each layer's input x (rows, in), weight
// W (in, out), output y (rows, out): forward y = x W; backward dW = x^T dy and, except for the first
// layer whose input needs no gradient, dx = dy W^T. Row-major, transposes read in place, as tapegrad
// calls them.
struct GemmLayer {
    std::size_t in, out;
    std::vector<float> x, w, y, dy, dw, dx;
};

double step_gemms(std::vector<GemmLayer>& layers, std::size_t rows) {
    double flops = 0;
    for (GemmLayer& l : layers) {
        gemm(false, false, rows, l.out, l.in, 1.0f, l.x.data(), l.in, l.w.data(), l.out, 0.0f, l.y.data(), l.out);
        flops += 2.0 * double(rows * l.in * l.out);
    }
    for (std::size_t i = layers.size(); i-- > 0;) {
        GemmLayer& l = layers[i];
        gemm(true, false, l.in, l.out, rows, 1.0f, l.x.data(), l.in, l.dy.data(), l.out, 0.0f, l.dw.data(), l.out);
        flops += 2.0 * double(rows * l.in * l.out);
        if (i > 0) {
            gemm(false, true, rows, l.in, l.out, 1.0f, l.dy.data(), l.out, l.w.data(), l.out, 0.0f, l.dx.data(), l.in);
            flops += 2.0 * double(rows * l.in * l.out);
        }
    }
    return flops;
}

// One epoch's products for layers of `sizes` over `rows` images in batches of `batch`: full batches and the
// remainder, as nn::Batches makes them. The operands hold values like the network's (activations in
// [0, 1), small weights and gradients), never denormal.
class GemmEpoch {
public:
    GemmEpoch(const std::vector<std::size_t>& sizes, std::size_t rows, std::size_t batch, std::uint64_t seed)
        : rows_(rows), batch_(batch) {
        std::mt19937_64 rng(seed);
        std::uniform_real_distribution<float> unit(0.0f, 1.0f);
        auto filled = [&](std::size_t n, float scale) {
            std::vector<float> v(n);
            for (float& e : v) {
                e = scale * unit(rng);
            }
            return v;
        };
        for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
            std::size_t in = sizes[i], out = sizes[i + 1];
            layers_.push_back({in, out, filled(batch * in, 1.0f), filled(in * out, 0.05f),
                               std::vector<float>(batch * out), filled(batch * out, 1e-3f),
                               std::vector<float>(in * out), std::vector<float>(batch * in)});
        }
    }

    // Runs the epoch; returns its seconds.
    double run() {
        auto start = Clock::now();
        flops_ = 0;
        for (std::size_t first = 0; first < rows_; first += batch_) {
            flops_ += step_gemms(layers_, std::min(batch_, rows_ - first));
        }
        return seconds_since(start);
    }

    double gflop() const { return flops_ / 1e9; }

private:
    std::size_t rows_, batch_;
    std::vector<GemmLayer> layers_;
    double flops_ = 0;
};

// The layer sizes of the bench's autoencoder for data of `dim` columns: the encoder, then its mirror.
std::vector<std::size_t> layer_sizes(std::size_t dim) {
    std::vector<std::size_t> sizes = {dim};
    sizes.insert(sizes.end(), hidden_sizes.begin(), hidden_sizes.end());
    sizes.insert(sizes.end(), hidden_sizes.rbegin() + 1, hidden_sizes.rend());
    sizes.push_back(dim);
    return sizes;
}

// The floor epoch of either model, run after each training epoch: the dense model's products alone
// (GemmEpoch), or the conv model's convolutions and products alone (bench::ConvOpsEpoch). In the JSON its
// times are gemm_* for the first, ops_* for the second.
class FloorEpoch {
public:
    FloorEpoch(const Options& o, const models::Autoencoder<float>* model, std::size_t rows, std::size_t dim) {
        if (o.model == "conv") {
            ops_ = std::make_unique<bench::ConvOpsEpoch>(*model, rows, o.batch_size, o.seed);
        } else {
            gemms_ = std::make_unique<GemmEpoch>(layer_sizes(dim), rows, o.batch_size, o.seed);
        }
        rows_per_batch_ = double(rows) / double(o.batch_size);
    }

    double run() {
        if (gemms_) {
            return gemms_->run();
        }
        double seconds = ops_->run();
        call_seconds_.push_back(ops_->call_seconds());
        call_product_seconds_.push_back(ops_->call_product_seconds());
        return seconds;
    }

    std::string key() const { return gemms_ ? "gemm" : "ops"; }
    double gflop() const { return gemms_ ? gemms_->gflop() : ops_->gflop(); }

    // The conv floor's calls in step order, each with its median seconds per epoch over the runs, the
    // part of them in matrix products, and its rate; null for the dense model.
    nlohmann::json breakdown() const {
        if (!ops_) {
            return nullptr;
        }
        nlohmann::json calls = nlohmann::json::array();
        for (std::size_t i = 0; i < ops_->calls().size(); ++i) {
            const bench::OpCall& c = ops_->calls()[i];
            std::vector<double> seconds, products;
            for (std::size_t r = 0; r < call_seconds_.size(); ++r) {
                seconds.push_back(call_seconds_[r][i]);
                products.push_back(call_product_seconds_[r][i]);
            }
            double s = median(seconds);
            // An op's multiply-adds grow with the batch, so an epoch's are a full batch's times rows / batch.
            double gflop = c.flops * rows_per_batch_ / 1e9;
            calls.push_back({{"layer", c.layer}, {"role", c.role}, {"op", c.op}, {"operands", c.operands},
                             {"seconds", s}, {"epoch_seconds", seconds}, {"product_seconds", median(products)},
                             {"gflop", gflop}, {"gflops", gflop / s}});
        }
        return calls;
    }

private:
    std::unique_ptr<GemmEpoch> gemms_;
    std::unique_ptr<bench::ConvOpsEpoch> ops_;
    std::vector<std::vector<double>> call_seconds_, call_product_seconds_;
    double rows_per_batch_ = 0;
};

nlohmann::json run_training(const Options& o) {
    auto start = Clock::now();
    nn::Dataset train = load_scaled("train");
    nn::Dataset test = load_scaled("test");
    double load_seconds = seconds_since(start);
    std::unique_ptr<models::Autoencoder<float>> model = make_model(o, train.dim());
    nn::Adam<float> adam(model->named_parameters(), nn::AdamOptions{.lr = o.lr});
    // As models::Trainer does: Adam's second moments drift into denormals, which cost ~100 cycles each.
    nn::FlushDenormals ftz;
    // The floor: after each training epoch, one epoch of its products (and convolutions) alone. Timed in
    // turn with the training epochs, the two see the same machine, whatever else runs on it meanwhile.
    FloorEpoch floor(o, model.get(), train.size(), train.dim());
    std::vector<double> times, floor_times, ratios, product_times;
    std::vector<double> losses;
    for (int epoch = 0; epoch < o.epochs; ++epoch) {
        auto epoch_start = Clock::now();
        count_product_time(true);
        losses.push_back(train_epoch(*model, adam, train, o, epoch));
        times.push_back(seconds_since(epoch_start));
        product_times.push_back(product_time().seconds);
        count_product_time(false);
        floor_times.push_back(floor.run());
        ratios.push_back(times.back() / floor_times.back());
    }
    start = Clock::now();
    double mse = test_mse(*model, test);
    nlohmann::json result = {{"case", o.variant},
                             {"seconds_per_epoch", median(times)},
                             {"epoch_seconds", times},
                             {floor.key() + "_seconds_per_epoch", median(floor_times)},
                             {floor.key() + "_epoch_seconds", floor_times},
                             {"floor_ratio", median(ratios)},
                             {"products_in_training_seconds", median(product_times)},
                             {"products_in_training_epoch_seconds", product_times},
                             {"train_loss", losses},
                             {"test_mse", mse},
                             {"test_seconds", seconds_since(start)},
                             {"load_seconds", load_seconds},
                             {"model", model->describe()},
                             {"options", nlohmann::json::parse(model->options_json())},
                             {"batches", nn::Batches(train, {.batch_size = o.batch_size}).size()},
                             {"batch_size", o.batch_size},
                             {"flush_denormals", nn::denormals_flushed()}};
    if (o.model == "conv") {
        result["architecture"] = o.model;
        result["ops_gflop"] = floor.gflop();
        result["ops_breakdown"] = floor.breakdown();
    }
    return result;
}

nlohmann::json run_gemm_only(const Options& o) {
    nn::Dataset train = nn::load_dataset("fashion-mnist", "train");
    std::unique_ptr<models::Autoencoder<float>> model = o.model == "conv" ? make_model(o, train.dim()) : nullptr;
    FloorEpoch floor(o, model.get(), train.size(), train.dim());
    std::vector<double> times;
    for (int epoch = 0; epoch < o.epochs; ++epoch) {
        times.push_back(floor.run());
    }
    double seconds = median(times);
    if (o.model == "conv") {
        return {{"case", "ops"},
                {"architecture", o.model},
                {"seconds_per_epoch", seconds},
                {"epoch_seconds", times},
                {"gflop", floor.gflop()},
                {"gflops", floor.gflop() / seconds},
                {"model", model->describe()},
                {"ops_breakdown", floor.breakdown()},
                {"rows", train.size()},
                {"batch_size", o.batch_size}};
    }
    return {{"case", "gemm"},
            {"seconds_per_epoch", seconds},
            {"epoch_seconds", times},
            {"gflop", floor.gflop()},
            {"gflops", floor.gflop() / seconds},
            {"sizes", layer_sizes(train.dim())},
            {"rows", train.size()},
            {"batch_size", o.batch_size}};
}

// One line per call of the conv floor's step: where the ops-only epoch spends its time.
void print_breakdown(const nlohmann::json& calls) {
    double total = 0;
    for (const nlohmann::json& c : calls) {
        total += c["seconds"].get<double>();
    }
    fmt::print("  ops alone, per call: median s/epoch, of which in matrix products, GFLOP/s, share of the epoch\n");
    for (const nlohmann::json& c : calls) {
        double s = c["seconds"].get<double>();
        fmt::print("    {:<10} {:<7} {:<18} {:<42} {:6.3f} s {:6.3f} s {:6.1f} {:4.0f}%\n", c["layer"].get<std::string>(),
                   c["role"].get<std::string>(), c["op"].get<std::string>(), c["operands"].get<std::string>(), s,
                   c["product_seconds"].get<double>(), c["gflops"].get<double>(), 100.0 * s / total);
    }
}

void print_result(const nlohmann::json& r, const Options& o) {
    if (o.json) {
        fmt::print("{}\n", r.dump());
        return;
    }
    bool conv = o.model == "conv";
    if (o.gemm_only) {
        fmt::print("{} {:.3f} s/epoch (median of {}), {:.1f} GFLOP at {:.1f} GFLOP/s\n",
                   conv ? "conv ops only" : "gemm only  ", r["seconds_per_epoch"].get<double>(), o.epochs,
                   r["gflop"].get<double>(), r["gflops"].get<double>());
        if (conv) {
            print_breakdown(r["ops_breakdown"]);
        }
        return;
    }
    if (conv) {
        fmt::print("conv {:<11} {:.3f} s/epoch (median of {}), ops only {:.3f} ({:.1f} GFLOP), floor {:.2f}x, "
                   "products in training {:.3f}, train loss {:.5f}, test MSE {:.5f}, peak RSS {:.0f} MB\n",
                   o.variant, r["seconds_per_epoch"].get<double>(), o.epochs, r["ops_seconds_per_epoch"].get<double>(),
                   r["ops_gflop"].get<double>(), r["floor_ratio"].get<double>(),
                   r["products_in_training_seconds"].get<double>(), r["train_loss"].back().get<double>(),
                   r["test_mse"].get<double>(), r["peak_rss_mb"].get<double>());
        print_breakdown(r["ops_breakdown"]);
        return;
    }
    fmt::print("{:<11} {:.3f} s/epoch (median of {}), GEMM only {:.3f}, floor {:.2f}x, products in training {:.3f}, "
               "train loss {:.5f}, test MSE {:.5f}, peak RSS {:.0f} MB\n",
               o.variant, r["seconds_per_epoch"].get<double>(), o.epochs, r["gemm_seconds_per_epoch"].get<double>(),
               r["floor_ratio"].get<double>(), r["products_in_training_seconds"].get<double>(),
               r["train_loss"].back().get<double>(), r["test_mse"].get<double>(), r["peak_rss_mb"].get<double>());
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tapegrad training bench: a dense or convolutional autoencoder on Fashion-MNIST"};
    Options o;
    app.add_option("--model", o.model, "dense: 784-256-64-256-784; conv: convolutions 16-32 around a code of 64")
        ->check(CLI::IsMember({"dense", "conv"}));
    app.add_option("--variant", o.variant, "which autoencoder")->check(CLI::IsMember({"vanilla", "denoising", "sparse"}));
    app.add_option("--epochs", o.epochs, "timed epochs; the median is reported")->check(CLI::PositiveNumber);
    app.add_option("--seed", o.seed, "initialisation, batch order and corruption");
    app.add_option("--threads", o.threads, "tapegrad's threads: products in bands, elementwise work and Adam shared")
        ->check(CLI::PositiveNumber);
    app.add_option("--beta", o.beta, "sparse: weight of the KL penalty");
    app.add_option("--lambda", o.lambda, "sparse: weight decay");
    app.add_flag("--gemm-only", o.gemm_only,
                 "time only the floor: one epoch's matrix products (dense), convolutions and products (conv)");
    app.add_flag("--json", o.json, "one JSON object on stdout");
    CLI11_PARSE(app, argc, argv);
    if (o.model == "conv" && o.variant == "sparse") {
        fmt::print(stderr, "train_bench: --model conv trains the vanilla and denoising variants, not sparse\n");
        return 1;
    }
    configure_blas(argv, o.threads);
    BlasInfo blas = blas_info();
    // With --json, stdout holds only the result.
    fmt::print(o.json ? stderr : stdout, "tapegrad train bench, BLAS: {}, flush-to-zero {}{}\n", blas_summary(),
               o.gemm_only ? "off (GEMM only)" : "on",
               o.model == "conv" ? fmt::format(", convolutions: {}", conv_summary()) : "");
    nlohmann::json result;
    try {
        result = o.gemm_only ? run_gemm_only(o) : run_training(o);
    } catch (const std::exception& e) {
        fmt::print(stderr, "train_bench: {}\n", e.what());
        return 1;
    }
    result["blas"] = blas_summary();
    result["blas_backend"] = blas.backend;
    result["blas_kernel"] = blas.kernel;
    result["convolutions"] = conv_summary();
    result["threads"] = blas.threads;
    result["peak_rss_mb"] = peak_rss_mb();
    print_result(result, o);
    return 0;
}
