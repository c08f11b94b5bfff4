// Reductions and their adjoints: sum and mean over everything and over one axis (negative axes,
// keepdims, empty inputs), broadcast_to and sum_to, against plain loops; the errors for axes out of
// range, empty means and shapes that do not fit; backward with a random seed and twice. Gradient
// checks of every op live in op_table_test.cpp.
#include <xtensor/xmath.hpp>

#include "helpers.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using test::close_to;
using test::random_array;
using test::source;

namespace {

template <class T>
Array<T> filled(const Shape& shape, T value) {
    Array<T> a = xt::empty<T>(shape);
    a.fill(value);
    return a;
}

// A copy of a with another shape of as many elements.
template <class T>
Array<T> reshaped(Array<T> a, const Shape& shape) {
    a.reshape(shape);
    return a;
}

// x summed over `axis` by loops, x viewed as (outer, shape[axis], inner); the axis is dropped.
template <class T>
Array<double> sum_axis_ref(const Array<T>& x, std::size_t axis) {
    const Shape& shape = x.shape();
    std::size_t outer = 1;
    std::size_t inner = 1;
    for (std::size_t d = 0; d < axis; ++d) {
        outer *= shape[d];
    }
    for (std::size_t d = axis + 1; d < shape.size(); ++d) {
        inner *= shape[d];
    }
    Shape out = shape;
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(axis));
    Array<double> r = xt::zeros<double>(out);
    for (std::size_t o = 0; o < outer; ++o) {
        for (std::size_t m = 0; m < shape[axis]; ++m) {
            for (std::size_t i = 0; i < inner; ++i) {
                r.data()[o * inner + i] += x.data()[(o * shape[axis] + m) * inner + i];
            }
        }
    }
    return r;
}

// x broadcast to `to`, and x (of shape `big`) summed down to `to`, by loops over source().
template <class T>
Array<double> broadcast_ref(const Array<T>& x, const Shape& to) {
    Array<double> r = xt::empty<double>(to);
    for (std::size_t i = 0; i < r.size(); ++i) {
        r.data()[i] = x.data()[source(to, x.shape(), i)];
    }
    return r;
}

template <class T>
Array<double> sum_to_ref(const Array<T>& x, const Shape& to) {
    Array<double> r = xt::zeros<double>(to);
    for (std::size_t i = 0; i < x.size(); ++i) {
        r.data()[source(x.shape(), to, i)] += x.data()[i];
    }
    return r;
}

// Leaves a buffer of this shape's size in the pool and fills the pool with NaN, so that an op that
// does not write all of its output shows.
template <class T>
void poison_buffer(const Shape& shape) {
    exp(Var<T>(random_array<T>(shape, 9)));
    testing::poison_pool<T>();
}

}  // namespace

TEST_CASE_TEMPLATE("sum and mean over one axis, negative axes and keepdims, match loops", T, float, double) {
    Shape shape;
    SUBCASE("(5,)") { shape = {5}; }
    SUBCASE("(3, 4)") { shape = {3, 4}; }
    SUBCASE("(2, 3, 4)") { shape = {2, 3, 4}; }
    SUBCASE("(1, 1)") { shape = {1, 1}; }
    SUBCASE("(2, 0, 3)") { shape = {2, 0, 3}; }
    CAPTURE(shape);
    Var<T> x(random_array<T>(shape, 1));
    int rank = static_cast<int>(shape.size());
    for (int axis = -rank; axis < rank; ++axis) {
        CAPTURE(axis);
        std::size_t a = static_cast<std::size_t>(axis < 0 ? axis + rank : axis);
        Array<double> want = sum_axis_ref(x.value(), a);
        Shape kept = shape;
        kept[a] = 1;

        Var<T> s = sum(x, axis);
        CHECK(s.shape() == want.shape());
        CHECK(close_to<T>(s.value(), want, test::tolerance<T>()));
        Var<T> sk = sum(x, axis, true);
        CHECK(sk.shape() == kept);
        CHECK(close_to<T>(reshaped(sk.value(), want.shape()), want, test::tolerance<T>()));

        if (shape[a] == 0) {
            continue;  // mean over an empty axis is an error, checked below
        }
        Array<double> want_mean = want / static_cast<double>(shape[a]);
        CHECK(close_to<T>(mean(x, axis).value(), want_mean, test::tolerance<T>()));
        Var<T> mk = mean(x, axis, true);
        CHECK(mk.shape() == kept);
        CHECK(close_to<T>(reshaped(mk.value(), want.shape()), want_mean, test::tolerance<T>()));
    }
}

