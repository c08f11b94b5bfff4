// Elementwise ops of two inputs: forward values, same shape and broadcast, against loops that apply
// numpy's rule index by index; the gradient of a broadcast input against a hand sum over the broadcast
// axes; NaN, ties, division by zero; where; and the error for shapes that do not broadcast. Gradient
// checks of every op live in op_table_test.cpp.
#include <cmath>
#include <functional>
#include <limits>

#include <xtensor/xmath.hpp>

#include "helpers.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using test::close_to;
using test::random_array;
using test::source;

namespace {

std::size_t elements(const Shape& shape) {
    std::size_t n = 1;
    for (std::size_t d : shape) {
        n *= d;
    }
    return n;
}

struct Partials {
    double da;
    double db;
};

template <class T>
struct BinaryCase {
    const char* name;
    std::function<Var<T>(const Var<T>&, const Var<T>&)> op;
    std::function<double(double, double)> ref;
    std::function<Partials(double, double)> partials;
};

// b is drawn from [0.5, 2] so that div stays away from 0; ties of maximum have probability 0.
template <class T>
std::vector<BinaryCase<T>> cases() {
    using V = const Var<T>&;
    return {
        {"add", [](V a, V b) { return a + b; }, [](double a, double b) { return a + b; },
         [](double, double) { return Partials{1, 1}; }},
        {"sub", [](V a, V b) { return a - b; }, [](double a, double b) { return a - b; },
         [](double, double) { return Partials{1, -1}; }},
        {"mul", [](V a, V b) { return a * b; }, [](double a, double b) { return a * b; },
         [](double a, double b) { return Partials{b, a}; }},
        {"div", [](V a, V b) { return a / b; }, [](double a, double b) { return a / b; },
         [](double a, double b) { return Partials{1 / b, -a / (b * b)}; }},
        {"maximum", [](V a, V b) { return maximum(a, b); }, [](double a, double b) { return std::max(a, b); },
         [](double a, double b) { return Partials{a > b ? 1.0 : 0.0, a > b ? 0.0 : 1.0}; }},
        {"minimum", [](V a, V b) { return minimum(a, b); }, [](double a, double b) { return std::min(a, b); },
         [](double a, double b) { return Partials{a < b ? 1.0 : 0.0, a < b ? 0.0 : 1.0}; }},
    };
}

}  // namespace

TEST_CASE_TEMPLATE("binary forward values, same shape and broadcast, match numpy's rule", T, float, double) {
    Shape a_shape;
    Shape b_shape;
    Shape out_shape;
    SUBCASE("() and ()") { a_shape = b_shape = out_shape = {}; }
    SUBCASE("(5,) and (5,)") { a_shape = b_shape = out_shape = {5}; }
    SUBCASE("(3, 4) and (3, 4)") { a_shape = b_shape = out_shape = {3, 4}; }
    SUBCASE("(2, 3, 2) and (2, 3, 2)") { a_shape = b_shape = out_shape = {2, 3, 2}; }
    SUBCASE("(3, 4) and (4,)") { a_shape = {3, 4}; b_shape = {4}; out_shape = {3, 4}; }
    SUBCASE("(4,) and (3, 4)") { a_shape = {4}; b_shape = {3, 4}; out_shape = {3, 4}; }
    SUBCASE("(3, 1) and (1, 4)") { a_shape = {3, 1}; b_shape = {1, 4}; out_shape = {3, 4}; }
    SUBCASE("() and (3, 4)") { a_shape = {}; b_shape = {3, 4}; out_shape = {3, 4}; }
    SUBCASE("(3, 4) and ()") { a_shape = {3, 4}; b_shape = {}; out_shape = {3, 4}; }
    SUBCASE("(2, 3, 4) and (3, 4)") { a_shape = {2, 3, 4}; b_shape = {3, 4}; out_shape = {2, 3, 4}; }
    SUBCASE("(2, 3, 4) and (3, 1)") { a_shape = {2, 3, 4}; b_shape = {3, 1}; out_shape = {2, 3, 4}; }
    SUBCASE("(2, 1, 4) and (3, 1)") { a_shape = {2, 1, 4}; b_shape = {3, 1}; out_shape = {2, 3, 4}; }
    SUBCASE("(0, 4) and (4,)") { a_shape = {0, 4}; b_shape = {4}; out_shape = {0, 4}; }
    CAPTURE(a_shape);
    CAPTURE(b_shape);
    std::uint64_t seed = 1;
    for (const BinaryCase<T>& c : cases<T>()) {
        CAPTURE(c.name);
        Var<T> a(random_array<T>(a_shape, seed++, -2, 2));
        Var<T> b(random_array<T>(b_shape, seed++, 0.5, 2));
        Var<T> y = c.op(a, b);
        REQUIRE(y.shape() == out_shape);
        Array<double> want = xt::empty<double>(out_shape);
        for (std::size_t i = 0; i < want.size(); ++i) {
            want.data()[i] = c.ref(a.value().data()[source(out_shape, a_shape, i)],
                                   b.value().data()[source(out_shape, b_shape, i)]);
        }
        CHECK(close_to<T>(y.value(), want, test::tolerance<T>()));
    }
}

