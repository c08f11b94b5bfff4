// tapegrad train and tapegrad evaluate.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <xtensor/xview.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"
#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/models/factory.hpp"
#include "tapegrad/models/trainer.hpp"
#include "tapegrad/models/variational.hpp"
#include "tapegrad/nn/checkpoint.hpp"
#include "tapegrad/nn/file.hpp"

namespace tapegrad::tools {

namespace {

struct TrainArgs {
    DataOptions data;
    ModelOptions model;
    models::TrainerOptions trainer{.epochs = 20};
    std::string out = "runs/train";
    bool figures = true;
};

int run_train(const TrainArgs& args) {
    Split split = load_split(args.data);
    auto model = build_model<float>(args.model, split.train.dim());
    fmt::print("tapegrad train: {} on {} ({} train, {} test, {} features)\n", model->describe(), args.data.data,
               split.train.size(), split.test.size(), split.train.dim());
    fmt::print("BLAS: {}; flush-to-zero on while training\n", blas_summary());
    std::filesystem::create_directories(args.out);
    // What runs killed mid-write left behind (the trainer does the same for its checkpoint).
    for (const char* name : {"metrics.json", "loss.png", "reconstructions.png", "latent.png"}) {
        nn::detail::remove_stale_temporaries(args.out + "/" + name);
    }
    models::TrainerOptions options = args.trainer;
    options.checkpoint = args.out + "/checkpoint.npz";
    options.log = &std::cout;
    models::Trainer<float> trainer(*model, options);
    models::History history = trainer.fit(split.train);

    Report report = evaluate_model(*model, split, args.model.variant);
    report.print();
    nlohmann::json metrics = report.to_json();
    metrics["data"] = args.data.data;
    metrics["model"] = nlohmann::json::parse(models::describe_model(*model));
    metrics["history"] = nlohmann::json::parse(history.to_json());
    metrics["checkpoint"] = options.checkpoint;
    if (args.figures) {
        metrics["figures"] = write_figures(args.out, *model, split, history);
    }
    write_json(args.out + "/metrics.json", metrics);
    fmt::print("wrote {}/metrics.json, {}\n", args.out, options.checkpoint);
    return 0;
}

}  // namespace

Command add_train(CLI::App& app) {
    auto args = std::make_shared<TrainArgs>();
    add_data_options(app, args->data);
    add_model_options(app, args->model);
    models::TrainerOptions& t = args->trainer;
    app.add_option("--epochs", t.epochs, "training epochs")->check(positive)->capture_default_str();
    app.add_option("--batch-size", t.batch_size, "mini-batch size")->check(positive)->capture_default_str();
    app.add_option("--optimizer", t.optimizer, "adam, adamw or sgd")->capture_default_str();
    app.add_option("--lr", t.lr, "learning rate")->check(positive)->capture_default_str();
    app.add_option("--weight-decay", t.weight_decay, "weight decay")->capture_default_str();
    app.add_option("--momentum", t.momentum, "momentum (sgd)")->capture_default_str();
    app.add_option("--validation", t.validation_fraction, "validation part of the training data")
        ->capture_default_str();
    app.add_option("--patience", t.patience, "early stopping after N epochs without improvement (0: never)")
        ->capture_default_str();
    app.add_option("--clip-norm", t.clip_norm, "clip the gradients' global norm (0: never)")->capture_default_str();
    app.add_option("--train-seed", t.seed, "seed of the validation split and the batch order")->capture_default_str();
    app.add_option("--resume", t.resume, "continue the run of this checkpoint");
    app.add_flag("--check-numerics", t.check_numerics, "stop at the first op that makes NaN or Inf, naming it");
    app.add_option("--out", args->out, "folder for metrics.json, checkpoint.npz and figures")->capture_default_str();
    app.add_flag("!--no-figures", args->figures, "skip the PNG figures");
    return [args] { return run_train(*args); };
}

Command add_evaluate(CLI::App& app) {
    auto checkpoint = std::make_shared<std::string>();
    auto data = std::make_shared<DataOptions>();
    auto out = std::make_shared<std::string>();
    app.add_option("--checkpoint", *checkpoint, "a checkpoint written by tapegrad train")->required();
    add_data_options(app, *data);
    app.add_option("--out", *out, "write the metrics to this JSON file");
    return [checkpoint, data, out] {
        auto model = load_model<float>(*checkpoint);
        Split split = load_split(*data);
        Report report = evaluate_model(*model, split, model->variant());
        report.print();
        if (!out->empty()) {
            write_json(*out, report.to_json());
        }
        return 0;
    };
}

}  // namespace tapegrad::tools
