#include "tapegrad/autodiff/gradcheck.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ostream>
#include <random>

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <nlohmann/json.hpp>

#include "comparison.hpp"
#include "op_impl.hpp"
#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/autodiff/tape.hpp"

namespace tapegrad {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}


class Checker {
public:
    Checker(std::string label, const ScalarFunction& f, std::span<const Var<double>> inputs,
            const GradcheckOptions& options)
        : label_(std::move(label)), f_(f), inputs_(inputs), options_(options), start_(Clock::now()),
          last_log_(start_) {}

    GradcheckReport run() {
        // A step of 0 divides by zero and a negative tolerance fails everything: both print nan or
        // nonsense rather than a check. So does a fast mode of no directions, which would pass untested.
        if (!(options_.eps > 0) || !std::isfinite(options_.eps)) {
            detail::throw_value_error(fmt::format("{}: eps must be a finite number above 0, got {}", label(), options_.eps));
        }
        if (!(options_.atol >= 0) || !(options_.rtol >= 0) || !std::isfinite(options_.atol) ||
            !std::isfinite(options_.rtol)) {
            detail::throw_value_error(fmt::format("{}: atol and rtol must be finite numbers from 0, got {} and {}",
                                                  label(), options_.atol, options_.rtol));
        }
        if (options_.fast && options_.directions < 1) {
            detail::throw_value_error(
                fmt::format("{}: fast mode needs at least 1 direction per input, got {}", label(), options_.directions));
        }
        for (std::size_t k = 0; k < inputs_.size(); ++k) {
            if (!inputs_[k].defined() || !inputs_[k].requires_grad()) {
                detail::throw_value_error(fmt::format("gradcheck: input {} ({}) does not require grad", k, name(k)));
            }
        }
        std::size_t cost = gradcheck_cost(inputs_, options_);
        if (options_.log != nullptr) {
            std::size_t elements = 0;
            for (const Var<double>& v : inputs_) {
                elements += v.size();
            }
            fmt::print(*options_.log, "{}: {} inputs, {} elements: {} function evaluations\n", label(), inputs_.size(),
                       elements, cost);
        }
        std::vector<Array<double>> analytic = analytic_gradients();
        GradcheckReport report;
        report.check = label_;
        report.fast = options_.fast;
        report.eps = options_.eps;
        report.atol = options_.atol;
        report.rtol = options_.rtol;
        std::mt19937_64 rng(options_.seed);
        for (std::size_t k = 0; k < inputs_.size(); ++k) {
            InputCheck check = options_.fast ? check_directions(k, analytic[k], rng) : check_elements(k, analytic[k]);
            report.passed = report.passed && check.passed;
            report.checked += check.checked;
            report.inputs.push_back(std::move(check));
        }
        // A check that compared nothing (no inputs, or only empty ones) has shown nothing right.
        report.passed = report.passed && report.checked > 0;
        report.evaluations = evaluations_;
        report.seconds = seconds_since(start_);
        return report;
    }

private:
    const std::string& label() const { return label_; }

    std::string name(std::size_t k) const {
        const std::string& n = inputs_[k].name();
        return n.empty() ? fmt::format("input {}", k) : n;
    }

    Var<double> call() {
        ++evaluations_;
        Var<double> y = f_();
        if (!y.defined() || y.size() != 1) {
            detail::throw_value_error(fmt::format("{}: the function must return a single value, got shape {}", label(),
                                                  y.defined() ? to_string(y.shape()) : "(undefined)"));
        }
        if (options_.log != nullptr && seconds_since(last_log_) > 2.0) {
            last_log_ = Clock::now();
            fmt::print(*options_.log, "{}: {} evaluations, {:.1f} s\n", label(), evaluations_, seconds_since(start_));
        }
        return y;
    }

    std::vector<Array<double>> analytic_gradients() {
        Var<double> y = call();
        std::vector<Array<double>> out;
        if (!y.requires_grad()) {  // f does not depend on the inputs through any op: the gradient is zero
            for (const Var<double>& v : inputs_) {
                out.push_back(xt::zeros<double>(v.shape()));
            }
            return out;
        }
        for (Var<double>& g : grad(y, inputs_)) {
            out.push_back(g.value());
        }
        return out;
    }

