// matmul: forward against a plain triple loop in double, from (1, 1) x (1, 1) to (128, 784) x (784, 8),
// with the error bound of a float dot product; k = 0 (zeros) and m or n = 0 (empty); the errors for
// shapes that do not fit; and backward with a random seed (dA = dy B^T, dB = A^T dy by loops) and
// twice; product_time's counts. Gradient checks live in op_table_test.cpp.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "helpers.hpp"
#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using test::random_array;

namespace {

// C = A B by a triple loop, in double; and |A| |B|, which bounds the rounding error of each element.
struct Product {
    Array<double> c;
    Array<double> abs_c;
};

template <class T>
Product product_ref(const Array<T>& a, const Array<T>& b, bool ta = false, bool tb = false) {
    std::size_t m = a.shape()[ta ? 1 : 0];
    std::size_t k = a.shape()[ta ? 0 : 1];
    std::size_t n = b.shape()[tb ? 0 : 1];
    Product p{xt::zeros<double>(Shape{m, n}), xt::zeros<double>(Shape{m, n})};
    for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
            for (std::size_t l = 0; l < k; ++l) {
                double x = ta ? a(l, i) : a(i, l);
                double y = tb ? b(j, l) : b(l, j);
                p.c(i, j) += x * y;
                p.abs_c(i, j) += std::abs(x * y);
            }
        }
    }
    return p;
}

// Whether got matches the reference within the standard bound for a sum of k products in T:
// |error| <= k * eps * sum |a_il b_lj| (Higham, Accuracy and Stability, 3.5), whatever order BLAS adds in.
template <class T>
bool matches(const Array<T>& got, const Product& want, std::size_t k) {
    if (got.shape() != want.c.shape()) {
        return false;
    }
    double eps = std::numeric_limits<T>::epsilon();
    for (std::size_t i = 0; i < got.size(); ++i) {
        double bound = static_cast<double>(k + 1) * eps * want.abs_c.data()[i] + std::numeric_limits<T>::min();
        if (!(std::abs(got.data()[i] - want.c.data()[i]) <= bound)) {
            return false;
        }
    }
    return true;
}

// Leaves a buffer of this shape's size in the pool and fills the pool with NaN, so that an op that
// does not write all of its output shows.
template <class T>
void poison_buffer(const Shape& shape) {
    exp(Var<T>(random_array<T>(shape, 9)));
    testing::poison_pool<T>();
}

}  // namespace

TEST_CASE_TEMPLATE("matmul matches a triple loop", T, float, double) {
    Shape a_shape;
    Shape b_shape;
    SUBCASE("(1, 1) x (1, 1)") { a_shape = {1, 1}; b_shape = {1, 1}; }
    SUBCASE("(3, 4) x (4, 5)") { a_shape = {3, 4}; b_shape = {4, 5}; }
    SUBCASE("(1, 7) x (7, 1)") { a_shape = {1, 7}; b_shape = {7, 1}; }
    SUBCASE("(7, 1) x (1, 7)") { a_shape = {7, 1}; b_shape = {1, 7}; }
    SUBCASE("(17, 33) x (33, 9)") { a_shape = {17, 33}; b_shape = {33, 9}; }
    SUBCASE("(64, 64) x (64, 64)") { a_shape = {64, 64}; b_shape = {64, 64}; }
    SUBCASE("(128, 784) x (784, 8)") { a_shape = {128, 784}; b_shape = {784, 8}; }
    CAPTURE(a_shape);
    CAPTURE(b_shape);
    Var<T> a(random_array<T>(a_shape, 1));
    Var<T> b(random_array<T>(b_shape, 2));
    Var<T> c = matmul(a, b);
    CHECK(c.shape() == Shape{a_shape[0], b_shape[1]});
    CHECK(matches<T>(c.value(), product_ref(a.value(), b.value()), a_shape[1]));
}