TEST_CASE_TEMPLATE("the gradient of a broadcast input is dy times the partial, summed over the broadcast axes", T,
                   float, double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    Shape a_shape;
    Shape b_shape;
    SUBCASE("(3, 4) and (3, 4)") { a_shape = {3, 4}; b_shape = {3, 4}; }
    SUBCASE("(3, 4) and (4,)") { a_shape = {3, 4}; b_shape = {4}; }
    SUBCASE("(3, 1) and (1, 4)") { a_shape = {3, 1}; b_shape = {1, 4}; }
    SUBCASE("() and (3, 4)") { a_shape = {}; b_shape = {3, 4}; }
    SUBCASE("(3, 4) and ()") { a_shape = {3, 4}; b_shape = {}; }
    SUBCASE("(2, 3, 4) and (3, 4)") { a_shape = {2, 3, 4}; b_shape = {3, 4}; }
    SUBCASE("(2, 3, 4) and (3, 1)") { a_shape = {2, 3, 4}; b_shape = {3, 1}; }
    SUBCASE("(2, 1, 4) and (3, 1)") { a_shape = {2, 1, 4}; b_shape = {3, 1}; }
    SUBCASE("(4,) and (1, 4)") { a_shape = {4}; b_shape = {1, 4}; }
    SUBCASE("(1,) and (3, 4)") { a_shape = {1}; b_shape = {3, 4}; }
    SUBCASE("(1, 1) and ()") { a_shape = {1, 1}; b_shape = {}; }
    CAPTURE(a_shape);
    CAPTURE(b_shape);
    std::uint64_t seed = 100;
    for (const BinaryCase<T>& c : cases<T>()) {
        CAPTURE(c.name);
        Var<T> a = Var<T>::parameter(random_array<T>(a_shape, seed++, -2, 2), "a");
        Var<T> b = Var<T>::parameter(random_array<T>(b_shape, seed++, 0.5, 2), "b");
        Var<T> y = c.op(a, b);
        const Shape& out = y.shape();
        Var<T> dy(random_array<T>(out, seed++));
        backward(y, dy);

        // The hand sum: every output element sends dy * partial to the input elements it read.
        Array<double> da = xt::zeros<double>(a_shape);
        Array<double> db = xt::zeros<double>(b_shape);
        for (std::size_t i = 0; i < elements(out); ++i) {
            std::size_t ia = source(out, a_shape, i);
            std::size_t ib = source(out, b_shape, i);
            Partials p = c.partials(a.value().data()[ia], b.value().data()[ib]);
            da.data()[ia] += dy.value().data()[i] * p.da;
            db.data()[ib] += dy.value().data()[i] * p.db;
        }
        CHECK(a.grad().shape() == a_shape);
        CHECK(b.grad().shape() == b_shape);
        CHECK(close_to<T>(a.grad().value(), da, test::tolerance<T>()));
        CHECK(close_to<T>(b.grad().value(), db, test::tolerance<T>()));
    }
}

TEST_CASE_TEMPLATE("broadcast gradients written out: (3, 4) + (4,) and (3, 1) * (1, 4)", T, float, double) {
    Var<T> m = Var<T>::parameter(random_array<T>({3, 4}, 1), "m");
    Var<T> row = Var<T>::parameter(random_array<T>({4}, 2), "row");
    Var<T> dy(random_array<T>({3, 4}, 3));
    backward(m + row, dy);
    Array<double> column_sums = xt::zeros<double>(Shape{4});
    for (std::size_t i = 0; i < 3; ++i) {
        for (std::size_t j = 0; j < 4; ++j) {
            column_sums(j) += dy.value()(i, j);
        }
    }
    CHECK(close_to<T>(row.grad().value(), column_sums, test::tolerance<T>()));
    CHECK(close_to<T>(m.grad().value(), xt::cast<double>(dy.value()), test::tolerance<T>()));

    Var<T> u = Var<T>::parameter(random_array<T>({3, 1}, 4), "u");
    Var<T> v = Var<T>::parameter(random_array<T>({1, 4}, 5), "v");
    backward(u * v, dy);
    Array<double> du = xt::zeros<double>(Shape{3, 1});
    Array<double> dv = xt::zeros<double>(Shape{1, 4});
    for (std::size_t i = 0; i < 3; ++i) {
        for (std::size_t j = 0; j < 4; ++j) {
            du(i, 0) += dy.value()(i, j) * v.value()(0, j);
            dv(0, j) += dy.value()(i, j) * u.value()(i, 0);
        }
    }
    CHECK(close_to<T>(u.grad().value(), du, test::tolerance<T>()));
    CHECK(close_to<T>(v.grad().value(), dv, test::tolerance<T>()));
}

