#include "tapegrad/nn/module.hpp"

#include <fmt/format.h>

#include "tapegrad/autodiff/error.hpp"

namespace tapegrad::nn {

template <class T>
Var<T>& Module<T>::register_parameter(const std::string& name, Array<T> value) {
    for (const auto& [existing, var] : parameters_) {
        if (existing == name) {
            detail::throw_value_error(fmt::format("{}: parameter \"{}\" registered twice", describe(), name));
        }
    }
    parameters_.emplace_back(name, Var<T>::parameter(std::move(value), prefix_ + name));
    return parameters_.back().second;
}

template <class T>
void Module<T>::add_child(const std::string& name, std::shared_ptr<Module<T>> module) {
    if (!module) {
        detail::throw_value_error(fmt::format("{}: child \"{}\" is empty", describe(), name));
    }
    for (const auto& [existing, child] : children_) {
        if (existing == name) {
            detail::throw_value_error(fmt::format("{}: child \"{}\" registered twice", describe(), name));
        }
    }
    module->apply_prefix(prefix_ + name + ".");
    children_.emplace_back(name, std::move(module));
}

template <class T>
void Module<T>::apply_prefix(const std::string& prefix) {
    prefix_ = prefix;
    for (auto& [name, var] : parameters_) {
        var.set_name(prefix + name);
    }
    for (auto& [name, child] : children_) {
        child->apply_prefix(prefix + name + ".");
    }
}

template <class T>
void Module<T>::collect(const std::string& prefix, ParameterList<T>& out) const {
    for (const auto& [name, var] : parameters_) {
        out.push_back({prefix + name, var});
    }
    for (const auto& [name, child] : children_) {
        child->collect(prefix + name + ".", out);
    }
}

template <class T>
ParameterList<T> Module<T>::named_parameters() const {
    ParameterList<T> out;
    collect(prefix_, out);
    return out;
}

template <class T>
std::vector<Var<T>> Module<T>::parameters() const {
    std::vector<Var<T>> out;
    for (auto& p : named_parameters()) {
        out.push_back(p.var);
    }
    return out;
}

template <class T>
std::size_t Module<T>::parameter_count() const {
    std::size_t n = 0;
    for (const auto& p : named_parameters()) {
        n += p.var.size();
    }
    return n;
}

template <class T>
void Module<T>::train(bool on) {
    training_ = on;
    for (auto& [name, child] : children_) {
        child->train(on);
    }
}

template <class T>
void Module<T>::zero_grad() {
    for (auto& p : named_parameters()) {
        p.var.zero_grad();
    }
}

template <class T>
void Module<T>::summarize(const std::string& name, std::size_t depth, std::string& out) const {
    std::string shapes;
    std::size_t own = 0;
    for (const auto& [local, var] : parameters_) {
        shapes += fmt::format("{}{} {}", shapes.empty() ? "" : ", ", local, tapegrad::to_string(var.shape()));
        own += var.size();
    }
    std::string label = fmt::format("{:{}}{}{}", "", 2 * depth, name.empty() ? "" : name + "  ", describe());
    if (!shapes.empty() && label.size() >= 36) {
        label += "  ";  // a long layer (a convolution's geometry) pushes its shapes right, never against it
    }
    out += shapes.empty() ? label + "\n" : fmt::format("{:<36}{:<44}{:>10}\n", label, shapes, own);
    for (const auto& [child_name, child] : children_) {
        child->summarize(child_name, depth + 1, out);
    }
}

template <class T>
std::string Module<T>::summary() const {
    std::string out;
    summarize("", 0, out);
    out += fmt::format("parameters: {}\n", parameter_count());
    return out;
}

template <class T>
Sequential<T>::Sequential(std::vector<std::shared_ptr<Module<T>>> modules) {
    for (auto& m : modules) {
        add(std::move(m));
    }
}

template <class T>
Module<T>& Sequential<T>::operator[](std::size_t i) const {
    if (i >= size_) {
        detail::throw_value_error(fmt::format("Sequential: index {} out of range for {} modules", i, size_));
    }
    return *this->children()[i].second;
}

template <class T>
Var<T> Sequential<T>::forward(const Var<T>& x) {
    const auto& children = this->children();
    Var<T> h = x;
    for (std::size_t i = 0; i < children.size(); ++i) {
        Module<T>& child = *children[i].second;
        if (i + 1 < children.size()) {
            if (std::optional<Activation> act = children[i + 1].second->activation()) {
                if (Var<T> y = child.forward_activated(h, *act); y.defined()) {
                    h = std::move(y);
                    ++i;
                    continue;
                }
            }
        }
        h = child.forward(h);
    }
    return h;
}

template class Module<float>;
template class Module<double>;
template class Sequential<float>;
template class Sequential<double>;

}  // namespace tapegrad::nn
