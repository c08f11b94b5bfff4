// tapegrad's threads: parallel_for cuts a range into aligned, disjoint parts that cover it, runs nested
// loops inline, rethrows the caller's exception, hands the caller's flush-to-zero mode to the workers;
// and what runs on them gives the same numbers as one thread: elementwise ops and reductions bit for bit,
// products within a dot product's rounding, and a few Adam steps of an autoencoder.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <xmmintrin.h>

#include "helpers.hpp"
#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/models/autoencoder.hpp"
#include "tapegrad/nn/optim.hpp"

using namespace tapegrad;

namespace {

// Sets the thread count for one test and puts back one thread after it.
struct Threads {
    explicit Threads(int n) { set_threads(n); }
    ~Threads() { set_threads(1); }
};

struct Range {
    std::size_t begin, end;
    std::thread::id thread;
};

std::vector<Range> ranges_of(std::size_t n, std::size_t grain, std::size_t align = 16) {
    std::mutex lock;
    std::vector<Range> ranges;
    parallel_for(n, grain, [&](std::size_t begin, std::size_t end) {
        std::lock_guard<std::mutex> hold(lock);
        ranges.push_back({begin, end, std::this_thread::get_id()});
    }, align);
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    return ranges;
}

}  // namespace

TEST_CASE("parallel_for covers [0, n) once, in parts cut at multiples of the alignment") {
    for (int threads : {1, 2, 3}) {
        Threads scope(threads);
        CAPTURE(threads);
        for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(100), std::size_t(32768),
                              std::size_t(100352), std::size_t(200705)}) {
            CAPTURE(n);
            std::vector<Range> ranges = ranges_of(n, 16384);
            std::size_t expected = std::min<std::size_t>(threads, std::max<std::size_t>(1, n / 16384));
            CHECK(ranges.size() == expected);
            std::size_t at = 0;
            std::vector<std::thread::id> seen;
            for (const Range& r : ranges) {
                CHECK(r.begin == at);
                CHECK(r.end >= r.begin);
                CHECK((r.begin % 16 == 0));
                at = r.end;
                CHECK(std::find(seen.begin(), seen.end(), r.thread) == seen.end());  // one part per thread
                seen.push_back(r.thread);
            }
            CHECK(at == n);
        }
    }
    {
        // An alignment wider than a part: cut points round to it but never pass n.
        Threads three(3);
        std::vector<Range> wide = ranges_of(50, 16, 64);
        std::size_t at = 0;
        for (const Range& r : wide) {
            CHECK(r.begin == at);
            CHECK(r.end >= r.begin);
            at = r.end;
        }
        CHECK(at == 50);
    }
    Threads scope(2);
    std::vector<Range> rows = ranges_of(784, 32, 8);  // a product's bands: 392 rows each
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].end == 392);
    CHECK(threads() == 2);
    // Few large items, unaligned: the convolution weight gradient's 8 parts of the batch are cut between
    // the threads (a floor of 16 items per part once kept them all on one).
    std::vector<Range> items = ranges_of(8, 1, 1);
    REQUIRE(items.size() == 2);
    CHECK(items[0].end == 4);
    CHECK(ranges_of(8, 1).size() == 1);  // aligned to 16 (floats on a cache line), 8 stay whole
}

TEST_CASE("a parallel_for inside a part runs on that part's thread alone") {
    Threads scope(2);
    std::atomic<int> inner_parts{0};
    std::atomic<bool> same_thread{true};
    parallel_for(65536, 16384, [&](std::size_t, std::size_t) {
        std::thread::id outer = std::this_thread::get_id();
        parallel_for(65536, 16384, [&](std::size_t, std::size_t) {
            ++inner_parts;
            same_thread = same_thread && std::this_thread::get_id() == outer;
        });
    });
    CHECK(inner_parts == 2);  // one inner loop per outer part, each in one piece
    CHECK(same_thread);
}

TEST_CASE("an exception on the caller's part is rethrown after every part is done, and the pool goes on") {
    Threads scope(2);
    std::atomic<int> finished{0};
    std::thread::id caller = std::this_thread::get_id();
    auto throwing = [&](std::size_t, std::size_t) {
        if (std::this_thread::get_id() == caller) {
            throw std::runtime_error("part failed");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ++finished;
    };
    CHECK_THROWS_WITH_AS(parallel_for(65536, 16384, throwing), "part failed", std::runtime_error);
    CHECK(finished == 1);  // the worker's part had finished before the exception left
    CHECK(ranges_of(65536, 16384).size() == 2);
    CHECK_THROWS_AS(set_threads(0), ValueError);
}

TEST_CASE("workers compute with the caller's flush-to-zero and denormals-are-zero mode") {
    Threads scope(2);
    unsigned saved = _mm_getcsr();
    for (unsigned mode : {saved | 0x8040u, saved & ~0x8040u}) {
        _mm_setcsr(mode);
        std::vector<float> out(65536);
        volatile float tiny = 1e-30f;
        parallel_for(out.size(), 16384, [&](std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) {
                out[i] = tiny * 1e-10f;  // 1e-40: a denormal, or 0 under flush-to-zero
            }
        });
        bool flushed = (mode & 0x8000u) != 0;
        CHECK(out.front() == (flushed ? 0.0f : 1e-40f));
        CHECK(out.back() == (flushed ? 0.0f : 1e-40f));
    }
    _mm_setcsr(saved);
}

