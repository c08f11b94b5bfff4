// Module: owns named parameters and child modules, as torch.nn.Module does.
//
// A parameter's full name is its path from the outermost module (`encoder.0.weight`): registering a
// module as a child renames its parameters' Vars, so gradient checks, NaN checks and checkpoints all
// print the same full names. Modules own their parameters and are not copied.
//
// Instantiated for float and double in nn/module.cpp.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/autodiff/var.hpp"
#include "tapegrad/nn/parameter.hpp"

namespace tapegrad::nn {

template <class T>
class Module {
public:
    Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    virtual ~Module() = default;

    virtual Var<T> forward(const Var<T>& x) = 0;
    Var<T> operator()(const Var<T>& x) { return forward(x); }
    // What the summary shows for this module itself: `Linear(64, 16)`, `Tanh`.
    virtual std::string describe() const = 0;

    // Every parameter, this module's first, then each child's in registration order, with full names.
    ParameterList<T> named_parameters() const;
    std::vector<Var<T>> parameters() const;
    std::size_t parameter_count() const;
    const std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>>& children() const { return children_; }

    // Training mode (the default) or evaluation mode, for this module and all below it: Dropout acts only
    // in training mode.
    void train(bool on = true);
    void eval() { train(false); }
    bool training() const { return training_; }
    void zero_grad();

    // One line per module, indented by depth, with parameter shapes and counts, and the total.
    std::string summary() const;

    // What lets Sequential run a layer and the activation after it as one op (linear_activation): the
    // activation a module is (ReLU, Sigmoid, Tanh), and forward(x) followed by `act` in one op, undefined
    // where the module has no such op.
    virtual std::optional<Activation> activation() const { return std::nullopt; }
    virtual Var<T> forward_activated(const Var<T>& /*x*/, Activation /*act*/) { return {}; }

protected:
    Var<T>& register_parameter(const std::string& name, Array<T> value);
    template <class M>
    M& register_module(const std::string& name, std::shared_ptr<M> module) {
        add_child(name, module);
        return *module;
    }

private:
    void add_child(const std::string& name, std::shared_ptr<Module<T>> module);
    // Renames the parameters' Vars below this module as `prefix` + their local path.
    void apply_prefix(const std::string& prefix);
    void collect(const std::string& prefix, ParameterList<T>& out) const;
    void summarize(const std::string& name, std::size_t depth, std::string& out) const;

    std::vector<std::pair<std::string, Var<T>>> parameters_;  // local names
    std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> children_;
    std::string prefix_;
    bool training_ = true;
};

// Modules applied in order; children are named "0", "1", ... A layer followed by an activation it can
// apply itself (Linear then ReLU, Sigmoid or Tanh) runs as one op: the same values, one pass and one
// buffer fewer.
template <class T>
class Sequential : public Module<T> {
public:
    Sequential() = default;
    explicit Sequential(std::vector<std::shared_ptr<Module<T>>> modules);

    template <class M>
    Sequential& add(std::shared_ptr<M> module) {
        this->register_module(std::to_string(size_), std::move(module));
        ++size_;
        return *this;
    }
    std::size_t size() const { return size_; }
    Module<T>& operator[](std::size_t i) const;

    Var<T> forward(const Var<T>& x) override;
    std::string describe() const override { return "Sequential"; }

private:
    std::size_t size_ = 0;
};

extern template class Module<float>;
extern template class Module<double>;
extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace tapegrad::nn
