// Replaces the global operator new and delete with ones that count every allocation, for the tests that
// check a steady-state step allocates nothing: read the count with tapegrad::test::allocations().
//
// Include this header in exactly one translation unit per test binary (the test file itself, never
// helpers.hpp or another shared header): it defines the replacement operators, which a program may
// define only once and which cannot be inline.
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

namespace tapegrad::test {

namespace detail {
inline std::atomic<long> allocation_count{0};
}

// How many times operator new has been called since the program started.
inline long allocations() { return detail::allocation_count.load(); }

// Allocations made by 20 calls of step after 3 calls of warm-up.
template <class Step>
long allocations_after_warm_up(const Step& step) {
    for (int i = 0; i < 3; ++i) {
        step();
    }
    long before = allocations();
    for (int i = 0; i < 20; ++i) {
        step();
    }
    return allocations() - before;
}

}  // namespace tapegrad::test

void* operator new(std::size_t size) {
    ++tapegrad::test::detail::allocation_count;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}
// GCC 12 sees malloc behind this operator new and free behind delete, and takes them for a mismatch.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
