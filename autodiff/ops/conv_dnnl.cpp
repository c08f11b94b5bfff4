// Float convolutions on oneDNN, and its sgemm for gemm.cpp. Each convolution pass is one oneDNN primitive:
// forward for C, backward-data for Ct (so that a transposed convolution runs the same kernels as the
// gradient of a convolution; oneDNN's deconvolution primitive measured 2-3x slower on this model's shapes),
// backward-weights for Cw. The primitives choose their own layouts (blocked by 16 channels on AVX-512);
// reorders bring NCHW values in and the result back out. Primitives, reorders and their buffers are made
// once per shape and thread and kept, scratchpads are ours (scratchpad_mode::user) and arguments go through
// the C API, so a steady state allocates nothing here; oneDNN's execute still builds a hash map of the
// arguments inside each call (conv_test.cpp bounds it).
#include "conv_dnnl.hpp"

#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

#include "../error.hpp"
#include "../gemm.hpp"
#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/testing.hpp"

#ifdef TAPEGRAD_ONEDNN
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

// GNU OpenMP's, which Debian's oneDNN runs on: declared here rather than through <omp.h>, whose runtime
// follows the compiler (clang's is another library, whose thread count oneDNN would not see).
extern "C" int omp_get_max_threads();
extern "C" void omp_set_num_threads(int threads);
#endif

