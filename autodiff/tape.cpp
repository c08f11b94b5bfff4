#include "tapegrad/autodiff/tape.hpp"

#include <algorithm>
#include <deque>
#include <unordered_set>

#include <fmt/format.h>

#include "op_impl.hpp"
#include "gemm.hpp"
#include "kernels.hpp"
#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/autodiff/testing.hpp"

namespace tapegrad {

#if TAPEGRAD_FAULTS
namespace testing {
namespace {
thread_local const Fault* active = nullptr;
}
FaultScope::FaultScope(Fault fault) : fault_(std::move(fault)), previous_(active) { active = &fault_; }
FaultScope::~FaultScope() { active = previous_; }
const Fault* active_fault() noexcept { return active; }
}  // namespace testing
#endif

namespace detail {

namespace {

template <class T>
std::string describe(const Var<T>& v) {
    if (v.name().empty()) {
        return to_string(v.shape());
    }
    return fmt::format("\"{}\" {}", v.name(), to_string(v.shape()));
}

template <class T>
std::string describe_all(std::span<const Var<T>> in) {
    std::vector<std::string> parts;
    for (const Var<T>& v : in) {
        parts.push_back(describe(v));
    }
    return fmt::format("{}", fmt::join(parts, ", "));
}

template <class T>
std::string bad_value(const Array<T>& value, std::size_t flat) {
    T x = value.data()[flat];
    return fmt::format("{} at {}", x, index_to_string(value.shape(), flat));
}

}  // namespace

template <class T>
class Tape {
public:
    Entry<T>& push() {
        if (n_ == entries_.size()) {
            entries_.emplace_back();
        }
        return entries_[n_++];
    }

    // Whether the entry that produced a non-leaf node is still on the tape.
    bool live(const Node<T>* node) const {
        return node->entry < n_ && entries_[node->entry].serial == node->serial && entries_[node->entry].op != nullptr;
    }

    static void release(Entry<T>& e) {
        e.op = nullptr;
        e.out.reset();
        e.in.clear();
        e.index.clear();
    }

    // Frees entries whose output nothing else holds (consumers come later on the tape, so one reverse
    // pass sees the cascade), then closes the gaps. Vectors keep their capacity for the next step.
    void collect() {
        for (std::size_t i = n_; i-- > 0;) {
            Entry<T>& e = entries_[i];
            if (e.op != nullptr && e.out.node()->refs == 1) {
                release(e);
            }
        }
        std::size_t live_count = 0;
        for (std::size_t i = 0; i < n_; ++i) {
            if (entries_[i].op == nullptr) {
                continue;
            }
            if (i != live_count) {
                std::swap(entries_[i], entries_[live_count]);
            }
            entries_[live_count].out.node()->entry = static_cast<std::uint32_t>(live_count);
            ++live_count;
        }
        n_ = live_count;
        collect_at_ = std::max<std::size_t>(4096, 2 * n_);
    }

    void clear() {
        for (std::size_t i = 0; i < n_; ++i) {
            release(entries_[i]);
        }
        n_ = 0;
    }

    void sweep(const Var<T>& y, const Var<T>& seed, BackwardOptions options, std::span<const Var<T>> capture,
               std::vector<Var<T>>* captured);