TEST_CASE_TEMPLATE("matmul with k = 0 is zeros, even in a buffer from the pool", T, float, double) {
    poison_buffer<T>({3, 4});
    Var<T> a = Var<T>::parameter(xt::zeros<T>(Shape{3, 0}), "a");
    Var<T> b = Var<T>::parameter(xt::zeros<T>(Shape{0, 4}), "b");
    Var<T> c = matmul(a, b);
    REQUIRE(c.shape() == Shape{3, 4});
    CHECK(test::all_close<T>(c.value(), xt::zeros<T>(Shape{3, 4}), 0));
    backward(c, Var<T>(random_array<T>({3, 4}, 3)));
    CHECK(a.grad().shape() == Shape{3, 0});
    CHECK(b.grad().shape() == Shape{0, 4});
}

TEST_CASE_TEMPLATE("matmul with m = 0 or n = 0 is empty, and the other input's gradient is zeros", T, float,
                   double) {
    poison_buffer<T>({5, 3});
    poison_buffer<T>({4, 5});
    SUBCASE("m = 0: (0, 5) x (5, 3)") {
        Var<T> a = Var<T>::parameter(xt::zeros<T>(Shape{0, 5}), "a");
        Var<T> b = Var<T>::parameter(random_array<T>({5, 3}, 1), "b");
        Var<T> c = matmul(a, b);
        CHECK(c.shape() == Shape{0, 3});
        backward(c, Var<T>(xt::zeros<T>(Shape{0, 3})));
        CHECK(a.grad().shape() == Shape{0, 5});
        CHECK(test::all_close<T>(b.grad().value(), xt::zeros<T>(Shape{5, 3}), 0));
    }
    SUBCASE("n = 0: (4, 5) x (5, 0)") {
        Var<T> a = Var<T>::parameter(random_array<T>({4, 5}, 1), "a");
        Var<T> b = Var<T>::parameter(xt::zeros<T>(Shape{5, 0}), "b");
        Var<T> c = matmul(a, b);
        CHECK(c.shape() == Shape{4, 0});
        backward(c, Var<T>(xt::zeros<T>(Shape{4, 0})));
        CHECK(test::all_close<T>(a.grad().value(), xt::zeros<T>(Shape{4, 5}), 0));
        CHECK(b.grad().shape() == Shape{5, 0});
    }
}

