// The tapegrad subcommands. Each add_* declares its options on `app` and returns the function that runs
// it; main parses, sets up BLAS, then runs the one that was chosen.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace tapegrad::tools {

using Command = std::function<int()>;

Command add_train(CLI::App& app);
Command add_evaluate(CLI::App& app);
Command add_gradcheck(CLI::App& app);
Command add_grad(CLI::App& app);
Command add_compare(CLI::App& app);
Command add_anomaly(CLI::App& app);
Command add_pca(CLI::App& app);

}  // namespace tapegrad::tools