    std::deque<Entry<T>> entries_;  // a deque: entries recorded during a sweep leave references valid
    std::size_t n_ = 0;
    std::uint64_t next_serial_ = 1;
    std::size_t collect_at_ = 4096;
    bool sweeping_ = false;
    bool create_graph_ = false;
    bool checking_ = false;  // checking mode, as it was when the sweep began
    std::vector<Node<T>*> leaves_;           // leaves reached by the current sweep
    std::vector<std::uint32_t> processed_;  // entries swept by the current sweep
};

template <class T>
Tape<T>& tape() {
    static thread_local Tape<T> instance;
    return instance;
}

namespace {

// Checking mode names, beside an op's unnamed inputs (the output of an earlier op), the parameters they
// were computed from: a log deep in a loss has only intermediate values as inputs, and the user wants to
// know which layer fed it. Walks the tape back from the input, breadth-first; a named Var ends its path,
// and the walk stops at the first level that found parameters, or one level past it when that level found
// only one: `x W + b` as one op reports W and b, as a matmul and an add it reports b and then W, and
// neither the layers before. Named constants met on the way (the trainer's "batch") are listed too. Off
// the tape (under NoGrad, or a constant) there is nothing to walk.
template <class T>
std::vector<std::string> upstream_names(const Tape<T>& t, const Var<T>& v) {
    constexpr std::size_t most = 8;
    std::vector<std::string> names;
    std::vector<const Node<T>*> level{v.node()};
    std::vector<const Node<T>*> next;
    std::unordered_set<const Node<T>*> seen{v.node()};
    int found_at = -1;
    int found = 0;  // parameters on level found_at
    auto go_on = [&](int depth) { return found_at < 0 || (depth == found_at + 1 && found == 1); };
    for (int depth = 1; !level.empty() && go_on(depth) && names.size() < most; ++depth) {
        next.clear();
        for (const Node<T>* node : level) {
            if (node->serial == 0 || !t.live(node)) {
                continue;
            }
            for (const Var<T>& in : t.entries_[node->entry].in) {
                const Node<T>* up = in.node();
                if (!seen.insert(up).second) {
                    continue;
                }
                if (up->name.empty()) {
                    next.push_back(up);
                    continue;
                }
                if (names.size() < most) {
                    names.push_back(fmt::format("\"{}\"", up->name));
                }
                if (up->requires_grad && (found_at < 0 || found_at == depth)) {
                    found_at = depth;
                    ++found;
                }
            }
        }
        std::swap(level, next);
    }
    // In name order: the same message whether a layer is one fused op or a matmul and an add.
    std::sort(names.begin(), names.end());
    return names;
}

// "; input 0 is computed from "decoder.2.bias", "decoder.2.weight"" for the unnamed inputs with named
// Vars upstream ("inputs 0, 1 are ..." when they share them); "" when there are none.
template <class T>
std::string upstream_of(const Tape<T>& t, std::span<const Var<T>> in) {
    std::vector<std::pair<std::vector<std::size_t>, std::vector<std::string>>> groups;
    for (std::size_t k = 0; k < in.size(); ++k) {
        if (!in[k].name().empty()) {
            continue;
        }
        std::vector<std::string> names = upstream_names(t, in[k]);
        if (names.empty()) {
            continue;
        }
        auto same = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.second == names; });
        if (same != groups.end()) {
            same->first.push_back(k);
        } else {
            groups.push_back({{k}, std::move(names)});
        }
    }
    std::string text;
    for (const auto& [inputs, names] : groups) {
        text += fmt::format("; {} {} {} computed from {}", inputs.size() == 1 ? "input" : "inputs",
                            fmt::join(inputs, ", "), inputs.size() == 1 ? "is" : "are", fmt::join(names, ", "));
    }
    return text;
}

// Checking mode, forward: names the op, and the input that was bad when one was.
template <class T>
void check_forward(std::string_view op, const Var<T>& out, std::span<const Var<T>> in) {
    auto bad = kernels::first_nonfinite(out.value().data(), out.size());
    if (!bad) {
        return;
    }
    const Tape<T>& t = tape<T>();
    for (std::size_t k = 0; k < in.size(); ++k) {
        if (auto bad_in = kernels::first_nonfinite(in[k].value().data(), in[k].size())) {
            throw_numeric_error(fmt::format("check: {}: input {} {} holds {}; inputs: {}{}", op, k, describe(in[k]),
                                            bad_value(in[k].value(), *bad_in), describe_all(in), upstream_of(t, in)));
        }
    }
    throw_numeric_error(fmt::format("check: {} produced {} in its output {} from finite inputs: {}{}", op,
                                    bad_value(out.value(), *bad), to_string(out.shape()), describe_all(in),
                                    upstream_of(t, in)));
}

}  // namespace

void throw_arity_error(std::string_view op, int arity, std::size_t given) {
    throw_value_error(fmt::format("{}: takes {} input{}, given {}", op, arity, arity == 1 ? "" : "s", given));
}

