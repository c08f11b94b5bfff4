// Tutorial 002 (the digits tutorial, /work/shared/seeds/002_*.txt): each of its experiments as one
// command, run as the tutorial wrote it (--protocol tutorial) or right (--protocol corrected, the
// default), over --seeds runs; the recipes are in digits_tutorial_recipe.hpp.
//
//   digits_tutorial samples        the first training digit of each class, and its pixel values
//   digits_tutorial compare        64-32-d-32-64 against PCA for d = 2, 4, 8, 16, 32; loss curves,
//                                  reconstructions, the 2-D codes beside PCA's
//   digits_tutorial epochs         the recipe trained longer: why the tutorial's loses to PCA
//   digits_tutorial noise          clean, masked (0.4) and Gaussian (sigma 0.3) test digits
//   digits_tutorial denoising      a denoising autoencoder, latent 16, masking 0.3
//   digits_tutorial anomaly        trained on the digit 1, every other digit an anomaly
//   digits_tutorial sweep          rate-distortion, d = 1 ... 64
//   digits_tutorial interpolation  from the first 3 of the test set to its first 8, latent 16
//   digits_tutorial all            each of them
//
// Each writes results.json (examples/tutorial.hpp) and its figures into --out, by default
// runs/tutorials/002-digits/<protocol>/<experiment>; `all` into <--out>/<experiment>.
#include <chrono>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "digits_tutorial_experiments.hpp"
#include "tapegrad/nn/io/file.hpp"

using namespace tapegrad;
using namespace tapegrad::examples;
using namespace tapegrad::examples::digits;

namespace {

// Runs one experiment into c.out; c arrives with the options set.
int run(const Experiment& e, Context c) {
    const TutorialArgs& args = c.args;
    try {
        claim_run_folder("digits_tutorial", c.out, e.files, args.overwrite);
    } catch (const Error& error) {
        fmt::print(stderr, "{}\n", error.what());
        return 1;
    }
    c.data = load_data();
    Results r("002", e.name, args);
    fmt::print("\ndigits tutorial, {}: {} protocol, {} seed(s) from {}\n", e.name, to_string(args.protocol),
               args.seeds, args.first_seed);
    auto start = std::chrono::steady_clock::now();
    e.run(c, r);
    r.json["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.write(c.out);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"tutorial 002, the digits tutorial: each experiment as the tutorial ran it or run right"};
    app.require_subcommand(1);
    app.fallthrough();  // the options below may follow the experiment's name
    Context c;
    c.args.seeds = 3;
    add_tutorial_options(app, c.args);
    app.add_option("--latents", c.latents, "compare, epochs, sweep: only these latent sizes (1 to 64), e.g. 2,16")
        ->delimiter(',')
        ->check(CLI::Range(1, 64));
    app.add_option("--epochs", c.epochs, "epochs: how long to train (default 1000 under tutorial, 150 corrected)")
        ->check(CLI::Range(30, 100000));
    std::string chosen;
    for (const Experiment& e : experiments()) {
        app.add_subcommand(e.name, e.help)->callback([&chosen, &e] { chosen = e.name; });
    }
    app.add_subcommand("all", "every experiment, each into a folder of --out named after it")->callback([&chosen] {
        chosen = "all";
    });
    if (auto code = parse_command_line(app, argc, argv)) {
        return *code;
    }
    configure_blas(argv, c.args.threads);
    c.recipe = Recipe{c.args.protocol};
    std::string base = c.args.out.empty() ? fmt::format("runs/tutorials/002-digits/{}", to_string(c.args.protocol))
                                          : c.args.out;
    try {
        for (const Experiment& e : experiments()) {
            if (chosen == e.name) {
                c.out = c.args.out.empty() ? base + "/" + e.name : base;
                return run(e, c);
            }
            if (chosen == "all") {
                c.out = base + "/" + e.name;
                if (run(e, c) != 0) {
                    return 1;
                }
            }
        }
    } catch (const Error& error) {
        fmt::print(stderr, "digits_tutorial: {}\n", error.what());
        return 1;
    }
    return 0;
}
