// Optimizers against their published update equations, transcribed here in double (the paper's m-hat and
// v-hat form for Adam, which the implementation does not use), and against closed forms where a constant
// gradient or a quadratic makes one simple. Also: skipped parameters, clipping, state round trips that
// resume bit for bit, exact error messages, steady-state allocation (this binary counts operator new) and
// flush-to-zero.
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>
#include <xtensor/xio.hpp>

#include "counting_new.hpp"
#include "helpers.hpp"
#include "tapegrad/nn/optim.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

namespace {

using Vec = std::vector<double>;

// The tiny problem: f(w) = sum((w - c)^2), gradient 2 (w - c).
const Vec w0 = {1.5, -2.0, 0.75, 3.0};
const Vec c = {0.5, 0.25, -1.0, 1.0};

template <class T>
Array<T> array(const Vec& v, const Shape& shape = {2, 2}) {
    Array<T> a = xt::empty<T>(shape);
    std::copy(v.begin(), v.end(), a.begin());
    return a;
}

template <class T>
Var<T> param(const Vec& v, std::string name = "encoder.0.weight") {
    return Var<T>::parameter(array<T>(v), std::move(name));
}

// Sets each listed parameter's grad to that of sum((w - c)^2), through the tape.
template <class T>
void quadratic_grads(std::initializer_list<Var<T>> ws) {
    Var<T> loss;
    for (const Var<T>& w : ws) {
        Var<T> d = w - Var<T>(array<T>(c));
        loss = loss.defined() ? loss + sum(d * d) : sum(d * d);
    }
    loss.backward();
}

// Sets w's grad to g, the gradient of sum(w * g).
template <class T>
void linear_grads(const Var<T>& w, const Vec& g) {
    sum(w * Var<T>(array<T>(g))).backward();
}

Vec quadratic_grad(const Vec& w) {
    Vec g(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
        g[i] = 2 * (w[i] - c[i]);
    }
    return g;
}

// torch.optim.SGD's documented algorithm.
struct SgdReference {
    explicit SgdReference(SGDOptions options) : o(options) {}
    SGDOptions o;
    Vec b;
    int t = 0;
    void step(Vec& w, const Vec& g) {
        ++t;
        b.resize(w.size());
        for (std::size_t i = 0; i < w.size(); ++i) {
            double d = g[i] + o.weight_decay * w[i];
            if (o.momentum != 0) {
                b[i] = t == 1 ? d : o.momentum * b[i] + (1 - o.dampening) * d;
                d = o.nesterov ? d + o.momentum * b[i] : b[i];
            }
            w[i] -= o.lr * d;
        }
    }
};

// Kingma and Ba, Algorithm 1, with eps added to sqrt(v-hat) as PyTorch does; L2 weight decay in the
// gradient (Adam) or decoupled, w -= lr * weight_decay * w first (AdamW, Loshchilov and Hutter).
struct AdamReference {
    explicit AdamReference(AdamOptions options, bool decoupled = false) : o(options), decoupled(decoupled) {}
    AdamOptions o;
    bool decoupled;
    Vec m, v;
    int t = 0;
    void step(Vec& w, Vec g) {
        ++t;
        m.resize(w.size());
        v.resize(w.size());
        for (std::size_t i = 0; i < w.size(); ++i) {
            if (decoupled) {
                w[i] -= o.lr * o.weight_decay * w[i];
            } else {
                g[i] += o.weight_decay * w[i];
            }
            m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
            v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
            double m_hat = m[i] / (1 - std::pow(o.beta1, t));
            double v_hat = v[i] / (1 - std::pow(o.beta2, t));
            w[i] -= o.lr * m_hat / (std::sqrt(v_hat) + o.eps);
        }
    }
};

template <class T>
void check_close(const Var<T>& w, const Vec& want) {
    CAPTURE(w.value());
    CAPTURE(array<double>(want));
    CHECK(test::close_to<T>(w.value(), array<double>(want), test::tolerance<T>()));
}

template <class T, class Opt, class Ref>
void run_against(Opt& opt, Ref& ref, Var<T>& w, int steps) {
    Vec want = w0;
    for (int s = 0; s < steps; ++s) {
        opt.zero_grad();
        quadratic_grads<T>({w});
        opt.step();
        ref.step(want, quadratic_grad(want));
        CAPTURE(s);
        check_close(w, want);
    }
    CHECK(opt.steps() == static_cast<std::size_t>(steps));
}

}  // namespace

