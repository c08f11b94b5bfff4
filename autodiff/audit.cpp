#include "tapegrad/autodiff/audit.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <ostream>
#include <random>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <nlohmann/json.hpp>

#include "comparison.hpp"
#include "op_impl.hpp"
#include "tapegrad/autodiff/tape.hpp"

namespace tapegrad {

namespace {

using Clock = std::chrono::steady_clock;
using Entry = detail::Entry<double>;


// The entries between the parameters and the loss, and for each the inputs that carry a gradient from a
// parameter (a parameter itself, or the output of such an entry): those are the ones whose backward
// matters to the parameters' gradient.
// The entries are copies (handles to the same values): replaying one records onto the tape, which may
// compact it and move the entries themselves.
struct Plan {
    std::vector<std::pair<std::size_t, Entry>> entries;
    std::vector<std::vector<std::size_t>> inputs;  // per entry
};

Plan plan(const Var<double>& loss, std::span<const Var<double>> params) {
    auto entries = loss.defined() ? detail::entries_of(loss) : decltype(detail::entries_of(loss)){};
    if (entries.empty()) {
        detail::throw_value_error(
            "audit: the loss is not on the tape (a leaf, computed under no_grad, or already swept by a backward "
            "without retain_graph): compute it again before the audit");
    }
    std::unordered_set<const detail::Node<double>*> carries;
    for (const Var<double>& p : params) {
        carries.insert(p.node());
    }
    Plan result;
    for (auto [position, e] : entries) {
        std::vector<std::size_t> inputs;
        for (std::size_t k = 0; k < e->in.size(); ++k) {
            if (carries.contains(e->in[k].node())) {
                inputs.push_back(k);
            }
        }
        if (inputs.empty()) {
            continue;
        }
        carries.insert(e->out.node());
        result.entries.emplace_back(position, *e);
        result.inputs.push_back(std::move(inputs));
    }
    if (result.entries.empty()) {
        detail::throw_value_error("audit: the loss depends on none of the parameters given");
    }
    return result;
}

std::size_t sample_size(const Var<double>& v, const AuditOptions& options) {
    return std::min(v.size(), options.max_elements);
}

// The module a parameter belongs to: its name less the last part ("encoder.0.weight" -> "encoder.0").
std::string module_of(const std::string& name) {
    auto dot = name.rfind('.');
    return dot == std::string::npos ? std::string() : name.substr(0, dot);
}

// The op's forward, unrecorded, with the kinks it passed noted into `kinks`.
Var<double> forward_watched(const Entry& e, const Call<double>& call, std::vector<detail::KinkNote>& kinks) {
    kinks.clear();
    detail::kink_log = &kinks;
    struct Reset {
        ~Reset() { detail::kink_log = nullptr; }
    } reset;
    return e.op->forward(call);
}

// The op of the first kink that the two evaluations fell on different sides of, or "".
std::string_view straddled(const std::vector<detail::KinkNote>& plus, const std::vector<detail::KinkNote>& minus) {
    for (std::size_t i = 0; i < std::min(plus.size(), minus.size()); ++i) {
        if (plus[i].hash != minus[i].hash) {
            return plus[i].op;
        }
    }
    return {};
}

AuditEntry check_entry(std::size_t position, const Entry& e, std::span<const std::size_t> checked_inputs,
                       const AuditOptions& options, std::size_t& evaluations) {
    AuditEntry report;
    report.position = position;
    report.op = std::string(e.op->name);
    report.out_shape = e.out.shape();
    // Copies of what the entry saw, as leaves: the inputs checked take a gradient, the others do not.
    std::vector<Var<double>> leaves;
    for (std::size_t k = 0; k < e.in.size(); ++k) {
        bool checked = std::find(checked_inputs.begin(), checked_inputs.end(), k) != checked_inputs.end();
        leaves.emplace_back(Array<double>(e.in[k].value()), checked);
    }
    Call<double> call(e.op->name, leaves, e.attrs, e.index);
    std::mt19937_64 rng(options.seed + position);
    std::normal_distribution<double> normal;
    Array<double> u = Array<double>::from_shape(e.out.shape());
    for (double& v : u) {
        v = normal(rng);
    }
    // u^T J through the entry's own backward.
    std::vector<Var<double>> analytic;
    {
        GradMode on(true);
        Var<double> out = detail::record(*e.op, e.op->forward(call), std::span<const Var<double>>(leaves), e.attrs,
                                         std::span<const std::size_t>(e.index));
        std::vector<Var<double>> wrt;
        for (std::size_t k : checked_inputs) {
            wrt.push_back(leaves[k]);
        }
        analytic = grad(out, std::span<const Var<double>>(wrt), {}, Var<double>(Array<double>(u)));
    }
    NoGrad off;
    std::vector<std::string> modules;
    std::vector<detail::KinkNote> plus_kinks;
    std::vector<detail::KinkNote> minus_kinks;
    for (std::size_t c = 0; c < checked_inputs.size(); ++c) {
        std::size_t k = checked_inputs[c];
        const Var<double>& source = e.in[k];
        AuditInput in;
        in.k = k;
        in.name = source.name();
        if (in.name.empty()) {
            std::vector<std::string> names = detail::upstream_names(source);
            in.source = fmt::format("{}", fmt::join(names, ", "));
        } else if (!module_of(in.name).empty()) {
            modules.push_back(module_of(in.name));
        }
        in.shape = source.shape();
        std::vector<std::size_t> elements(leaves[k].size());
        std::iota(elements.begin(), elements.end(), std::size_t{0});
        if (elements.size() > options.max_elements) {
            std::vector<std::size_t> picked;
            std::sample(elements.begin(), elements.end(), std::back_inserter(picked), options.max_elements, rng);
            elements = std::move(picked);
        }
        double* x = leaves[k].mutable_value().data();
        const double* a = analytic[c].value().data();
        detail::Comparison compare(in, options.atol, options.rtol);
        for (std::size_t i : elements) {
            double saved = x[i];
            x[i] = saved + options.eps;
            Var<double> plus = forward_watched(e, call, plus_kinks);
            x[i] = saved - options.eps;
            Var<double> minus = forward_watched(e, call, minus_kinks);
            x[i] = saved;
            evaluations += 2;
            const double* p = plus.value().data();
            const double* m = minus.value().data();
            double numeric = 0;
            for (std::size_t j = 0; j < u.size(); ++j) {
                numeric += u.data()[j] * (p[j] - m[j]);
            }
            compare.add(a[i], numeric / (2 * options.eps), straddled(plus_kinks, minus_kinks),
                        detail::unravel(in.shape, i));
        }
        report.passed = report.passed && in.passed;
        report.inputs.push_back(std::move(in));
    }
    std::sort(modules.begin(), modules.end());
    modules.erase(std::unique(modules.begin(), modules.end()), modules.end());
    report.module = fmt::format("{}", fmt::join(modules, ", "));
    return report;
}

std::string entry_title(const AuditEntry& e) {
    std::string text = fmt::format("#{} {} -> {}", e.position, e.op, to_string(e.out_shape));
    if (!e.module.empty()) {
        text += fmt::format(" in {}", e.module);
    }
    return text;
}

std::string input_line(const AuditInput& in) {
    std::string text = fmt::format("{} {}", in.label(), to_string(in.shape));
    if (in.checked == in.kinks) {
        return text + fmt::format("  {} elements, all at a kink", in.checked);
    }
    text += fmt::format("  worst [{}]  analytic {:.5g}  numeric {:.5g}  abs {:.1e}  rel {:.1e}",
                        fmt::join(in.worst, ", "), in.analytic, in.numeric, in.max_abs_error, in.max_rel_error);
    text += in.passed ? "  ok" : fmt::format("  WRONG ({} of {})", in.failed, in.checked);
    if (in.kinks > 0) {
        text += fmt::format("; {} at a kink, not counted", in.kinks);
    }
    return text;
}

}  // namespace

std::string AuditInput::label() const {
    if (!name.empty()) {
        return fmt::format("\"{}\"", name);
    }
    return source.empty() ? fmt::format("input {}", k) : fmt::format("input {} (computed from {})", k, source);
}

const AuditEntry* AuditReport::first_failure() const {
    auto it = std::find_if(entries.begin(), entries.end(), [](const AuditEntry& e) { return !e.passed; });
    return it == entries.end() ? nullptr : &*it;
}

std::string AuditReport::str() const {
    std::size_t wrong = 0;
    for (const AuditEntry& e : entries) {
        wrong += e.passed ? 0 : 1;
    }
    std::string head = checked == 0 ? "audit failed: it checked nothing"
                       : passed     ? fmt::format("audit passed: the backward of each of {} tape entries agrees "
                                                  "with finite differences of its op",
                                                  entries.size())
                                    : fmt::format("audit failed: {} of {} tape entries disagree", wrong,
                                                  entries.size());
    std::string text = fmt::format("{} ({} single-op evaluations, {:.3g} s; eps {:g}, atol {:g}, rtol {:g})\n", head,
                                   evaluations, seconds, eps, atol, rtol);
    if (const AuditEntry* first = first_failure()) {
        text += fmt::format("  first wrong: {}\n", entry_title(*first));
        for (const AuditInput& in : first->inputs) {
            text += fmt::format("    {}\n", input_line(in));
        }
    }
    text += "  entries in tape order:\n";
    for (const AuditEntry& e : entries) {
        text += fmt::format("    {}  {}\n", entry_title(e), e.passed ? "ok" : "WRONG");
    }
    return text;
}

std::string AuditReport::json() const {
    nlohmann::json j;
    j["check"] = "audit";
    j["passed"] = passed;
    j["eps"] = eps;
    j["atol"] = atol;
    j["rtol"] = rtol;
    j["evaluations"] = evaluations;
    j["checked"] = checked;
    j["seconds"] = seconds;
    const AuditEntry* first = first_failure();
    j["first_failure"] = first == nullptr ? nlohmann::json() : nlohmann::json(first->position);
    j["entries"] = nlohmann::json::array();
    for (const AuditEntry& e : entries) {
        nlohmann::json inputs = nlohmann::json::array();
        for (const AuditInput& in : e.inputs) {
            nlohmann::json input = detail::to_json(in);
            input["input"] = in.k;
            input["computed_from"] = in.source;
            inputs.push_back(std::move(input));
        }
        j["entries"].push_back({{"position", e.position},
                                {"op", e.op},
                                {"module", e.module},
                                {"output_shape", std::vector<std::size_t>(e.out_shape.begin(), e.out_shape.end())},
                                {"passed", e.passed},
                                {"inputs", std::move(inputs)}});
    }
    return j.dump(2);
}

void AuditReport::write_json(const std::string& path) const { detail::write_report(path, json(), "audit"); }

std::ostream& operator<<(std::ostream& os, const AuditReport& report) { return os << report.str(); }

namespace {

std::size_t cost(const Plan& p, const AuditOptions& options) {
    std::size_t evaluations = 0;
    for (std::size_t n = 0; n < p.entries.size(); ++n) {
        for (std::size_t k : p.inputs[n]) {
            evaluations += 2 * sample_size(p.entries[n].second.in[k], options);
        }
    }
    return evaluations;
}

}  // namespace

std::size_t audit_cost(const Var<double>& loss, std::span<const Var<double>> params, const AuditOptions& options) {
    return cost(plan(loss, params), options);
}

AuditReport audit(const Var<double>& loss, std::span<const Var<double>> params, const AuditOptions& options) {
    if (!(options.eps > 0) || !std::isfinite(options.eps) || !(options.atol >= 0) || !(options.rtol >= 0) ||
        options.max_elements == 0) {
        detail::throw_value_error(fmt::format("audit: eps must be above 0, atol and rtol from 0 and max_elements "
                                              "at least 1; got {}, {}, {}, {}",
                                              options.eps, options.atol, options.rtol, options.max_elements));
    }
    auto start = Clock::now();
    Plan p = plan(loss, params);
    if (options.log != nullptr) {
        fmt::print(*options.log, "audit: {} tape entries, {} single-op evaluations\n", p.entries.size(),
                   cost(p, options));
    }
    AuditReport report;
    report.eps = options.eps;
    report.atol = options.atol;
    report.rtol = options.rtol;
    for (std::size_t n = 0; n < p.entries.size(); ++n) {
        const auto& [position, e] = p.entries[n];
        report.entries.push_back(check_entry(position, e, p.inputs[n], options, report.evaluations));
        for (const AuditInput& in : report.entries.back().inputs) {
            report.checked += in.checked - in.kinks;
        }
        report.passed = report.passed && report.entries.back().passed;
    }
    report.passed = report.passed && report.checked > 0;
    report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return report;
}

AuditReport audit(const Var<double>& loss, std::initializer_list<Var<double>> params, const AuditOptions& options) {
    return audit(loss, std::span<const Var<double>>(params.begin(), params.size()), options);
}

}  // namespace tapegrad
