// The command line: train, evaluate, gradcheck, grad, compare, anomaly, pca, variants, on every
// registered variant. Every error is one line and a non-zero exit.
#include "tapegrad/cli.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <cstdlib>
#include <map>
#include <optional>
#include <new>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/distributed.hpp"
#include "tapegrad/autodiff/testing.hpp"
#include "tapegrad/models/factory.hpp"

namespace tapegrad::cli {

namespace {

using namespace tapegrad::tools;

// `{"corruption": "masking", "level": 0.1}`: a variant's first options at their defaults, as --options
// takes them.
std::string example_options(const tapegrad::models::VariantInfo& info) {
    std::vector<std::string> pairs;
    for (const auto& o : info.options) {
        if (!o.default_value.empty() && pairs.size() < 2) {
            pairs.push_back(fmt::format("\"{}\": {}", o.name, o.default_value));
        }
    }
    return fmt::format("{{{}}}", fmt::join(pairs, ", "));
}

// <program> variants: each registered variant's objective, options and loss terms, from their
// declarations.
Command add_variants(CLI::App&) {
    return [] {
        std::vector<tapegrad::models::VariantInfo> infos = tapegrad::models::variant_infos();
        for (const auto& info : infos) {
            fmt::print("{}: {}\n", info.name, info.summary);
            fmt::print("  trains with: {} hidden units, {} code, Adam lr {:g} (unless --activation, --latent-activation, "
                       "--lr say otherwise)\n",
                       info.activation, info.latent_activation, info.lr);
            if (info.options.empty()) {
                fmt::print("  options: none\n");
            }
            for (const auto& o : info.options) {
                fmt::print("  {} ({}, {}, default {}): {}\n", o.name, o.type_name(), o.range(), o.default_text(),
                           o.meaning);
            }
            if (!info.terms.empty()) {
                fmt::print("  reports: {}\n", fmt::join(info.terms, ", "));
            }
            if (!info.noise.empty()) {
                fmt::print("  draws: {} (from its seed; checkpointed, so that a resumed run draws the same)\n",
                           info.noise);
            }
        }
        auto example = std::find_if(infos.begin(), infos.end(), [](const auto& info) { return !info.options.empty(); });
        if (example != infos.end()) {
            fmt::print("Give options as JSON: --model {} --options '{}'\n", example->name, example_options(*example));
        }
        return 0;
    };
}

// One line for a usage error, as for every other error: CLI11 adds "Run with --help for more
// information." on a line of its own.
int usage_error(const CLI::App& app, const CLI::ParseError& e) {
    std::string what = e.what();
    for (char& c : what) {
        if (c == '\n') {
            c = ' ';
        }
    }
    std::string verb;
    for (const CLI::App* sub : app.get_subcommands()) {
        verb = " " + sub->get_name();
    }
    fmt::print(stderr, "{}{}: {} ({}{} --help tells more)\n", program(), verb, what, program(), verb);
    return e.get_exit_code() != 0 ? e.get_exit_code() : 2;
}

// One line on stderr and a non-zero exit. Under mpirun the other ranks would wait for this one at their
// next sum (and MPI's exit for them): the job ends here, with the rank named.
int fail(const std::string& text) {
    std::cout.flush();
    if (distributed::size() > 1) {
        fmt::print(stderr, "{}: rank {} of {}: {}\n", program(), distributed::rank(), distributed::size(), text);
        std::fflush(stderr);
        distributed::abort(1);
    }
    fmt::print(stderr, "{}: {}\n", program(), text);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    // Every line reaches a log file when it is printed, not when a 4 KB buffer fills: a run killed or
    // interrupted keeps its log.
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    set_program(argc > 0 ? argv[0] : nullptr);
#if TAPEGRAD_FAULTS
    // In a build with the tests only: TAPEGRAD_FAULT=<op> breaks that op's backward for the whole run (its
    // gradient to input 0 scaled by 1.01), so that tests can see gradcheck fail and the audit name the op
    // through the command line, a user's program included.
    std::optional<testing::FaultScope> fault;
    if (const char* op = std::getenv("TAPEGRAD_FAULT")) {
        fault.emplace(testing::Fault{.op = op});
    }
#endif
    CLI::App app{fmt::format("{}: autoencoders on a tape-based autodiff engine, checked against finite differences",
                             program()),
                 program()};
    app.require_subcommand(1);
    int threads = 1;
    auto add_threads = [&](CLI::App& where) {
        where.add_option("--threads", threads, "threads for the products, the elementwise work and the optimizer")
            ->check(positive_whole)
            ->capture_default_str();
    };
    add_threads(app);
    std::map<CLI::App*, Command> commands;
    auto add = [&](const char* name, const char* what, Command (*declare)(CLI::App&)) {
        CLI::App* sub = app.add_subcommand(name, what);
        add_threads(*sub);
        commands[sub] = declare(*sub);
    };
    add("train", "train an autoencoder; writes metrics.json, a checkpoint, history.csv and figures into --out",
        add_train);
    add("evaluate", "test MSE of a checkpoint beside the mean-image and PCA baselines", add_evaluate);
    add("gradcheck", "check a model's gradients against finite differences, in double", add_gradcheck);
    add("grad", "write the loss and every parameter's gradient for a checkpoint and a batch to .npz", add_grad);
    add("compare", "test MSE against latent size, autoencoder beside PCA", add_compare);
    add("anomaly", "train on one class, flag the others by reconstruction error", add_anomaly);
    add("pca", "explained variance and reconstruction MSE of PCA", add_pca);
    add("variants", "the autoencoder variants, their options (type, range, default, meaning) and loss terms",
        add_variants);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return usage_error(app, e);
    }
    tapegrad::configure_blas(argv, threads);
    unsigned cores = std::thread::hardware_concurrency();
    if (cores > 0 && static_cast<unsigned>(threads) > cores) {
        fmt::print(stderr,
                   "{}: warning: --threads {} on a machine with {} cores: the threads take turns on the cores "
                   "and every product waits for its slowest band, so each step runs slower than with --threads {} "
                   "(4 threads on 2 cores made a Fashion-MNIST epoch 7 to 10 times as long as 2 did)\n",
                   program(), threads, cores, cores);
    }
    try {
        for (auto& [sub, run] : commands) {
            if (sub->parsed()) {
                return run();
            }
        }
    } catch (const std::bad_alloc&) {
        return fail(fmt::format("out of memory (std::bad_alloc): the data or the model asked for more than this "
                                "machine can give"));
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    return 1;
}

}  // namespace tapegrad::cli