TEST_CASE_TEMPLATE("sgd: plain steps on sum((w - c)^2) give w - c = (1 - 2 lr)^t (w0 - c)", T, float, double) {
    Var<T> w = param<T>(w0);
    SGD<T> opt({{"w", w}}, {.lr = 0.1});
    for (int t = 1; t <= 6; ++t) {
        opt.zero_grad();
        quadratic_grads<T>({w});
        opt.step();
        Vec want(4);
        for (std::size_t i = 0; i < 4; ++i) {
            want[i] = c[i] + std::pow(0.8, t) * (w0[i] - c[i]);
        }
        check_close(w, want);
    }
}

TEST_CASE_TEMPLATE("sgd: momentum with a constant gradient g follows its geometric sums", T, float, double) {
    // grad of sum(w * g) is g. Buffer: b1 = g, b_t = mu b_{t-1} + (1 - tau) g, so
    // b_t = g (mu^(t-1) + (1 - tau) (1 - mu^(t-1)) / (1 - mu)); Nesterov steps by g + mu b_t instead of b_t.
    const Vec g = {0.5, -1.0, 2.0, 0.25};
    const double lr = 0.1, mu = 0.9;
    for (double tau : {0.0, 0.5}) {
        for (bool nesterov : {false, true}) {
            if (nesterov && tau != 0) {
                continue;
            }
            INFO("dampening ", tau, ", nesterov ", nesterov);
            Var<T> w = param<T>(w0);
            SGD<T> opt({{"w", w}}, {.lr = lr, .momentum = mu, .dampening = tau, .nesterov = nesterov});
            double moved = 0;  // sum of the step factors so far: w_t = w0 - lr * moved * g
            for (int t = 1; t <= 6; ++t) {
                opt.zero_grad();
                linear_grads(w, g);
                opt.step();
                double b = std::pow(mu, t - 1) + (1 - tau) * (1 - std::pow(mu, t - 1)) / (1 - mu);
                moved += nesterov ? 1 + mu * b : b;
                Vec want(4);
                for (std::size_t i = 0; i < 4; ++i) {
                    want[i] = w0[i] - lr * moved * g[i];
                }
                check_close(w, want);
            }
        }
    }
}

TEST_CASE_TEMPLATE("sgd: momentum, dampening, nesterov and weight decay on the quadratic", T, float, double) {
    const SGDOptions cases[] = {
        {.lr = 0.05},
        {.lr = 0.05, .weight_decay = 0.1},
        {.lr = 0.05, .momentum = 0.9},
        {.lr = 0.05, .momentum = 0.9, .dampening = 0.3},
        {.lr = 0.05, .momentum = 0.8, .nesterov = true},
        {.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01},
        {.lr = 0.05, .momentum = 0.9, .nesterov = true, .weight_decay = 0.2},
    };
    for (const SGDOptions& o : cases) {
        INFO("momentum ", o.momentum, ", dampening ", o.dampening, ", nesterov ", o.nesterov, ", weight_decay ",
             o.weight_decay);
        Var<T> w = param<T>(w0);
        SGD<T> opt({{"w", w}}, o);
        SgdReference ref(o);
        run_against(opt, ref, w, 7);
    }
}

TEST_CASE_TEMPLATE("adam, adamw: a constant gradient moves w by lr * g / (|g| + eps) at every step", T, float,
                   double) {
    // m-hat = g and v-hat = g^2 exactly for a constant g, whatever t: the bias correction's whole point.
    // AdamW first shrinks w by (1 - lr * weight_decay).
    const Vec g = {0.5, -1.0, 2.0, 1e-3};
    const double lr = 0.01, eps = 1e-3, wd = 0.5;  // an eps that shows in the last element
    auto run = [&](Optimizer<T>& opt, Var<T>& w, double shrink) {
        Vec want = w0;
        for (int t = 1; t <= 5; ++t) {
            opt.zero_grad();
            linear_grads(w, g);
            opt.step();
            for (std::size_t i = 0; i < 4; ++i) {
                want[i] = shrink * want[i] - lr * g[i] / (std::abs(g[i]) + eps);
            }
            check_close(w, want);
        }
    };
    Var<T> w = param<T>(w0);
    SUBCASE("adam") {
        Adam<T> opt({{"w", w}}, {.lr = lr, .eps = eps});
        run(opt, w, 1);
    }
    SUBCASE("adamw") {
        AdamW<T> opt({{"w", w}}, {.lr = lr, .eps = eps, .weight_decay = wd});
        run(opt, w, 1 - lr * wd);
    }
}

