// Experiment 1: the smallest autoencoder of the tutorials, straight on the engine, beside PCA: 1000 points in the plane through
// 2 -> 1 -> 1 -> 1 -> 2 with tanh after every layer, full-batch gradient descent. The weights are plain
// Vars written by hand: no nn layer yet.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ring_data.hpp"
#include "tapegrad/models/pca.hpp"
#include "tapegrad/autodiff.hpp"
#include "tapegrad/nn/io/file.hpp"

using namespace tapegrad;

namespace {

struct Layer {
    Var<float> weight;  // (in, out)
    Var<float> bias;    // (out,)
};

// Glorot uniform weights, zero biases.
Layer make_layer(std::size_t in, std::size_t out, std::size_t index, std::mt19937_64& rng) {
    double limit = std::sqrt(6.0 / static_cast<double>(in + out));
    std::uniform_real_distribution<double> u(-limit, limit);
    Array<float> w = xt::empty<float>(Shape{in, out});
    for (float& v : w) {
        v = static_cast<float>(u(rng));
    }
    return {Var<float>::parameter(std::move(w), fmt::format("layer{}.weight", index)),
            Var<float>::parameter(xt::zeros<float>(Shape{out}), fmt::format("layer{}.bias", index))};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tapegrad demo: the 2-1-1-1-2 tanh autoencoder on 1000 points in the plane"};
    std::string out_dir = "runs/toy2d";
    int steps = 1000;
    double lr = 0.05;
    std::uint64_t seed = 0;
    app.add_option("--out", out_dir, "folder for results.json");
    app.add_option("--steps", steps, "gradient descent steps")->check(CLI::PositiveNumber);
    app.add_option("--lr", lr, "learning rate")->check(CLI::PositiveNumber);
    int threads = 1;
    std::string csv;
    app.add_option("--csv", csv, "also write the standardised points to this CSV, for `tapegrad train --data`");
    app.add_option("--seed", seed, "seed of the data and the weights");
    app.add_option("--threads", threads, "BLAS threads")->check(CLI::PositiveNumber);
    bool overwrite = false;
    app.add_flag("--overwrite", overwrite, "replace the results.json an earlier run left in --out");
    CLI11_PARSE(app, argc, argv);
    try {
        nn::claim_output_folder("toy2d", out_dir, {"results.json"}, overwrite);
    } catch (const Error& e) {
        fmt::print(stderr, "{}\n", e.what());
        return 1;
    }
    configure_blas(argv, threads);

    fmt::print("tapegrad demo: 2 -> 1 -> 1 -> 1 -> 2 tanh autoencoder, 1000 points, full-batch GD, lr {}\n", lr);
    fmt::print("BLAS: {}\n", blas_summary());

    Var<float> x(examples::ring_points(1000, seed));
    if (!csv.empty()) {
        std::ofstream out(csv);
        out << "x,y\n";
        for (std::size_t i = 0; i < x.shape()[0]; ++i) {
            out << fmt::format("{},{}\n", x.value()(i, 0), x.value()(i, 1));
        }
        fmt::print("wrote {}\n", csv);
    }
    std::mt19937_64 rng(seed + 1);
    std::vector<std::size_t> sizes = {2, 1, 1, 1, 2};
    std::vector<Layer> layers;
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
        layers.push_back(make_layer(sizes[i], sizes[i + 1], i, rng));
    }

    nlohmann::json history = nlohmann::json::array();
    float first_loss = 0;
    float loss_value = 0;
    auto start = std::chrono::steady_clock::now();
    for (int step = 0; step <= steps; ++step) {
        Var<float> h = x;
        for (const Layer& layer : layers) {
            h = tanh(matmul(h, layer.weight) + layer.bias);
        }
        Var<float> diff = h - x;
        Var<float> loss = mean(diff * diff);
        loss_value = loss.item();
        if (step == 0) {
            first_loss = loss_value;
        }
        if (step % 100 == 0) {
            fmt::print("step {:5}  loss {:.6f}\n", step, loss_value);
            history.push_back({{"step", step}, {"loss", loss_value}});
        }
        if (step == steps) {
            break;  // the last forward only measures the trained network
        }
        for (Layer& layer : layers) {
            layer.weight.zero_grad();
            layer.bias.zero_grad();
        }
        loss.backward();
        for (Layer& layer : layers) {
            for (Var<float>* p : {&layer.weight, &layer.bias}) {
                float* v = p->mutable_value().data();
                const float* g = p->grad().value().data();
                for (std::size_t i = 0; i < p->size(); ++i) {
                    v[i] -= static_cast<float>(lr) * g[i];
                }
            }
        }
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("final MSE {:.6f} (first step {:.6f}), {} steps in {:.3f} s\n", loss_value, first_loss, steps, seconds);
    // The baseline: the best a 1-D linear code can do on the same points.
    models::Pca<float> pca({.components = 1});
    double pca_mse = xt::mean(pca.fit(x.value()).reconstruction_error(x.value()))();
    fmt::print("PCA with 1 component: MSE {:.6f}\n", pca_mse);

    std::filesystem::create_directories(out_dir);
    nlohmann::json results = {{"model", "2-1-1-1-2 tanh"}, {"points", 1000},   {"steps", steps},
                              {"lr", lr},                   {"seed", seed},     {"blas", blas_summary()},
                              {"first_loss", first_loss},   {"final_mse", loss_value}, {"pca_1_mse", pca_mse}, {"seconds", seconds},
                              {"history", history}};
    std::string path = out_dir + "/results.json";
    nn::detail::write_file_atomically(path, results.dump(2) + "\n", "results");
    fmt::print("wrote {}\n", path);
    return loss_value < first_loss ? 0 : 1;
}
