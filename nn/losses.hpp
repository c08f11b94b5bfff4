// Losses and penalties, composed from the engine's ops: their gradients come from the ops' own
// backward formulas, already checked, and no loss has a backward of its own.
#pragma once

#include <span>

#include "tapegrad/autodiff/var.hpp"
#include "tapegrad/nn/parameter.hpp"

namespace tapegrad::nn {

// Mean squared error over every element.
template <class T>
Var<T> mse(const Var<T>& prediction, const Var<T>& target);
// Mean squared error of each sample (row): shape (batch,).
template <class T>
Var<T> mse_per_sample(const Var<T>& prediction, const Var<T>& target);

// Binary cross-entropy of probabilities, mean over every element. As in PyTorch, each log is bounded
// below by -100, so p = 0 or 1 gives a large finite loss, never Inf.
template <class T>
Var<T> binary_cross_entropy(const Var<T>& probability, const Var<T>& target);
// The same from logits z, stable for any z: softplus(z) - t z.
template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& target);

// Sparsity penalty: sum over units j of KL(rho || rho_hat_j) between Bernoulli means, where rho_hat holds
// each unit's mean activation, shape (units,). rho_hat is clamped to [eps, 1 - eps] first, because
// the KL is infinite at 0 and 1; outside that band its gradient is 0.
template <class T>
Var<T> kl_bernoulli(double rho, const Var<T>& rho_hat, double eps = 1e-6);

// sum |w| and sum w^2 over the given parameters (scale them yourself: lambda / 2 * l2_penalty).
template <class T>
Var<T> l1_penalty(std::span<const Var<T>> parameters);
template <class T>
Var<T> l2_penalty(std::span<const Var<T>> parameters);
// The weights of a parameter list (names ending in "weight"): what weight decay penalties usually cover.
template <class T>
std::vector<Var<T>> weights_of(const ParameterList<T>& parameters);

}  // namespace tapegrad::nn