TEST_CASE_TEMPLATE("adam and adamw on the quadratic, with and without weight decay", T, float, double) {
    const AdamOptions cases[] = {
        {.lr = 0.1},
        {.lr = 0.1, .beta1 = 0.5, .beta2 = 0.9, .eps = 1e-3},
        {.lr = 0.1, .weight_decay = 0.3},
        {.lr = 0.05, .beta1 = 0, .beta2 = 0.99, .weight_decay = 0.01},
    };
    for (const AdamOptions& o : cases) {
        INFO("beta1 ", o.beta1, ", weight_decay ", o.weight_decay);
        SUBCASE("adam") {
            Var<T> w = param<T>(w0);
            Adam<T> opt({{"w", w}}, o);
            AdamReference ref(o);
            run_against(opt, ref, w, 6);
        }
        SUBCASE("adamw") {
            Var<T> w = param<T>(w0);
            AdamW<T> opt({{"w", w}}, {.lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps,
                                      .weight_decay = o.weight_decay});
            AdamReference ref(o, true);
            run_against(opt, ref, w, 6);
        }
    }
}

TEST_CASE_TEMPLATE("a parameter without a grad is skipped, and its bias correction counts its own updates", T, float,
                   double) {
    // As PyTorch's per-parameter state['step']: b, first updated at the third step, gets the bias correction
    // of a first step then.
    Var<T> a = param<T>(w0, "a");
    Var<T> b = param<T>(w0, "b");
    Adam<T> opt({{"a", a}, {"b", b}}, {.lr = 0.1});
    AdamReference ref_a({.lr = 0.1}), ref_b({.lr = 0.1});
    Vec want_a = w0, want_b = w0;
    for (int t = 1; t <= 5; ++t) {
        opt.zero_grad();
        if (t < 3) {
            quadratic_grads<T>({a});
            CHECK_FALSE(b.grad().defined());
        } else {
            quadratic_grads<T>({a, b});
            ref_b.step(want_b, quadratic_grad(want_b));
        }
        opt.step();
        ref_a.step(want_a, quadratic_grad(want_a));
        CAPTURE(t);
        check_close(a, want_a);
        check_close(b, want_b);
        if (t == 3) {
            auto state = opt.state();
            REQUIRE(state.size() == 5);
            CHECK(state[4].first == "step.b");
            CHECK(state[4].second.dimension() == 0);
            CHECK(state[4].second() == T(1));
        }
    }
    CHECK(b.value() != array<T>(w0));
}

TEST_CASE_TEMPLATE("zero_grad drops every parameter's grad", T, float, double) {
    Var<T> a = param<T>(w0, "a");
    Var<T> b = param<T>(w0, "b");
    SGD<T> opt({{"a", a}, {"b", b}}, {.lr = 0.1});
    quadratic_grads<T>({a, b});
    CHECK(a.grad().defined());
    opt.zero_grad();
    CHECK_FALSE(a.grad().defined());
    CHECK_FALSE(b.grad().defined());
    opt.step();  // nothing to do
    CHECK(a.value() == array<T>(w0));
    CHECK(opt.steps() == 1);
}