TEST_CASE_TEMPLATE("elementwise ops, reductions and their gradients are the same bits on 1 and 2 threads", T, float,
                   double) {
    Array<T> a = test::random_array<T>({128, 784}, 1, -3, 3);
    Array<T> b = test::random_array<T>({128, 784}, 2, 0, 1);
    Array<T> w = test::random_array<T>({784, 256}, 3, -1, 1);
    auto run = [&] {
        Var<T> x = Var<T>::parameter(a, "x");
        Var<T> y(b);
        Var<T> v = Var<T>::parameter(w, "w");
        Var<T> bias = Var<T>::parameter(test::random_array<T>({784}, 4, -1, 1), "bias");
        Var<T> loss = mean_squared_error(sigmoid(x), y) + sum(relu(x + bias) * y) + sum_squares(v) +
                      sum(exp(x * T(0.1)));
        loss.backward();
        return std::vector<Array<T>>{loss.value(), x.grad().value(), v.grad().value(), bias.grad().value()};
    };
    std::vector<Array<T>> one = run();
    Threads scope(2);
    std::vector<Array<T>> two = run();
    for (std::size_t i = 0; i < one.size(); ++i) {
        CAPTURE(i);
        CHECK(one[i] == two[i]);
    }
}

TEST_CASE_TEMPLATE("products cut into bands equal the uncut product", T, float, double) {
    for (auto [m, n, k] : {std::array<std::size_t, 3>{128, 784, 256}, {784, 256, 128}, {128, 64, 256},
                           {1000, 37, 77}, {37, 1000, 77}}) {
        CAPTURE(m);
        CAPTURE(n);
        for (bool ta : {false, true}) {
            for (bool tb : {false, true}) {
                Array<T> a = test::random_array<T>(ta ? Shape{k, m} : Shape{m, k}, 4, -1, 1);
                Array<T> b = test::random_array<T>(tb ? Shape{n, k} : Shape{k, n}, 5, -1, 1);
                Array<T> c = test::random_array<T>({m, n}, 6, -1, 1);
                auto product = [&](T beta) {
                    Array<T> out = c;
                    gemm<T>(ta, tb, m, n, k, T(1), a.data(), a.shape()[1], b.data(), b.shape()[1], beta, out.data(), n);
                    return out;
                };
                Array<T> one = product(T(0));
                Array<T> one_acc = product(T(1));
                Threads scope(2);
                Array<T> two = product(T(0));
                Array<T> two_acc = product(T(1));
                // Every element is one dot product of k terms whichever band holds it; a band's shape may
                // change the BLAS kernel's order of adds, never by more than the dot product's bound.
                double bound = double(k) * std::numeric_limits<T>::epsilon() * double(k);
                CHECK(xt::amax(xt::abs(one - two))() <= bound);
                CHECK(xt::amax(xt::abs(one_acc - two_acc))() <= bound);
                CHECK(xt::amax(xt::abs(one_acc - c - one))() <= bound);
            }
        }
    }
}

TEST_CASE("an autoencoder trained with Adam on 2 threads follows the 1-thread run") {
    models::AutoencoderConfig config;
    config.sizes = {784, 64, 16};
    config.output_activation = "sigmoid";
    Array<float> batch = test::random_array<float>({128, 784}, 7, 0, 1);
    auto train = [&] {
        models::Autoencoder<float> model(config);
        nn::Adam<float> adam(model.named_parameters(), nn::AdamOptions{.lr = 1e-3});
        for (int step = 0; step < 5; ++step) {
            Var<float> x(batch);
            adam.zero_grad();
            Var<float> loss = model.loss(x);
            loss.backward();
            adam.step();
        }
        std::vector<Array<float>> values;
        for (const auto& p : model.named_parameters()) {
            values.push_back(p.var.value());
        }
        return values;
    };
    std::vector<Array<float>> one = train();
    Threads scope(2);
    std::vector<Array<float>> two = train();
    REQUIRE(one.size() == two.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
        CAPTURE(i);
        // Products cut into bands may round differently (on this machine they do not), and Adam moves a
        // weight by up to lr a step whatever its gradient's size: a bound of 5 steps of 1e-3 apart, which
        // an unwritten band or a skipped part of an update would exceed.
        CHECK(xt::amax(xt::abs(one[i] - two[i]))() <= 5e-3f);
    }
}