TEST_CASE_TEMPLATE("sum and mean over everything give a 0-d value", T, float, double) {
    Shape shape;
    SUBCASE("()") { shape = {}; }
    SUBCASE("(5,)") { shape = {5}; }
    SUBCASE("(3, 4)") { shape = {3, 4}; }
    SUBCASE("(2, 3, 4)") { shape = {2, 3, 4}; }
    CAPTURE(shape);
    Var<T> x(random_array<T>(shape, 2));
    double total = 0;
    for (T v : x.value()) {
        total += v;
    }
    Var<T> s = sum(x);
    Var<T> m = mean(x);
    CHECK(s.shape() == Shape{});
    CHECK(m.shape() == Shape{});
    CHECK(close_to<T>(s.value(), Array<double>(total), test::tolerance<T>()));
    CHECK(close_to<T>(m.value(), Array<double>(total / static_cast<double>(x.size())), test::tolerance<T>()));
}

TEST_CASE_TEMPLATE("sums of nothing are zeros, even in a buffer from the pool", T, float, double) {
    poison_buffer<T>({3});
    poison_buffer<T>({1});
    Var<T> x(xt::zeros<T>(Shape{0, 3}));
    CHECK(close_to<T>(sum(x).value(), Array<double>(0.0), 0));
    CHECK(close_to<T>(sum(x, 0).value(), Array<double>{0, 0, 0}, 0));
    CHECK(sum(x, 1).shape() == Shape{0});
    CHECK(close_to<T>(sum_to(x, {1, 3}).value(), xt::zeros<double>(Shape{1, 3}), 0));
}

TEST_CASE("a float sum over a million elements keeps its precision") {
    Shape shape;
    SUBCASE("(1000000,)") { shape = {1000000}; }
    SUBCASE("(1000, 1000)") { shape = {1000, 1000}; }
    CAPTURE(shape);
    Var<float> x(random_array<float>(shape, 3, 0, 1));
    double total = 0;
    for (float v : x.value()) {
        total += v;
    }
    // A naive float accumulator would drift by about 1e-5 of the total here: well outside 1e-6.
    CHECK(std::abs(sum(x).item() - total) <= 1e-6 * total);
    CHECK(std::abs(mean(x).item() - total / 1e6) <= 1e-6 * total / 1e6);
}

TEST_CASE_TEMPLATE("broadcast_to and sum_to forward match loops", T, float, double) {
    Shape small;
    Shape big;
    SUBCASE("(4,) and (3, 4)") { small = {4}; big = {3, 4}; }
    SUBCASE("(3, 1) and (3, 4)") { small = {3, 1}; big = {3, 4}; }
    SUBCASE("(1, 4) and (3, 4)") { small = {1, 4}; big = {3, 4}; }
    SUBCASE("() and (2, 3)") { small = {}; big = {2, 3}; }
    SUBCASE("(1, 3, 1) and (2, 3, 4)") { small = {1, 3, 1}; big = {2, 3, 4}; }
    SUBCASE("(3, 1) and (2, 3, 4)") { small = {3, 1}; big = {2, 3, 4}; }
    SUBCASE("(3, 4) and (3, 4)") { small = {3, 4}; big = {3, 4}; }
    SUBCASE("(1,) and (0,)") { small = {1}; big = {0}; }
    SUBCASE("(5, 1, 1) and (4, 5, 6, 7): a channel sum") { small = {5, 1, 1}; big = {4, 5, 6, 7}; }
    SUBCASE("(1, 2, 3, 1) and (2, 2, 3, 5)") { small = {1, 2, 3, 1}; big = {2, 2, 3, 5}; }
    SUBCASE("(1, 3, 1) and (0, 3, 4)") { small = {1, 3, 1}; big = {0, 3, 4}; }
    CAPTURE(small);
    CAPTURE(big);
    Var<T> s(random_array<T>(small, 4));
    Var<T> b(random_array<T>(big, 5));
    Var<T> up = broadcast_to(s, big);
    Var<T> down = sum_to(b, small);
    CHECK(up.shape() == big);
    CHECK(down.shape() == small);
    CHECK(close_to<T>(up.value(), broadcast_ref(s.value(), big), 0));
    CHECK(close_to<T>(down.value(), sum_to_ref(b.value(), small), test::tolerance<T>()));
}

