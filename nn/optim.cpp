#include "tapegrad/nn/optim.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tapegrad/autodiff/parallel.hpp"

#if defined(__SSE__) || defined(_M_X64)
#include <xmmintrin.h>
#define TAPEGRAD_HAS_MXCSR 1
#else
#define TAPEGRAD_HAS_MXCSR 0
#endif

namespace tapegrad::nn {

namespace {

using detail::throw_shape_error;
using detail::throw_value_error;

// `what` must be a finite number >= 0 (NaN fails too, which a plain `x < 0` would let through).
void check_non_negative(std::string_view kind, std::string_view what, double x) {
    if (!(x >= 0) || !std::isfinite(x)) {
        throw_value_error(fmt::format("{}: {} must be a finite number >= 0: got {}", kind, what, x));
    }
}

void check_beta(std::string_view kind, std::string_view what, double beta) {
    if (!(beta >= 0 && beta < 1)) {
        throw_value_error(fmt::format("{}: {} must be in [0, 1): got {}", kind, what, beta));
    }
}

const SGDOptions& checked(const SGDOptions& o) {
    check_non_negative("sgd", "lr", o.lr);
    check_non_negative("sgd", "momentum", o.momentum);
    check_non_negative("sgd", "weight_decay", o.weight_decay);
    if (!std::isfinite(o.dampening)) {
        throw_value_error(fmt::format("sgd: dampening must be finite: got {}", o.dampening));
    }
    if (o.nesterov && !(o.momentum > 0 && o.dampening == 0)) {
        throw_value_error(fmt::format("sgd: nesterov needs momentum > 0 and dampening = 0: got momentum {}, "
                                      "dampening {}",
                                      o.momentum, o.dampening));
    }
    return o;
}

const AdamOptions& checked(std::string_view kind, const AdamOptions& o) {
    check_non_negative(kind, "lr", o.lr);
    check_beta(kind, "beta1", o.beta1);
    check_beta(kind, "beta2", o.beta2);
    check_non_negative(kind, "eps", o.eps);
    check_non_negative(kind, "weight_decay", o.weight_decay);
    return o;
}

// Names key the state, so they must be there and differ; an undefined Var has no value to update.
template <class T>
ParameterList<T> checked(std::string_view kind, ParameterList<T> params) {
    std::unordered_set<std::string_view> seen;
    for (std::size_t i = 0; i < params.size(); ++i) {
        const NamedParameter<T>& p = params[i];
        if (p.name.empty()) {
            throw_value_error(fmt::format("{}: parameter {} has no name", kind, i));
        }
        if (!p.var.defined()) {
            throw_value_error(fmt::format("{}: parameter {} is an empty Var", kind, p.name));
        }
        if (!seen.insert(p.name).second) {
            throw_value_error(fmt::format("{}: parameter {} appears twice", kind, p.name));
        }
    }
    return params;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Optimizer

template <class T>
Optimizer<T>::Optimizer(ParameterList<T> params, double lr)
    : Optimizer("optimizer", std::move(params), lr, {}) {}

template <class T>
Optimizer<T>::Optimizer(std::string_view kind, ParameterList<T> params, double lr,
                        std::vector<std::string> buffer_names)
    : params_(checked(kind, std::move(params))),
      lr_(lr),
      buffer_names_(std::move(buffer_names)),
      updates_(params_.size(), 0) {
    check_non_negative(kind, "lr", lr);
}

template <class T>
Optimizer<T>::~Optimizer() = default;

template <class T>
void Optimizer<T>::zero_grad() {
    for (NamedParameter<T>& p : params_) {
        p.var.zero_grad();
    }
}

template <class T>
void Optimizer<T>::set_lr(double lr) {
    check_non_negative(kind(), "lr", lr);
    lr_ = lr;
}

template <class T>
void Optimizer<T>::allocate_buffers() {
    if (!buffers_.empty() || buffer_names_.empty()) {
        return;
    }
    std::vector<std::vector<Array<T>>> buffers(buffer_names_.size());
    for (std::vector<Array<T>>& per_parameter : buffers) {
        per_parameter.reserve(params_.size());
        for (const NamedParameter<T>& p : params_) {
            per_parameter.push_back(xt::zeros<T>(p.var.shape()));
        }
    }
    buffers_ = std::move(buffers);
}

template <class T>
const Array<T>* Optimizer<T>::grad_of(std::size_t i) const {
    const NamedParameter<T>& p = params_[i];
    const Var<T>& g = p.var.grad();
    if (!g.defined()) {
        return nullptr;
    }
    const Shape& shape = p.var.shape();
    if (g.shape() != shape) {
        throw_shape_error(fmt::format("{}: grad of {} has shape {}, parameter has {}", kind(), p.name,
                                      to_string(g.shape()), to_string(shape)));
    }
    // A parameter resized after the first step would make the loops read past its buffers.
    if (!buffers_.empty() && buffers_[0][i].shape() != shape) {
        throw_shape_error(fmt::format("{}: parameter {} has shape {}, its {} buffer has {}", kind(), p.name,
                                      to_string(shape), buffer_names_[0], to_string(buffers_[0][i].shape())));
    }
    return &g.value();
}

template <class T>
std::vector<std::pair<std::string, Array<T>>> Optimizer<T>::state() const {
    std::vector<std::pair<std::string, Array<T>>> out;
    if (buffers_.empty()) {
        return out;
    }
    for (std::size_t i = 0; i < params_.size(); ++i) {
        const std::string& name = params_[i].name;
        for (std::size_t k = 0; k < buffer_names_.size(); ++k) {
            out.emplace_back(buffer_names_[k] + "." + name, buffers_[k][i]);
        }
        if (updates_[i] != steps_) {
            auto count = static_cast<T>(updates_[i]);
            if (static_cast<std::size_t>(count) != updates_[i]) {
                throw_value_error(fmt::format("{} state: the step count of {} ({}) is not exact in this type",
                                              kind(), name, updates_[i]));
            }
            out.emplace_back("step." + name, Array<T>(count));
        }
    }
    return out;
}

template <class T>
void Optimizer<T>::load_state(const std::vector<std::pair<std::string, Array<T>>>& state, std::size_t steps) {
    const bool has_buffers = steps > 0 && !buffer_names_.empty();
    std::vector<std::string> problems;
    std::unordered_map<std::string_view, std::size_t> given;
    for (std::size_t j = 0; j < state.size(); ++j) {
        if (!given.emplace(state[j].first, j).second) {
            problems.push_back(fmt::format("{} appears twice", state[j].first));
        }
    }
    std::vector<bool> used(state.size(), false);
    auto find = [&](const std::string& name) -> const Array<T>* {
        auto it = given.find(name);
        if (it == given.end()) {
            return nullptr;
        }
        used[it->second] = true;
        return &state[it->second].second;
    };

    std::vector<std::vector<Array<T>>> buffers(has_buffers ? buffer_names_.size() : 0);
    std::vector<std::size_t> updates(params_.size(), steps);
    for (std::size_t i = 0; has_buffers && i < params_.size(); ++i) {
        const std::string& pname = params_[i].name;
        const Shape& shape = params_[i].var.shape();
        for (std::size_t k = 0; k < buffer_names_.size(); ++k) {
            std::string name = buffer_names_[k] + "." + pname;
            const Array<T>* a = find(name);
            if (a == nullptr) {
                problems.push_back(fmt::format("{} is missing", name));
            } else if (a->shape() != shape) {
                problems.push_back(fmt::format("{} has shape {}, parameter has {}", name, to_string(a->shape()),
                                               to_string(shape)));
            } else {
                buffers[k].push_back(*a);
            }
        }
        std::string name = "step." + pname;
        if (const Array<T>* a = find(name)) {
            double count = a->size() == 1 ? static_cast<double>(*a->data()) : -1;
            if (a->dimension() != 0) {
                problems.push_back(fmt::format("{} has shape {}, a step count has ()", name, to_string(a->shape())));
            } else if (!(count >= 0 && count <= static_cast<double>(steps) && count == std::floor(count))) {
                problems.push_back(
                    fmt::format("{} is {}, not a whole number of steps from 0 to {}", name, count, steps));
            } else {
                updates[i] = static_cast<std::size_t>(count);
            }
        }
    }
    if (steps == 0 && !buffer_names_.empty() && !state.empty()) {
        problems.push_back("steps is 0, and there is no state before the first step");
    }
    for (std::size_t j = 0; j < state.size(); ++j) {
        if (!used[j] && given.at(state[j].first) == j) {
            problems.push_back(fmt::format("unexpected name {}", state[j].first));
        }
    }
    if (!problems.empty()) {
        constexpr std::size_t shown = 8;
        std::string more = problems.size() > shown ? fmt::format("; and {} more", problems.size() - shown) : "";
        problems.resize(std::min(problems.size(), shown));
        throw_value_error(fmt::format("{} state: {}{}", kind(), fmt::join(problems, "; "), more));
    }
    buffers_ = std::move(buffers);
    updates_ = std::move(updates);
    steps_ = steps;
}

// ---------------------------------------------------------------------------------------------------------
// SGD

template <class T>
SGD<T>::SGD(ParameterList<T> params, SGDOptions options)
    : Optimizer<T>("sgd", std::move(params), checked(options).lr,
                   options.momentum != 0 ? std::vector<std::string>{"momentum"} : std::vector<std::string>{}),
      options_(options) {}

template <class T>
void SGD<T>::step() {
    this->allocate_buffers();
    const T lr = static_cast<T>(this->lr_);
    const T decay = static_cast<T>(options_.weight_decay);
    const T momentum = static_cast<T>(options_.momentum);
    const T keep = static_cast<T>(1 - options_.dampening);
    const bool decays = options_.weight_decay != 0;  // PyTorch skips the term: 0 * inf would be NaN
    const bool has_momentum = options_.momentum != 0;
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
        const Array<T>* dw = this->grad_of(i);
        if (dw == nullptr) {
            continue;
        }
        T* w = this->params_[i].var.mutable_value().data();
        const T* g = dw->data();
        const std::size_t n = dw->size();
        if (!has_momentum) {
            for (std::size_t j = 0; j < n; ++j) {
                T d = decays ? g[j] + decay * w[j] : g[j];
                w[j] -= lr * d;
            }
        } else {
            // The buffer starts as the first gradient itself, not dampened (PyTorch's clone(d_p)).
            T* b = this->buffer(0, i).data();
            const bool first = this->updates_[i] == 0;
            for (std::size_t j = 0; j < n; ++j) {
                T d = decays ? g[j] + decay * w[j] : g[j];
                b[j] = first ? d : b[j] * momentum + keep * d;
                d = options_.nesterov ? d + momentum * b[j] : b[j];
                w[j] -= lr * d;
            }
        }
        ++this->updates_[i];
    }
    ++this->steps_;
}

template <class T>
std::string SGD<T>::hyperparameters_json() const {
    nlohmann::json j = {{"kind", kind()},
                        {"lr", this->lr_},
                        {"momentum", options_.momentum},
                        {"dampening", options_.dampening},
                        {"nesterov", options_.nesterov},
                        {"weight_decay", options_.weight_decay},
                        {"steps", this->steps_}};
    return j.dump();
}

// ---------------------------------------------------------------------------------------------------------
// Adam, AdamW

template <class T>
Adam<T>::Adam(ParameterList<T> params, AdamOptions options) : Adam("adam", std::move(params), options, false) {}

template <class T>
Adam<T>::Adam(std::string_view kind, ParameterList<T> params, AdamOptions options, bool decoupled)
    : Optimizer<T>(kind, std::move(params), checked(kind, options).lr, {"exp_avg", "exp_avg_sq"}),
      options_(options),
      decoupled_(decoupled) {}

template <class T>
void Adam<T>::step() {
    this->allocate_buffers();
    const double lr = this->lr_;
    const T beta1 = static_cast<T>(options_.beta1);
    const T beta2 = static_cast<T>(options_.beta2);
    const T rest1 = static_cast<T>(1 - options_.beta1);
    const T rest2 = static_cast<T>(1 - options_.beta2);
    const T eps = static_cast<T>(options_.eps);
    const T decay = static_cast<T>(options_.weight_decay);
    const bool l2 = !decoupled_ && options_.weight_decay != 0;
    const T shrink = static_cast<T>(1 - lr * options_.weight_decay);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
        const Array<T>* dw = this->grad_of(i);
        if (dw == nullptr) {
            continue;
        }
        // Bias corrections use the parameter's own count, as PyTorch's per-parameter state['step'].
        const auto t = static_cast<double>(++this->updates_[i]);
        const T step_size = static_cast<T>(lr / (1 - std::pow(options_.beta1, t)));
        const T correction2 = static_cast<T>(std::sqrt(1 - std::pow(options_.beta2, t)));
        T* w = this->params_[i].var.mutable_value().data();
        T* m = this->buffer(0, i).data();
        T* v = this->buffer(1, i).data();
        const T* g = dw->data();
        const std::size_t n = dw->size();
        const bool decoupled = decoupled_;
        // Captured by value: with references to locals the compiler cannot prove w, m, v and g apart from
        // them, and the loop would not vectorise.
        parallel_for(n, detail::elementwise_grain, [=](std::size_t begin, std::size_t end) {
            if (decoupled) {
                for (std::size_t j = begin; j < end; ++j) {
                    w[j] *= shrink;
                }
            }
            for (std::size_t j = begin; j < end; ++j) {
                T d = l2 ? g[j] + decay * w[j] : g[j];
                m[j] = m[j] * beta1 + rest1 * d;
                v[j] = v[j] * beta2 + rest2 * d * d;
                T denom = std::sqrt(v[j]) / correction2 + eps;
                w[j] -= step_size * (m[j] / denom);
            }
        });
    }
    ++this->steps_;
}

template <class T>
std::string Adam<T>::hyperparameters_json() const {
    nlohmann::json j = {{"kind", kind()},
                        {"lr", this->lr_},
                        {"betas", {options_.beta1, options_.beta2}},
                        {"eps", options_.eps},
                        {"weight_decay", options_.weight_decay},
                        {"steps", this->steps_}};
    return j.dump();
}

template <class T>
AdamW<T>::AdamW(ParameterList<T> params, AdamWOptions o)
    : Adam<T>("adamw", std::move(params),
              {.lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps, .weight_decay = o.weight_decay},
              true) {}

// ---------------------------------------------------------------------------------------------------------
// Gradient clipping

template <class T>
double clip_grad_norm(const ParameterList<T>& params, double max_norm) {
    if (!(max_norm > 0)) {
        throw_value_error(fmt::format("clip_grad_norm: max_norm must be positive: got {}", max_norm));
    }
    double sum = 0;
    for (const NamedParameter<T>& p : params) {
        if (const Var<T>& g = p.var.grad(); g.defined()) {
            const T* d = g.value().data();
            for (std::size_t j = 0, n = g.size(); j < n; ++j) {
                sum += static_cast<double>(d[j]) * static_cast<double>(d[j]);
            }
        }
    }
    const double total = std::sqrt(sum);
    const double coefficient = max_norm / (total + 1e-6);
    // Written so that a NaN norm scales too, as PyTorch does: a NaN gradient should not pass unnoticed.
    if (!(coefficient >= 1)) {
        const T c = static_cast<T>(coefficient);
        for (const NamedParameter<T>& p : params) {
            if (Var<T> g = p.var.grad(); g.defined()) {
                T* d = g.mutable_value().data();
                for (std::size_t j = 0, n = g.size(); j < n; ++j) {
                    d[j] *= c;
                }
            }
        }
    }
    return total;
}

// ---------------------------------------------------------------------------------------------------------
// Flush-to-zero

#if TAPEGRAD_HAS_MXCSR
namespace {
constexpr unsigned int ftz_daz = 0x8000u | 0x0040u;  // MXCSR bit 15: flush to zero; bit 6: denormals are zero
}
FlushDenormals::FlushDenormals() noexcept : previous_(_mm_getcsr()) { _mm_setcsr(previous_ | ftz_daz); }
FlushDenormals::~FlushDenormals() { _mm_setcsr(previous_); }
bool denormals_flushed() noexcept { return (_mm_getcsr() & ftz_daz) == ftz_daz; }
#else
FlushDenormals::FlushDenormals() noexcept : previous_(0) {}
FlushDenormals::~FlushDenormals() = default;
bool denormals_flushed() noexcept { return false; }
#endif

template class Optimizer<float>;
template class Optimizer<double>;
template class SGD<float>;
template class SGD<double>;
template class Adam<float>;
template class Adam<double>;
template class AdamW<float>;
template class AdamW<double>;
template double clip_grad_norm<float>(const ParameterList<float>&, double);
template double clip_grad_norm<double>(const ParameterList<double>&, double);

}  // namespace tapegrad::nn
