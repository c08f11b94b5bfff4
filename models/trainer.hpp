// Trainer: mini-batch training of an autoencoder with a validation split, early stopping, a metrics
// history, progress on the terminal and checkpoints from which a run resumes.
//
// Checkpoints: written after an epoch when `checkpoint_every` epochs or `checkpoint_seconds` seconds have
// passed since the last one, and after the last epoch. Each holds the whole history, so writing one
// after every epoch of a long run of tiny epochs would cost time quadratic in the epochs: by time, a
// 20000-epoch run writes a few. The history also goes, one line per epoch as it ends, to a CSV file
// (`history`), which costs an append.
//
// Stopping (`stop`, set from a SIGINT handler): the run stops after the batch in progress with a
// TrainingInterrupted that says which epoch was cut and which checkpoint holds the last one written.
//
// Resuming: the checkpoint holds the parameters, the optimizer's state, the history, the best epoch's
// weights when they are not the last epoch's (restore_best), and the state of the generator the model's
// loss draws noise from (Autoencoder::noise_source: the denoising corruption, the variational sample);
// the batch order is a function of (seed, epoch).
// So a run killed at any moment and resumed from its last checkpoint ends with the same parameters, bit
// for bit, as one never interrupted (same thread count, same BLAS kernel). Stale temporaries that killed
// checkpoint writes left beside the checkpoint are removed when fit starts.
//
// Checking (check_numerics): the first op whose forward or backward makes NaN or Inf stops the run with
// a NumericError that says where: `trainer: epoch 2/5, batch 7/45 (step 52), forward pass: ` before the
// op's own message (the op, its inputs, the parameters they come from). Parameters are checked after
// every optimizer step too, and a bad value that came with the data is located in the data.
//
// Data-parallel (distributed, in a job started by `mpirun -np N`, autodiff/distributed.hpp): every rank
// runs the same Trainer on the same data. Each global batch (batch_size rows, the same batches as one
// process) is cut into N near-equal parts (nn::shard_range); each rank copies in only its part and weighs
// its loss by its share of the rows, the gradients are summed over the ranks before clipping and the
// step, and a loss that looks across the batch (the sparse penalty's mean activation, the noise drawn
// for the batch) sees the whole batch (Autoencoder::batch_mean, draw_over_batch). So a run is the run of
// one process but for the order of the sums, and a checkpoint of one resumes with any N. Evaluation is
// split the same way. Rank 0 alone prints, writes checkpoints and the history. At the start the ranks
// compare their options, data and model, and fit refuses, naming what differs (DistributedError);
// rank 0's parameters are then sent to all. A rank that fails alone (an error in its part of the data)
// leaves the others waiting at the next sum: a program should end the job then (distributed::abort), as
// the tapegrad CLI does.
//
// Without checking, a run that diverged is stopped at the end of the epoch, before its checkpoint is
// written: a NumericError names the first parameter holding NaN or Inf, and the checkpoint on disk keeps
// the last finite epoch.
#pragma once

#include <atomic>
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
class Batches;
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
    int checkpoint_every = 0;          // epochs between checkpoints; 0: by time alone
    double checkpoint_seconds = 10;    // seconds between checkpoints; 0: by epochs alone (both 0: each epoch)
    std::string history{};             // a CSV file that gets one line per epoch, when not empty
    int log_every = 1;                 // print every this many epochs' line (and the first, the last)
    const std::atomic<bool>* stop = nullptr;  // when it turns true, stop after the batch in progress
    std::string run = "{}";            // JSON text the caller keeps in the checkpoint (extra.run): data, scaling
    bool distributed = false;          // split each batch across the ranks of the MPI job (see above)
};

// The run was stopped through TrainerOptions::stop. what() says where, and where the last checkpoint is.
class TrainingInterrupted : public Error {
public:
    TrainingInterrupted(std::string message, int checkpoint_epoch)
        : Error(std::move(message)), checkpoint_epoch_(checkpoint_epoch) {}
    // The epoch the checkpoint on disk ends with (0: none was written).
    int checkpoint_epoch() const { return checkpoint_epoch_; }

private:
    int checkpoint_epoch_;
};

struct EpochRecord {
    int epoch = 0;  // 1-based
    double train_loss = 0;
    double validation_loss = 0;  // the variant's objective on the validation split
    double validation_mse = 0;   // plain reconstruction MSE there: what early stopping watches
    double seconds = 0;
    // The variant's loss terms (Autoencoder::loss_terms) averaged over the epoch's training batches.
    std::vector<std::pair<std::string, double>> terms{};
};

struct History {
    std::vector<EpochRecord> epochs;
    int best_epoch = 0;
    double best_validation_mse = 0;
    bool stopped_early = false;
    std::string to_json() const;
    static History from_json(const std::string& text);
    // {"epochs": count, "best_epoch", "best_validation_mse", "stopped_early"}: what metrics.json and a
    // checkpoint's config keep, the records being in history.csv and in the checkpoint's arrays.
    std::string summary_json() const;
};

// The history a checkpoint written by a Trainer holds: its summary in the config (extra.history), its
// records as float64 arrays under history/ (epoch, train_loss, ..., terms/<name>), so that a checkpoint
// of a long run stays small and its losses exact.
History read_history(const std::string& checkpoint);

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
    void write_checkpoint(const History& history, const std::vector<Array<T>>& best);
    void append_history(const EpochRecord& record, bool header);
    void restore_extra(const std::string& config, History& history);

    Autoencoder<T>& model_;
    TrainerOptions options_;
    std::unique_ptr<nn::Optimizer<T>> optimizer_;
    double started_ = 0;           // seconds since the epoch (steady clock) when fit began
    std::size_t batches_done_ = 0;
    std::size_t batches_total_ = 0;
    int checkpoint_epoch_ = 0;     // the epoch of the last checkpoint written or resumed from
    double checkpoint_time_ = 0;   // when it was written
    std::vector<double> term_sums_;  // this epoch's loss terms, summed over samples
    bool terminal_ = false;
    const nn::Dataset* given_ = nullptr;  // what fit(data) split, to find a bad row in it
    int rank_ = 0;   // this process's rank and the number of ranks the batches are split across
    int ranks_ = 1;
    bool leader() const { return rank_ == 0; }
    // The rows of batch i this rank computes on, and the shard the model is told.
    BatchShard shard_of(const nn::Batches& batches, std::size_t i, nn::Batch& batch) const;
    void check_same_start(const nn::Dataset& train, const nn::Dataset* validation) const;
};

extern template class Trainer<float>;
extern template class Trainer<double>;

}  // namespace tapegrad::models