TEST_CASE_TEMPLATE("a plain number is a 0-d constant that broadcasts from either side", T, float, double) {
    Var<T> x = Var<T>::parameter(random_array<T>({2, 3}, 1, 0.5, 2), "x");
    Array<double> xv = xt::cast<double>(x.value());
    double tol = test::tolerance<T>();
    CHECK(close_to<T>((x + T(2)).value(), xv + 2.0, tol));
    CHECK(close_to<T>((T(2) - x).value(), 2.0 - xv, tol));
    CHECK(close_to<T>((x * T(3)).value(), xv * 3.0, tol));
    CHECK(close_to<T>((T(3) / x).value(), 3.0 / xv, tol));
    Var<T> dy(random_array<T>({2, 3}, 2));
    backward(T(3) / x, dy);
    CHECK(close_to<T>(x.grad().value(), -3.0 * xt::cast<double>(dy.value()) / (xv * xv), tol));
}

TEST_CASE_TEMPLATE("maximum and minimum propagate NaN from either input", T, float, double) {
    T nan = std::numeric_limits<T>::quiet_NaN();
    Var<T> a(Array<T>{nan, 1, nan, 2});
    Var<T> b(Array<T>{1, nan, nan, 3});
    for (const Var<T>& y : {maximum(a, b), minimum(a, b), maximum(b, a), minimum(b, a)}) {
        CHECK(std::isnan(y.value()(0)));
        CHECK(std::isnan(y.value()(1)));
        CHECK(std::isnan(y.value()(2)));
        CHECK_FALSE(std::isnan(y.value()(3)));
    }
    Var<T> scalar_nan = Var<T>::scalar(nan);
    CHECK(xt::all(xt::isnan(maximum(a, scalar_nan).value())));
    CHECK(xt::all(xt::isnan(minimum(scalar_nan, b).value())));
}

TEST_CASE_TEMPLATE("maximum and minimum at a tie send half of dy to each input", T, float, double) {
    Var<T> a = Var<T>::parameter(Array<T>{1, 2, 3}, "a");
    Var<T> b = Var<T>::parameter(Array<T>{1, 5, 0}, "b");
    Var<T> dy(Array<T>{0.3, 0.7, 1.1});
    double tol = test::tolerance<T>();

    backward(maximum(a, b), dy);
    CHECK(close_to<T>(a.grad().value(), Array<double>{0.15, 0, 1.1}, tol));
    CHECK(close_to<T>(b.grad().value(), Array<double>{0.15, 0.7, 0}, tol));
    a.zero_grad();
    b.zero_grad();

    backward(minimum(a, b), dy);
    CHECK(close_to<T>(a.grad().value(), Array<double>{0.15, 0.7, 0}, tol));
    CHECK(close_to<T>(b.grad().value(), Array<double>{0.15, 0, 1.1}, tol));

    SUBCASE("a tie with a broadcast scalar: its half-shares add up") {
        Var<T> x = Var<T>::parameter(Array<T>{0.5, 1, 0, 0.5}, "x");
        Var<T> c = Var<T>::parameter(Array<T>(T(0.5)), "c");
        backward(maximum(x, c), Var<T>(Array<T>{0.2, 0.4, 0.8, 1.6}));
        CHECK(close_to<T>(x.grad().value(), Array<double>{0.1, 0.4, 0, 0.8}, tol));
        CHECK(close_to<T>(c.grad().value(), Array<double>(0.1 + 0.8 + 0.8), tol));
    }
    SUBCASE("maximum of a value with itself passes dy through whole") {
        Var<T> x = Var<T>::parameter(random_array<T>({5}, 1), "x");
        Var<T> seed(random_array<T>({5}, 2));
        backward(maximum(x, x), seed);
        CHECK(close_to<T>(x.grad().value(), xt::cast<double>(seed.value()), tol));
    }
}

