// tapegrad: train, evaluate, gradcheck, grad, compare, anomaly, pca. Every error is one line and a
// non-zero exit.
#include <iostream>
#include <map>

#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "tapegrad/autodiff/blas.hpp"

int main(int argc, char** argv) {
    using namespace tapegrad::tools;
    CLI::App app{"tapegrad: autoencoders on a tape-based autodiff engine, checked against finite differences"};
    app.require_subcommand(1);
    int threads = 1;
    app.add_option("--threads", threads, "threads for the products, the elementwise work and the optimizer")
        ->check(positive)
        ->capture_default_str();
    std::map<CLI::App*, Command> commands;
    auto add = [&](const char* name, const char* what, Command (*declare)(CLI::App&)) {
        CLI::App* sub = app.add_subcommand(name, what);
        commands[sub] = declare(*sub);
    };
    add("train", "train an autoencoder; writes metrics.json, a checkpoint and figures into --out", add_train);
    add("evaluate", "test MSE of a checkpoint beside the mean-image and PCA baselines", add_evaluate);
    add("gradcheck", "check a model's gradients against finite differences, in double", add_gradcheck);
    add("grad", "write the loss and every parameter's gradient for a checkpoint and a batch to .npz", add_grad);
    add("compare", "test MSE against latent size, autoencoder beside PCA", add_compare);
    add("anomaly", "train on one class, flag the others by reconstruction error", add_anomaly);
    add("pca", "explained variance and reconstruction MSE of PCA", add_pca);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    tapegrad::configure_blas(argv, threads);
    try {
        for (auto& [sub, run] : commands) {
            if (sub->parsed()) {
                return run();
            }
        }
    } catch (const std::exception& e) {
        std::cout.flush();
        fmt::print(stderr, "tapegrad: {}\n", e.what());
        return 1;
    }
    return 1;
}
