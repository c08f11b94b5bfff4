// Schedules against their closed forms, written out here (tables where the numbers are exact), the lr they
// put on the optimizer, and a resumed run (optimizer state and schedule epoch restored) that continues bit
// for bit as an unbroken one.
#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include <nlohmann/json.hpp>

#include "helpers.hpp"
#include "tapegrad/nn/schedule.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

namespace {

template <class T>
ParameterList<T> one_parameter() {
    return {{"w", Var<T>::parameter(xt::ones<T>(Shape{3}), "w")}};
}

}  // namespace

TEST_CASE_TEMPLATE("step_lr: base_lr * gamma^floor(epoch / step_size), on the optimizer too", T, float, double) {
    SGD<T> opt(one_parameter<T>(), {.lr = 0.1});
    StepLR<T> schedule(opt, {.step_size = 3, .gamma = 0.5});
    // Halving is exact in binary, so these are the closed form's values to the last bit.
    const double want[] = {0.1,   0.1,   0.1,    0.05,   0.05,   0.05,    0.025,
                           0.025, 0.025, 0.0125, 0.0125, 0.0125, 0.00625, 0.00625};
    for (std::size_t e = 0; e < std::size(want); ++e) {
        CAPTURE(e);
        CHECK(schedule.epoch() == e);
        CHECK(schedule.lr() == want[e]);
        CHECK(opt.lr() == want[e]);
        CHECK(schedule.lr_at(e) == want[e]);
        schedule.step();
    }
}

TEST_CASE_TEMPLATE("step_lr with gamma 0.1 over 13 epochs", T, float, double) {
    Adam<T> opt(one_parameter<T>(), {.lr = 0.2});
    StepLR<T> schedule(opt, {.step_size = 4, .gamma = 0.1});
    CHECK(schedule.base_lr() == 0.2);
    for (std::size_t e = 0; e <= 13; ++e) {
        CAPTURE(e);
        const double want = e < 4 ? 0.2 : e < 8 ? 0.02 : e < 12 ? 0.002 : 0.0002;
        CHECK(opt.lr() == doctest::Approx(want).epsilon(1e-15));
        schedule.step();
    }
}

TEST_CASE_TEMPLATE("cosine_annealing_lr: eta_min + (base_lr - eta_min) (1 + cos(pi e / t_max)) / 2", T, float,
                   double) {
    const double base = 0.1, eta_min = 0.001;
    SGD<T> opt(one_parameter<T>(), {.lr = base});
    CosineAnnealingLR<T> schedule(opt, {.t_max = 10, .eta_min = eta_min});
    double previous = 1;
    for (std::size_t e = 0; e <= 25; ++e) {
        CAPTURE(e);
        CHECK(opt.lr() == schedule.lr());
        // Points where the cosine is known: 1 at 0 and 2 t_max, 0 at t_max / 2 (mid-way), -1 at t_max.
        if (e == 0 || e == 20) {
            CHECK(opt.lr() == doctest::Approx(base).epsilon(1e-15));
        } else if (e == 5 || e == 15 || e == 25) {
            CHECK(opt.lr() == doctest::Approx((base + eta_min) / 2).epsilon(1e-15));
        } else if (e == 10) {
            CHECK(opt.lr() == doctest::Approx(eta_min).epsilon(1e-15));
        }
        // cos(pi e / 10) by its half-angle: (1 + cos x) / 2 = cos^2(x / 2).
        const double half = std::cos(std::numbers::pi * static_cast<double>(e) / 20);
        CHECK(opt.lr() == doctest::Approx(eta_min + (base - eta_min) * half * half).epsilon(1e-14));
        if (e <= 10) {
            CHECK(opt.lr() < previous);  // decreasing down to t_max
        }
        previous = opt.lr();
        schedule.step();
    }
    CHECK(schedule.epoch() == 26);
}

TEST_CASE_TEMPLATE("a schedule starts from the optimizer's lr exactly", T, float, double) {
    // eta_min + (base_lr - eta_min) is 0.30000000000000004 here, not 0.3: epoch 0 is base_lr itself.
    SGD<T> opt(one_parameter<T>(), {.lr = 0.3});
    CosineAnnealingLR<T> schedule(opt, {.t_max = 7, .eta_min = 0.1});
    CHECK(schedule.lr() == 0.3);
    CHECK(opt.lr() == 0.3);
    CHECK(schedule.lr_at(14) == doctest::Approx(0.3).epsilon(1e-15));
}