    // One evaluation of f for a finite difference, with the kinks it passed noted. It runs without
    // recording, which is faster, unless f needs the tape itself (a loss that takes a gradient inside,
    // as gradgradcheck's does): then f throws a GraphError, and this and later evaluations record.
    double sample(std::vector<detail::KinkNote>& kinks) {
        kinks.clear();
        detail::kink_log = &kinks;
        struct Reset {
            ~Reset() { detail::kink_log = nullptr; }
        } reset;
        if (!record_numeric_) {
            try {
                NoGrad off;
                return call().item();
            } catch (const GraphError&) {
                record_numeric_ = true;
                kinks.clear();
            }
        }
        return call().item();
    }

    // The central difference along a direction that `shift` moves the input by, and the first kink
    // that the two evaluations fell on different sides of.
    double central(const std::function<void(double)>& shift, std::string& kink) {
        shift(options_.eps);
        double plus = sample(plus_kinks_);
        shift(-2 * options_.eps);
        double minus = sample(minus_kinks_);
        shift(options_.eps);
        kink.clear();
        std::size_t n = std::min(plus_kinks_.size(), minus_kinks_.size());
        for (std::size_t i = 0; i < n; ++i) {
            if (plus_kinks_[i].hash != minus_kinks_[i].hash) {
                kink = plus_kinks_[i].op;
                break;
            }
        }
        return (plus - minus) / (2 * options_.eps);
    }

    InputCheck start_check(std::size_t k) {
        InputCheck check;
        check.name = name(k);
        check.shape = inputs_[k].shape();
        return check;
    }

    InputCheck check_elements(std::size_t k, const Array<double>& analytic) {
        InputCheck check = start_check(k);
        detail::Comparison compare(check, options_.atol, options_.rtol);
        Var<double> input = inputs_[k];
        std::string kink;
        for (std::size_t i = 0; i < input.size(); ++i) {
            double* x = input.mutable_value().data() + i;
            double saved = *x;
            double n = central([&](double step) { *x += step; }, kink);
            *x = saved;
            compare.add(analytic.data()[i], n, kink, detail::unravel(check.shape, i));
        }
        return check;
    }

    InputCheck check_directions(std::size_t k, const Array<double>& analytic, std::mt19937_64& rng) {
        InputCheck check = start_check(k);
        detail::Comparison compare(check, options_.atol, options_.rtol);
        Var<double> input = inputs_[k];
        std::normal_distribution<double> normal;
        std::string kink;
        Array<double> saved = input.value();
        for (int d = 0; d < options_.directions; ++d) {
            Array<double> u = xt::empty<double>(input.shape());
            double norm = 0;
            for (double& v : u) {
                v = normal(rng);
                norm += v * v;
            }
            norm = std::sqrt(norm);
            double a = 0;
            for (std::size_t i = 0; i < u.size(); ++i) {
                u.data()[i] /= norm;
                a += analytic.data()[i] * u.data()[i];
            }
            double n = central(
                [&](double step) {
                    double* x = input.mutable_value().data();
                    for (std::size_t i = 0; i < u.size(); ++i) {
                        x[i] += step * u.data()[i];
                    }
                },
                kink);
            input.mutable_value() = saved;
            compare.add(a, n, kink, {static_cast<std::size_t>(d)});
        }
        return check;
    }

    std::string label_;
    const ScalarFunction& f_;
    std::span<const Var<double>> inputs_;
    GradcheckOptions options_;
    Clock::time_point start_;
    Clock::time_point last_log_;
    std::size_t evaluations_ = 0;
    bool record_numeric_ = false;
    std::vector<detail::KinkNote> plus_kinks_;
    std::vector<detail::KinkNote> minus_kinks_;
};

std::string index_text(const std::vector<std::size_t>& index, bool fast) {
    if (fast) {
        return fmt::format("direction {}", index.empty() ? 0 : index[0]);
    }
    return fmt::format("[{}]", fmt::join(index, ", "));
}

}  // namespace

const InputCheck& GradcheckReport::operator[](std::string_view name) const {
    for (const InputCheck& c : inputs) {
        if (c.name == name) {
            return c;
        }
    }
    detail::throw_value_error(fmt::format("{}: no input named \"{}\"", check, name));
}