TEST_CASE_TEMPLATE("clip_grad_norm: returns the global norm and scales by max_norm / (norm + 1e-6)", T, float,
                   double) {
    // grads (3, 0, 0, 4) and (0, 12): global norm 13.
    Var<T> a = param<T>(w0, "a");
    Var<T> b = Var<T>::parameter(array<T>({1, 1}, {2}), "b");
    Var<T> unused = param<T>(w0, "unused");
    ParameterList<T> params = {{"a", a}, {"b", b}, {"unused", unused}};
    auto set_grads = [&] {
        for (auto& p : params) {
            p.var.zero_grad();
        }
        (sum(a * Var<T>(array<T>({3, 0, 0, 4}))) + sum(b * Var<T>(array<T>({0, 12}, {2})))).backward();
    };
    SUBCASE("clips") {
        set_grads();
        CHECK(clip_grad_norm(params, 6.5) == doctest::Approx(13).epsilon(1e-12));
        const double k = 6.5 / (13 + 1e-6);
        CHECK(test::close_to<T>(a.grad().value(), array<double>({3 * k, 0, 0, 4 * k}), test::tolerance<T>()));
        CHECK(test::close_to<T>(b.grad().value(), array<double>({0, 12 * k}, {2}), test::tolerance<T>()));
        CHECK_FALSE(unused.grad().defined());
        // The norm after clipping is max_norm, up to the 1e-6.
        CHECK(clip_grad_norm(params, 100.0) == doctest::Approx(6.5).epsilon(1e-6));
    }
    SUBCASE("a larger max_norm leaves the grads as they were, bit for bit") {
        set_grads();
        Array<T> before = a.grad().value();
        CHECK(clip_grad_norm(params, 13.5) == doctest::Approx(13).epsilon(1e-12));
        CHECK(a.grad().value() == before);
        CHECK(clip_grad_norm(params, std::numeric_limits<double>::infinity()) == doctest::Approx(13));
        CHECK(a.grad().value() == before);
    }
    SUBCASE("no grads: norm 0") { CHECK(clip_grad_norm(params, 1.0) == 0.0); }
    SUBCASE("max_norm must be positive") {
        CHECK_THROWS_WITH_AS(clip_grad_norm(params, 0.0), "clip_grad_norm: max_norm must be positive: got 0",
                             ValueError);
        CHECK_THROWS_WITH_AS(clip_grad_norm(params, -1.0), "clip_grad_norm: max_norm must be positive: got -1",
                             ValueError);
    }
}

namespace {

// A small regression, 4 samples of 3 features onto 2 outputs, whose parameters come from fixed seeds.
template <class T>
struct Regression {
    Var<T> weight = test::random_param<T>({3, 2}, 11, "encoder.0.weight");
    Var<T> bias = test::random_param<T>({2}, 12, "encoder.0.bias");
    Var<T> x{test::random_array<T>({4, 3}, 13)};
    Var<T> y{test::random_array<T>({4, 2}, 14)};
    ParameterList<T> params() { return {{"encoder.0.weight", weight}, {"encoder.0.bias", bias}}; }
    // One training step: returns the loss before the update.
    T step(Optimizer<T>& opt) {
        opt.zero_grad();
        Var<T> d = tanh(matmul(x, weight) + bias) - y;
        Var<T> loss = mean(d * d);
        loss.backward();
        opt.step();
        return loss.item();
    }
};

template <class T>
std::unique_ptr<Optimizer<T>> make(const std::string& kind, ParameterList<T> params) {
    if (kind == "sgd") {
        return std::make_unique<SGD<T>>(std::move(params), SGDOptions{.lr = 0.3, .momentum = 0.9, .nesterov = true,
                                                                      .weight_decay = 1e-3});
    }
    if (kind == "adam") {
        return std::make_unique<Adam<T>>(std::move(params), AdamOptions{.lr = 0.05, .weight_decay = 1e-3});
    }
    return std::make_unique<AdamW<T>>(std::move(params), AdamWOptions{.lr = 0.05});
}

bool same_bits(const auto& a, const auto& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(*a.data())) == 0;
}

}  // namespace

