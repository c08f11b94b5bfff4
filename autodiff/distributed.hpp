// Several processes as one: the ranks of an MPI job (`mpirun -np N program ...`), for data-parallel
// training. Each rank computes on its own share of the data, and sums go across the ranks through MPI
// (OpenMPI, Debian's libopenmpi-dev, when the library is built with it).
//
// A process started without mpirun, or a build without MPI, is one rank of one: rank() is 0, size() is
// 1, the sums return their input, and MPI is never initialised. So the library and the programs work as
// on one machine, and MPI's start-up cost (a fraction of a second) is paid only under mpirun.
//
// Every rank must make the same calls with the same sizes in the same order: a sum is a meeting point.
// A failure of MPI throws DistributedError naming the call; a rank that dies makes mpirun stop the others.
#pragma once

#include <cstddef>
#include <string>

#include "tapegrad/autodiff/error.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

// An MPI call failed, or the ranks disagree: `all_reduce: MPI_Allreduce failed: MPI_ERR_TRUNCATE: ...`.
class DistributedError : public Error {
public:
    using Error::Error;
};

namespace distributed {

// Whether this build has MPI.
bool built_with_mpi() noexcept;

// Joins the MPI job when this process was started by mpirun (OpenMPI's OMPI_COMM_WORLD_SIZE or PMIx's
// PMIX_RANK in the environment) and MPI is in the build; once, later calls return at once. MPI is left
// at exit. Returns size(). rank() and size() call it.
int init();

// This process's rank, 0 .. size() - 1, and how many there are.
int rank();
int size();

// How many processes mpirun started beside this one, itself included (OMPI_COMM_WORLD_SIZE); 1 when it
// was not started by mpirun. Above size() only in a build without MPI, where each is rank 0 of 1.
int launched_processes();

// data summed elementwise over the ranks, in place, on every rank (MPI_Allreduce); n must be the same on
// all ranks. The ranks add in an order fixed by MPI for a given size, so runs with the same N give the
// same bits; with another N the sum rounds differently. Alone: does nothing.
template <class T>
void all_reduce_sum(T* data, std::size_t n);

// One value from rank 0 on every rank (MPI_Bcast); n the same on all ranks.
template <class T>
void broadcast(T* data, std::size_t n);

// Waits until every rank gets here.
void barrier();

// Ends every rank of the job with `code` (MPI_Abort): what a rank that failed alone must do, since the
// others would otherwise wait for it at their next sum, and leaving MPI at exit would wait for them.
// Alone: std::exit(code).
[[noreturn]] void abort(int code);

// "Open MPI v4.1.4, 2 ranks", or "1 process (MPI: not started by mpirun)" or "1 process (no MPI in this
// build)".
std::string summary();

}  // namespace distributed

// The differentiable all-reduce: every rank gets the sum over the ranks of x (same shape on all ranks).
// Its backward sends each rank the sum over the ranks of the gradients arriving at the output, which is
// the gradient of the sum of the ranks' objectives. Alone it is the identity. Both passes are meeting
// points: every rank must run the same graph, forward and backward.
template <class T>
Var<T> all_reduce(const Var<T>& x);

}  // namespace tapegrad