// A convolution's bias gradient: each channel summed over samples and pixels in double, one channel per
// thread, so the sum neither drifts with the count nor depends on the threads.
TEST_CASE("a channel sum (n, c, h, w) to (c, 1, 1) is exact to float rounding, the same bits on 1 and 2 threads") {
    Array<float> x = random_array<float>({64, 32, 14, 14}, 9, 0.5, 1.5);
    Array<double> ref = xt::zeros<double>(Shape{32, 1, 1});
    for (std::size_t n = 0; n < 64; ++n) {
        for (std::size_t c = 0; c < 32; ++c) {
            for (std::size_t i = 0; i < 14 * 14; ++i) {
                ref(c, 0, 0) += static_cast<double>(x.data()[(n * 32 + c) * 196 + i]);
            }
        }
    }
    set_threads(1);
    Array<float> one = sum_to(Var<float>(x), {32, 1, 1}).value();
    set_threads(2);
    Array<float> two = sum_to(Var<float>(x), {32, 1, 1}).value();
    set_threads(1);
    CHECK(one == two);
    // 12544 values near 1 a channel: a float running sum would be off by about 1e-5 of the total.
    CHECK(close_to<float>(one, ref, 1e-7));  // relative: within one float rounding of the total
}

TEST_CASE_TEMPLATE("reduction errors name the op, the axis and the shape", T, float, double) {
    Var<T> m(random_array<T>({3, 4}, 1));
    Var<T> v(random_array<T>({5}, 1));
    Var<T> scalar = Var<T>::scalar(2);
    Var<T> empty(xt::zeros<T>(Shape{0, 3}));
    CHECK_THROWS_WITH_AS(sum(m, 2), "sum: axis 2 out of range for shape (3, 4)", ValueError);
    CHECK_THROWS_WITH_AS(sum(m, -3), "sum: axis -3 out of range for shape (3, 4)", ValueError);
    CHECK_THROWS_WITH_AS(sum(scalar, 0), "sum: axis 0 out of range for shape ()", ValueError);
    CHECK_THROWS_WITH_AS(mean(v, 1, true), "mean: axis 1 out of range for shape (5,)", ValueError);
    CHECK_THROWS_WITH_AS(mean(v, -2), "mean: axis -2 out of range for shape (5,)", ValueError);
    CHECK_THROWS_WITH_AS(mean(empty), "mean: empty input (0, 3)", ShapeError);
    CHECK_THROWS_WITH_AS(mean(empty, 0), "mean: axis 0 of (0, 3) is empty", ShapeError);
    CHECK_THROWS_WITH_AS(mean(empty, -2), "mean: axis -2 of (0, 3) is empty", ShapeError);
    CHECK(mean(empty, 1).shape() == Shape{0});

    CHECK_THROWS_WITH_AS(sum_to(m, {2, 4}), "sum_to: (3, 4) cannot be summed to (2, 4)", ShapeError);
    CHECK_THROWS_WITH_AS(sum_to(m, {3}), "sum_to: (3, 4) cannot be summed to (3,)", ShapeError);
    CHECK_THROWS_WITH_AS(sum_to(v, {5, 1}), "sum_to: (5,) cannot be summed to (5, 1)", ShapeError);
    CHECK_THROWS_WITH_AS(broadcast_to(v, {4}), "broadcast_to: (5,) does not broadcast to (4,)", ShapeError);
    CHECK_THROWS_WITH_AS(broadcast_to(m, {4}), "broadcast_to: (3, 4) does not broadcast to (4,)", ShapeError);
    CHECK_THROWS_WITH_AS(broadcast_to(v, {5, 3}), "broadcast_to: (5,) does not broadcast to (5, 3)", ShapeError);
}