TEST_CASE_TEMPLATE("division by zero gives inf and NaN without an exception when checking is off", T, float, double) {
    REQUIRE_FALSE(check_numerics_enabled());
    Var<T> y;
    REQUIRE_NOTHROW(y = Var<T>(Array<T>{1, -1, 0}) / Var<T>::scalar(0));
    CHECK(std::isinf(y.value()(0)));
    CHECK(y.value()(0) > 0);
    CHECK(std::isinf(y.value()(1)));
    CHECK(y.value()(1) < 0);
    CHECK(std::isnan(y.value()(2)));
}

TEST_CASE_TEMPLATE("where picks a where the mask is 1 and b elsewhere; each gets dy where it was picked", T, float,
                   double) {
    Array<T> mask_value = Array<T>{1, 0, 1};
    mask_value.reshape({3, 1});
    Var<T> mask(mask_value);                                         // (3, 1)
    Var<T> a = Var<T>::parameter(random_array<T>({1, 4}, 1), "a");  // (1, 4)
    Var<T> b = Var<T>::parameter(Array<T>(T(0.25)), "b");           // ()
    Var<T> y = where(mask, a, b);
    REQUIRE(y.shape() == Shape{3, 4});
    Var<T> dy(random_array<T>({3, 4}, 2));
    backward(y, dy);
    Array<double> want = xt::empty<double>(Shape{3, 4});
    Array<double> da = xt::zeros<double>(Shape{1, 4});
    double db = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        for (std::size_t j = 0; j < 4; ++j) {
            bool pick_a = mask.value()(i, 0) != 0;
            want(i, j) = pick_a ? a.value()(0, j) : 0.25;
            (pick_a ? da(0, j) : db) += dy.value()(i, j);
        }
    }
    CHECK(close_to<T>(y.value(), want, 0));
    CHECK(close_to<T>(a.grad().value(), da, test::tolerance<T>()));
    CHECK(close_to<T>(b.grad().value(), Array<double>(db), test::tolerance<T>()));
}

TEST_CASE_TEMPLATE("shapes that do not broadcast: ShapeError naming the op and both shapes", T, float, double) {
    auto v = [](Shape shape) { return Var<T>(random_array<T>(shape, 1)); };
    CHECK_THROWS_WITH_AS(v({3, 4}) + v({5, 4}), "add: shapes do not broadcast: (3, 4) and (5, 4)", ShapeError);
    CHECK_THROWS_WITH_AS(v({3}) - v({4}), "sub: shapes do not broadcast: (3,) and (4,)", ShapeError);
    CHECK_THROWS_WITH_AS(v({2, 3}) * v({3, 2}), "mul: shapes do not broadcast: (2, 3) and (3, 2)", ShapeError);
    CHECK_THROWS_WITH_AS(v({2, 3, 4}) / v({2, 4}), "div: shapes do not broadcast: (2, 3, 4) and (2, 4)", ShapeError);
    CHECK_THROWS_WITH_AS(maximum(v({3, 4}), v({3})), "maximum: shapes do not broadcast: (3, 4) and (3,)", ShapeError);
    CHECK_THROWS_WITH_AS(minimum(v({0}), v({2})), "minimum: shapes do not broadcast: (0,) and (2,)", ShapeError);
    CHECK_THROWS_WITH_AS(where(v({3, 4}), v({3, 4}), v({5})), "where: shapes do not broadcast: (3, 4) and (5,)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(where(v({2}), v({3}), v({3})), "where: shapes do not broadcast: (2,) and (3,)", ShapeError);
}

TEST_CASE_TEMPLATE("binary backward twice gives twice the gradient, until zero_grad", T, float, double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    Var<T> a = Var<T>::parameter(random_array<T>({3, 1}, 1), "a");
    Var<T> b = Var<T>::parameter(random_array<T>({1, 4}, 2, 0.5, 2), "b");
    Var<T> dy(random_array<T>({3, 4}, 3));
    Var<T> y = a / b;
    backward(y, dy, {.retain_graph = true});
    Array<T> da = a.grad().value();
    Array<T> db = b.grad().value();
    backward(y, dy);
    CHECK(close_to<T>(a.grad().value(), 2.0 * xt::cast<double>(da), test::tolerance<T>()));
    CHECK(close_to<T>(b.grad().value(), 2.0 * xt::cast<double>(db), test::tolerance<T>()));
    a.zero_grad();
    b.zero_grad();
    backward(a / b, dy);
    CHECK(close_to<T>(a.grad().value(), xt::cast<double>(da), test::tolerance<T>()));
    CHECK(close_to<T>(b.grad().value(), xt::cast<double>(db), test::tolerance<T>()));
}
