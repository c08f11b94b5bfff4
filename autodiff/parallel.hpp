// The threads tapegrad works on. One by default; with more, the matrix products are split between them
// (each thread multiplies a band of rows or columns of the output on one-threaded BLAS) and so are the
// elementwise kernels, the optimizers' updates and the batch copies. The threads wait on a spin for a
// moment after each piece of work, so that the next one starts without a system call, then sleep.
//
// Results do not depend on how a loop is cut: each output element is computed by the same code whichever
// thread computes it, and reductions add fixed blocks in a fixed order. Products cut into bands run the
// BLAS kernel on smaller shapes, which for some shapes adds in another order (README, Reproducibility).
#pragma once

#include <cstddef>

namespace tapegrad {

// Sets the thread count (at least 1). Not while a parallel loop runs; programs call it once, through
// configure_blas.
void set_threads(int threads);
int threads() noexcept;

namespace detail {

// Elements per thread, at least, in an elementwise loop: below ~64 KB of floats a second thread costs
// more than it saves.
inline constexpr std::size_t elementwise_grain = 16384;

using RangeFn = void (*)(const void* body, std::size_t begin, std::size_t end);
// How many parts parallel_for cuts n elements into: 1 on one thread, inside a parallel loop, or when
// a part would hold fewer than `grain` elements, or fewer than `align` (a part holds one cut at least).
std::size_t parallel_parts(std::size_t n, std::size_t grain, std::size_t align) noexcept;
void parallel_run(std::size_t n, std::size_t parts, std::size_t align, RangeFn fn, const void* body);

}  // namespace detail

// Calls body(begin, end) on disjoint ranges that cover [0, n), one per thread, at most one range per
// `grain` elements; cut points are multiples of `align` (16 by default, so that every range but the last
// starts and ends on a 64-byte line of floats) and as even as that allows. body must not throw on another
// thread than the caller's (it is noexcept there: an exception ends the program); an exception on the
// caller's range is rethrown once all ranges are done. A parallel_for inside a range runs on that range's
// thread alone.
template <class Body>
void parallel_for(std::size_t n, std::size_t grain, const Body& body, std::size_t align = 16) {
    std::size_t parts = detail::parallel_parts(n, grain, align);
    if (parts <= 1) {
        body(std::size_t(0), n);
        return;
    }
    auto call = [](const void* b, std::size_t begin, std::size_t end) { (*static_cast<const Body*>(b))(begin, end); };
    detail::parallel_run(n, parts, align, call, &body);
}

}  // namespace tapegrad