template <class T>
Var<T> record(const OpDef<T>& op, Var<T> out, std::span<const Var<T>> in, const Attrs& attrs,
              std::span<const std::size_t> index) {
    if (modes.check_numerics) {
        check_forward(op.name, out, in);
    }
    if (!modes.grad) {
        return out;
    }
    bool needs = std::any_of(in.begin(), in.end(), [](const Var<T>& v) { return v.node()->requires_grad; });
    if (!needs) {
        return out;
    }
    Tape<T>& t = tape<T>();
    if (!t.sweeping_ && t.n_ >= t.collect_at_) {
        t.collect();
    }
    Node<T>* node = out.node();
    node->requires_grad = true;
    node->serial = t.next_serial_++;
    node->entry = static_cast<std::uint32_t>(t.n_);
    Entry<T>& e = t.push();
    e.op = &op;
    e.serial = node->serial;
    e.out = out;
    e.in.assign(in.begin(), in.end());
    e.index.assign(index.begin(), index.end());
    e.attrs = attrs;
    return out;
}

}  // namespace detail

template <class T>
void Grads<T>::add(std::size_t k, Var<T> dx) {
    using namespace detail;
    const testing::Fault* fault = testing::active_fault();
    bool broken = fault != nullptr && fault->op == entry_.op->name;
    if (broken && fault->kind == testing::FaultKind::swap_inputs && arity() >= 2 && k < 2) {
        k = 1 - k;
    }
    Node<T>* node = entry_.in[k].node();
    if (!node->requires_grad) {
        return;
    }
    if (broken && fault->kind == testing::FaultKind::scale && fault->input == k) {
        dx = dx * static_cast<T>(fault->factor);
    }
    if (dx.shape() != node->value.shape()) {
        if (broken && fault->kind == testing::FaultKind::drop_reduction && fault->input == k) {
            Var<T> first = empty<T>(node->value.shape());
            kernels::sum_to(dx.value(), first.mutable_value(), true);
            dx = std::move(first);
        } else {
            dx = sum_to(dx, node->value.shape());
        }
    }
    if (tape_.checking_) {
        if (auto bad = kernels::first_nonfinite(dx.value().data(), dx.size())) {
            std::span<const Var<T>> in(entry_.in);
            throw_numeric_error(fmt::format("check: backward of {} produced {} in the gradient of input {} {}; "
                                            "inputs: {}{}",
                                            op(), bad_value(dx.value(), *bad), k, describe(entry_.in[k]),
                                            describe_all(in), upstream_of(tape_, in)));
        }
    }
    if (node->serial != 0 && !tape_.live(node)) {
        throw_graph_error(fmt::format(
            "backward: input {} of {} was produced on a part of the tape already swept and freed by an earlier "
            "backward; pass {{.retain_graph = true}} to that backward to sweep the graph twice",
            k, op()));
    }
    Var<T>& pending = node->pending;
    if (!pending.defined()) {
        if (node->serial == 0) {
            tape_.leaves_.push_back(node);
        }
        pending = std::move(dx);
    } else if (!tape_.create_graph_ && pending.node()->refs == 1) {
        kernels::add_inplace(pending.mutable_value().data(), dx.value().data(), dx.size());
    } else {
        pending = pending + dx;
    }
}

template <class T>
void Grads<T>::add_matmul(std::size_t k, const Var<T>& a, const Var<T>& b, bool ta, bool tb) {
    using namespace detail;
    Node<T>* node = entry_.in[k].node();
    if (!node->requires_grad) {
        return;
    }
    const Var<T>& pending = node->pending;
    // Checking mode and fault injection look at the product on its own; they take the general path.
    bool direct = pending.defined() && !tape_.create_graph_ && !tape_.checking_ && pending.node()->refs == 1 &&
                  testing::active_fault() == nullptr && a.ndim() == 2 && b.ndim() == 2;
    std::size_t m = direct ? a.shape()[ta ? 1 : 0] : 0;
    std::size_t n = direct ? b.shape()[tb ? 0 : 1] : 0;
    std::size_t inner = direct ? a.shape()[ta ? 0 : 1] : 0;
    if (!direct || pending.shape() != Shape{m, n} || b.shape()[tb ? 1 : 0] != inner || inner == 0) {
        add(k, matmul_t(a, b, ta, tb));
        return;
    }
    gemm<T>(ta, tb, m, n, inner, T(1), a.value().data(), a.shape()[1], b.value().data(), b.shape()[1], T(1),
            node->pending.mutable_value().data(), n);
}

