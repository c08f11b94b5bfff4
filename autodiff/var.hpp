// Var<T>: a handle to a value in the graph (T = float for training, double for gradient checks).
//
// A Var is an intrusive, reference-counted pointer to a node holding the value, its gradient and, for a
// value produced by an op, the place of that op on the tape. Copying a Var copies the handle, never the
// value. Nodes whose last handle goes away return to a per-thread pool together with their buffers, so a
// training step that records the same graph as the step before reuses the buffers of that step.
// A graph belongs to the thread that recorded it: handles are not shared between threads.
//
// Var<float> and Var<double> are instantiated in autodiff/var.cpp; no other file instantiates them.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include <xtensor/xarray.hpp>

#include "tapegrad/autodiff/error.hpp"

namespace tapegrad {

// Values are xtensor containers, row-major and contiguous.
template <class T>
using Array = xt::xarray<T>;

template <class T>
class Var;

// backward(y, {.create_graph = true}) records the backward pass so that it can be differentiated
// again; create_graph implies retain_graph. Without retain_graph, the part of the tape that the
// sweep went through is freed, and sweeping it again is an error.
struct BackwardOptions {
    bool retain_graph = false;
    bool create_graph = false;
};

namespace detail {

template <class T>
struct Node;

// Nodes come from and go back to a per-thread pool keyed by the size of their value.
template <class T>
Node<T>* acquire_node(const Shape& shape);
template <class T>
void release_node(Node<T>* node) noexcept;

struct Modes {
    bool grad = true;             // ops record onto the tape
    bool check_numerics = false;  // ops check their outputs and gradients for NaN and Inf
};
inline thread_local Modes modes;

}  // namespace detail

template <class T>
class Var {
public:
    using value_type = T;

    Var() noexcept = default;
    // A leaf. A leaf that requires grad gathers its gradient in grad() across backward calls.
    explicit Var(Array<T>&& value, bool requires_grad = false, std::string name = {});
    // The same from a copy of `value`, made into a buffer the thread's pool keeps for that size: a new
    // batch each step allocates nothing.
    explicit Var(const Array<T>& value, bool requires_grad = false, std::string name = {});
    // A leaf that requires grad, with the name that gradient checks and errors report.
    static Var parameter(Array<T> value, std::string name);
    // A 0-d constant.
    static Var scalar(T value);

    Var(const Var& other) noexcept : node_(other.node_) { retain(); }
    Var(Var&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
    Var& operator=(const Var& other) noexcept {
        Var(other).swap(*this);
        return *this;
    }
    Var& operator=(Var&& other) noexcept {
        Var(std::move(other)).swap(*this);
        return *this;
    }
    ~Var() { reset(); }

    void reset() noexcept {
        if (node_ != nullptr && --node_->refs == 0) {
            detail::release_node(node_);
        }
        node_ = nullptr;
    }
    void swap(Var& other) noexcept { std::swap(node_, other.node_); }
    bool defined() const noexcept { return node_ != nullptr; }

    const Array<T>& value() const { return checked()->value; }
    // In-place access for optimizers and gradient checks. Changing a value that the tape saved for
    // backward changes the gradient that backward computes, as in PyTorch's `.data`.
    Array<T>& mutable_value() { return checked()->value; }
    const Shape& shape() const { return checked()->value.shape(); }
    std::size_t size() const { return checked()->value.size(); }
    std::size_t ndim() const { return checked()->value.dimension(); }
    // The single element of a value of size 1.
    T item() const;

    bool requires_grad() const { return checked()->requires_grad; }
    // Leaves only: whether backward gathers a gradient for this value.
    Var& set_requires_grad(bool on);
    bool is_leaf() const { return checked()->serial == 0; }
    const std::string& name() const { return checked()->name; }
    Var& set_name(std::string name);

    // The gradient gathered by backward (an undefined Var before the first backward).
    const Var& grad() const { return checked()->grad; }
    void zero_grad() { checked()->grad.reset(); }
    // A new leaf holding a copy of the value, cut from the graph.
    Var detach() const;

    void backward(BackwardOptions options = {}) const;

    detail::Node<T>* node() const noexcept { return node_; }
    // Adopts a node, adding a reference.
    explicit Var(detail::Node<T>* node) noexcept : node_(node) { retain(); }

private:
    void retain() noexcept {
        if (node_ != nullptr) {
            ++node_->refs;
        }
    }
    detail::Node<T>* checked() const {
        if (node_ == nullptr) {
            detail::throw_graph_error("var: empty handle (a default-constructed or moved-from Var)");
        }
        return node_;
    }

    detail::Node<T>* node_ = nullptr;
};

namespace detail {

template <class T>
struct Node {
    Array<T> value;
    Var<T> grad;               // gathered across backward calls (leaves)
    Var<T> pending;            // gathered during one backward sweep
    std::string name;          // a parameter's full name; empty for intermediate values
    std::uint64_t serial = 0;  // 0 for a leaf, else the serial of the tape entry that produced it
    std::uint32_t entry = 0;   // the index of that entry on the tape
    std::uint32_t refs = 0;
    bool requires_grad = false;
};

// A fresh, uninitialised value of the given shape from the pool: an op's output.
template <class T>
Var<T> empty(const Shape& shape);
template <class T>
Var<T> full(const Shape& shape, T fill);
template <class T>
Var<T> constant(T value) {
    return full<T>(Shape{}, value);
}

}  // namespace detail

// Gradient mode: ops record onto the tape only while it is on (the default).
inline bool grad_enabled() noexcept { return detail::modes.grad; }

// Sets gradient mode for a scope and restores it on exit: GradMode off(false) is NoGrad.
class GradMode {
public:
    explicit GradMode(bool on) noexcept : previous_(std::exchange(detail::modes.grad, on)) {}
    ~GradMode() { detail::modes.grad = previous_; }
    GradMode(const GradMode&) = delete;
    GradMode& operator=(const GradMode&) = delete;

private:
    bool previous_;
};

class NoGrad : public GradMode {
public:
    NoGrad() noexcept : GradMode(false) {}
};

// Checking mode: while on, the first op whose forward or backward yields NaN or Inf throws a
// NumericError naming the op, its inputs' shapes and which input was bad. Off by default.
inline bool check_numerics_enabled() noexcept { return detail::modes.check_numerics; }
inline void set_check_numerics(bool on) noexcept { detail::modes.check_numerics = on; }

class CheckNumerics {
public:
    explicit CheckNumerics(bool on = true) noexcept
        : previous_(std::exchange(detail::modes.check_numerics, on)) {}
    ~CheckNumerics() { detail::modes.check_numerics = previous_; }
    CheckNumerics(const CheckNumerics&) = delete;
    CheckNumerics& operator=(const CheckNumerics&) = delete;

private:
    bool previous_;
};

// Returns the cached buffers of this thread's pool to the system.
template <class T>
void release_cached_memory();

extern template class Var<float>;
extern template class Var<double>;

}  // namespace tapegrad