namespace tapegrad::detail::onednn {

namespace {

// TAPEGRAD_CONV=im2col turns oneDNN off, for comparisons; TAPEGRAD_CONV=onednn (the default) leaves it on.
bool turned_off() {
    static const bool off = [] {
        const char* v = std::getenv("TAPEGRAD_CONV");
        std::string_view value = v != nullptr ? v : "";
        if (!value.empty() && value != "im2col" && value != "onednn") {
            throw_value_error(fmt::format("TAPEGRAD_CONV={}: must be im2col or onednn", value));
        }
        return value == "im2col";
    }();
    return off;
}

#ifdef TAPEGRAD_ONEDNN

using dnnl::memory;
using tag = memory::format_tag;

// The engine lives as long as the process: primitives kept by threads that end after main's statics are
// destroyed still refer to it.
const dnnl::engine& cpu() {
    static const auto* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
    return *engine;
}

dnnl::stream& thread_stream() {
    thread_local dnnl::stream stream(cpu());
    return stream;
}

// oneDNN (built on OpenMP) runs one thread inside a call: the parallelism is tapegrad's.
class OneThread {
public:
    OneThread() : saved_(omp_get_max_threads()) {
        if (saved_ != 1) {
            omp_set_num_threads(1);
        }
    }
    ~OneThread() {
        if (saved_ != 1) {
            omp_set_num_threads(saved_);
        }
    }
    OneThread(const OneThread&) = delete;
    OneThread& operator=(const OneThread&) = delete;

private:
    int saved_;
};

memory::dim dim(std::size_t v) { return static_cast<memory::dim>(v); }

memory::desc images(std::size_t n, std::size_t c, std::size_t h, std::size_t w, tag t) {
    return memory::desc({dim(n), dim(c), dim(h), dim(w)}, memory::data_type::f32, t);
}

memory::desc weights(const Geometry& g, bool plain) {
    if (g.a.groups == 1) {
        return memory::desc({dim(g.o), dim(g.cg()), dim(g.kh), dim(g.kw)}, memory::data_type::f32,
                            plain ? tag::oihw : tag::any);
    }
    return memory::desc({dim(g.a.groups), dim(g.og()), dim(g.cg()), dim(g.kh), dim(g.kw)}, memory::data_type::f32,
                        plain ? tag::goihw : tag::any);
}

struct Descs {
    memory::desc x, y, w;  // the layouts the primitive may choose (tag::any)
    memory::desc user_x, user_y, user_w;  // the caller's: NCHW, and (o, c / groups, kh, kw)
    memory::dims stride, dilation, padding;
};

Descs descs(const Geometry& g) {
    const ConvAttrs& a = g.a;
    return {images(g.n, g.c, g.h, g.w, tag::any),
            images(g.n, g.o, g.ho, g.wo, tag::any),
            weights(g, false),
            images(g.n, g.c, g.h, g.w, tag::nchw),
            images(g.n, g.o, g.ho, g.wo, tag::nchw),
            weights(g, true),
            {dim(a.stride[0]), dim(a.stride[1])},
            {dim(a.dilation[0]) - 1, dim(a.dilation[1]) - 1},  // oneDNN counts the gaps
            {dim(a.padding[0]), dim(a.padding[1])}};
}

dnnl::primitive_attr own_scratchpad() {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
}

// Primitives run so far, for the test that counts what oneDNN allocates per call.
std::atomic<std::uint64_t> executions{0};

void execute(const dnnl::primitive& p, const dnnl_exec_arg_t* args, int count) {
    executions.fetch_add(1, std::memory_order_relaxed);
    dnnl_status_t status = dnnl_primitive_execute(p.get(), thread_stream().get(), count, args);
    if (status != dnnl_success) {
        throw_value_error(fmt::format("oneDNN: a convolution failed to run (status {})", static_cast<int>(status)));
    }
}

// One argument of a primitive: the caller's buffer, and, when the primitive wants another layout, a buffer
// in that layout and the reorder between them.
struct Operand {
    int arg = 0;
    bool input = true;
    memory user;
    memory inner;
    dnnl::primitive copy;
    memory copy_scratchpad;
};

// A primitive for one pass and shape, with its operands (inputs first, the output last) and scratchpad.
struct Entry {
    Pass pass;
    bool bias;
    std::array<std::size_t, 16> shape;
    dnnl::primitive primitive;
    memory scratchpad;
    memory scratch_buffer;  // holds the scratchpads of the primitive and its reorders, used one at a time
    std::vector<Operand> operands;
    std::vector<dnnl_exec_arg_t> args;
};

std::array<std::size_t, 16> shape_of(const Geometry& g) {
    const ConvAttrs& a = g.a;
    return {g.n,         g.c,         g.h,           g.w,           g.o,           g.kh,
            g.kw,        g.ho,        g.wo,          a.stride[0],   a.stride[1],   a.padding[0],
            a.padding[1], a.dilation[0], a.dilation[1], a.groups};
}

memory scratchpad_in(const memory& buffer, const memory::desc& d) {
    return memory(d, cpu(), buffer.get_data_handle());
}

std::unique_ptr<Entry> make_entry(Pass pass, const Geometry& g, bool bias) {
    auto e = std::make_unique<Entry>();
    e->pass = pass;
    e->bias = bias;
    e->shape = shape_of(g);
    Descs d = descs(g);
    dnnl::primitive_attr attr = own_scratchpad();
    auto hint_desc = dnnl::convolution_forward::desc(
        dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.x, d.w,
        bias && pass == Pass::forward ? memory::desc({dim(g.o)}, memory::data_type::f32, tag::x) : memory::desc(),
        d.y, d.stride, d.dilation, d.padding, d.padding);
    dnnl::convolution_forward::primitive_desc hint(hint_desc, attr, cpu());

    // (argument, layout the primitive chose, the caller's layout, input?) in order, the output last.
    struct Slot {
        int arg;
        memory::desc inner, user;
        bool input;
    };
    std::vector<Slot> slots;
    memory::desc scratchpad_desc;
    if (pass == Pass::forward) {
        e->primitive = dnnl::convolution_forward(hint);
        slots = {{DNNL_ARG_SRC, hint.src_desc(), d.user_x, true},
                 {DNNL_ARG_WEIGHTS, hint.weights_desc(), d.user_w, true}};
        if (bias) {
            slots.push_back({DNNL_ARG_BIAS, hint.bias_desc(), hint.bias_desc(), true});
        }
        slots.push_back({DNNL_ARG_DST, hint.dst_desc(), d.user_y, false});
        scratchpad_desc = hint.scratchpad_desc();
    } else if (pass == Pass::input) {
        dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, d.x, d.w, d.y, d.stride,
                                                   d.dilation, d.padding, d.padding);
        dnnl::convolution_backward_data::primitive_desc pd(desc, attr, cpu(), hint);
        e->primitive = dnnl::convolution_backward_data(pd);
        slots = {{DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.user_y, true},
                 {DNNL_ARG_WEIGHTS, pd.weights_desc(), d.user_w, true},
                 {DNNL_ARG_DIFF_SRC, pd.diff_src_desc(), d.user_x, false}};
        scratchpad_desc = pd.scratchpad_desc();
    } else {
        dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, d.x, d.w, d.y, d.stride,
                                                      d.dilation, d.padding, d.padding);
        dnnl::convolution_backward_weights::primitive_desc pd(desc, attr, cpu(), hint);
        e->primitive = dnnl::convolution_backward_weights(pd);
        slots = {{DNNL_ARG_SRC, pd.src_desc(), d.user_x, true},
                 {DNNL_ARG_DIFF_DST, pd.diff_dst_desc(), d.user_y, true},
                 {DNNL_ARG_DIFF_WEIGHTS, pd.diff_weights_desc(), d.user_w, false}};
        scratchpad_desc = pd.scratchpad_desc();
    }