namespace detail {

namespace {

// A gradient the caller keeps gets its own buffer, so that changing it in place changes nothing else.
template <class T>
Var<T> own(Var<T> g, bool create_graph) {
    if (create_graph || g.node()->refs == 1) {
        return g;
    }
    return g.detach();
}

}  // namespace

template <class T>
void Tape<T>::sweep(const Var<T>& y, const Var<T>& seed_in, BackwardOptions options,
                    std::span<const Var<T>> capture, std::vector<Var<T>>* captured) {
    if (!y.defined()) {
        throw_graph_error("backward: the output is an empty Var");
    }
    if (sweeping_) {
        throw_graph_error("backward: called from inside a backward formula");
    }
    if (!y.requires_grad()) {
        throw_graph_error("backward: the output does not require grad: no input of its graph requires grad, "
                          "or it was computed under no_grad");
    }
    Var<T> seed = seed_in;
    if (!seed.defined()) {
        if (y.size() != 1) {
            throw_graph_error(fmt::format("backward: the output has shape {}; a non-scalar output needs a seed "
                                          "of its shape",
                                          to_string(y.shape())));
        }
        seed = full<T>(y.shape(), T(1));
    } else if (seed.shape() != y.shape()) {
        throw_shape_error(fmt::format("backward: seed shape {} differs from output shape {}", to_string(seed.shape()),
                                      to_string(y.shape())));
    }
    Node<T>* root = y.node();
    if (root->serial != 0 && !live(root)) {
        throw_graph_error("backward: the graph of this output was already swept and freed by an earlier backward; "
                          "pass {.retain_graph = true} to the first backward to sweep it twice");
    }
    bool create_graph = options.create_graph;
    bool retain = options.retain_graph || create_graph;
    if (captured != nullptr) {
        captured->assign(capture.size(), Var<T>());
    }
    auto capture_of = [&](const Node<T>* node) {
        for (std::size_t c = 0; c < capture.size(); ++c) {
            if (capture[c].node() == node) {
                (*captured)[c] = node->pending;
            }
        }
    };

    leaves_.clear();
    processed_.clear();
    std::size_t top = root->serial == 0 ? 0 : root->entry + 1;
    sweeping_ = true;
    create_graph_ = create_graph;
    checking_ = modes.check_numerics;
    try {
        GradMode mode(create_graph);
        if (root->serial == 0) {
            leaves_.push_back(root);
        }
        root->pending = seed;
        for (std::size_t i = top; i-- > 0;) {
            Entry<T>& e = entries_[i];
            if (e.op == nullptr || !e.out.node()->pending.defined()) {
                continue;
            }
            Node<T>* out = e.out.node();
            if (!capture.empty()) {
                capture_of(out);
            }
            Var<T> dy = std::move(out->pending);
            out->pending.reset();
            Grads<T> grads(*this, e, std::move(dy));
            // The ops of a backward formula are not checked one by one: Grads::add checks what the
            // formula sends, and names the op whose backward it is.
            CheckNumerics off(false);
            (e.op->fast_backward != nullptr && !create_graph_ ? e.op->fast_backward : e.op->backward)(grads);
            processed_.push_back(static_cast<std::uint32_t>(i));
        }
        for (Node<T>* leaf : leaves_) {
            if (captured != nullptr) {
                capture_of(leaf);
            } else if (!leaf->grad.defined()) {
                leaf->grad = own(std::move(leaf->pending), create_graph);
            } else if (!create_graph && leaf->grad.node()->refs == 1) {
                kernels::add_inplace(leaf->grad.mutable_value().data(), leaf->pending.value().data(),
                                     leaf->grad.size());
            } else {
                leaf->grad = leaf->grad + leaf->pending;
            }
            leaf->pending.reset();
        }
    } catch (...) {
        // Leave no half-gathered gradient behind for the next sweep.
        for (std::size_t i = 0; i < std::min(top, n_); ++i) {
            if (entries_[i].op != nullptr) {
                entries_[i].out.node()->pending.reset();
            }
        }
        for (Node<T>* leaf : leaves_) {
            leaf->pending.reset();
        }
        root->pending.reset();
        sweeping_ = false;
        create_graph_ = false;
        throw;
    }
    sweeping_ = false;
    create_graph_ = false;
    if (captured != nullptr) {
        for (std::size_t c = 0; c < capture.size(); ++c) {
            Var<T>& g = (*captured)[c];
            g = g.defined() ? own(std::move(g), create_graph) : full<T>(capture[c].shape(), T(0));
        }
    }
    if (!retain) {
        for (std::uint32_t i : processed_) {
            release(entries_[i]);
        }
        collect();
    }
}

}  // namespace detail