TEST_CASE_TEMPLATE("state and load_state: a resumed run continues bit for bit", T, float, double) {
    for (std::string kind : {"sgd", "adam", "adamw"}) {
        CAPTURE(kind);
        Regression<T> unbroken;
        auto opt = make<T>(kind, unbroken.params());
        CHECK(opt->kind() == kind);
        std::vector<T> losses;
        for (int s = 0; s < 5; ++s) {
            losses.push_back(unbroken.step(*opt));
        }

        Regression<T> first;
        auto opt1 = make<T>(kind, first.params());
        for (int s = 0; s < 3; ++s) {
            CHECK(first.step(*opt1) == losses[s]);
        }
        // What a checkpoint holds.
        auto saved = opt1->state();
        std::size_t steps = opt1->steps();
        Array<T> weight = first.weight.value(), bias = first.bias.value();
        CHECK(steps == 3);
        std::vector<std::string> names;
        for (auto& [name, a] : saved) {
            names.push_back(name);
        }
        CHECK(names == (kind == "sgd" ? std::vector<std::string>{"momentum.encoder.0.weight", "momentum.encoder.0.bias"}
                                      : std::vector<std::string>{"exp_avg.encoder.0.weight", "exp_avg_sq.encoder.0.weight",
                                                                 "exp_avg.encoder.0.bias", "exp_avg_sq.encoder.0.bias"}));
        first.step(*opt1);  // the saved state is a copy: later steps do not change it
        CHECK_FALSE(same_bits(saved[0].second, opt1->state()[0].second));

        Regression<T> resumed;  // fresh parameters, given the saved values
        resumed.weight.mutable_value() = weight;
        resumed.bias.mutable_value() = bias;
        auto opt2 = make<T>(kind, resumed.params());
        opt2->load_state(saved, steps);
        CHECK(opt2->steps() == 3);
        for (int s = 3; s < 5; ++s) {
            CHECK(resumed.step(*opt2) == losses[s]);
        }
        CHECK(same_bits(resumed.weight.value(), unbroken.weight.value()));
        CHECK(same_bits(resumed.bias.value(), unbroken.bias.value()));
        auto end1 = opt->state(), end2 = opt2->state();
        REQUIRE(end1.size() == end2.size());
        for (std::size_t i = 0; i < end1.size(); ++i) {
            CHECK(end1[i].first == end2[i].first);
            CHECK(same_bits(end1[i].second, end2[i].second));
        }
    }
}

