// Initialisers: bounds and variances as their papers give them, and seeding.
#include <cmath>

#include "helpers.hpp"
#include "tapegrad/nn/init.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

using test::Moments;
using test::moments;

TEST_CASE_TEMPLATE("each initialiser has the bound or variance it promises", T, float, double) {
    std::mt19937_64 rng(1);
    const std::size_t in = 300;
    const std::size_t out = 200;
    struct Expect {
        Init init;
        double variance;
        double bound;  // 0: unbounded
    };
    for (Expect e : {Expect{Init::xavier_uniform, 2.0 / (in + out), std::sqrt(6.0 / (in + out))},
                     Expect{Init::xavier_normal, 2.0 / (in + out), 0},
                     Expect{Init::he_uniform, 2.0 / in, std::sqrt(6.0 / in)},
                     Expect{Init::he_normal, 2.0 / in, 0},
                     Expect{Init::torch_default, 1.0 / (3.0 * in), 1.0 / std::sqrt(double(in))}}) {
        CAPTURE(to_string(e.init));
        Moments m = moments(init_weight<T>(e.init, in, out, rng));
        // 60000 draws: the sample variance is within 2% of the true one, the mean near 0.
        CHECK(m.variance == doctest::Approx(e.variance).epsilon(0.02));
        CHECK(std::abs(m.mean) < 4 * std::sqrt(e.variance / 60000));
        if (e.bound > 0) {
            CHECK(m.max_abs <= e.bound);
            CHECK(m.max_abs > 0.99 * e.bound);
        }
    }
    CHECK(init_weight<T>(Init::zeros, 3, 2, rng) == xt::zeros<T>(Shape{3, 2}));
}

TEST_CASE("biases are zero but for PyTorch's default") {
    std::mt19937_64 rng(2);
    CHECK(init_bias<double>(Init::he_normal, 10, 4, rng) == xt::zeros<double>(Shape{4}));
    Array<double> b = init_bias<double>(Init::torch_default, 100, 1000, rng);
    Moments m = moments(b);
    CHECK(m.max_abs <= 0.1);
    CHECK(m.max_abs > 0.09);
}

TEST_CASE("seeded: the same generator state gives the same weights") {
    std::mt19937_64 a(9);
    std::mt19937_64 b(9);
    CHECK(init_weight<float>(Init::xavier_normal, 7, 5, a) == init_weight<float>(Init::xavier_normal, 7, 5, b));
}

TEST_CASE("names and errors") {
    for (Init i : {Init::xavier_uniform, Init::xavier_normal, Init::he_uniform, Init::he_normal, Init::zeros,
                   Init::torch_default}) {
        CHECK(parse_init(to_string(i)) == i);
    }
    CHECK_THROWS_WITH_AS(parse_init("glorot"),
                         "init: unknown initialiser \"glorot\" (known: xavier_uniform, xavier_normal, he_uniform, "
                         "he_normal, zeros, torch_default)",
                         ValueError);
    std::mt19937_64 rng(0);
    CHECK_THROWS_WITH_AS(init_weight<float>(Init::he_normal, 0, 3, rng),
                         "init: a weight needs fan_in and fan_out above 0, got (0, 3)", ValueError);
}
