// Data-parallel training's parameter plumbing across the ranks of an MPI job (autodiff/distributed.hpp):
// the same parameters everywhere, the gradients summed. Alone (one process) each is a no-op.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "tapegrad/autodiff/distributed.hpp"
#include "tapegrad/nn/parameter.hpp"

namespace tapegrad::nn {

// Every parameter's value as rank 0 has it, on every rank: after initialisation or a resume.
template <class T>
void broadcast_parameters(const ParameterList<T>& params);

// Each parameter's grad summed over the ranks, in place, the grads packed into buckets of up to
// `bucket_bytes` so that each bucket is one MPI call (PyTorch DDP's 25 MB is for networks; these models
// fit in one or two). A parameter must have a grad on every rank or on none (DistributedError naming it
// otherwise); those without are left without.
template <class T>
void all_reduce_gradients(const ParameterList<T>& params, std::size_t bucket_bytes = std::size_t(4) << 20);

// What all_reduce_gradients has done in this process since it started or since the last reset: the
// calls, the MPI sums they made (the check of which grads are there included), the bytes of gradient they
// summed (each rank's payload: a ring all-reduce sends 2 (N - 1) / N of it from each rank), and the
// seconds they took, waiting for the slowest rank included. What a benchmark reads to give communication's
// share of a step.
struct GradientReduceStats {
    std::size_t calls = 0;
    std::size_t sums = 0;
    std::size_t bytes = 0;
    double seconds = 0;
};
GradientReduceStats gradient_reduce_stats();
void reset_gradient_reduce_stats();

// Throws DistributedError when `text` differs between the ranks: `what` differs between the ranks, with
// rank 0's text and the first other rank's. Every rank must call it with the same `what`.
void check_same_on_all_ranks(std::string_view what, const std::string& text);

}  // namespace tapegrad::nn
