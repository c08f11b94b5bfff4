// Optimizers (SGD with momentum, Nesterov and weight decay; Adam; AdamW), gradient clipping by global norm,
// and flush-to-zero for training loops.
//
// Each update follows torch.optim's single-tensor code (PyTorch's CPU path) equation for equation, so that a
// run here and one in PyTorch from the same start agree to rounding. Updates are in place, with plain loops
// in T; an optimizer's buffers are allocated at its first step() and reused, so a step allocates nothing
// afterwards. Scalars (bias corrections, step sizes) are computed in double and rounded to T once, as PyTorch
// does with its Python-float scalars.
//
// State: buffers by name, `<buffer>.<parameter name>` (`momentum.encoder.0.weight`, `exp_avg.encoder.0.weight`,
// `exp_avg_sq.encoder.0.weight`), which a checkpoint saves with steps() and gives back to load_state(); a
// resumed run then continues bit for bit as an unbroken one. Like PyTorch, an optimizer also counts, per
// parameter, the steps that updated it (a parameter without a grad is skipped and its count stays); where
// that count differs from steps() the state holds it too, as a 0-d `step.<parameter name>`.
//
// Optimizer<float> and <double>, and the classes below, are instantiated in nn/optim.cpp only.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tapegrad/autodiff/var.hpp"
#include "tapegrad/nn/parameter.hpp"

namespace tapegrad::nn {

template <class T>
class Optimizer {
public:
    // Parameters must be defined Vars with distinct, non-empty names (the names key the state).
    explicit Optimizer(ParameterList<T> params, double lr);
    virtual ~Optimizer();
    // A copy would update the same parameters with a second set of buffers: never what was meant.
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    // One update from the parameters' grad(); a parameter whose grad is undefined is skipped (PyTorch's
    // `p.grad is None`), its value and buffers untouched.
    virtual void step() = 0;
    // Drops every parameter's grad (PyTorch's set_to_none), so that the next backward starts afresh.
    void zero_grad();

    double lr() const { return lr_; }
    void set_lr(double lr);
    // The number of step() calls so far.
    std::size_t steps() const { return steps_; }
    const ParameterList<T>& parameters() const { return params_; }

    virtual std::string kind() const = 0;  // "sgd", "adam", "adamw"
    // The options as JSON ({"lr": ..., "betas": [...], ...}) with "kind" and "steps".
    virtual std::string hyperparameters_json() const = 0;

    // Every buffer by name, copied: empty before the first step and for an optimizer without buffers (SGD
    // without momentum). Throws ValueError in the (unlikely) case that a per-parameter count is too big
    // for T to hold exactly (2^24 steps for float).
    virtual std::vector<std::pair<std::string, Array<T>>> state() const;
    // Restores what state() gave and the step count. Checks that every expected name is there with the
    // parameter's shape and that there is no other name, and throws ValueError listing each difference
    // (`adam state: exp_avg.encoder.0.weight has shape (64, 16), parameter has (16, 64)`); on error
    // nothing changes.
    virtual void load_state(const std::vector<std::pair<std::string, Array<T>>>& state, std::size_t steps);

protected:
    // `kind` names the optimizer in errors raised before kind() can be called; `buffer_names` are the
    // prefixes of its per-parameter buffers ("momentum"; "exp_avg", "exp_avg_sq").
    Optimizer(std::string_view kind, ParameterList<T> params, double lr, std::vector<std::string> buffer_names);

    // Allocates the buffers (zeros of each parameter's shape) on the first call; then does nothing.
    void allocate_buffers();
    // Buffer k (an index into buffer_names_) of parameter i.
    Array<T>& buffer(std::size_t k, std::size_t i) { return buffers_[k][i]; }
    // The parameter's grad when it has one of the parameter's shape, nullptr when it has none (skip it);
    // throws ShapeError when a grad or a buffer does not fit the parameter.
    const Array<T>* grad_of(std::size_t i) const;

    ParameterList<T> params_;
    double lr_;
    std::size_t steps_ = 0;
    std::vector<std::string> buffer_names_;
    std::vector<std::vector<Array<T>>> buffers_;  // [buffer][parameter], empty until the first step
    std::vector<std::size_t> updates_;            // per parameter: the steps that updated it
};

// torch.optim.SGD: with weight decay d = g + weight_decay * w; with momentum b = d at a parameter's first
// update and b = momentum * b + (1 - dampening) * d after, then d = b (or d + momentum * b with Nesterov);
// w -= lr * d. Nesterov needs momentum > 0 and dampening = 0.
struct SGDOptions {
    double lr = 1e-3;
    double momentum = 0;
    double dampening = 0;
    bool nesterov = false;
    double weight_decay = 0;
};

template <class T>
class SGD : public Optimizer<T> {
public:
    SGD(ParameterList<T> params, SGDOptions options);
    void step() override;
    std::string kind() const override { return "sgd"; }
    std::string hyperparameters_json() const override;
    const SGDOptions& options() const { return options_; }

private:
    SGDOptions options_;
};

// torch.optim.Adam: weight decay is L2 added to the gradient (g += weight_decay * w). With t the parameter's
// update count: m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g^2,
// w -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
struct AdamOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0;
};

// torch.optim.AdamW: decoupled weight decay, w *= 1 - lr * weight_decay before Adam's update without L2.
struct AdamWOptions {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 1e-2;
};

template <class T>
class Adam : public Optimizer<T> {
public:
    Adam(ParameterList<T> params, AdamOptions options);
    void step() override;
    std::string kind() const override { return decoupled_ ? "adamw" : "adam"; }
    std::string hyperparameters_json() const override;
    const AdamOptions& options() const { return options_; }

protected:
    Adam(std::string_view kind, ParameterList<T> params, AdamOptions options, bool decoupled);

private:
    AdamOptions options_;
    bool decoupled_;  // AdamW's weight decay
};

template <class T>
class AdamW : public Adam<T> {
public:
    AdamW(ParameterList<T> params, AdamWOptions options);
};

// torch.nn.utils.clip_grad_norm_ (2-norm): with N the norm of all grads together (accumulated in double),
// scales every grad by max_norm / (N + 1e-6) when that is below 1. Returns N, before clipping; 0 when no
// parameter has a grad. max_norm must be positive (infinity: only measure).
template <class T>
double clip_grad_norm(const ParameterList<T>& params, double max_norm);

// Flush-to-zero and denormals-are-zero for a scope (MXCSR's FTZ and DAZ bits on x86; a no-op elsewhere),
// restoring the previous mode on exit. Adam's second-moment buffers drift into denormals late in training,
// where each operation on them costs about a hundred cycles (PyTorch's CPU Adam slows 1.5x). MXCSR is
// per thread: the mode holds for the thread that made the object, not for BLAS's worker threads.
class FlushDenormals {
public:
    FlushDenormals() noexcept;
    ~FlushDenormals();
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;

private:
    unsigned int previous_;
};

// Whether this thread flushes denormal results to zero and reads denormal inputs as zero (FTZ and DAZ).
bool denormals_flushed() noexcept;

extern template class Optimizer<float>;
extern template class Optimizer<double>;
extern template class SGD<float>;
extern template class SGD<double>;
extern template class Adam<float>;
extern template class Adam<double>;
extern template class AdamW<float>;
extern template class AdamW<double>;
extern template double clip_grad_norm<float>(const ParameterList<float>&, double);
extern template double clip_grad_norm<double>(const ParameterList<double>&, double);

}  // namespace tapegrad::nn
