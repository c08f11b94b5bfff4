// Trainer: mini-batch training of an autoencoder with a validation split, early stopping, a metrics
// history, progress on the terminal and a checkpoint after every epoch, from which a run resumes.
//
// Resuming: the checkpoint holds the parameters, the optimizer's state, the history, the best epoch's
// weights when they are not the last epoch's (restore_best) and, for the denoising and variational
// variants, the state of the model's noise generator; the batch order is a function of (seed, epoch).
// So a run killed at any moment and resumed from its last checkpoint ends with the same parameters, bit
// for bit, as one never interrupted (same thread count, same BLAS kernel). Stale temporaries that killed
// checkpoint writes left beside the checkpoint are removed when fit starts.
//
// Checking (check_numerics): the first op whose forward or backward makes NaN or Inf stops the run with
// a NumericError that says where: `trainer: epoch 2/5, batch 7/45 (step 52), forward pass: ` before the
// op's own message (the op, its inputs, the parameters they come from). Parameters are checked after
// every optimizer step too, and a bad value that came with the data is located in the data.
//
// Without checking, a run that diverged is stopped at the end of the epoch, before its checkpoint is
// written: a NumericError names the first parameter holding NaN or Inf, and the checkpoint on disk keeps
// the last finite epoch.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tapegrad/models/autoencoder.hpp"
#include "tapegrad/nn/dataset.hpp"
#include "tapegrad/nn/optim.hpp"

namespace tapegrad::nn {
struct Batch;
}

namespace tapegrad::models {

struct TrainerOptions {
    int epochs = 20;
    std::size_t batch_size = 128;
    std::string optimizer = "adam";  // adam, adamw, sgd
    double lr = 1e-3;
    double weight_decay = 0;
    double momentum = 0.9;             // sgd only
    double validation_fraction = 0.1;  // split off the training data (seeded); 0: none, and early stopping
                                       // watches the MSE of the first 10000 training rows instead
    int patience = 0;                  // stop after this many epochs without a better validation MSE; 0: never
    double min_delta = 0;              // what counts as better
    bool restore_best = true;          // end with the weights of the best validation epoch
    double clip_norm = 0;              // clip the gradients' global norm; 0: no clipping
    std::uint64_t seed = 0;            // validation split and batch order
    std::string checkpoint{};          // written after every epoch when not empty
    std::string resume{};              // a checkpoint of this same run to continue from, when not empty
    bool check_numerics = false;       // stop at the first op that makes NaN or Inf, naming it and the step
    std::ostream* log = nullptr;       // progress and per-epoch lines; nullptr: silent
};

struct EpochRecord {
    int epoch = 0;  // 1-based
    double train_loss = 0;
    double validation_loss = 0;  // the variant's objective on the validation split
    double validation_mse = 0;   // plain reconstruction MSE there: what early stopping watches
    double seconds = 0;
};

struct History {
    std::vector<EpochRecord> epochs;
    int best_epoch = 0;
    double best_validation_mse = 0;
    bool stopped_early = false;
    std::string to_json() const;
    static History from_json(const std::string& text);
};

template <class T>
class Trainer {
public:
    Trainer(Autoencoder<T>& model, TrainerOptions options);

    // Splits the validation part off `data` (unless validation_fraction is 0) and trains.
    History fit(const nn::Dataset& data);
    // Trains on `train`, validating on `validation` when given.
    History fit(const nn::Dataset& train, const nn::Dataset* validation);

    nn::Optimizer<T>& optimizer() { return *optimizer_; }
    const TrainerOptions& options() const { return options_; }

private:
    double train_epoch(const nn::Dataset& train, int epoch);
    std::pair<double, double> evaluate(const nn::Dataset& data, int epoch, bool validation);
    void progress(int epoch, std::size_t batch, std::size_t batches, double loss, bool done);
    // "NaN at [3, 1] in \"encoder.0.weight\" (784, 256)" for the first parameter holding NaN or Inf.
    std::optional<std::string> nonfinite_parameter() const;
    void check_parameters() const;
    // Rethrows a NumericError with where it happened before its text and, when the batch holds the bad
    // value, where that is in the data after it.
    [[noreturn]] void rethrow_numeric(const NumericError& e, const std::string& where, const nn::Batch& batch,
                                      const nn::Dataset& part, bool training) const;
    std::string save_extra(const History& history);
    void restore_extra(const std::string& config, History& history);

    Autoencoder<T>& model_;
    TrainerOptions options_;
    std::unique_ptr<nn::Optimizer<T>> optimizer_;
    double started_ = 0;           // seconds since the epoch (steady clock) when fit began
    std::size_t batches_done_ = 0;
    std::size_t batches_total_ = 0;
    bool terminal_ = false;
    const nn::Dataset* given_ = nullptr;  // what fit(data) split, to find a bad row in it
};

extern template class Trainer<float>;
extern template class Trainer<double>;

}  // namespace tapegrad::models
