// Learning-rate schedules driving an Optimizer's lr, with PyTorch's closed forms (torch.optim.lr_scheduler's
// _get_closed_form_lr):
//   StepLR             lr = base_lr * gamma^floor(epoch / step_size)
//   CosineAnnealingLR  lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2
// where base_lr is the optimizer's lr when the schedule was made and epoch is PyTorch's last_epoch: 0 at the
// start, one more after each step(). Call step() after each epoch's optimizer steps, as in PyTorch.
//
// The lr is a function of (base_lr, epoch) alone, so a checkpoint saves those two and load_state() puts the
// same lr, bit for bit, back on the optimizer. A schedule refers to its optimizer, which must outlive it.
//
// Scheduler, StepLR and CosineAnnealingLR for float and double are instantiated in nn/schedule.cpp only.
#pragma once

#include <cstddef>
#include <string>

#include "tapegrad/nn/optim.hpp"

namespace tapegrad::nn {

template <class T>
class Scheduler {
public:
    explicit Scheduler(Optimizer<T>& optimizer);
    virtual ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // epoch += 1, and the optimizer's lr becomes lr_at(epoch).
    void step();
    // The lr for the current epoch: what the optimizer holds unless someone else set it since.
    double lr() const { return lr_at(epoch_); }
    // The lr at any epoch; base_lr exactly at epoch 0.
    double lr_at(std::size_t epoch) const;
    std::size_t epoch() const { return epoch_; }
    double base_lr() const { return base_lr_; }
    // Restores a saved epoch and base lr and sets the optimizer's lr to lr_at(epoch).
    void load_state(std::size_t epoch, double base_lr);

    virtual std::string kind() const = 0;  // "step_lr", "cosine_annealing_lr"
    // The options as JSON, with "kind", "base_lr" and "epoch".
    virtual std::string hyperparameters_json() const = 0;

protected:
    // The schedule's formula for epoch > 0.
    virtual double closed_form(std::size_t epoch) const = 0;

    Optimizer<T>& optimizer_;
    double base_lr_;
    std::size_t epoch_ = 0;
};

// step_size has no default (0 is rejected): it depends on the run's length.
struct StepLROptions {
    std::size_t step_size = 0;
    double gamma = 0.1;
};

template <class T>
class StepLR : public Scheduler<T> {
public:
    StepLR(Optimizer<T>& optimizer, StepLROptions options);
    std::string kind() const override { return "step_lr"; }
    std::string hyperparameters_json() const override;
    const StepLROptions& options() const { return options_; }

private:
    double closed_form(std::size_t epoch) const override;
    StepLROptions options_;
};

// Past t_max the cosine goes on (back up to base_lr at 2 t_max), as PyTorch's does.
struct CosineAnnealingLROptions {
    std::size_t t_max = 0;
    double eta_min = 0;
};

template <class T>
class CosineAnnealingLR : public Scheduler<T> {
public:
    CosineAnnealingLR(Optimizer<T>& optimizer, CosineAnnealingLROptions options);
    std::string kind() const override { return "cosine_annealing_lr"; }
    std::string hyperparameters_json() const override;
    const CosineAnnealingLROptions& options() const { return options_; }

private:
    double closed_form(std::size_t epoch) const override;
    CosineAnnealingLROptions options_;
};

extern template class Scheduler<float>;
extern template class Scheduler<double>;
extern template class StepLR<float>;
extern template class StepLR<double>;
extern template class CosineAnnealingLR<float>;
extern template class CosineAnnealingLR<double>;

}  // namespace tapegrad::nn
