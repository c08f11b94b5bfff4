// Trainer: mini-batch training of an autoencoder with a validation split, early stopping, a metrics
// history, progress on the terminal and a checkpoint after every epoch, from which a run resumes.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad/models/autoencoder.hpp"
#include "tapegrad/nn/dataset.hpp"
#include "tapegrad/nn/optim.hpp"

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
    bool check_numerics = false;       // stop at the first op that makes NaN or Inf, naming it
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
    std::pair<double, double> evaluate(const nn::Dataset& data);
    void progress(int epoch, std::size_t batch, std::size_t batches, double loss, bool done);

    Autoencoder<T>& model_;
    TrainerOptions options_;
    std::unique_ptr<nn::Optimizer<T>> optimizer_;
    double started_ = 0;           // seconds since the epoch (steady clock) when fit began
    std::size_t batches_done_ = 0;
    std::size_t batches_total_ = 0;
    bool terminal_ = false;
};

extern template class Trainer<float>;
extern template class Trainer<double>;

}  // namespace tapegrad::models