    std::size_t scratch_bytes = scratchpad_desc.get_size();
    std::vector<memory::desc> copy_scratchpads;
    for (const Slot& s : slots) {
        Operand op;
        op.arg = s.arg;
        op.input = s.input;
        op.user = memory(s.user, cpu(), DNNL_MEMORY_NONE);
        if (s.inner == s.user) {
            op.inner = op.user;
        } else {
            op.inner = memory(s.inner, cpu());
            auto pd = s.input ? dnnl::reorder::primitive_desc(cpu(), s.user, cpu(), s.inner, attr)
                              : dnnl::reorder::primitive_desc(cpu(), s.inner, cpu(), s.user, attr);
            op.copy = dnnl::reorder(pd);
            copy_scratchpads.push_back(pd.scratchpad_desc());
            scratch_bytes = std::max(scratch_bytes, pd.scratchpad_desc().get_size());
        }
        e->operands.push_back(std::move(op));
    }
    e->scratch_buffer = memory(memory::desc({dim(std::max<std::size_t>(scratch_bytes, 1))}, memory::data_type::u8,
                                            tag::x),
                               cpu());
    e->scratchpad = scratchpad_in(e->scratch_buffer, scratchpad_desc);
    std::size_t next = 0;
    for (Operand& op : e->operands) {
        if (op.copy) {
            op.copy_scratchpad = scratchpad_in(e->scratch_buffer, copy_scratchpads[next++]);
        }
        e->args.push_back({op.arg, op.inner.get()});
    }
    e->args.push_back({DNNL_ARG_SCRATCHPAD, e->scratchpad.get()});
    return e;
}

// This thread's primitives, by pass and shape; the least recently made goes when there are too many.
Entry& entry(Pass pass, const Geometry& g, bool bias) {
    constexpr std::size_t kept = 32;
    thread_local std::vector<std::unique_ptr<Entry>> entries;
    auto shape = shape_of(g);
    for (auto& e : entries) {
        if (e->pass == pass && e->bias == bias && e->shape == shape) {
            return *e;
        }
    }
    if (entries.size() == kept) {
        entries.erase(entries.begin());
    }
    entries.push_back(make_entry(pass, g, bias));
    return *entries.back();
}

void add_bias(const Geometry& g, const float* bias, float* x) {
    for (std::size_t s = 0; s < g.n; ++s) {
        for (std::size_t ch = 0; ch < g.c; ++ch) {
            float* p = x + (s * g.c + ch) * g.in_plane();
            std::transform(p, p + g.in_plane(), p, [b = bias[ch]](float v) { return v + b; });
        }
    }
}

