// Data-parallel plumbing (nn/distributed.hpp): the parameters made equal, the gradients summed in buckets,
// disagreements between the ranks refused by name. Alone (nn/distributed) and as 2 ranks under mpirun
// (nn/distributed_2ranks); see distributed_main.hpp.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <random>
#include <string>

#include <fmt/format.h>

#include "distributed_main.hpp"
#include "helpers.hpp"
#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/autodiff/tape.hpp"
#include "tapegrad/nn/distributed.hpp"
#include "tapegrad/nn/linear.hpp"

using namespace tapegrad;
using test::random_array;

namespace {

// Two layers, initialised from a seed that differs between the ranks unless `same`.
template <class T>
struct Net {
    std::mt19937_64 rng;
    nn::Linear<T> a;
    nn::Linear<T> b;
    explicit Net(std::uint64_t seed) : rng(seed), a(5, 4, rng), b(4, 3, rng) {}
    nn::ParameterList<T> parameters() const {
        nn::ParameterList<T> all = a.named_parameters();
        for (auto& p : b.named_parameters()) {
            all.push_back(p);
        }
        return all;
    }
    // sum((b(tanh(a(x))))^2) on rank r's batch.
    Var<T> loss(const Array<T>& x) { return sum(pow(b.forward(tanh(a.forward(Var<T>(x)))), 2)); }
};

template <class T>
Array<T> batch_of(int r) {
    return random_array<T>({6, 5}, 50 + static_cast<std::uint64_t>(r));
}

}  // namespace

TEST_CASE_TEMPLATE("broadcast_parameters gives every rank rank 0's values", T, float, double) {
    Net<T> mine(10 + static_cast<std::uint64_t>(distributed::rank()));
    Net<T> rank0(10);
    nn::broadcast_parameters(mine.parameters());
    nn::ParameterList<T> got = mine.parameters();
    nn::ParameterList<T> want = rank0.parameters();
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(got[i].name);
        CHECK(got[i].var.value() == want[i].var.value());
    }
}

TEST_CASE_TEMPLATE("all_reduce_gradients sums each gradient over the ranks, in one bucket or many", T, float,
                   double) {
    std::size_t bucket_bytes = 0;
    SUBCASE("one bucket") { bucket_bytes = std::size_t(4) << 20; }
    SUBCASE("a bucket a parameter or less: grads larger than a bucket go alone") { bucket_bytes = 16 * sizeof(T); }
    CAPTURE(bucket_bytes);
    Net<T> net(3);
    backward(net.loss(batch_of<T>(distributed::rank())));
    nn::reset_gradient_reduce_stats();
    nn::all_reduce_gradients(net.parameters(), bucket_bytes);
    // Counted: one call, the check of which grads are there and a sum a bucket, every grad's bytes once.
    nn::GradientReduceStats stats = nn::gradient_reduce_stats();
    std::size_t elements = 0;
    for (const auto& p : net.parameters()) {
        elements += p.var.size();
    }
    bool split = distributed::size() > 1;
    CHECK(stats.calls == (split ? 1 : 0));
    CHECK(stats.bytes == (split ? elements * sizeof(T) : 0));
    if (split && bucket_bytes > elements * sizeof(T)) {
        CHECK(stats.sums == 2);
    } else if (split) {
        CHECK(stats.sums > 2);
    }
    CHECK((stats.seconds > 0) == split);
    // The same sums worked out here: every rank's batch through the same weights.
    std::vector<Array<double>> want;
    for (const auto& p : net.parameters()) {
        want.push_back(xt::zeros<double>(p.var.shape()));
    }
    for (int r = 0; r < distributed::size(); ++r) {
        Net<T> alone(3);
        backward(alone.loss(batch_of<T>(r)));
        nn::ParameterList<T> ps = alone.parameters();
        for (std::size_t i = 0; i < ps.size(); ++i) {
            for (std::size_t j = 0; j < ps[i].var.size(); ++j) {
                want[i].data()[j] += static_cast<double>(ps[i].var.grad().value().data()[j]);
            }
        }
    }
    nn::ParameterList<T> got = net.parameters();
    for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(got[i].name);
        CHECK(test::close_to<T>(got[i].var.grad().value(), want[i], test::tolerance<T>()));
    }
}

TEST_CASE("a gradient present on some ranks only is refused, naming the parameter") {
    Net<double> net(3);
    if (distributed::rank() == 0) {
        backward(net.loss(batch_of<double>(0)));
    }
    if (distributed::size() == 1) {
        CHECK_NOTHROW(nn::all_reduce_gradients(net.parameters()));
    } else {
        CHECK_THROWS_WITH_AS(nn::all_reduce_gradients(net.parameters()),
                             "all_reduce_gradients: weight has a gradient on 1 of 2 ranks", DistributedError);
    }
}

TEST_CASE("check_same_on_all_ranks passes equal texts and names the rank and both texts otherwise") {
    CHECK_NOTHROW(nn::check_same_on_all_ranks("options", R"({"lr": 0.001})"));
    std::string mine = fmt::format(R"({{"rows": {}}})", 100 + distributed::rank());
    if (distributed::size() == 1) {
        CHECK_NOTHROW(nn::check_same_on_all_ranks("data", mine));
    } else {
        CHECK_THROWS_WITH_AS(nn::check_same_on_all_ranks("data", mine),
                             R"(data differs between the ranks: rank 0 has {"rows": 100}, rank 1 has {"rows": 101})",
                             DistributedError);
    }
}

int main(int argc, char** argv) { return test::run_as_ranks(argc, argv); }