std::string GradcheckReport::str() const {
    std::size_t failed = 0;
    for (const InputCheck& c : inputs) {
        failed += c.passed ? 0 : 1;
    }
    std::string text =
        checked == 0 ? fmt::format("{} failed: it checked nothing ({} input{} with no elements)", check,
                                   inputs.size(), inputs.size() == 1 ? "" : "s")
        : passed     ? fmt::format("{} passed: {} input{}", check, inputs.size(), inputs.size() == 1 ? "" : "s")
                     : fmt::format("{} failed: {} of {} input{}", check, failed, inputs.size(),
                                   inputs.size() == 1 ? "" : "s");
    text += fmt::format(" ({}{} evaluations, {:.3g} s; eps {:g}, atol {:g}, rtol {:g})\n", fast ? "fast, " : "",
                        evaluations, seconds, eps, atol, rtol);
    for (const InputCheck& c : inputs) {
        text += fmt::format("  {} {}  worst {}  analytic {:.5g}  numeric {:.5g}  abs {:.1e}  rel {:.1e}  ", c.name,
                            to_string(c.shape), index_text(c.worst, fast), c.analytic, c.numeric, c.max_abs_error,
                            c.max_rel_error);
        text += c.passed ? "ok" : fmt::format("FAILED ({} of {})", c.failed, c.checked);
        if (c.kinks > 0) {
            text += fmt::format("; {} of {} straddle a kink of {}, not counted", c.kinks, c.checked, c.kink_op);
        }
        text += "\n";
    }
    if (audit) {
        text += audit->str();
    }
    return text;
}

std::string GradcheckReport::json() const {
    nlohmann::json j;
    j["check"] = check;
    j["passed"] = passed;
    j["fast"] = fast;
    j["eps"] = eps;
    j["atol"] = atol;
    j["rtol"] = rtol;
    j["evaluations"] = evaluations;
    j["checked"] = checked;
    j["seconds"] = seconds;
    j["audit"] = audit ? nlohmann::json::parse(audit->json()) : nlohmann::json();
    j["inputs"] = nlohmann::json::array();
    for (const InputCheck& c : inputs) {
        j["inputs"].push_back(detail::to_json(c));
    }
    return j.dump(2);
}

void GradcheckReport::write_json(const std::string& path) const { detail::write_report(path, json(), check); }

std::ostream& operator<<(std::ostream& os, const GradcheckReport& report) { return os << report.str(); }

std::size_t gradcheck_cost(std::span<const Var<double>> inputs, const GradcheckOptions& options) {
    std::size_t evaluations = 1;
    for (const Var<double>& v : inputs) {
        evaluations += options.fast ? 2 * static_cast<std::size_t>(std::max(options.directions, 0)) : 2 * v.size();
    }
    return evaluations;
}

GradcheckReport gradcheck(const ScalarFunction& f, std::span<const Var<double>> inputs,
                          const GradcheckOptions& options) {
    GradcheckReport report = Checker("gradcheck", f, inputs, options).run();
    if (!report.passed && report.checked > 0 && options.audit_on_failure) {
        Var<double> loss = f();
        if (!loss.is_leaf()) {  // a function that records nothing has no tape to audit
            report.audit = audit(loss, inputs, {.eps = options.eps, .atol = options.atol, .rtol = options.rtol,
                                                .seed = options.seed, .log = options.log});
        }
    }
    return report;
}

GradcheckReport gradcheck(const ScalarFunction& f, std::initializer_list<Var<double>> inputs,
                          const GradcheckOptions& options) {
    return gradcheck(f, std::span<const Var<double>>(inputs.begin(), inputs.size()), options);
}

GradcheckReport gradgradcheck(const ScalarFunction& f, std::span<const Var<double>> inputs,
                              const GradcheckOptions& options) {
    // w: a fixed random direction per input; h = sum_j <grad_j f, w_j>, whose gradient is H w.
    std::mt19937_64 rng(options.seed + 1);
    std::normal_distribution<double> normal;
    std::vector<Var<double>> w;
    for (const Var<double>& v : inputs) {
        Array<double> values = xt::empty<double>(v.shape());
        for (double& x : values) {
            x = normal(rng);
        }
        w.emplace_back(std::move(values));
    }
    ScalarFunction h = [&]() {
        GradMode on(true);  // h takes a gradient inside: it needs the tape even in a finite difference
        Var<double> y = f();
        Var<double> total = Var<double>::scalar(0);
        if (!y.requires_grad()) {
            return total;
        }
        std::vector<Var<double>> g = grad(y, inputs, {.create_graph = true});
        for (std::size_t k = 0; k < g.size(); ++k) {
            total = total + sum(g[k] * w[k]);
        }
        return total;
    };
    return Checker("gradgradcheck", h, inputs, options).run();
}

GradcheckReport gradgradcheck(const ScalarFunction& f, std::initializer_list<Var<double>> inputs,
                              const GradcheckOptions& options) {
    return gradgradcheck(f, std::span<const Var<double>>(inputs.begin(), inputs.size()), options);
}

}  // namespace tapegrad