TEST_CASE_TEMPLATE("load_state restores the epoch and the base lr, and puts the lr on the optimizer", T, float,
                   double) {
    SGD<T> opt(one_parameter<T>(), {.lr = 0.1});
    CosineAnnealingLR<T> schedule(opt, {.t_max = 10});
    for (int e = 0; e < 7; ++e) {
        schedule.step();
    }
    const double lr7 = opt.lr();
    nlohmann::json j = nlohmann::json::parse(schedule.hyperparameters_json());
    CHECK(j["kind"] == "cosine_annealing_lr");
    CHECK(j["t_max"] == 10);
    CHECK(j["eta_min"] == 0.0);
    CHECK(j["base_lr"] == 0.1);
    CHECK(j["epoch"] == 7);

    // A run resumed from a checkpoint whose optimizer lr was already restored to the decayed value: the
    // schedule must not take that for its base.
    SGD<T> opt2(one_parameter<T>(), {.lr = lr7});
    CosineAnnealingLR<T> schedule2(opt2, {.t_max = 10});
    schedule2.load_state(j["epoch"].get<std::size_t>(), j["base_lr"].get<double>());
    CHECK(schedule2.epoch() == 7);
    CHECK(schedule2.base_lr() == 0.1);
    CHECK(opt2.lr() == lr7);
    for (int e = 0; e < 5; ++e) {
        schedule.step();
        schedule2.step();
        CHECK(opt2.lr() == opt.lr());
    }
    CHECK_THROWS_WITH_AS(schedule2.load_state(3, -1), "cosine_annealing_lr: base_lr must be a finite number >= 0: got -1",
                         ValueError);
    CHECK(schedule2.epoch() == 12);

    StepLR<T> step(opt, {.step_size = 2});
    auto s = nlohmann::json::parse(step.hyperparameters_json());
    CHECK(s["kind"] == "step_lr");
    CHECK(s["step_size"] == 2);
    CHECK(s["gamma"] == 0.1);
}

TEST_CASE_TEMPLATE("invalid schedule options", T, float, double) {
    SGD<T> opt(one_parameter<T>(), {.lr = 0.1});
    CHECK_THROWS_WITH_AS(StepLR<T>(opt, {}), "step_lr: step_size must be positive: got 0", ValueError);
    CHECK_THROWS_WITH_AS((StepLR<T>(opt, {.step_size = 2, .gamma = 0})),
                         "step_lr: gamma must be a finite number > 0: got 0", ValueError);
    CHECK_THROWS_WITH_AS((StepLR<T>(opt, {.step_size = 2, .gamma = INFINITY})),
                         "step_lr: gamma must be a finite number > 0: got inf", ValueError);
    CHECK_THROWS_WITH_AS(CosineAnnealingLR<T>(opt, {}), "cosine_annealing_lr: t_max must be positive: got 0",
                         ValueError);
    CHECK_THROWS_WITH_AS((CosineAnnealingLR<T>(opt, {.t_max = 5, .eta_min = -0.1})),
                         "cosine_annealing_lr: eta_min must be a finite number >= 0: got -0.1", ValueError);
}

TEST_CASE_TEMPLATE("training resumed from optimizer state and schedule epoch matches an unbroken run bit for bit", T,
                   float, double) {
    // Two epochs of two steps each on a small regression; an interruption after epoch 3.
    Var<T> x(test::random_array<T>({6, 3}, 21));
    Var<T> y(test::random_array<T>({6, 2}, 22));
    struct Run {
        Var<T> weight = test::random_param<T>({3, 2}, 23, "encoder.0.weight");
        Var<T> bias = test::random_param<T>({2}, 24, "encoder.0.bias");
        std::unique_ptr<Adam<T>> opt;
        std::unique_ptr<CosineAnnealingLR<T>> schedule;
        Run() {
            opt = std::make_unique<Adam<T>>(ParameterList<T>{{"encoder.0.weight", weight}, {"encoder.0.bias", bias}},
                                            AdamOptions{.lr = 0.05, .weight_decay = 1e-4});
            schedule = std::make_unique<CosineAnnealingLR<T>>(*opt, CosineAnnealingLROptions{.t_max = 6});
        }
    };
    auto epoch = [&](Run& r, std::vector<T>& losses) {
        for (int b = 0; b < 2; ++b) {
            r.opt->zero_grad();
            Var<T> rows = slice_rows(x, 3 * b, 3 * b + 3);
            Var<T> d = sigmoid(matmul(rows, r.weight) + r.bias) - slice_rows(y, 3 * b, 3 * b + 3);
            Var<T> loss = mean(d * d);
            loss.backward();
            clip_grad_norm(r.opt->parameters(), 0.5);
            r.opt->step();
            losses.push_back(loss.item());
        }
        r.schedule->step();
    };
    Run unbroken;
    std::vector<T> want;
    for (int e = 0; e < 8; ++e) {
        epoch(unbroken, want);
    }

    Run first;
    std::vector<T> got;
    for (int e = 0; e < 3; ++e) {
        epoch(first, got);
    }
    // What a checkpoint holds.
    Array<T> weight = first.weight.value(), bias = first.bias.value();
    auto state = first.opt->state();
    std::size_t steps = first.opt->steps();
    std::size_t at = first.schedule->epoch();
    double base_lr = first.schedule->base_lr();

    Run resumed;
    resumed.weight.mutable_value() = weight;
    resumed.bias.mutable_value() = bias;
    resumed.opt->load_state(state, steps);
    resumed.schedule->load_state(at, base_lr);
    for (int e = 3; e < 8; ++e) {
        epoch(resumed, got);
    }
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
        CAPTURE(i);
        CHECK(got[i] == want[i]);
    }
    CHECK(std::memcmp(resumed.weight.value().data(), unbroken.weight.value().data(), 6 * sizeof(T)) == 0);
    CHECK(std::memcmp(resumed.bias.value().data(), unbroken.bias.value().data(), 2 * sizeof(T)) == 0);
    CHECK(resumed.opt->lr() == unbroken.opt->lr());
    CHECK(resumed.opt->steps() == 16);
}