TEST_CASE_TEMPLATE("hyperparameters_json names every option and the steps", T, float, double) {
    using nlohmann::json;
    Regression<T> r;
    Adam<T> adam(r.params(), {.lr = 0.01, .beta2 = 0.99});
    r.step(adam);
    CHECK(json::parse(adam.hyperparameters_json()) ==
          json::parse(R"({"kind": "adam", "lr": 0.01, "betas": [0.9, 0.99], "eps": 1e-8, "weight_decay": 0,
                          "steps": 1})"));
    AdamW<T> adamw(r.params(), {});
    CHECK(json::parse(adamw.hyperparameters_json()) ==
          json::parse(R"({"kind": "adamw", "lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
                          "steps": 0})"));
    SGD<T> sgd(r.params(), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    CHECK(json::parse(sgd.hyperparameters_json()) ==
          json::parse(R"({"kind": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0, "nesterov": true,
                          "weight_decay": 0, "steps": 0})"));
}

TEST_CASE_TEMPLATE("load_state says exactly what differs and changes nothing", T, float, double) {
    Regression<T> r;
    Adam<T> opt(r.params(), {});
    CHECK(opt.state().empty());  // no buffers before the first step
    r.step(opt);
    r.step(opt);
    const auto good = opt.state();
    auto with = [&](auto edit) {
        auto s = good;
        edit(s);
        return s;
    };
    auto wrong_shape = with([](auto& s) { s[0].second = xt::zeros<T>({2, 3}); });
    CHECK_THROWS_WITH_AS(opt.load_state(wrong_shape, 2),
                         "adam state: exp_avg.encoder.0.weight has shape (2, 3), parameter has (3, 2)", ValueError);
    auto missing = with([](auto& s) { s.pop_back(); });
    CHECK_THROWS_WITH_AS(opt.load_state(missing, 2), "adam state: exp_avg_sq.encoder.0.bias is missing", ValueError);
    auto extra = with([](auto& s) { s.emplace_back("exp_avg.decoder.0.weight", xt::zeros<T>({2})); });
    CHECK_THROWS_WITH_AS(opt.load_state(extra, 2), "adam state: unexpected name exp_avg.decoder.0.weight",
                         ValueError);
    auto renamed = with([](auto& s) { s[3].first = "exp_avg_sq.encoder.0.biass"; });
    CHECK_THROWS_WITH_AS(opt.load_state(renamed, 2),
                         "adam state: exp_avg_sq.encoder.0.bias is missing; unexpected name exp_avg_sq.encoder.0.biass",
                         ValueError);
    auto twice = with([](auto& s) { s.push_back(s[1]); });
    CHECK_THROWS_WITH_AS(opt.load_state(twice, 2), "adam state: exp_avg_sq.encoder.0.weight appears twice",
                         ValueError);
    auto bad_count = with([](auto& s) { s.emplace_back("step.encoder.0.bias", Array<T>(T(5))); });
    CHECK_THROWS_WITH_AS(opt.load_state(bad_count, 2),
                         "adam state: step.encoder.0.bias is 5, not a whole number of steps from 0 to 2", ValueError);
    CHECK_THROWS_WITH_AS(opt.load_state({good[2]}, 0),
                         "adam state: steps is 0, and there is no state before the first step; "
                         "unexpected name exp_avg.encoder.0.bias",
                         ValueError);
    // Nothing changed on any of those errors.
    CHECK(opt.steps() == 2);
    auto now = opt.state();
    REQUIRE(now.size() == good.size());
    for (std::size_t i = 0; i < now.size(); ++i) {
        CHECK(same_bits(now[i].second, good[i].second));
    }
    // A state from step 0 is empty, and loading it starts afresh.
    opt.load_state({}, 0);
    CHECK(opt.steps() == 0);
    CHECK(opt.state().empty());
    // A step count given where it equals steps() is accepted.
    auto redundant = with([](auto& s) { s.emplace_back("step.encoder.0.bias", Array<T>(T(2))); });
    opt.load_state(redundant, 2);
    CHECK(opt.state().size() == 4);
}

TEST_CASE_TEMPLATE("sgd without momentum keeps no state", T, float, double) {
    Regression<T> r;
    SGD<T> opt(r.params(), {.lr = 0.1});
    r.step(opt);
    CHECK(opt.state().empty());
    opt.load_state({}, 7);
    CHECK(opt.steps() == 7);
    CHECK_THROWS_WITH_AS(opt.load_state({{"momentum.encoder.0.bias", xt::zeros<T>({2})}}, 7),
                         "sgd state: unexpected name momentum.encoder.0.bias", ValueError);
}

TEST_CASE_TEMPLATE("invalid options throw with the option and its value", T, float, double) {
    Var<T> w = param<T>(w0);
    ParameterList<T> p = {{"w", w}};
    CHECK_THROWS_WITH_AS(SGD<T>(p, {.lr = -0.1}), "sgd: lr must be a finite number >= 0: got -0.1", ValueError);
    CHECK_THROWS_WITH_AS(SGD<T>(p, {.lr = std::nan("")}), "sgd: lr must be a finite number >= 0: got nan",
                         ValueError);
    CHECK_THROWS_WITH_AS(SGD<T>(p, {.momentum = -0.5}), "sgd: momentum must be a finite number >= 0: got -0.5",
                         ValueError);
    CHECK_THROWS_WITH_AS(SGD<T>(p, {.nesterov = true}),
                         "sgd: nesterov needs momentum > 0 and dampening = 0: got momentum 0, dampening 0", ValueError);
    CHECK_THROWS_WITH_AS((SGD<T>(p, {.momentum = 0.9, .dampening = 0.1, .nesterov = true})),
                         "sgd: nesterov needs momentum > 0 and dampening = 0: got momentum 0.9, dampening 0.1",
                         ValueError);
    CHECK_THROWS_WITH_AS(SGD<T>(p, {.weight_decay = -1}), "sgd: weight_decay must be a finite number >= 0: got -1",
                         ValueError);
    CHECK_THROWS_WITH_AS(Adam<T>(p, {.beta1 = 1}), "adam: beta1 must be in [0, 1): got 1", ValueError);
    CHECK_THROWS_WITH_AS(Adam<T>(p, {.beta2 = -0.1}), "adam: beta2 must be in [0, 1): got -0.1", ValueError);
    CHECK_THROWS_WITH_AS(Adam<T>(p, {.lr = -1e-3}), "adam: lr must be a finite number >= 0: got -0.001", ValueError);
    CHECK_THROWS_WITH_AS(AdamW<T>(p, {.eps = -1}), "adamw: eps must be a finite number >= 0: got -1", ValueError);
    CHECK_THROWS_WITH_AS(AdamW<T>(p, {.weight_decay = -0.01}),
                         "adamw: weight_decay must be a finite number >= 0: got -0.01", ValueError);
    Adam<T> adam(p, {});
    CHECK_THROWS_WITH_AS(adam.set_lr(-2), "adam: lr must be a finite number >= 0: got -2", ValueError);
    adam.set_lr(0.5);
    CHECK(adam.lr() == 0.5);
    CHECK_THROWS_WITH_AS((SGD<T>(ParameterList<T>{{"w", w}, {"w", w}}, {})), "sgd: parameter w appears twice",
                         ValueError);
    CHECK_THROWS_WITH_AS((SGD<T>(ParameterList<T>{{"", w}}, {})), "sgd: parameter 0 has no name", ValueError);
    CHECK_THROWS_WITH_AS((Adam<T>(ParameterList<T>{{"v", Var<T>()}}, {})), "adam: parameter v is an empty Var",
                         ValueError);
}

TEST_CASE_TEMPLATE("a parameter resized after the first step is a shape error, not a read past its buffer", T,
                   float, double) {
    Var<T> w = param<T>(w0);
    Adam<T> opt({{"w", w}}, {});
    quadratic_grads<T>({w});
    opt.step();
    opt.zero_grad();
    w.mutable_value() = xt::ones<T>({3});
    sum(w * w).backward();
    CHECK_THROWS_WITH_AS(opt.step(), "adam: parameter w has shape (3,), its exp_avg buffer has (2, 2)", ShapeError);
}

TEST_CASE_TEMPLATE("after the first step, step() and clip_grad_norm allocate nothing", T, float, double) {
    for (std::string kind : {"sgd", "adam", "adamw"}) {
        CAPTURE(kind);
        Regression<T> r;
        auto opt = make<T>(kind, r.params());
        r.step(*opt);  // grads stay defined: step() can be called again on them
        long before = test::allocations();
        for (int i = 0; i < 10; ++i) {
            clip_grad_norm(opt->parameters(), 0.5);
            opt->step();
        }
        CHECK(test::allocations() - before == 0);
        // The counter counts: a first step allocates the buffers.
        auto fresh = make<T>(kind, r.params());
        before = test::allocations();
        fresh->step();
        CHECK(test::allocations() > before);
    }
}

#if defined(__SSE__) || defined(_M_X64)
TEST_CASE("FlushDenormals flushes denormal results and inputs to zero inside its scope only") {
    REQUIRE_FALSE(denormals_flushed());
    volatile float smallest_normal = std::numeric_limits<float>::min();
    volatile float denormal = std::numeric_limits<float>::denorm_min();
    volatile double smallest_normal_d = std::numeric_limits<double>::min();
    volatile float half = 0.5f;
    volatile float big = 1073741824.0f;  // 2^30: times the smallest denormal, a normal number
    volatile float outside = smallest_normal * half;
    CHECK(outside != 0.0f);
    CHECK(std::fpclassify(outside) == FP_SUBNORMAL);
    {
        FlushDenormals flush;
        CHECK(denormals_flushed());
        volatile float product = smallest_normal * half;  // FTZ: the denormal result becomes 0
        CHECK(product == 0.0f);
        volatile float read = denormal * big;  // DAZ: the denormal input reads as 0 (FTZ alone keeps it)
        CHECK(read == 0.0f);
        volatile double product_d = smallest_normal_d * 0.5;
        CHECK(product_d == 0.0);
        {
            FlushDenormals nested;
            CHECK(denormals_flushed());
        }
        CHECK(denormals_flushed());  // the inner scope restores the outer one's mode
    }
    CHECK_FALSE(denormals_flushed());
    volatile float after = smallest_normal * half;
    CHECK(after == outside);
    volatile float read_after = denormal * big;
    CHECK(read_after == std::ldexp(std::numeric_limits<float>::denorm_min(), 30));
}
#else
TEST_CASE("FlushDenormals is a no-op without MXCSR") {
    FlushDenormals flush;
    CHECK_FALSE(denormals_flushed());
}
#endif
