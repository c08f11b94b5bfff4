// Gradient checks: the analytic gradient of a scalar function against central differences, in double.
//
// An element passes when |analytic - numeric| <= atol + rtol * |numeric| (PyTorch's rule and defaults).
// A check that compared no element fails, and options that cannot check (eps not above 0, a negative
// tolerance, fast mode with no direction) are a ValueError.
// The report names each input, its worst element's index, both values there, and the largest absolute
// and relative errors; it prints, converts to bool for doctest's CHECK, and writes JSON. Where a finite
// difference straddles a kink (relu at 0, abs, clamp bounds, maximum at ties) the report says so and
// does not call the gradient wrong.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <optional>

#include "tapegrad/autodiff/audit.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

struct GradcheckOptions {
    double eps = 1e-6;
    double atol = 1e-5;
    double rtol = 1e-3;
    // Fast mode: instead of every element, `directions` random unit directions u per input, comparing
    // the directional derivative g.u with (f(x + eps u) - f(x - eps u)) / 2 eps. For big models.
    bool fast = false;
    int directions = 4;
    std::uint64_t seed = 0;
    // When set, the check says there what it will cost before it starts, and how far it got every
    // couple of seconds.
    std::ostream* log = nullptr;
    // When a gradcheck fails: compute f once more and audit its tape (audit.hpp), so that the report says
    // which op's backward is wrong, not only which input's gradient.
    bool audit_on_failure = true;
};

struct GradcheckReport {
    std::string check = "gradcheck";  // or "gradgradcheck"
    bool passed = true;
    bool fast = false;
    double eps = 0;
    double atol = 0;
    double rtol = 0;
    std::size_t evaluations = 0;  // calls of the function
    std::size_t checked = 0;      // elements (directions) compared over all inputs: 0 never passes
    double seconds = 0;
    std::vector<InputCheck> inputs;
    std::optional<AuditReport> audit;  // when the check failed and options.audit_on_failure

    explicit operator bool() const { return passed; }
    // The check of the input of this name; throws ValueError when there is none.
    const InputCheck& operator[](std::string_view name) const;
    std::string str() const;
    std::string json() const;
    void write_json(const std::string& path) const;
};

std::ostream& operator<<(std::ostream& os, const GradcheckReport& report);

// f computes a single value from the inputs, which it captures (the parameters of a model, or leaves
// made for the test); the check changes the inputs' values in place and restores them.
using ScalarFunction = std::function<Var<double>()>;

GradcheckReport gradcheck(const ScalarFunction& f, std::span<const Var<double>> inputs,
                          const GradcheckOptions& options = {});
GradcheckReport gradcheck(const ScalarFunction& f, std::initializer_list<Var<double>> inputs,
                          const GradcheckOptions& options = {});

// Second derivatives: checks the Hessian-vector products H w, for a fixed random w per input, as the
// gradient of sum_j <grad_j f, w_j> computed with create_graph.
GradcheckReport gradgradcheck(const ScalarFunction& f, std::span<const Var<double>> inputs,
                              const GradcheckOptions& options = {});
GradcheckReport gradgradcheck(const ScalarFunction& f, std::initializer_list<Var<double>> inputs,
                              const GradcheckOptions& options = {});

// The number of calls of f a check with these options makes: one for the analytic gradient and two per
// element (or direction). Finite differences evaluate f without recording onto the tape; a function
// that needs the tape itself (one that takes a gradient inside) costs one call more, the one that
// finds out.
std::size_t gradcheck_cost(std::span<const Var<double>> inputs, const GradcheckOptions& options = {});

}  // namespace tapegrad
