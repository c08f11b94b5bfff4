// One truth per run: what a checkpoint records of the run that wrote it (its data, the scaling fitted
// on it, its training settings), and how a later command is checked against that record. train
// --resume refuses options that would make it another run; evaluate and grad take the data from the
// record unless told otherwise, and say so.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common.hpp"
#include "tapegrad/models/trainer.hpp"

namespace tapegrad::tools {

// The run record a checkpoint keeps under extra.run.
nlohmann::json run_record(const DataOptions& data, const Split& split, const models::TrainerOptions& trainer);

// A checkpoint's config (nn::read_checkpoint_config) and the parts the commands use.
struct CheckpointRecord {
    std::string path;
    nlohmann::json config;
    nlohmann::json model;  // {"variant", "config", "options"}
    nlohmann::json run;    // extra.run; null for a checkpoint written before runs were recorded
    int epochs_done = 0;
    bool stopped_early = false;

    static CheckpointRecord read(const std::string& path);
};

// The data a command on a checkpoint evaluates: the record's, with the data options given on the command
// line `app` taking their place (each noted). `scaling` gets the fitted parameters to apply, or null
// when the scaling must be fitted again (another --scale).
DataOptions data_for(const CLI::App& app, const DataOptions& given_options, const CheckpointRecord& record,
                     nlohmann::json& scaling);

// What train --resume may not change. Each option given on `app` is compared with the checkpoint's
// record: a difference in the model, its options, the data or what the batches are (batch size,
// optimizer, seeds, validation part) is returned as "--model sparse (the checkpoint's: vanilla)"; a
// difference in the step (learning rate, weight decay, momentum, clipping, patience) is noted and
// kept. `model` is the model options as given, `data` and `trainer` likewise.
std::vector<std::string> resume_conflicts(const CLI::App& app, const CheckpointRecord& record,
                                          const ModelOptions& model, const DataOptions& data,
                                          const models::TrainerOptions& trainer);

// The options not given on `app` taken from the record, so that `train --resume C` alone continues the
// run as it was started.
void adopt_record(const CLI::App& app, const CheckpointRecord& record, DataOptions& data,
                  models::TrainerOptions& trainer);

}  // namespace tapegrad::tools
