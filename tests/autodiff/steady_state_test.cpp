// A training step that records the same graph as the step before allocates nothing: the tape keeps its
// entries and the pool hands back last step's buffers. This binary counts every operator new.
#include "counting_new.hpp"
#include "helpers.hpp"

using namespace tapegrad;

TEST_CASE_TEMPLATE("after warm-up, a training step allocates nothing", T, float, double) {
    Var<T> x(test::random_array<T>({64, 8}, 1, 0, 1));
    std::vector<Var<T>> params = {
        test::random_param<T>({8, 4}, 2, "encoder.0.weight"), test::random_param<T>({4}, 3, "encoder.0.bias"),
        test::random_param<T>({4, 8}, 4, "decoder.0.weight"), test::random_param<T>({8}, 5, "decoder.0.bias")};
    auto step = [&] {
        for (Var<T>& p : params) {
            p.zero_grad();
        }
        Var<T> h = relu(matmul(x, params[0]) + params[1]);
        Var<T> y = sigmoid(matmul(h, params[2]) + params[3]);
        Var<T> d = y - x;
        mean(d * d).backward();
        for (Var<T>& p : params) {  // SGD, in place
            T* v = p.mutable_value().data();
            const T* g = p.grad().value().data();
            for (std::size_t i = 0; i < p.size(); ++i) {
                v[i] -= T(0.1) * g[i];
            }
        }
    };
    for (int i = 0; i < 3; ++i) {
        step();
    }
    long before = test::allocations();
    for (int i = 0; i < 20; ++i) {
        step();
    }
    CHECK(test::allocations() - before == 0);
    // The counter counts: one more Var with a new shape allocates.
    Var<T> fresh(test::random_array<T>({3, 5}, 6));
    CHECK(test::allocations() > before);
}
