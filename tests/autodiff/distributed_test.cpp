// The processes of an MPI job as one (autodiff/distributed.hpp): the ranks, the sums, and the
// differentiable all_reduce, alone (autodiff/distributed) and as 2 ranks under mpirun
// (autodiff/distributed_2ranks); see distributed_main.hpp.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <string>

#include "distributed_main.hpp"
#include "helpers.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using test::expected_ranks;
using test::random_array;

namespace {

// Rank r's input: its own values, which every rank can rebuild to compute the expected sums.
template <class T>
Array<T> input_of(int r, const Shape& shape, std::uint64_t seed) {
    return random_array<T>(shape, seed + 1000 * static_cast<std::uint64_t>(r));
}

// The objective summed over the ranks, F = sum_r f_r(x_r), with f_r = sum(a_r * tanh(all_reduce(x_r * w_r)))
// + sum(x_r^2) / 2: every rank's x reaches every rank's term through the all-reduce, both ways.
struct Objective {
    Array<double> w;
    Array<double> a;
    Var<double> local(const Var<double>& x) const {
        return sum(Var<double>(a) * tanh(all_reduce(x * Var<double>(w)))) + sum(x * x) * 0.5;
    }
    double global(const Array<double>& x) const {
        double f = local(Var<double>(x)).item();
        distributed::all_reduce_sum(&f, 1);
        return f;
    }
};

// The largest gap between rank s's analytic gradient of F and F's central difference in each of rank s's
// elements, for every s in turn: while rank s moves an element, the others hold theirs, and all evaluate F.
double gradient_error(const Objective& objective, const Array<double>& x0) {
    Var<double> x(x0, true);
    backward(objective.local(x));
    Array<double> analytic = x.grad().value();
    double worst = 0;
    const double h = 1e-6;
    for (int s = 0; s < distributed::size(); ++s) {
        for (std::size_t i = 0; i < x0.size(); ++i) {
            Array<double> plus = x0;
            Array<double> minus = x0;
            if (distributed::rank() == s) {
                plus.data()[i] += h;
                minus.data()[i] -= h;
            }
            double numeric = (objective.global(plus) - objective.global(minus)) / (2 * h);
            double gap = distributed::rank() == s ? std::abs(numeric - analytic.data()[i]) : 0;
            distributed::all_reduce_sum(&gap, 1);  // rank s's gap, on every rank
            worst = std::max(worst, gap);
        }
    }
    return worst;
}

}  // namespace

TEST_CASE("the ranks are the ones mpirun started, each once") {
    CHECK(distributed::size() == expected_ranks());
    CHECK(distributed::rank() >= 0);
    CHECK(distributed::rank() < distributed::size());
    double ranks[2] = {double(distributed::rank()), 1};
    distributed::all_reduce_sum(ranks, 2);
    int n = distributed::size();
    CHECK(ranks[0] == n * (n - 1) / 2);  // 0 + 1 + ... + n - 1: every rank counted once
    CHECK(ranks[1] == n);
    if (n > 1) {
        CHECK(distributed::summary().starts_with("Open MPI v"));
        CHECK(distributed::summary().ends_with(", 2 ranks"));
    } else {
        CHECK(distributed::summary().starts_with("1 process ("));
    }
}

TEST_CASE_TEMPLATE("all_reduce_sum and broadcast give every rank the sum and rank 0's values", T, float, double) {
    Shape shape{3, 5};
    Array<T> mine = input_of<T>(distributed::rank(), shape, 1);
    Array<double> want = xt::zeros<double>(shape);
    for (int r = 0; r < distributed::size(); ++r) {
        Array<T> theirs = input_of<T>(r, shape, 1);
        for (std::size_t i = 0; i < want.size(); ++i) {
            want.data()[i] += static_cast<double>(theirs.data()[i]);
        }
    }
    Array<T> summed = mine;
    distributed::all_reduce_sum(summed.data(), summed.size());
    CHECK(test::close_to<T>(summed, want, test::tolerance<T>()));
    Array<T> sent = mine;
    distributed::broadcast(sent.data(), sent.size());
    CHECK(sent == input_of<T>(0, shape, 1));
    distributed::barrier();
}

TEST_CASE_TEMPLATE("all_reduce's forward is the sum over the ranks, its backward the sum of their gradients", T,
                   float, double) {
    Shape shape{4, 3};
    Var<T> x(input_of<T>(distributed::rank(), shape, 2), true);
    Var<T> c(input_of<T>(distributed::rank(), shape, 3));
    Var<T> y = all_reduce(x);
    // f_r = sum(c_r * y): the gradient of sum_r f_r in x_s is sum_r c_r, on every rank s.
    backward(sum(c * y));
    Array<double> sum_x = xt::zeros<double>(shape);
    Array<double> sum_c = xt::zeros<double>(shape);
    for (int r = 0; r < distributed::size(); ++r) {
        Array<T> xr = input_of<T>(r, shape, 2);
        Array<T> cr = input_of<T>(r, shape, 3);
        for (std::size_t i = 0; i < sum_x.size(); ++i) {
            sum_x.data()[i] += static_cast<double>(xr.data()[i]);
            sum_c.data()[i] += static_cast<double>(cr.data()[i]);
        }
    }
    CHECK(test::close_to<T>(y.value(), sum_x, test::tolerance<T>()));
    CHECK(test::close_to<T>(x.grad().value(), sum_c, test::tolerance<T>()));
}

TEST_CASE("the gradient of an objective across the ranks agrees with its finite differences, and a broken "
          "all_reduce backward does not") {
    Shape shape{2, 3};
    int r = distributed::rank();
    Objective objective{input_of<double>(r, shape, 4), input_of<double>(r, shape, 5)};
    Array<double> x0 = input_of<double>(r, shape, 6);
    double right = gradient_error(objective, x0);
    CHECK(right < 1e-8);
    double broken = 0;
    {
        testing::FaultScope fault({.op = "all_reduce", .kind = testing::FaultKind::scale, .input = 0, .factor = 1.01});
        broken = gradient_error(objective, x0);
    }
    CAPTURE(right);
    CHECK(broken > 1e-4);
}

TEST_CASE("all_reduce differentiates twice: the gradient of a gradient across the ranks") {
    // f_r = sum(all_reduce(x_r)^2) / 2 has gradient n * all_reduce(x) in x_r on every rank (n ranks), and
    // the gradient of sum(that gradient) in x_r is n * n.
    Var<double> x(input_of<double>(distributed::rank(), {3}, 7), true);
    Var<double> y = all_reduce(x);
    Var<double> f = sum(y * y) * 0.5;
    std::vector<Var<double>> inputs{x};
    std::vector<Var<double>> g = grad(f, std::span<const Var<double>>(inputs), {.create_graph = true});
    int n = distributed::size();
    CHECK(test::close_to<double>(g[0].value(), n * y.value(), 1e-12));
    backward(sum(g[0]));
    CHECK(test::close_to<double>(x.grad().value(), xt::ones<double>({3}) * double(n * n), 1e-12));
}

int main(int argc, char** argv) { return test::run_as_ranks(argc, argv); }
