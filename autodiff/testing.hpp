// Test-only fault injection: break one op's backward formula on purpose, for the length of a scope, to
// prove that a gradient check catches it. Not installed; compiled into the library only when the tests are
// built (TAPEGRAD_FAULTS), and without it active_fault() is a constant nullptr, so the backward formulas
// carry no check for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tapegrad::testing {

enum class FaultKind {
    scale,           // multiply the gradient sent to `input` by `factor`
    drop_reduction,  // send `input` one slice of a broadcast gradient instead of its sum
    swap_inputs,     // send input 0's gradient to input 1 and the other way round
};

struct Fault {
    std::string op;  // the op's name, as in the op table
    FaultKind kind = FaultKind::scale;
    std::size_t input = 0;
    double factor = 1.01;
};

// Activates a fault on this thread until the scope ends.
class FaultScope {
public:
    explicit FaultScope(Fault fault);
    ~FaultScope();
    FaultScope(const FaultScope&) = delete;
    FaultScope& operator=(const FaultScope&) = delete;

private:
    Fault fault_;
    const Fault* previous_;
};

// The fault active on this thread, or nullptr.
#if TAPEGRAD_FAULTS
const Fault* active_fault() noexcept;
#else
constexpr const Fault* active_fault() noexcept { return nullptr; }
#endif

// Fills every buffer cached in this thread's pool with NaN, so that a kernel that leaves part of its
// output unwritten shows it (ops take their outputs from the pool uninitialised).
template <class T>
void poison_pool();

// Buffers cached in this thread's pool.
template <class T>
std::size_t pooled_buffers();

// oneDNN primitives (convolutions and reorders) run so far, on all threads: 0 without oneDNN. Each call
// allocates inside oneDNN (the hash map of its arguments), which the steady-state tests bound by this.
std::uint64_t onednn_executions();

}  // namespace tapegrad::testing
