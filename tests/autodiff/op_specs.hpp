// Every op of the table with its test domain and shapes (broadcasting included): what the op table
// test gradient-checks and breaks, and what the audit test audits inside a graph and breaks.
#pragma once

#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "helpers.hpp"

namespace op_specs {

using namespace tapegrad;


using Vars = std::vector<Var<double>>;

struct Input {
    Shape shape;
    double lo = -1;
    double hi = 1;
    std::vector<double> avoid = {};  // points within 0.05 of which no value falls: kinks
    bool mask = false;               // a 0/1 mask that takes no gradient (where's first input)
};

struct Case {
    std::string label;
    std::vector<Input> inputs;
    std::function<Var<double>(const Vars&)> apply;
    int broadcast_input = -1;  // an input the op broadcasts: its reduction can be dropped
    bool swappable = false;    // inputs of one shape whose gradients differ: swapping them shows
};

inline Array<double> sample(const Input& in, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(in.lo, in.hi);
    Array<double> a = xt::empty<double>(in.shape);
    for (double& v : a) {
        if (in.mask) {
            v = u(rng) < (in.lo + in.hi) / 2 ? 0.0 : 1.0;
            continue;
        }
        auto near_kink = [&](double x) {
            return std::any_of(in.avoid.begin(), in.avoid.end(), [x](double k) { return std::abs(x - k) < 0.05; });
        };
        do {
            v = u(rng);
        } while (near_kink(v));
    }
    return a;
}

inline std::vector<Case> unary(std::function<Var<double>(const Var<double>&)> op, double lo = -2, double hi = 2,
                        std::vector<double> avoid = {}) {
    std::vector<Case> cases;
    for (Shape shape : {Shape{}, Shape{5}, Shape{3, 4}, Shape{2, 3, 2}}) {
        cases.push_back({to_string(shape), {{shape, lo, hi, avoid}}, [op](const Vars& v) { return op(v[0]); }});
    }
    return cases;
}

inline std::vector<Case> binary(std::function<Var<double>(const Var<double>&, const Var<double>&)> op, double lo = -2,
                         double hi = 2, double b_lo = -2, double b_hi = 2) {
    auto f = [op](const Vars& v) { return op(v[0], v[1]); };
    auto in = [&](Shape a, Shape b) { return std::vector<Input>{{a, lo, hi}, {b, b_lo, b_hi}}; };
    return {
        {"(3, 4) and (3, 4)", in({3, 4}, {3, 4}), f, -1, true},
        {"(3, 4) and (4,)", in({3, 4}, {4}), f, 1},
        {"(3, 1) and (1, 4)", in({3, 1}, {1, 4}), f, 0},
        {"() and (2, 3)", in({}, {2, 3}), f, 0},
        {"(2, 3, 4) and (3, 1)", in({2, 3, 4}, {3, 1}), f, 1},
        // Long enough, with a short period, for the tiled kernels.
        {"(40, 8) and (8,)", in({40, 8}, {8}), f, 1},
        {"(1, 3) and (100, 1, 3)", in({1, 3}, {100, 1, 3}), f, 0},
    };
}

inline const std::vector<std::size_t> gather_index = {2, 0, 2, 4};
inline const std::vector<std::size_t> gather_index_1d = {3, 3, 1};
inline const std::vector<std::size_t> scatter_index = {1, 3, 1};

inline std::map<std::string, std::vector<Case>> specs() {
    using V = const Var<double>&;
    std::map<std::string, std::vector<Case>> s;
    s["neg"] = unary([](V x) { return neg(x); });
    s["pow"] = unary([](V x) { return pow(x, 2.5); }, 0.5, 2);
    for (auto [p, lo] : {std::pair{3.0, -2.0}, {-1.5, 0.5}, {2.0, -2.0}}) {
        auto more = unary([p](V x) { return pow(x, p); }, lo, 2);
        s["pow"].insert(s["pow"].end(), more.begin() + 1, more.end());
    }
    s["exp"] = unary([](V x) { return exp(x); });
    s["log"] = unary([](V x) { return log(x); }, 0.3, 3);
    s["sqrt"] = unary([](V x) { return sqrt(x); }, 0.3, 3);
    s["abs"] = unary([](V x) { return abs(x); }, -2, 2, {0});
    s["relu"] = unary([](V x) { return relu(x); }, -2, 2, {0});
    s["leaky_relu"] = unary([](V x) { return leaky_relu(x, 0.1); }, -2, 2, {0});
    s["sigmoid"] = unary([](V x) { return sigmoid(x); }, -4, 4);
    s["tanh"] = unary([](V x) { return tanh(x); });
    s["softplus"] = unary([](V x) { return softplus(x); }, -6, 6);
    s["clamp"] = unary([](V x) { return clamp(x, -0.5, 0.7); }, -2, 2, {-0.5, 0.7});

    s["add"] = binary([](V a, V b) { return a + b; });
    s["sub"] = binary([](V a, V b) { return a - b; });
    s["mul"] = binary([](V a, V b) { return a * b; });
    s["div"] = binary([](V a, V b) { return a / b; }, -2, 2, 0.5, 2);
    s["maximum"] = binary([](V a, V b) { return maximum(a, b); });
    s["minimum"] = binary([](V a, V b) { return minimum(a, b); });
    // Both inputs from one value: each side wins somewhere.
    s["maximum"].push_back({"(3, 4) mixed winners", {{{3, 4}, -2, 2, {0}}},
                            [](const Vars& v) { return maximum(v[0], -v[0] * 0.5); }});
    s["minimum"].push_back({"(3, 4) mixed winners", {{{3, 4}, -2, 2, {0}}},
                            [](const Vars& v) { return minimum(v[0], -v[0] * 0.5); }});

    auto where3 = [](const Vars& v) { return where(v[0], v[1], v[2]); };
    s["where"] = {
        {"(3, 4) (3, 4) (3, 4)", {{{3, 4}, 0, 1, {}, true}, {{3, 4}}, {{3, 4}}}, where3},
        {"(3, 4) (3, 4) (4,)", {{{3, 4}, 0, 1, {}, true}, {{3, 4}}, {{4}}}, where3, 2},
        {"(3, 1) (1, 4) ()", {{{3, 1}, 0, 1, {}, true}, {{1, 4}}, {{}}}, where3, 1},
    };

    s["sum"] = {
        {"all (3, 4)", {{{3, 4}}}, [](const Vars& v) { return sum(v[0]); }},
        {"axis 0 (3, 4)", {{{3, 4}}}, [](const Vars& v) { return sum(v[0], 0); }},
        {"axis -1 keepdims (2, 3, 4)", {{{2, 3, 4}}}, [](const Vars& v) { return sum(v[0], -1, true); }},
        {"axis 1 (2, 3, 4)", {{{2, 3, 4}}}, [](const Vars& v) { return sum(v[0], 1); }},
    };
    s["mean_squared_error"] = {
        {"(3, 4) and (3, 4)", {{{3, 4}}, {{3, 4}}}, [](const Vars& v) { return mean_squared_error(v[0], v[1]); }},
        {"(5,) and (5,)", {{{5}}, {{5}}}, [](const Vars& v) { return mean_squared_error(v[0], v[1]); }, -1, true},
        {"(2, 3, 2) and (2, 3, 2)", {{{2, 3, 2}}, {{2, 3, 2}}},
         [](const Vars& v) { return mean_squared_error(v[0], v[1]); }},
    };
    s["sum_squares"] = {
        {"()", {{{}}}, [](const Vars& v) { return sum_squares(v[0]); }},
        {"(3, 4)", {{{3, 4}}}, [](const Vars& v) { return sum_squares(v[0]); }},
        {"(2, 3, 2)", {{{2, 3, 2}}}, [](const Vars& v) { return sum_squares(v[0]); }},
    };
    s["mean"] = {
        {"all (3, 4)", {{{3, 4}}}, [](const Vars& v) { return mean(v[0]); }},
        {"axis 0 (3, 4)", {{{3, 4}}}, [](const Vars& v) { return mean(v[0], 0); }},
        {"axis -1 keepdims (2, 3, 4)", {{{2, 3, 4}}}, [](const Vars& v) { return mean(v[0], -1, true); }},
    };
    s["sum_to"] = {
        {"(3, 4) to (4,)", {{{3, 4}}}, [](const Vars& v) { return sum_to(v[0], {4}); }},
        {"(3, 4) to (3, 1)", {{{3, 4}}}, [](const Vars& v) { return sum_to(v[0], {3, 1}); }},
        {"(2, 3, 4) to (1, 3, 1)", {{{2, 3, 4}}}, [](const Vars& v) { return sum_to(v[0], {1, 3, 1}); }},
        {"(70, 2, 3) to (2, 3)", {{{70, 2, 3}}}, [](const Vars& v) { return sum_to(v[0], {2, 3}); }},
        {"(2, 3, 4, 5) to (3, 1, 1)", {{{2, 3, 4, 5}}}, [](const Vars& v) { return sum_to(v[0], {3, 1, 1}); }},
    };
    s["broadcast_to"] = {
        {"(4,) to (3, 4)", {{{4}}}, [](const Vars& v) { return broadcast_to(v[0], {3, 4}); }, 0},
        {"(3, 1) to (3, 4)", {{{3, 1}}}, [](const Vars& v) { return broadcast_to(v[0], {3, 4}); }, 0},
        {"() to (2, 3)", {{{}}}, [](const Vars& v) { return broadcast_to(v[0], {2, 3}); }, 0},
    };
    s["reshape"] = {
        {"(3, 4) to (2, 6)", {{{3, 4}}}, [](const Vars& v) { return reshape(v[0], {2, 6}); }},
        {"(2, 3, 2) to (12,)", {{{2, 3, 2}}}, [](const Vars& v) { return reshape(v[0], {12}); }},
    };
    s["transpose"] = {
        {"(3, 5)", {{{3, 5}}}, [](const Vars& v) { return transpose(v[0]); }},
        {"(4, 4)", {{{4, 4}}}, [](const Vars& v) { return transpose(v[0]); }},
    };
    s["gather_rows"] = {
        {"(5, 3) rows 2 0 2 4", {{{5, 3}}}, [](const Vars& v) { return gather_rows<double>(v[0], gather_index); }},
        {"(4,) rows 3 3 1", {{{4}}}, [](const Vars& v) { return gather_rows<double>(v[0], gather_index_1d); }},
    };
    s["scatter_rows"] = {
        {"(3, 2) to 5 rows", {{{3, 2}}}, [](const Vars& v) { return scatter_rows<double>(v[0], scatter_index, 5); }},
    };
    s["slice"] = {
        {"(5, 4) axis 0 [1, 4)", {{{5, 4}}}, [](const Vars& v) { return slice(v[0], 0, 1, 4); }},
        {"(3, 6) axis 1 [2, 6)", {{{3, 6}}}, [](const Vars& v) { return slice(v[0], 1, 2, 6); }},
        {"(2, 5, 3) axis -2 [0, 2)", {{{2, 5, 3}}}, [](const Vars& v) { return slice(v[0], -2, 0, 2); }},
    };
    s["concat"] = {
        {"(2, 3) (4, 3) axis 0", {{{2, 3}}, {{4, 3}}}, [](const Vars& v) { return concat({v[0], v[1]}, 0); }},
        {"(3, 2) (3, 1) (3, 4) axis 1", {{{3, 2}}, {{3, 1}}, {{3, 4}}},
         [](const Vars& v) { return concat({v[0], v[1], v[2]}, 1); }},
    };
    s["matmul"] = {
        {"(3, 4) x (4, 5)", {{{3, 4}}, {{4, 5}}}, [](const Vars& v) { return matmul(v[0], v[1]); }},
        {"(1, 3) x (3, 2)", {{{1, 3}}, {{3, 2}}}, [](const Vars& v) { return matmul(v[0], v[1]); }},
        // Tiny inner and outer dimensions with a long one: the product's special kernels.
        {"(9, 2) x (2, 3)", {{{9, 2}}, {{2, 3}}}, [](const Vars& v) { return matmul(v[0], v[1]); }},
        {"(9, 1) x (1, 1)", {{{9, 1}}, {{1, 1}}}, [](const Vars& v) { return matmul(v[0], v[1]); }},
        {"(4, 4) x (4, 4)", {{{4, 4}}, {{4, 4}}}, [](const Vars& v) { return matmul(v[0], v[1]); }, -1, true},
    };
    s["linear"] = {
        {"(3, 4) x (4, 5) + (5,)", {{{3, 4}}, {{4, 5}}, {{5}}},
         [](const Vars& v) { return linear(v[0], v[1], v[2]); }, 2},
        // One row: the bias is not summed over anything, so no reduction to drop.
        {"(1, 3) x (3, 2) + (2,)", {{{1, 3}}, {{3, 2}}, {{2}}},
         [](const Vars& v) { return linear(v[0], v[1], v[2]); }},
        {"(9, 2) x (2, 3) + (3,)", {{{9, 2}}, {{2, 3}}, {{3}}},
         [](const Vars& v) { return linear(v[0], v[1], v[2]); }, 2},
        {"(4, 4) x (4, 4) + (4,)", {{{4, 4}}, {{4, 4}}, {{4}}},
         [](const Vars& v) { return linear(v[0], v[1], v[2]); }, 2, true},
        // Transposed, as a tied decoder reads the encoder's weight.
        {"(3, 4) x (5, 4)^T + (5,)", {{{3, 4}}, {{5, 4}}, {{5}}},
         [](const Vars& v) { return linear_transposed(v[0], v[1], v[2]); }, 2},
        {"(9, 2) x (3, 2)^T + (3,)", {{{9, 2}}, {{3, 2}}, {{3}}},
         [](const Vars& v) { return linear_transposed(v[0], v[1], v[2]); }, 2},
        {"(4, 4) x (4, 4)^T + (4,)", {{{4, 4}}, {{4, 4}}, {{4}}},
         [](const Vars& v) { return linear_transposed(v[0], v[1], v[2]); }, 2, true},
    };
    // Each activation, plain and transposed; the tiny-product kernels; one row (no bias reduction); a
    // square case whose x and W can be swapped.
    auto fused = [](Activation act, bool transposed) {
        return [act, transposed](const Vars& v) {
            return transposed ? linear_transposed(v[0], v[1], v[2], act) : linear(v[0], v[1], v[2], act);
        };
    };
    s["linear_activation"] = {
        {"relu (3, 4) x (4, 5) + (5,)", {{{3, 4}}, {{4, 5}}, {{5}}}, fused(Activation::relu, false), 2},
        {"sigmoid (3, 4) x (4, 5) + (5,)", {{{3, 4}}, {{4, 5}}, {{5}}}, fused(Activation::sigmoid, false), 2},
        {"tanh (9, 2) x (2, 3) + (3,)", {{{9, 2}}, {{2, 3}}, {{3}}}, fused(Activation::tanh, false), 2},
        {"sigmoid (1, 3) x (3, 2) + (2,)", {{{1, 3}}, {{3, 2}}, {{2}}}, fused(Activation::sigmoid, false)},
        {"relu (3, 4) x (5, 4)^T + (5,)", {{{3, 4}}, {{5, 4}}, {{5}}}, fused(Activation::relu, true), 2},
        {"tanh (4, 4) x (4, 4)^T + (4,)", {{{4, 4}}, {{4, 4}}, {{4}}}, fused(Activation::tanh, true), 2, true},
    };
    // Images, NCHW: stride above 1, padding, dilation, odd and non-square sizes, groups; with and without
    // a bias.
    auto conv = [](Conv2dOptions o) {
        return [o](const Vars& v) { return v.size() == 3 ? conv2d(v[0], v[1], v[2], o) : conv2d(v[0], v[1], o); };
    };
    s["conv2d"] = {
        {"(2, 3, 5, 5) * (4, 3, 3, 3) + (4,)", {{{2, 3, 5, 5}}, {{4, 3, 3, 3}}, {{4}}}, conv({})},
        {"(2, 2, 7, 6) * (3, 2, 3, 2) stride (2, 1) padding (1, 1)", {{{2, 2, 7, 6}}, {{3, 2, 3, 2}}},
         conv({.stride = {2, 1}, .padding = {1, 1}})},
        {"(1, 2, 7, 7) * (2, 2, 3, 3) + (2,) dilation 2 padding 2", {{{1, 2, 7, 7}}, {{2, 2, 3, 3}}, {{2}}},
         conv({.padding = {2, 2}, .dilation = {2, 2}})},
        {"(2, 4, 5, 5) * (6, 2, 3, 3) + (6,) groups 2 stride 2 padding 1", {{{2, 4, 5, 5}}, {{6, 2, 3, 3}}, {{6}}},
         conv({.stride = {2, 2}, .padding = {1, 1}, .groups = 2})},
        {"(3, 2, 4, 3) * (5, 2, 1, 1)", {{{3, 2, 4, 3}}, {{5, 2, 1, 1}}}, conv({})},
    };
    auto conv_t = [](ConvTranspose2dOptions o) {
        return [o](const Vars& v) {
            return v.size() == 3 ? conv_transpose2d(v[0], v[1], v[2], o) : conv_transpose2d(v[0], v[1], o);
        };
    };
    s["conv_transpose2d"] = {
        {"(2, 3, 4, 4) * (3, 2, 3, 3) + (2,) stride 2 padding 1 output padding 1",
         {{{2, 3, 4, 4}}, {{3, 2, 3, 3}}, {{2}}}, conv_t({.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 1}})},
        {"(1, 4, 3, 5) * (4, 1, 3, 2) groups 2 stride (1, 2) padding (0, 1)", {{{1, 4, 3, 5}}, {{4, 1, 3, 2}}},
         conv_t({.stride = {1, 2}, .padding = {0, 1}, .groups = 2})},
        {"(2, 2, 3, 3) * (2, 3, 2, 2) + (3,) dilation 2", {{{2, 2, 3, 3}}, {{2, 3, 2, 2}}, {{3}}},
         conv_t({.dilation = {2, 2}})},
    };
    // Alone, the identity: its checks here are that of the formula's plumbing; tests/distributed checks
    // it across 2 ranks.
    s["all_reduce"] = {
        {"()", {{{}}}, [](const Vars& v) { return all_reduce(v[0]); }},
        {"(3, 4)", {{{3, 4}}}, [](const Vars& v) { return all_reduce(v[0]); }},
    };
    s["conv2d_weight_grad"] = {
        {"(2, 3, 5, 5) and (2, 4, 3, 3), kernel 3", {{{2, 3, 5, 5}}, {{2, 4, 3, 3}}},
         [](const Vars& v) { return conv2d_weight_grad(v[0], v[1], {3, 3}); }},
        {"(1, 4, 6, 5) and (1, 2, 3, 3), kernel (2, 3) groups 2 stride 2 padding 1",
         {{{1, 4, 6, 5}}, {{1, 2, 3, 3}}}, [](const Vars& v) {
             return conv2d_weight_grad(v[0], v[1], {2, 3}, {.stride = {2, 2}, .padding = {0, 1}, .groups = 2});
         }},
    };
    auto pool = [](bool max, Pool2dOptions o) {
        return [max, o](const Vars& v) { return max ? max_pool2d(v[0], o) : avg_pool2d(v[0], o); };
    };
    s["max_pool2d"] = {
        {"(2, 3, 4, 4) kernel 2", {{{2, 3, 4, 4}}}, pool(true, {})},
        {"(1, 2, 7, 5) kernel 3 stride 2 padding 1", {{{1, 2, 7, 5}}}, pool(true, {.kernel = {3, 3}, .stride = {2, 2},
                                                                                  .padding = {1, 1}})},
        {"(2, 1, 6, 7) kernel (2, 3) stride 1 dilation 2", {{{2, 1, 6, 7}}},
         pool(true, {.kernel = {2, 3}, .stride = {1, 1}, .dilation = {2, 2}})},
    };
    s["avg_pool2d"] = {
        {"(2, 3, 4, 4) kernel 2", {{{2, 3, 4, 4}}}, pool(false, {})},
        {"(1, 2, 7, 5) kernel 3 stride 2 padding 1", {{{1, 2, 7, 5}}}, pool(false, {.kernel = {3, 3}, .stride = {2, 2},
                                                                                   .padding = {1, 1}})},
        {"(2, 1, 5, 7) kernel (2, 3) stride (1, 2)", {{{2, 1, 5, 7}}}, pool(false, {.kernel = {2, 3}, .stride = {1, 2}})},
    };
    // The maxima's source is a constant: the adjoint is linear in g alone.
    s["max_pool2d_backward"] = {
        {"(2, 3, 2, 2) to (2, 3, 4, 4) kernel 2", {{{2, 3, 2, 2}}}, [](const Vars& v) {
             Var<double> like(sample({{2, 3, 4, 4}}, 7));
             return max_pool2d_backward(v[0], like, {});
         }},
        {"(1, 2, 4, 3) to (1, 2, 7, 5) kernel 3 stride 2 padding 1", {{{1, 2, 4, 3}}}, [](const Vars& v) {
             Var<double> like(sample({{1, 2, 7, 5}}, 8));
             return max_pool2d_backward(v[0], like, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
         }},
    };
    s["avg_pool2d_backward"] = {
        {"(2, 3, 2, 2) to (4, 4) kernel 2", {{{2, 3, 2, 2}}},
         [](const Vars& v) { return avg_pool2d_backward(v[0], {4, 4}, {}); }},
        {"(1, 2, 4, 3) to (7, 5) kernel 3 stride 2 padding 1", {{{1, 2, 4, 3}}}, [](const Vars& v) {
             return avg_pool2d_backward(v[0], {7, 5}, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}});
         }},
    };
    s["upsample_nearest2d"] = {
        {"(2, 3, 3, 4) scale 2", {{{2, 3, 3, 4}}}, [](const Vars& v) { return upsample_nearest2d(v[0], {2, 2}); }},
        {"(1, 2, 3, 2) scale (1, 3)", {{{1, 2, 3, 2}}}, [](const Vars& v) { return upsample_nearest2d(v[0], {1, 3}); }},
    };
    return s;
}

}  // namespace op_specs
