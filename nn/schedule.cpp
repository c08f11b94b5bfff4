#include "tapegrad/nn/schedule.hpp"

#include <cmath>
#include <numbers>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tapegrad::nn {

namespace {

using detail::throw_value_error;

const StepLROptions& checked(const StepLROptions& o) {
    if (o.step_size == 0) {
        throw_value_error("step_lr: step_size must be positive: got 0");
    }
    if (!(o.gamma > 0) || !std::isfinite(o.gamma)) {
        throw_value_error(fmt::format("step_lr: gamma must be a finite number > 0: got {}", o.gamma));
    }
    return o;
}

const CosineAnnealingLROptions& checked(const CosineAnnealingLROptions& o) {
    if (o.t_max == 0) {
        throw_value_error("cosine_annealing_lr: t_max must be positive: got 0");
    }
    if (!(o.eta_min >= 0) || !std::isfinite(o.eta_min)) {
        throw_value_error(fmt::format("cosine_annealing_lr: eta_min must be a finite number >= 0: got {}", o.eta_min));
    }
    return o;
}

}  // namespace

template <class T>
Scheduler<T>::Scheduler(Optimizer<T>& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}

template <class T>
Scheduler<T>::~Scheduler() = default;

template <class T>
double Scheduler<T>::lr_at(std::size_t epoch) const {
    // The closed forms give base_lr at epoch 0 only up to rounding (eta_min + (base_lr - eta_min) need not
    // be base_lr); PyTorch starts from the optimizer's lr itself, and so does this.
    return epoch == 0 ? base_lr_ : closed_form(epoch);
}

template <class T>
void Scheduler<T>::step() {
    optimizer_.set_lr(lr_at(epoch_ + 1));
    ++epoch_;
}

template <class T>
void Scheduler<T>::load_state(std::size_t epoch, double base_lr) {
    if (!(base_lr >= 0) || !std::isfinite(base_lr)) {
        throw_value_error(fmt::format("{}: base_lr must be a finite number >= 0: got {}", kind(), base_lr));
    }
    const double saved_base_lr = std::exchange(base_lr_, base_lr);
    try {
        optimizer_.set_lr(lr_at(epoch));
    } catch (...) {
        base_lr_ = saved_base_lr;
        throw;
    }
    epoch_ = epoch;
}

template <class T>
StepLR<T>::StepLR(Optimizer<T>& optimizer, StepLROptions options)
    : Scheduler<T>(optimizer), options_(checked(options)) {}

template <class T>
double StepLR<T>::closed_form(std::size_t epoch) const {
    return this->base_lr_ * std::pow(options_.gamma, static_cast<double>(epoch / options_.step_size));
}

template <class T>
std::string StepLR<T>::hyperparameters_json() const {
    nlohmann::json j = {{"kind", kind()},
                        {"step_size", options_.step_size},
                        {"gamma", options_.gamma},
                        {"base_lr", this->base_lr_},
                        {"epoch", this->epoch_}};
    return j.dump();
}

template <class T>
CosineAnnealingLR<T>::CosineAnnealingLR(Optimizer<T>& optimizer, CosineAnnealingLROptions options)
    : Scheduler<T>(optimizer), options_(checked(options)) {}

template <class T>
double CosineAnnealingLR<T>::closed_form(std::size_t epoch) const {
    // The same order of operations as PyTorch's Python expression, so that the two agree to the last bit.
    const double eta_min = options_.eta_min;
    return eta_min + (this->base_lr_ - eta_min) *
                         (1 + std::cos(std::numbers::pi * static_cast<double>(epoch) /
                                       static_cast<double>(options_.t_max))) /
                         2;
}

template <class T>
std::string CosineAnnealingLR<T>::hyperparameters_json() const {
    nlohmann::json j = {{"kind", kind()},
                        {"t_max", options_.t_max},
                        {"eta_min", options_.eta_min},
                        {"base_lr", this->base_lr_},
                        {"epoch", this->epoch_}};
    return j.dump();
}

template class Scheduler<float>;
template class Scheduler<double>;
template class StepLR<float>;
template class StepLR<double>;
template class CosineAnnealingLR<float>;
template class CosineAnnealingLR<double>;

}  // namespace tapegrad::nn
