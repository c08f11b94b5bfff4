// The tape audit: which op's backward is wrong.
//
// A gradient check says that a model's gradient is wrong and for which parameter; the audit says where.
// audit(loss, params) goes over the tape entries between the parameters and the loss, in tape order, and
// checks each one alone: it replays the entry's forward on copies of the values the entry saw, takes the
// vector-Jacobian product u^T J with a random u through the entry's own backward formula, and compares it,
// element by element, with central differences of that forward alone, (u^T f(x + eps e_i) -
// u^T f(x - eps e_i)) / 2 eps, in double. An element passes when |analytic - numeric| <= atol + rtol *
// |numeric|, as in gradcheck; where the difference straddles a kink of the op (relu at 0, a top-k
// boundary) the element is counted as a kink, not as an error.
//
// The report names, for each entry, the op, the module its parameters belong to, each input (a parameter's
// full name, or the parameters it was computed from), shapes, the worst index with both values and the
// errors; the first entry that disagrees is the op to look at. It prints and writes JSON.
//
// The cost is two evaluations of one op per element checked: an input of more than max_elements elements
// is checked on that many elements picked at random. audit_cost() says it before it starts, and so does the
// audit itself when given a log.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <span>
#include <string>
#include <vector>

#include "tapegrad/autodiff/input_check.hpp"
#include "tapegrad/autodiff/var.hpp"

namespace tapegrad {

struct AuditOptions {
    double eps = 1e-6;
    double atol = 1e-5;
    double rtol = 1e-3;
    std::size_t max_elements = 1024;  // per input; beyond, a random sample of this many
    std::uint64_t seed = 0;
    std::ostream* log = nullptr;  // when set, the cost before the audit starts
};

// One input of an entry: name is a parameter's full name, or empty for a computed value.
struct AuditInput : InputCheck {
    std::size_t k = 0;   // which input of the op
    std::string source;  // for a computed value: the parameters it was computed from, "" if none

    std::string label() const;  // "encoder.0.weight" or "input 0 (computed from "encoder.0.weight", ...)"
};

struct AuditEntry {
    std::size_t position = 0;  // on the tape: 0 is the first op recorded
    std::string op;
    std::string module;  // the module of its parameter inputs ("encoder.0"), or ""
    Shape out_shape;
    bool passed = true;
    std::vector<AuditInput> inputs;  // those that take a gradient from the parameters
};

struct AuditReport {
    bool passed = true;
    double eps = 0;
    double atol = 0;
    double rtol = 0;
    std::size_t evaluations = 0;  // single-op forwards
    std::size_t checked = 0;      // elements compared over all entries: 0 never passes
    double seconds = 0;
    std::vector<AuditEntry> entries;  // in tape order

    explicit operator bool() const { return passed; }
    // The first entry in tape order whose backward disagrees, or nullptr.
    const AuditEntry* first_failure() const;
    std::string str() const;
    std::string json() const;
    void write_json(const std::string& path) const;
};

std::ostream& operator<<(std::ostream& os, const AuditReport& report);

// Audits the entries of this thread's tape through which `loss` depends on `params` (recorded, so call it
// before a backward that frees the tape, or compute the loss again). A ValueError when loss is not on the
// tape or depends on no parameter.
AuditReport audit(const Var<double>& loss, std::span<const Var<double>> params, const AuditOptions& options = {});
AuditReport audit(const Var<double>& loss, std::initializer_list<Var<double>> params,
                  const AuditOptions& options = {});

// The number of single-op evaluations audit() would make.
std::size_t audit_cost(const Var<double>& loss, std::span<const Var<double>> params, const AuditOptions& options = {});

}  // namespace tapegrad