TEST_CASE_TEMPLATE("matmul errors print both shapes", T, float, double) {
    auto v = [](Shape shape) { return Var<T>(random_array<T>(shape, 1)); };
    CHECK_THROWS_WITH_AS(matmul(v({32, 64}), v({32, 16})), "matmul: inner dimensions differ: (32, 64) x (32, 16)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(matmul(v({3, 0}), v({1, 4})), "matmul: inner dimensions differ: (3, 0) x (1, 4)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(matmul(v({3}), v({3, 4})), "matmul: needs 2-D values: (3,) x (3, 4)", ShapeError);
    CHECK_THROWS_WITH_AS(matmul(v({3, 4}), v({4})), "matmul: needs 2-D values: (3, 4) x (4,)", ShapeError);
    CHECK_THROWS_WITH_AS(matmul(v({}), v({2, 2})), "matmul: needs 2-D values: () x (2, 2)", ShapeError);
    CHECK_THROWS_WITH_AS(matmul(v({2, 3, 4}), v({4, 5})), "matmul: needs 2-D values: (2, 3, 4) x (4, 5)",
                         ShapeError);
}

TEST_CASE_TEMPLATE("matmul backward with a random seed: dA = dy B^T and dB = A^T dy, accumulating", T, float,
                   double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    Shape a_shape;
    Shape b_shape;
    SUBCASE("(1, 1) x (1, 1)") { a_shape = {1, 1}; b_shape = {1, 1}; }
    SUBCASE("(3, 4) x (4, 5)") { a_shape = {3, 4}; b_shape = {4, 5}; }
    SUBCASE("(5, 1) x (1, 2)") { a_shape = {5, 1}; b_shape = {1, 2}; }
    SUBCASE("(128, 784) x (784, 8)") { a_shape = {128, 784}; b_shape = {784, 8}; }
    CAPTURE(a_shape);
    CAPTURE(b_shape);
    Var<T> a = Var<T>::parameter(random_array<T>(a_shape, 1), "a");
    Var<T> b = Var<T>::parameter(random_array<T>(b_shape, 2), "b");
    Var<T> dy(random_array<T>({a_shape[0], b_shape[1]}, 3));
    Product da = product_ref(dy.value(), b.value(), false, true);
    Product db = product_ref(a.value(), dy.value(), true, false);
    std::size_t n = b_shape[1];
    std::size_t m = a_shape[0];

    Var<T> c = matmul(a, b);
    backward(c, dy, {.retain_graph = true});
    CHECK(matches<T>(a.grad().value(), da, n));
    CHECK(matches<T>(b.grad().value(), db, m));

    backward(c, dy);
    Product da2{2.0 * da.c, 2.0 * da.abs_c};
    Product db2{2.0 * db.c, 2.0 * db.abs_c};
    CHECK(matches<T>(a.grad().value(), da2, n + 1));
    CHECK(matches<T>(b.grad().value(), db2, m + 1));

    a.zero_grad();
    b.zero_grad();
    backward(matmul(a, b), dy);
    CHECK(matches<T>(a.grad().value(), da, n));
    CHECK(matches<T>(b.grad().value(), db, m));
}

TEST_CASE_TEMPLATE("matmul backward with one constant input, and with the same value on both sides", T, float,
                   double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    Var<T> w = Var<T>::parameter(random_array<T>({4, 4}, 1), "w");
    Var<T> x(random_array<T>({3, 4}, 2));
    Var<T> dy(random_array<T>({3, 4}, 3));
    backward(matmul(x, w), dy);
    CHECK(matches<T>(w.grad().value(), product_ref(x.value(), dy.value(), true, false), 3));
    CHECK_FALSE(x.grad().defined());
    w.zero_grad();

    // d(W W) = dy W^T + W^T dy: both contributions reach the one leaf.
    Var<T> seed(random_array<T>({4, 4}, 4));
    backward(matmul(w, w), seed);
    Product left = product_ref(seed.value(), w.value(), false, true);
    Product right = product_ref(w.value(), seed.value(), true, false);
    CHECK(matches<T>(w.grad().value(), Product{left.c + right.c, left.abs_c + right.abs_c}, 9));
}

// A weight with a penalty on it: the penalty's backward runs first, and the product is then added onto
// its gradient by the GEMM (beta = 1). Checking mode takes the general path (a product buffer, then an
// add); both must give x^T dy + 2 W.
TEST_CASE_TEMPLATE("linear's weight gradient added onto a pending one by the GEMM equals the separate sum", T,
                   float, double) {
    testing::poison_pool<T>();
    Var<T> w = Var<T>::parameter(random_array<T>({6, 40}, 1), "w");
    Var<T> b = Var<T>::parameter(random_array<T>({40}, 2), "b");
    Var<T> x(random_array<T>({33, 6}, 3));
    Var<T> dy(random_array<T>({33, 40}, 4));
    Product xdy = product_ref(x.value(), dy.value(), true, false);
    Array<double> twice_w = 2.0 * xt::cast<double>(w.value());
    Product want{xdy.c + twice_w, xdy.abs_c + xt::abs(twice_w)};
    for (bool checking : {false, true}) {
        CAPTURE(checking);
        CheckNumerics mode(checking);
        w.zero_grad();
        // sum(y * dy) has dy as y's gradient; sum_squares(w), recorded after it, adds 2 w first.
        Var<T> fit = sum(linear(x, w, b) * dy);
        Var<T> penalty = sum_squares(w);
        backward(fit + penalty);
        CHECK(matches<T>(w.grad().value(), want, 6 + 1));
    }
}

TEST_CASE_TEMPLATE("linear is the product plus the bias on every row, in a buffer from the pool", T, float, double) {
    Shape x_shape;
    Shape w_shape;
    SUBCASE("(3, 4) x (4, 5)") { x_shape = {3, 4}; w_shape = {4, 5}; }
    SUBCASE("(128, 784) x (784, 8)") { x_shape = {128, 784}; w_shape = {784, 8}; }
    SUBCASE("(9, 2) x (2, 3)") { x_shape = {9, 2}; w_shape = {2, 3}; }
    SUBCASE("k = 0: (3, 0) x (0, 4)") { x_shape = {3, 0}; w_shape = {0, 4}; }
    CAPTURE(x_shape);
    poison_buffer<T>({x_shape[0], w_shape[1]});
    Var<T> x(random_array<T>(x_shape, 1));
    Var<T> w(random_array<T>(w_shape, 2));
    Var<T> b(random_array<T>({w_shape[1]}, 3));
    Var<T> y = linear(x, w, b);
    REQUIRE(y.shape() == Shape{x_shape[0], w_shape[1]});
    Product p = product_ref(x.value(), w.value());
    for (std::size_t i = 0; i < x_shape[0]; ++i) {
        for (std::size_t j = 0; j < w_shape[1]; ++j) {
            p.c(i, j) += double(b.value()(j));
            p.abs_c(i, j) += std::abs(double(b.value()(j)));
        }
    }
    CHECK(matches<T>(y.value(), p, x_shape[1] + 1));
}

TEST_CASE_TEMPLATE("linear backward: dx = dy W^T, dW = x^T dy, db = the column sums of dy", T, float, double) {
    Var<T> x = Var<T>::parameter(random_array<T>({6, 4}, 1), "x");
    Var<T> w = Var<T>::parameter(random_array<T>({4, 3}, 2), "w");
    Var<T> b = Var<T>::parameter(random_array<T>({3}, 3), "b");
    Array<T> dy = random_array<T>({6, 3}, 4);
    backward(linear(x, w, b), Var<T>(dy));
    CHECK(matches<T>(x.grad().value(), product_ref(dy, w.value(), false, true), 3));
    CHECK(matches<T>(w.grad().value(), product_ref(x.value(), dy, true, false), 6));
    Array<double> sums = xt::zeros<double>(Shape{3});
    for (std::size_t i = 0; i < 6; ++i) {
        for (std::size_t j = 0; j < 3; ++j) {
            sums(j) += double(dy(i, j));
        }
    }
    CHECK(test::all_close<T>(b.grad().value(), xt::cast<T>(sums), 1e-5));
}

// The fused op applies the activation band by band, inside the product's own parallel loop; the result
// must be the two ops' bit for bit, whatever the bands (2 threads cut the larger shapes by rows or columns),
// and so must the gradients, read from y instead of the pre-activation.
TEST_CASE_TEMPLATE("linear with an activation is linear then the activation, bit for bit, values and gradients", T,
                   float, double) {
    Shape x_shape;
    Shape w_shape;
    bool transposed = false;
    SUBCASE("(3, 4) x (4, 5)") { x_shape = {3, 4}; w_shape = {4, 5}; }
    SUBCASE("(9, 2) x (2, 3), the tiny kernels") { x_shape = {9, 2}; w_shape = {2, 3}; }
    SUBCASE("(128, 200) x (200, 96), column bands") { x_shape = {128, 200}; w_shape = {200, 96}; }
    SUBCASE("(160, 100) x (100, 64), row bands") { x_shape = {160, 100}; w_shape = {100, 64}; }
    SUBCASE("(64, 96) x (80, 96)^T") { x_shape = {64, 96}; w_shape = {80, 96}; transposed = true; }
    CAPTURE(x_shape);
    std::size_t n = w_shape[transposed ? 0 : 1];
    Array<T> x0 = random_array<T>(x_shape, 1);
    Array<T> w0 = random_array<T>(w_shape, 2);
    Array<T> b0 = random_array<T>({n}, 3);
    Array<T> dy = random_array<T>({x_shape[0], n}, 4);
    for (int threads : {1, 2}) {
        set_threads(threads);
        for (Activation act : {Activation::relu, Activation::sigmoid, Activation::tanh}) {
            CAPTURE(threads);
            CAPTURE(to_string(act));
            auto run = [&](bool fused, std::size_t& entries) {
                clear_tape<T>();
                Var<T> x = Var<T>::parameter(x0, "x");
                Var<T> w = Var<T>::parameter(w0, "w");
                Var<T> b = Var<T>::parameter(b0, "b");
                Var<T> y;
                if (fused) {
                    y = transposed ? linear_transposed(x, w, b, act) : linear(x, w, b, act);
                } else {
                    Var<T> z = transposed ? linear_transposed(x, w, b) : linear(x, w, b);
                    y = act == Activation::relu ? relu(z) : act == Activation::sigmoid ? sigmoid(z) : tanh(z);
                }
                entries = tape_size<T>();
                backward(y, Var<T>(dy));
                return std::vector<Array<T>>{y.value(), x.grad().value(), w.grad().value(), b.grad().value()};
            };
            std::size_t fused_entries = 0;
            std::size_t apart_entries = 0;
            std::vector<Array<T>> fused = run(true, fused_entries);
            std::vector<Array<T>> apart = run(false, apart_entries);
            CHECK(fused_entries == 1);
            CHECK(apart_entries == 2);
            for (std::size_t i = 0; i < fused.size(); ++i) {
                CAPTURE(i);
                CHECK(fused[i] == apart[i]);
            }
        }
    }
    set_threads(1);
}

TEST_CASE_TEMPLATE("linear with the identity is plain linear", T, float, double) {
    Var<T> x(random_array<T>({5, 3}, 1));
    Var<T> w = Var<T>::parameter(random_array<T>({3, 4}, 2), "w");
    Var<T> b(random_array<T>({4}, 3));
    clear_tape<T>();
    Var<T> y = linear(x, w, b, Activation::identity);
    CHECK(y.value() == linear(x, w, b).value());
    CHECK(dump_tape<T>().find("linear_activation") == std::string::npos);
    CHECK_THROWS_WITH_AS(linear(x, w, Var<T>(random_array<T>({3}, 4)), Activation::relu),
                         "linear: shapes do not fit: (5, 3) x (3, 4) + (3,)", ShapeError);
}

TEST_CASE_TEMPLATE("linear errors print every shape", T, float, double) {
    auto v = [](Shape shape) { return Var<T>(random_array<T>(shape, 1)); };
    CHECK_THROWS_WITH_AS(linear(v({8, 3}), v({4, 5}), v({5})), "linear: shapes do not fit: (8, 3) x (4, 5) + (5,)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(linear(v({8, 4}), v({4, 5}), v({4})), "linear: shapes do not fit: (8, 4) x (4, 5) + (4,)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(linear(v({8, 4}), v({4, 5}), v({1, 5})),
                         "linear: needs a 2-D input and weight and a 1-D bias: (8, 4) x (4, 5) + (1, 5)", ShapeError);
}

TEST_CASE_TEMPLATE("linear_transposed reads W (n, k) as W^T: values, gradients and errors", T, float, double) {
    Var<T> x = Var<T>::parameter(random_array<T>({6, 4}, 1), "x");
    Var<T> w = Var<T>::parameter(random_array<T>({3, 4}, 2), "w");
    Var<T> b = Var<T>::parameter(random_array<T>({3}, 3), "b");
    Array<T> dy = random_array<T>({6, 3}, 4);
    Var<T> y = linear_transposed(x, w, b);
    Product p = product_ref(x.value(), w.value(), false, true);
    for (std::size_t i = 0; i < 6; ++i) {
        for (std::size_t j = 0; j < 3; ++j) {
            p.c(i, j) += double(b.value()(j));
            p.abs_c(i, j) += std::abs(double(b.value()(j)));
        }
    }
    CHECK(matches<T>(y.value(), p, 5));
    backward(y, Var<T>(dy));
    CHECK(matches<T>(x.grad().value(), product_ref(dy, w.value()), 3));
    CHECK(matches<T>(w.grad().value(), product_ref(dy, x.value(), true, false), 6));
    auto v = [](Shape shape) { return Var<T>(random_array<T>(shape, 1)); };
    CHECK_THROWS_WITH_AS(linear_transposed(v({8, 3}), v({5, 4}), v({5})),
                         "linear_transposed: shapes do not fit: (8, 3) x (5, 4)^T + (5,)", ShapeError);
    CHECK_THROWS_WITH_AS(linear_transposed(v({8, 4}), v({5, 4}), v({4})),
                         "linear_transposed: shapes do not fit: (8, 4) x (5, 4)^T + (4,)", ShapeError);
}

// Large enough for BLIS where tapegrad chose it (blas.hpp), small enough for OpenBLAS too: each product
// with every transpose, alpha and beta as linear uses them, against the triple loop.
TEST_CASE("product_time counts every product once, whole, while on; from zero; nothing while off") {
    Array<float> a = random_array<float>({128, 256}, 1);
    Array<float> b = random_array<float>({256, 64}, 2);
    Array<float> c = xt::zeros<float>(Shape{128, 64});
    auto product = [&] { gemm(false, false, 128, 64, 256, 1.0f, a.data(), 256, b.data(), 64, 0.0f, c.data(), 64); };
    count_product_time(true);
    CHECK(product_time().products == 0);
    CHECK(product_time().seconds == 0);
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        set_threads(threads);
        count_product_time(true);
        product();  // 2^21 multiply-adds: cut into bands on 2 threads, still one product
        Var<float> x = Var<float>::parameter(a, "x");
        Var<float> w = Var<float>::parameter(b, "w");
        Var<float> bias = Var<float>::parameter(xt::ones<float>(Shape{64}), "b");
        Var<float> y = linear(x, w, bias, Activation::relu);  // one product, bias and relu inside it
        CHECK(product_time().products == 2);
        sum(y).backward();  // dx = dy W^T and dW = x^T dy
        ProductTime counted = product_time();
        CHECK(counted.products == 4);
        CHECK(counted.seconds > 0);
        count_product_time(false);
        product();
        CHECK(product_time().products == counted.products);
        CHECK(product_time().seconds == counted.seconds);
    }
    set_threads(1);
}

TEST_CASE_TEMPLATE("gemm matches a triple loop on both sides of the backends' size line", T, float, double) {
    CAPTURE(blas_summary());
    for (std::size_t size : {16, 128}) {
        std::size_t m = size;
        std::size_t n = size / 2 + 3;
        std::size_t k = size - 5;
        for (int t = 0; t < 4; ++t) {
            bool ta = (t & 1) != 0;
            bool tb = (t & 2) != 0;
            CAPTURE(size);
            CAPTURE(ta);
            CAPTURE(tb);
            Array<T> a = random_array<T>(ta ? Shape{k, m} : Shape{m, k}, 1);
            Array<T> b = random_array<T>(tb ? Shape{n, k} : Shape{k, n}, 2);
            Array<T> c = random_array<T>({m, n}, 3);
            Product p = product_ref(a, b, ta, tb);
            for (std::size_t i = 0; i < p.c.size(); ++i) {
                p.c.data()[i] = 2 * p.c.data()[i] + double(c.data()[i]);
                p.abs_c.data()[i] = 2 * p.abs_c.data()[i] + std::abs(double(c.data()[i]));
            }
            gemm<T>(ta, tb, m, n, k, T(2), a.data(), a.shape()[1], b.data(), b.shape()[1], T(1), c.data(), n);
            CHECK(matches<T>(c, p, k + 1));
        }
    }
    BlasInfo info = blas_info();
    CHECK(!info.backend.empty());
    CHECK(!info.kernel.empty());
    CHECK(info.threads >= 1);
    // With oneDNN built in, the float products run on dnnl_sgemm unless TAPEGRAD_GEMM names OpenBLAS (a
    // second run of this test) or BLIS.
    const char* forced = std::getenv("TAPEGRAD_GEMM");
    bool other = forced != nullptr && std::string_view(forced) != "onednn";
    CHECK(info.float_backend.empty() == (other || conv_summary().find("without oneDNN") != std::string::npos));
    if (!info.float_backend.empty()) {
        CHECK(info.float_backend.starts_with("oneDNN"));
        CHECK(blas_summary().starts_with(info.float_backend + " for float, "));
    }
}
