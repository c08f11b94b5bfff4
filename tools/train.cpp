// tapegrad train and tapegrad evaluate.
#include <csignal>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <xtensor/xview.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"
#include "run.hpp"
#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/distributed.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/nn/io/checkpoint.hpp"
#include "tapegrad/nn/io/file.hpp"

namespace tapegrad::tools {

namespace {

namespace fs = std::filesystem;

// The files a train run writes into its --out.
const std::vector<std::string> run_files = {"checkpoint.npz", "metrics.json",        "history.csv",
                                            "loss.png",       "reconstructions.png", "latent.png",
                                            "interpolation.png"};

// Set by SIGINT or SIGTERM; the trainer stops after the batch in progress. The handler puts the default
// back, so that a second Ctrl-C ends the program at once.
std::atomic<bool> stop_requested{false};

extern "C" void request_stop(int signal) {
    stop_requested.store(true);
    std::signal(signal, SIG_DFL);
}

struct TrainArgs {
    DataOptions data;
    ModelOptions model;
    models::TrainerOptions trainer{.epochs = 20, .lr = 0};  // lr 0: the variant's
    std::string out = "runs/train";
    std::string resume;
    std::string checkpoint_every = "10s";
    bool overwrite = false;
    bool figures = true;
    const CLI::App* app = nullptr;
};

// "5" is every 5 epochs, "30s" every 30 seconds, "0" every epoch.
void parse_checkpoint_every(const std::string& text, models::TrainerOptions& t) {
    bool seconds = !text.empty() && text.back() == 's';
    std::string number = seconds ? text.substr(0, text.size() - 1) : text;
    std::size_t used = 0;
    double value = -1;
    try {
        value = std::stod(number, &used);
    } catch (const std::exception&) {
    }
    if (used != number.size() || !(value >= 0) || !std::isfinite(value) || (!seconds && value != std::floor(value))) {
        tapegrad::detail::throw_value_error(fmt::format(
            "train: --checkpoint-every {}: give epochs (5), seconds (30s), or 0 for after every epoch", text));
    }
    t.checkpoint_every = seconds ? 0 : static_cast<int>(value);
    t.checkpoint_seconds = seconds ? value : 0;
}

bool same_file(const std::string& a, const std::string& b) {
    std::error_code error;
    return fs::equivalent(a, b, error);
}

// An --out that holds a run is kept unless the command continues that very run (--resume of its own
// checkpoint) or was told to replace it.
void claim_out(const TrainArgs& args) {
    std::string own = (fs::path(args.out) / "checkpoint.npz").string();
    if (!args.resume.empty() && same_file(args.resume, own)) {
        return;
    }
    tools::claim_out("train", args.out, run_files, args.overwrite, fmt::format("continue it with --resume {}, or ", own));
}

// train --resume C: the run as the checkpoint recorded it, with the options given checked against it.
CheckpointRecord prepare_resume(TrainArgs& args) {
    const CLI::App& app = *args.app;
    CheckpointRecord record = CheckpointRecord::read(args.resume);
    std::vector<std::string> conflicts = resume_conflicts(app, record, args.model, args.data, args.trainer);
    if (!conflicts.empty()) {
        tapegrad::detail::throw_value_error(fmt::format(
            "train --resume {}: the options differ from the checkpoint's run: {}; leave them out to continue that "
            "run, or start a new one in another --out",
            args.resume, fmt::join(conflicts, "; ")));
    }
    adopt_record(app, record, args.data, args.trainer);
    if (!given(app, "--out")) {
        args.out = fs::path(args.resume).parent_path().string();
        if (args.out.empty()) {
            args.out = ".";
        }
    }
    if (record.stopped_early) {
        tapegrad::detail::throw_value_error(
            fmt::format("train --resume {}: the run stopped early after epoch {} (no better validation MSE for "
                        "--patience epochs): nothing to train; start a new run to train longer",
                        args.resume, record.epochs_done));
    }
    bool reported = fs::exists(fs::path(args.out) / "metrics.json");
    if (args.trainer.epochs <= record.epochs_done && !reported) {
        note(fmt::format("train --resume {}: the run has done all {} epochs but was stopped before its report: "
                         "writing it",
                         args.resume, record.epochs_done));
    } else if (args.trainer.epochs <= record.epochs_done) {
        tapegrad::detail::throw_value_error(
            fmt::format("train --resume {}: the run has done {} epochs and --epochs {} asks for no more: nothing to "
                        "train; give --epochs above {} (evaluate reports on it as it is)",
                        args.resume, record.epochs_done, args.trainer.epochs, record.epochs_done));
    }
    return record;
}

int run_train(TrainArgs args) {
    // Under mpirun the ranks train one run data-parallel: each reads the data and the checkpoint, rank 0
    // alone checks and writes --out and prints; the others print errors only.
    bool leader = distributed::rank() == 0;
    // A build without MPI started by `mpirun -np N`: each of the N would be rank 0 of 1 and train the whole
    // run into the same --out. Refused, before anything is read or written.
    if (distributed::launched_processes() > distributed::size()) {
        tapegrad::detail::throw_value_error(fmt::format(
            "train: started by mpirun as one of {} processes, but this build has no MPI (built without "
            "libopenmpi-dev, or with -Dmpi=disabled): each would train the whole run into the same --out; "
            "rebuild with MPI, or run without mpirun",
            distributed::launched_processes()));
    }
    if (!leader && std::freopen("/dev/null", "w", stdout) == nullptr) {
        tapegrad::detail::throw_value_error("train: cannot silence the standard output of a rank other than 0");
    }
    parse_checkpoint_every(args.checkpoint_every, args.trainer);
    std::shared_ptr<models::Autoencoder<float>> model;
    Split split;
    int done = 0;
    if (!args.resume.empty()) {
        CheckpointRecord record = prepare_resume(args);
        done = record.epochs_done;
        if (leader) {
            claim_out(args);
        }
        split = load_split(args.data, record.run.is_null() ? nlohmann::json() : record.run["data"].value("scaling", nlohmann::json()));
        model = models::model_from_description<float>(record.model.dump());
    } else {
        if (!given(*args.app, "--lr")) {
            args.trainer.lr = models::variant_info(args.model.variant).lr;
        }
        if (leader) {
            claim_out(args);
        }
        split = load_split(args.data);
        model = build_model<float>(args.model, split.train.dim(), split.low, split.high);
        if (given(*args.app, "--activation") && model->config().sizes.size() == 2) {
            note(fmt::format("--activation {} acts on no layer: sizes {} have no hidden layer", args.model.activation,
                             fmt::join(model->config().sizes, "-")));
        }
    }
    fmt::print("{} train: {} on {} ({} train, {} test, {} features)\n", program(), model->describe(), args.data.data,
               split.train.size(), split.test.size(), split.train.dim());
    fmt::print("BLAS: {}; flush-to-zero on while training\n", blas_summary());
    if (model->config().convolutional()) {
        fmt::print("convolutions: {}\n", conv_summary());
    }
    if (distributed::size() > 1) {
        fmt::print("data-parallel: {}, each batch of {} split across them\n", distributed::summary(),
                   args.trainer.batch_size);
    }
    if (leader) {
        fs::create_directories(args.out);
        // What runs killed mid-write left behind (the trainer does the same for its checkpoint).
        for (const std::string& name : run_files) {
            nn::detail::remove_stale_temporaries((fs::path(args.out) / name).string());
        }
    }
    models::TrainerOptions options = args.trainer;
    options.checkpoint = (fs::path(args.out) / "checkpoint.npz").string();
    options.history = (fs::path(args.out) / "history.csv").string();
    options.resume = args.resume;
    options.log = &std::cout;
    options.stop = &stop_requested;
    options.run = run_record(args.data, split, args.trainer).dump();
    options.distributed = true;
    models::Trainer<float> trainer(*model, options);
    stop_requested.store(false);  // cli::main may run more than once in a user's program
    std::signal(SIGINT, request_stop);
    std::signal(SIGTERM, request_stop);
    models::History history;
    try {
        if (done >= args.trainer.epochs) {  // only the report is missing
            history = models::read_history(args.resume);
        } else {
            history = trainer.fit(split.train);
        }
    } catch (const models::TrainingInterrupted& e) {
        std::cout.flush();
        fmt::print(stderr, "{}: interrupted: {}{}\n", program(), e.what(),
                   e.checkpoint_epoch() > 0 ? fmt::format("; continue with: {} train --resume {}", program(),
                                                          options.checkpoint)
                                            : "");
        return 130;
    }
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    if (!leader) {
        return 0;  // rank 0 reports
    }

    // The report reads the checkpoint back, as evaluate does: the same numbers, to the last digit.
    Report report = evaluate_checkpoint(options.checkpoint, split, &model);
    report.print();
    nlohmann::json metrics = report.to_json();
    metrics["data"] = args.data.data;
    metrics["model"] = nlohmann::json::parse(models::describe_model(*model));
    metrics["history"] = nlohmann::json::parse(history.summary_json());
    if (!history.epochs.empty() && !history.epochs.back().terms.empty()) {
        nlohmann::json terms = nlohmann::json::object();
        for (const auto& [name, value] : history.epochs.back().terms) {
            terms[name] = value;
        }
        metrics["train_loss_terms"] = terms;
    }
    metrics["checkpoint"] = options.checkpoint;
    metrics["history_csv"] = options.history;
    if (args.figures) {
        metrics["figures"] = write_figures(args.out, *model, split, history);
    }
    std::string metrics_path = (fs::path(args.out) / "metrics.json").string();
    write_json(metrics_path, metrics);
    fmt::print("wrote {}, {}, {}\n", metrics_path, options.checkpoint, options.history);
    return 0;
}

}  // namespace

Command add_train(CLI::App& app) {
    auto args = std::make_shared<TrainArgs>();
    args->app = &app;
    add_data_options(app, args->data);
    add_model_options(app, args->model);
    models::TrainerOptions& t = args->trainer;
    app.add_option("--epochs", t.epochs, "training epochs (with --resume: in all, those done included)")
        ->check(positive_whole)
        ->capture_default_str();
    app.add_option("--batch-size", t.batch_size, "mini-batch size")->check(positive_whole)->capture_default_str();
    app.add_option("--optimizer", t.optimizer, "adam, adamw or sgd")
        ->check(CLI::IsMember({"adam", "adamw", "sgd"}))
        ->capture_default_str();
    app.add_option("--lr", t.lr, fmt::format("learning rate (default: the variant's, as {} variants lists)", program()))
        ->check(positive);
    app.add_option("--weight-decay", t.weight_decay, "weight decay")->check(non_negative)->capture_default_str();
    app.add_option("--momentum", t.momentum, "momentum (sgd)")->check(below_one)->capture_default_str();
    app.add_option("--validation", t.validation_fraction, "validation part of the training data")
        ->check(below_one)
        ->capture_default_str();
    app.add_option("--patience", t.patience, "early stopping after N epochs without improvement (0: never)")
        ->check(whole)
        ->capture_default_str();
    app.add_option("--clip-norm", t.clip_norm, "clip the gradients' global norm (0: never)")
        ->check(non_negative)
        ->capture_default_str();
    app.add_option("--train-seed", t.seed, "seed of the validation split and the batch order")
        ->check(whole)
        ->capture_default_str();
    app.add_option("--resume", args->resume,
                   "continue the run of this checkpoint (alone: --out's); options not given are the run's own")
        ->expected(0, 1)
        ->default_str("");
    add_overwrite_option(app, args->overwrite);
    app.add_option("--checkpoint-every", args->checkpoint_every,
                   "write the checkpoint every N epochs (5), or N seconds (30s), and after the last epoch; 0: "
                   "after every epoch")
        ->capture_default_str();
    app.add_option("--log-every", t.log_every, "print every N-th epoch's line (the first and last always)")
        ->check(positive_whole)
        ->capture_default_str();
    app.add_flag("--check-numerics", t.check_numerics, "stop at the first op that makes NaN or Inf, naming it");
    app.add_option("--out", args->out, "folder for metrics.json, checkpoint.npz, history.csv and figures")
        ->capture_default_str();
    app.add_flag("!--no-figures", args->figures, "skip the PNG figures");
    app.footer("Started by mpirun -np N, the N processes train this one run data-parallel: each batch of "
               "--batch-size rows is split across them, and rank 0 alone prints and writes --out.");
    return [args] {
        TrainArgs a = *args;
        if (given(*a.app, "--resume") && a.resume.empty()) {
            a.resume = (fs::path(a.out) / "checkpoint.npz").string();
        }
        return run_train(a);
    };
}

Command add_evaluate(CLI::App& app) {
    struct Args {
        std::string checkpoint;
        DataOptions data;
        std::string out;
        bool overwrite = false;
    };
    auto args = std::make_shared<Args>();
    app.add_option("--checkpoint", args->checkpoint, fmt::format("a checkpoint written by {} train", program()))
        ->required();
    add_data_options(app, args->data);
    app.add_option("--out", args->out, "write the metrics to this JSON file");
    add_overwrite_option(app, args->overwrite);
    app.footer("The data, its split and its scaling are the checkpoint's own; a data option given here takes its "
                 "place, with a note.");
    return [args, &app] {
        if (!args->out.empty()) {
            claim_file("evaluate", args->out, args->overwrite);
        }
        CheckpointRecord record = CheckpointRecord::read(args->checkpoint);
        nlohmann::json scaling;
        DataOptions data = data_for(app, args->data, record, scaling);
        Split split = load_split(data, scaling);
        Report report = evaluate_checkpoint(args->checkpoint, split);
        report.print();
        if (!args->out.empty()) {
            write_json(args->out, report.to_json());
        }
        return 0;
    };
}

}  // namespace tapegrad::tools