TEST_CASE_TEMPLATE("sum and mean over an axis: backward with a random seed spreads it, and accumulates", T, float,
                   double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    Var<T> x = Var<T>::parameter(random_array<T>({2, 3, 4}, 1), "x");
    double tol = test::tolerance<T>();
    SUBCASE("sum over axis 1") {
        Var<T> dy(random_array<T>({2, 4}, 2));
        Array<double> want = xt::empty<double>(Shape{2, 3, 4});
        for (std::size_t i = 0; i < 2; ++i) {
            for (std::size_t j = 0; j < 3; ++j) {
                for (std::size_t k = 0; k < 4; ++k) {
                    want(i, j, k) = dy.value()(i, k);
                }
            }
        }
        Var<T> y = sum(x, 1);
        backward(y, dy, {.retain_graph = true});
        CHECK(close_to<T>(x.grad().value(), want, tol));
        backward(y, dy);
        CHECK(close_to<T>(x.grad().value(), 2.0 * want, tol));
        x.zero_grad();
        backward(sum(x, -2, true), Var<T>(reshaped(dy.value(), {2, 1, 4})));
        CHECK(close_to<T>(x.grad().value(), want, tol));
    }
    SUBCASE("mean over the last axis") {
        Var<T> dy(random_array<T>({2, 3}, 3));
        Array<double> want = xt::empty<double>(Shape{2, 3, 4});
        for (std::size_t i = 0; i < 2; ++i) {
            for (std::size_t j = 0; j < 3; ++j) {
                for (std::size_t k = 0; k < 4; ++k) {
                    want(i, j, k) = dy.value()(i, j) / 4.0;
                }
            }
        }
        backward(mean(x, -1), dy);
        CHECK(close_to<T>(x.grad().value(), want, tol));
        backward(mean(x, 2), dy);
        CHECK(close_to<T>(x.grad().value(), 2.0 * want, tol));
    }
    SUBCASE("sum and mean over everything with a 0-d seed") {
        backward(sum(x), Var<T>::scalar(T(0.7)));
        CHECK(close_to<T>(x.grad().value(), filled<double>({2, 3, 4}, 0.7), tol));
        x.zero_grad();
        backward(mean(x), Var<T>::scalar(T(0.7)));
        CHECK(close_to<T>(x.grad().value(), filled<double>({2, 3, 4}, 0.7 / 24), tol));
    }
}

TEST_CASE_TEMPLATE("broadcast_to's backward is a sum and sum_to's a broadcast, with a random seed", T, float,
                   double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    Shape small;
    Shape big;
    SUBCASE("(4,) and (3, 4)") { small = {4}; big = {3, 4}; }
    SUBCASE("(3, 1) and (3, 4)") { small = {3, 1}; big = {3, 4}; }
    SUBCASE("() and (2, 3)") { small = {}; big = {2, 3}; }
    SUBCASE("(1, 3, 1) and (2, 3, 4)") { small = {1, 3, 1}; big = {2, 3, 4}; }
    CAPTURE(small);
    CAPTURE(big);
    Var<T> s = Var<T>::parameter(random_array<T>(small, 1), "s");
    Var<T> b = Var<T>::parameter(random_array<T>(big, 2), "b");
    Var<T> dy_big(random_array<T>(big, 3));
    Var<T> dy_small(random_array<T>(small, 4));
    backward(broadcast_to(s, big), dy_big);
    backward(sum_to(b, small), dy_small);
    CHECK(close_to<T>(s.grad().value(), sum_to_ref(dy_big.value(), small), test::tolerance<T>()));
    CHECK(close_to<T>(b.grad().value(), broadcast_ref(dy_small.value(), big), test::tolerance<T>()));
    backward(broadcast_to(s, big), dy_big);
    CHECK(close_to<T>(s.grad().value(), 2.0 * sum_to_ref(dy_big.value(), small), test::tolerance<T>()));
}

TEST_CASE_TEMPLATE("mean_squared_error and sum_squares match loops in double", T, float, double) {
    for (Shape shape : {Shape{}, Shape{7}, Shape{13, 9}, Shape{128, 784}}) {
        CAPTURE(shape);
        Array<T> a = random_array<T>(shape, 1);
        Array<T> b = random_array<T>(shape, 2);
        double squares = 0;
        double errors = 0;
        for (std::size_t i = 0; i < a.size(); ++i) {
            squares += double(a.data()[i]) * double(a.data()[i]);
            errors += (double(a.data()[i]) - double(b.data()[i])) * (double(a.data()[i]) - double(b.data()[i]));
        }
        double tol = std::is_same_v<T, float> ? 1e-6 : 1e-12;  // sums in another order: n eps at worst
        CHECK(double(sum_squares(Var<T>(a)).item()) == doctest::Approx(squares).epsilon(tol));
        CHECK(double(mean_squared_error(Var<T>(a), Var<T>(b)).item()) ==
              doctest::Approx(errors / double(a.size())).epsilon(tol));
    }
    CHECK(std::isnan(mean_squared_error(Var<T>(xt::zeros<T>(Shape{0})), Var<T>(xt::zeros<T>(Shape{0}))).item()));
    CHECK(sum_squares(Var<T>(xt::zeros<T>(Shape{0, 3}))).item() == T(0));
}

TEST_CASE_TEMPLATE("mean_squared_error names both shapes when they differ", T, float, double) {
    CHECK_THROWS_WITH_AS(mean_squared_error(Var<T>(random_array<T>({3, 4}, 1)), Var<T>(random_array<T>({4, 3}, 2))),
                         "mean_squared_error: shapes differ: (3, 4) and (4, 3)", ShapeError);
}