std::string implementation() {
    Geometry g{8, 16, 16, 16, 32, 3, 3, 16, 16, {.padding = {1, 1}}};
    Descs d = descs(g);
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, d.x,
                                         d.w, d.y, d.stride, d.dilation, d.padding, d.padding);
    return dnnl::convolution_forward::primitive_desc(desc, cpu()).impl_info_str();
}

#endif  // TAPEGRAD_ONEDNN

}  // namespace

#ifdef TAPEGRAD_ONEDNN

bool run(Pass pass, const Geometry& g, const float* a, const float* b, const float* bias, float* out) {
    if (turned_off() || g.n == 0 || (pass == Pass::input && g.cg() == 1)) {
        return false;
    }
    ProductClock clock;
    OneThread one_thread;
    Entry& e = entry(pass, g, bias != nullptr);
    const float* inputs[] = {a, b, bias};
    std::size_t last = e.operands.size() - 1;
    for (std::size_t i = 0; i < last; ++i) {
        e.operands[i].user.set_data_handle(const_cast<float*>(inputs[i]));
    }
    e.operands[last].user.set_data_handle(out);
    for (Operand& op : e.operands) {
        if (op.input && op.copy) {
            dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, op.user.get()}, {DNNL_ARG_TO, op.inner.get()},
                                      {DNNL_ARG_SCRATCHPAD, op.copy_scratchpad.get()}};
            execute(op.copy, args, 3);
        }
    }
    execute(e.primitive, e.args.data(), static_cast<int>(e.args.size()));
    Operand& result = e.operands[last];
    if (result.copy) {
        dnnl_exec_arg_t args[] = {{DNNL_ARG_FROM, result.inner.get()}, {DNNL_ARG_TO, result.user.get()},
                                  {DNNL_ARG_SCRATCHPAD, result.copy_scratchpad.get()}};
        execute(result.copy, args, 3);
    }
    if (pass == Pass::input && bias != nullptr) {
        add_bias(g, bias, out);
    }
    return true;
}

bool built_in() { return true; }

void sgemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
           std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
    OneThread one_thread;
    auto d = [](std::size_t v) { return static_cast<dnnl_dim_t>(v); };
    dnnl_status_t status = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', d(m), d(n), d(k), alpha, a, d(lda), b, d(ldb),
                                      beta, c, d(ldc));
    if (status != dnnl_success) {
        throw_value_error(fmt::format("oneDNN: dnnl_sgemm failed (status {})", static_cast<int>(status)));
    }
}

std::string version() {
    const dnnl_version_t* v = dnnl_version();
    return fmt::format("oneDNN {}.{}.{}", v->major, v->minor, v->patch);
}

std::string summary() {
    std::string lib = version();
    if (turned_off()) {
        return fmt::format("im2col + products ({} turned off by TAPEGRAD_CONV=im2col)", lib);
    }
    return fmt::format("{} {} for float, im2col + products for double and transposed convolutions onto one channel",
                       lib, implementation());
}

#else

bool run(Pass, const Geometry&, const float*, const float*, const float*, float*) {
    turned_off();  // an unknown TAPEGRAD_CONV is an error in every build
    return false;
}

std::string summary() { return "im2col + products (built without oneDNN)"; }

bool built_in() { return false; }

std::string version() { return "oneDNN (not built in)"; }

void sgemm(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t, const float*,
           std::size_t, float, float*, std::size_t) {
    throw_value_error("oneDNN: not built in");
}

#endif

}  // namespace tapegrad::detail::onednn

namespace tapegrad {

std::string conv_summary() { return detail::onednn::summary(); }

#if TAPEGRAD_FAULTS
std::uint64_t testing::onednn_executions() {
#ifdef TAPEGRAD_ONEDNN
    return detail::onednn::executions.load(std::memory_order_relaxed);
#else
    return 0;
#endif
}
#endif

}  // namespace tapegrad
