// The tape: a Wengert list of the ops recorded on this thread, swept once in reverse by backward.
//
// Every differentiable op evaluated while gradient mode is on, with an input that requires grad,
// appends one entry: the op, its output, its inputs and what its backward formula needs. backward(y)
// seeds dy and walks the entries from y's down to the first, sending each output's gradient to the
// inputs through the op's formula; the tape is already in execution order, so no graph search is
// needed. Entries that no live value can reach any more are collected as the tape grows.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// Gradients of y gathered into grad() of every leaf that requires grad. y must hold a single element;
// a non-scalar y takes an explicit seed of its shape (the vector in the vector-Jacobian product).
template <class T>
void backward(const Var<T>& y, BackwardOptions options = {});
template <class T>
void backward(const Var<T>& y, const Var<T>& seed, BackwardOptions options = {});

// The gradients of y with respect to `inputs` (leaves or intermediate values), returned rather than
// gathered into grad(): torch.autograd.grad. An input that y does not depend on gets zeros. With
// create_graph the results are themselves differentiable.
template <class T>
std::vector<Var<T>> grad(const Var<T>& y, std::span<const Var<T>> inputs, BackwardOptions options = {},
                         const Var<T>& seed = {});

// Entries on this thread's tape that are still live.
template <class T>
std::size_t tape_size();
// Drops every entry: the values on the tape can no longer be swept by backward.
template <class T>
void clear_tape();
// One line per live entry: index, op name, output shape, input shapes.
template <class T>
std::string dump_tape();

}  // namespace tapegrad
