// The engine's own cost, on two graphs where arithmetic is negligible and framework overhead is all:
//   small_graph  the demo's problem: 1000 full-batch steps of the 2-1-1-1-2 tanh network on 1000 points
//   gradcheck    a full gradcheck of a 64-16-4-16-64 autoencoder loss, 2276 parameters, double, batch 8
// bench/autodiff_torch.py runs the same cases in PyTorch; bench/run_autodiff.py runs both and compares.
//
//   autodiff_bench [--case small_graph|gradcheck|all] [--repeats N] [--json]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <numbers>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <CLI/CLI.hpp>

#include "../examples/ring_data.hpp"
#include "tapegrad/autodiff.hpp"
#include "median.hpp"

using namespace tapegrad;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    std::string which = "all";
    int repeats = 5;
    bool json = false;
};

// Glorot uniform weight (in, out) and a bias (out,) uniform in [-bias_limit, bias_limit].
template <class T>
std::pair<Var<T>, Var<T>> make_layer(std::size_t in, std::size_t out, double bias_limit, int index,
                                     std::mt19937_64& rng) {
    double limit = std::sqrt(6.0 / static_cast<double>(in + out));
    std::uniform_real_distribution<double> w_dist(-limit, limit);
    std::uniform_real_distribution<double> b_dist(-bias_limit, bias_limit);
    Array<T> w = xt::empty<T>(Shape{in, out});
    Array<T> b = xt::empty<T>(Shape{out});
    for (T& v : w) {
        v = static_cast<T>(w_dist(rng));
    }
    for (T& v : b) {
        v = bias_limit > 0 ? static_cast<T>(b_dist(rng)) : T(0);
    }
    return {Var<T>::parameter(std::move(w), fmt::format("W{}", index)),
            Var<T>::parameter(std::move(b), fmt::format("b{}", index))};
}

// params holds W1, b1, W2, b2, ...; tanh after every layer, or sigmoid after the last when asked.
template <class T>
Var<T> reconstruction_loss(const std::vector<Var<T>>& params, const Var<T>& x, bool sigmoid_out) {
    Var<T> h = x;
    for (std::size_t i = 0; i < params.size(); i += 2) {
        Var<T> a = matmul(h, params[i]) + params[i + 1];
        bool last = i + 2 == params.size();
        h = last && sigmoid_out ? sigmoid(a) : tanh(a);
    }
    Var<T> diff = h - x;
    return mean(diff * diff);
}

template <class T>
std::vector<Var<T>> make_network(const std::vector<std::size_t>& sizes, double bias_limit, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<Var<T>> params;
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
        auto [w, b] = make_layer<T>(sizes[i], sizes[i + 1], bias_limit, static_cast<int>(i + 1), rng);
        params.push_back(std::move(w));
        params.push_back(std::move(b));
    }
    return params;
}

nlohmann::json run_small_graph(int repeats) {
    const int steps = 1000;
    const float lr = 0.05f;
    Var<float> x(examples::ring_points(1000, 0));
    std::vector<double> times;
    float final_loss = 0;
    for (int r = 0; r < repeats; ++r) {
        // Fresh weights each repeat, so every repeat does the same work from the same start.
        std::vector<Var<float>> params = make_network<float>({2, 1, 1, 1, 2}, 0.0, 1);
        auto start = Clock::now();
        for (int step = 0; step < steps; ++step) {
            for (Var<float>& p : params) {
                p.zero_grad();
            }
            reconstruction_loss(params, x, false).backward();
            // A plain loop: an xtensor expression here would allocate a temporary per parameter.
            for (Var<float>& p : params) {
                float* v = p.mutable_value().data();
                const float* g = p.grad().value().data();
                for (std::size_t i = 0, n = p.size(); i < n; ++i) {
                    v[i] -= lr * g[i];
                }
            }
        }
        times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
        NoGrad no_grad;
        final_loss = reconstruction_loss(params, x, false).item();
    }
    return {{"case", "small_graph"}, {"seconds", median(times)}, {"runs", times},
            {"steps", steps},        {"final_loss", final_loss}};
}

nlohmann::json run_gradcheck(int repeats) {
    std::mt19937_64 rng(2);
    std::uniform_real_distribution<double> unit(0, 1);
    Array<double> x_value = xt::empty<double>(Shape{8, 64});
    for (double& v : x_value) {
        v = unit(rng);
    }
    Var<double> x(std::move(x_value));
    std::vector<Var<double>> params = make_network<double>({64, 16, 4, 16, 64}, 0.1, 3);
    std::size_t n_params = 0;
    for (const Var<double>& p : params) {
        n_params += p.size();
    }
    std::vector<double> times;
    GradcheckReport report;
    for (int r = 0; r < repeats; ++r) {
        auto start = Clock::now();
        report = gradcheck([&] { return reconstruction_loss(params, x, true); }, params);
        times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    if (!report.passed) {
        std::cerr << report << "\n";
    }
    return {{"case", "gradcheck"},  {"seconds", median(times)},          {"runs", times},
            {"parameters", n_params}, {"evaluations", report.evaluations}, {"passed", report.passed}};
}

void print_result(const nlohmann::json& result, const Options& options) {
    if (options.json) {
        fmt::print("{}\n", result.dump());
        return;
    }
    std::string outcome = result.contains("final_loss")
                              ? fmt::format("final loss {:.6f}", result["final_loss"].get<double>())
                              : fmt::format("passed {}", result["passed"].get<bool>());
    fmt::print("{:<12} {:.4f} s (median of {}), {}\n", result["case"].get<std::string>(),
               result["seconds"].get<double>(), options.repeats, outcome);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tapegrad autodiff bench: framework overhead on a tiny network and on gradcheck"};
    Options options;
    app.add_option("--case", options.which, "which case to run")
        ->check(CLI::IsMember({"small_graph", "gradcheck", "all"}));
    app.add_option("--repeats", options.repeats, "timed repeats; the median is reported")->check(CLI::PositiveNumber);
    app.add_flag("--json", options.json, "one JSON object per case on stdout");
    CLI11_PARSE(app, argc, argv);
    configure_blas(argv, 1);
    // With --json, stdout holds only the results, one object per line.
    fmt::print(options.json ? stderr : stdout, "tapegrad autodiff bench, BLAS: {}\n", blas_summary());
    bool ok = true;
    if (options.which == "small_graph" || options.which == "all") {
        print_result(run_small_graph(options.repeats), options);
    }
    if (options.which == "gradcheck" || options.which == "all") {
        nlohmann::json result = run_gradcheck(options.repeats);
        ok = result["passed"].get<bool>();
        print_result(result, options);
    }
    return ok ? 0 : 1;
}