template <class T>
void backward(const Var<T>& y, BackwardOptions options) {
    detail::tape<T>().sweep(y, Var<T>(), options, {}, nullptr);
}

template <class T>
void backward(const Var<T>& y, const Var<T>& seed, BackwardOptions options) {
    detail::tape<T>().sweep(y, seed, options, {}, nullptr);
}

template <class T>
std::vector<Var<T>> grad(const Var<T>& y, std::span<const Var<T>> inputs, BackwardOptions options,
                         const Var<T>& seed) {
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        if (!inputs[k].defined() || !inputs[k].requires_grad()) {
            detail::throw_graph_error(fmt::format("grad: input {} does not require grad", k));
        }
    }
    std::vector<Var<T>> out;
    detail::tape<T>().sweep(y, seed, options, inputs, &out);
    return out;
}

template <class T>
std::size_t tape_size() {
    return detail::tape<T>().n_;
}

template <class T>
void clear_tape() {
    detail::Tape<T>& t = detail::tape<T>();
    if (t.sweeping_) {
        detail::throw_graph_error("clear_tape: called during a backward sweep");
    }
    t.clear();
}

template <class T>
std::string dump_tape() {
    const detail::Tape<T>& t = detail::tape<T>();
    std::string text;
    for (std::size_t i = 0; i < t.n_; ++i) {
        const detail::Entry<T>& e = t.entries_[i];
        if (e.op == nullptr) {
            continue;
        }
        std::vector<std::string> in;
        for (const Var<T>& v : e.in) {
            in.push_back(detail::describe(v));
        }
        text += fmt::format("{:4} {:<12} {} <- {}\n", i, e.op->name, to_string(e.out.shape()), fmt::join(in, ", "));
    }
    return text;
}

namespace detail {

template <class T>
std::vector<std::pair<std::size_t, const Entry<T>*>> entries_of(const Var<T>& y) {
    Tape<T>& t = tape<T>();
    std::vector<std::pair<std::size_t, const Entry<T>*>> found;
    const Node<T>* top = y.node();
    if (top == nullptr || top->serial == 0 || !t.live(top)) {
        return found;
    }
    std::unordered_set<const Node<T>*> needed{top};
    for (std::size_t i = top->entry + 1; i-- > 0;) {
        const Entry<T>& e = t.entries_[i];
        if (e.op == nullptr || !needed.contains(e.out.node())) {
            continue;
        }
        found.emplace_back(i, &e);
        for (const Var<T>& in : e.in) {
            needed.insert(in.node());
        }
    }
    std::reverse(found.begin(), found.end());
    return found;
}

template <class T>
std::vector<std::string> upstream_names(const Var<T>& v) {
    return upstream_names(tape<T>(), v);
}

template std::vector<std::pair<std::size_t, const Entry<float>*>> entries_of(const Var<float>&);
template std::vector<std::pair<std::size_t, const Entry<double>*>> entries_of(const Var<double>&);
template std::vector<std::string> upstream_names(const Var<float>&);
template std::vector<std::string> upstream_names(const Var<double>&);

}  // namespace detail

#define TAPEGRAD_INSTANTIATE(T)                                                                              \
    template class Grads<T>;                                                                          \
    template Var<T> detail::record<T>(const detail::OpDef<T>&, Var<T>, std::span<const Var<T>>,            \
                                      const Attrs&, std::span<const std::size_t>);                   \
    template void backward<T>(const Var<T>&, BackwardOptions);                                               \
    template void backward<T>(const Var<T>&, const Var<T>&, BackwardOptions);                                \
    template std::vector<Var<T>> grad<T>(const Var<T>&, std::span<const Var<T>>, BackwardOptions,           \
                                         const Var<T>&);                                                     \
    template std::size_t tape_size<T>();                                                                     \
    template void clear_tape<T>();                                                                           \
    template std::string dump_tape<T>();
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
