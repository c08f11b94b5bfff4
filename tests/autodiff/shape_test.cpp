// Ops that move elements: reshape, transpose, gather_rows, scatter_rows, slice and concat. Forward
// values against loops, the errors for shapes, axes, indices and ranges that do not fit, and backward
// with a random seed and twice (repeated rows accumulate; slice and concat undo each other). Gradient
// checks of every op live in op_table_test.cpp.
#include <vector>

#include "helpers.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;
using test::random_array;

namespace {

template <class T>
bool same(const Array<T>& got, const Array<T>& want) {
    return test::all_close<T>(got, want, 0);
}

// (outer, extent, inner) around an axis.
struct Blocks {
    std::size_t outer = 1;
    std::size_t extent = 1;
    std::size_t inner = 1;
};

Blocks blocks(const Shape& shape, std::size_t axis) {
    Blocks b;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        (d < axis ? b.outer : d == axis ? b.extent : b.inner) *= shape[d];
    }
    return b;
}

// x[..., begin:end, ...] along `axis`, by loops.
template <class T>
Array<T> slice_ref(const Array<T>& x, std::size_t axis, std::size_t begin, std::size_t end) {
    Shape shape = x.shape();
    shape[axis] = end - begin;
    Array<T> y = xt::empty<T>(shape);
    Blocks b = blocks(x.shape(), axis);
    std::size_t n = 0;
    for (std::size_t o = 0; o < b.outer; ++o) {
        for (std::size_t m = begin; m < end; ++m) {
            for (std::size_t i = 0; i < b.inner; ++i) {
                y.data()[n++] = x.data()[(o * b.extent + m) * b.inner + i];
            }
        }
    }
    return y;
}

// The parts joined along `axis`, by loops: for each outer block, each part's rows in turn.
template <class T>
Array<T> concat_ref(const std::vector<Array<T>>& parts, std::size_t axis) {
    Shape shape = parts[0].shape();
    shape[axis] = 0;
    for (const Array<T>& p : parts) {
        shape[axis] += p.shape()[axis];
    }
    Array<T> y = xt::empty<T>(shape);
    std::size_t n = 0;
    for (std::size_t o = 0; o < blocks(shape, axis).outer; ++o) {
        for (const Array<T>& p : parts) {
            Blocks b = blocks(p.shape(), axis);
            for (std::size_t k = 0; k < b.extent * b.inner; ++k) {
                y.data()[n++] = p.data()[o * b.extent * b.inner + k];
            }
        }
    }
    return y;
}

// Rows picked by index (repeats allowed), and rows added into zeros: loops over the first axis.
template <class T>
Array<T> gather_ref(const Array<T>& x, const std::vector<std::size_t>& rows) {
    Shape shape = x.shape();
    shape[0] = rows.size();
    Array<T> y = xt::empty<T>(shape);
    std::size_t width = blocks(x.shape(), 0).inner;
    for (std::size_t r = 0; r < rows.size(); ++r) {
        for (std::size_t k = 0; k < width; ++k) {
            y.data()[r * width + k] = x.data()[rows[r] * width + k];
        }
    }
    return y;
}

template <class T>
Array<T> scatter_ref(const Array<T>& x, const std::vector<std::size_t>& rows, std::size_t n_rows) {
    Shape shape = x.shape();
    shape[0] = n_rows;
    Array<T> y = xt::zeros<T>(shape);
    std::size_t width = blocks(x.shape(), 0).inner;
    for (std::size_t r = 0; r < rows.size(); ++r) {
        for (std::size_t k = 0; k < width; ++k) {
            y.data()[rows[r] * width + k] += x.data()[r * width + k];
        }
    }
    return y;
}

template <class T>
Array<T> transpose_ref(const Array<T>& x) {
    Array<T> y = x;
    y.resize({x.shape()[1], x.shape()[0]});
    for (std::size_t i = 0; i < x.shape()[0]; ++i) {
        for (std::size_t j = 0; j < x.shape()[1]; ++j) {
            y(j, i) = x(i, j);
        }
    }
    return y;
}

template <class T>
Array<T> reshaped(Array<T> a, const Shape& shape) {
    a.reshape(shape);
    return a;
}

// Leaves a buffer of this shape's size in the pool and fills the pool with NaN, so that an op that
// does not write all of its output shows.
template <class T>
void poison_buffer(const Shape& shape) {
    exp(Var<T>(random_array<T>(shape, 9)));
    testing::poison_pool<T>();
}

}  // namespace

TEST_CASE_TEMPLATE("reshape keeps the row-major order of the elements", T, float, double) {
    Shape from;
    Shape to;
    SUBCASE("(3, 4) to (2, 6)") { from = {3, 4}; to = {2, 6}; }
    SUBCASE("(2, 3, 2) to (12,)") { from = {2, 3, 2}; to = {12}; }
    SUBCASE("(12,) to (2, 2, 3)") { from = {12}; to = {2, 2, 3}; }
    SUBCASE("(1,) to ()") { from = {1}; to = {}; }
    SUBCASE("() to (1, 1)") { from = {}; to = {1, 1}; }
    SUBCASE("(0, 3) to (3, 0)") { from = {0, 3}; to = {3, 0}; }
    CAPTURE(from);
    CAPTURE(to);
    Var<T> x(random_array<T>(from, 1));
    Var<T> y = reshape(x, to);
    CHECK(y.shape() == to);
    CHECK(same<T>(y.value(), reshaped(x.value(), to)));
}

TEST_CASE_TEMPLATE("transpose swaps the two axes", T, float, double) {
    Shape shape;
    SUBCASE("(3, 5)") { shape = {3, 5}; }
    SUBCASE("(1, 4)") { shape = {1, 4}; }
    SUBCASE("(4, 1)") { shape = {4, 1}; }
    SUBCASE("(70, 40): more than one 32 x 32 tile each way") { shape = {70, 40}; }
    SUBCASE("(0, 3)") { shape = {0, 3}; }
    CAPTURE(shape);
    Var<T> x(random_array<T>(shape, 1));
    Var<T> y = transpose(x);
    CHECK(y.shape() == Shape{shape[1], shape[0]});
    CHECK(same<T>(y.value(), transpose_ref(x.value())));
}

TEST_CASE_TEMPLATE("gather_rows picks rows, repeats allowed; scatter_rows adds rows into zeros", T, float, double) {
    Shape shape;
    std::vector<std::size_t> rows;
    SUBCASE("(5, 3) rows 2 0 2 4") { shape = {5, 3}; rows = {2, 0, 2, 4}; }
    SUBCASE("(4,) rows 3 3 1") { shape = {4}; rows = {3, 3, 1}; }
    SUBCASE("(4, 2, 3) rows 1 3") { shape = {4, 2, 3}; rows = {1, 3}; }
    SUBCASE("(5, 3) no rows") { shape = {5, 3}; rows = {}; }
    CAPTURE(shape);
    CAPTURE(rows.size());
    Var<T> x(random_array<T>(shape, 1));
    Var<T> g = gather_rows<T>(x, rows);
    CHECK(same<T>(g.value(), gather_ref(x.value(), rows)));

    // scatter_rows of the gathered rows back into as many rows as x has: repeats add up.
    Var<T> s = scatter_rows<T>(g, rows, shape[0]);
    CHECK(same<T>(s.value(), scatter_ref(g.value(), rows, shape[0])));
}

TEST_CASE_TEMPLATE("scatter_rows fills rows no index names with zeros, even in a buffer from the pool", T, float,
                   double) {
    poison_buffer<T>({5, 2});
    Var<T> x(Array<T>{{1, 2}, {3, 4}, {5, 6}});
    std::vector<std::size_t> rows = {1, 3, 1};
    Var<T> y = scatter_rows<T>(x, rows, 5);
    CHECK(same<T>(y.value(), Array<T>{{0, 0}, {6, 8}, {0, 0}, {3, 4}, {0, 0}}));
}

TEST_CASE_TEMPLATE("slice takes [begin, end) along any axis", T, float, double) {
    Shape shape;
    int axis = 0;
    std::size_t begin = 0;
    std::size_t end = 0;
    SUBCASE("(5, 4) axis 0 [1, 4)") { shape = {5, 4}; axis = 0; begin = 1; end = 4; }
    SUBCASE("(3, 6) axis 1 [2, 6)") { shape = {3, 6}; axis = 1; begin = 2; end = 6; }
    SUBCASE("(2, 5, 3) axis -2 [0, 2)") { shape = {2, 5, 3}; axis = -2; begin = 0; end = 2; }
    SUBCASE("(2, 5, 3) axis 2 [1, 2)") { shape = {2, 5, 3}; axis = 2; begin = 1; end = 2; }
    SUBCASE("(7,) axis -1 [3, 7)") { shape = {7}; axis = -1; begin = 3; end = 7; }
    SUBCASE("(3, 4) axis 1 [2, 2): empty") { shape = {3, 4}; axis = 1; begin = 2; end = 2; }
    CAPTURE(shape);
    CAPTURE(axis);
    Var<T> x(random_array<T>(shape, 1));
    std::size_t a = static_cast<std::size_t>(axis < 0 ? axis + static_cast<int>(shape.size()) : axis);
    Var<T> y = slice(x, axis, begin, end);
    CHECK(same<T>(y.value(), slice_ref(x.value(), a, begin, end)));
}

TEST_CASE_TEMPLATE("concat joins along any axis, empty parts included", T, float, double) {
    std::vector<Shape> shapes;
    int axis = 0;
    SUBCASE("(2, 3) (4, 3) axis 0") { shapes = {{2, 3}, {4, 3}}; axis = 0; }
    SUBCASE("(3, 2) (3, 1) (3, 4) axis 1") { shapes = {{3, 2}, {3, 1}, {3, 4}}; axis = 1; }
    SUBCASE("(2, 2, 3) (2, 1, 3) axis -2") { shapes = {{2, 2, 3}, {2, 1, 3}}; axis = -2; }
    SUBCASE("(2, 3) (0, 3) (1, 3) axis 0") { shapes = {{2, 3}, {0, 3}, {1, 3}}; axis = 0; }
    SUBCASE("(4,) alone") { shapes = {{4}}; axis = 0; }
    CAPTURE(shapes[0]);
    CAPTURE(axis);
    std::vector<Var<T>> parts;
    std::vector<Array<T>> values;
    for (const Shape& s : shapes) {
        parts.emplace_back(random_array<T>(s, parts.size() + 1));
        values.push_back(parts.back().value());
    }
    std::size_t a = static_cast<std::size_t>(axis < 0 ? axis + static_cast<int>(shapes[0].size()) : axis);
    Var<T> y = concat<T>(std::span<const Var<T>>(parts), axis);
    CHECK(same<T>(y.value(), concat_ref(values, a)));
}

TEST_CASE_TEMPLATE("shape op errors name the op, the shapes and the offending index or range", T, float, double) {
    auto v = [](Shape shape) { return Var<T>(random_array<T>(shape, 1)); };
    std::vector<std::size_t> five = {0, 5};
    std::vector<std::size_t> two = {0, 1};
    std::vector<std::size_t> seven = {1, 7, 0};

    CHECK_THROWS_WITH_AS(reshape(v({3, 4}), {5, 2}),
                         "reshape: cannot reshape (3, 4) (12 elements) to (5, 2) (10 elements)", ShapeError);
    CHECK_THROWS_WITH_AS(reshape(v({}), {0}), "reshape: cannot reshape () (1 elements) to (0,) (0 elements)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(transpose(v({2, 3, 4})), "transpose: needs a 2-D value, got (2, 3, 4)", ShapeError);
    CHECK_THROWS_WITH_AS(transpose(v({5})), "transpose: needs a 2-D value, got (5,)", ShapeError);
    CHECK_THROWS_WITH_AS(transpose(v({})), "transpose: needs a 2-D value, got ()", ShapeError);

    CHECK_THROWS_WITH_AS(gather_rows<T>(v({5, 3}), five), "gather_rows: row 5 out of range for (5, 3)",
                         ValueError);
    CHECK_THROWS_WITH_AS(gather_rows<T>(v({}), two), "gather_rows: needs at least 1 dimension, got ()", ShapeError);
    CHECK_THROWS_WITH_AS(scatter_rows<T>(v({3, 2}), two, 5),
                         "scatter_rows: 2 rows of index for a value of shape (3, 2)", ShapeError);
    CHECK_THROWS_WITH_AS(scatter_rows<T>(v({3, 2}), seven, 5), "scatter_rows: row 7 out of range for an output of 5 rows",
                         ValueError);

    CHECK_THROWS_WITH_AS(slice(v({3, 5}), 1, 2, 6), "slice: range [2, 6) out of bounds for axis 1 of (3, 5)",
                         ValueError);
    CHECK_THROWS_WITH_AS(slice(v({5, 4}), 0, 3, 2), "slice: range [3, 2) out of bounds for axis 0 of (5, 4)",
                         ValueError);
    CHECK_THROWS_WITH_AS(slice(v({5, 4}), -1, 0, 5), "slice: range [0, 5) out of bounds for axis -1 of (5, 4)",
                         ValueError);
    CHECK_THROWS_WITH_AS(slice(v({3, 5}), 2, 0, 1), "slice: axis 2 out of range for shape (3, 5)", ValueError);
    CHECK_THROWS_WITH_AS(slice(v({}), 0, 0, 0), "slice: axis 0 out of range for shape ()", ValueError);

    CHECK_THROWS_WITH_AS(concat({v({2, 3}), v({2, 4})}, 0), "concat: shapes differ outside axis 0: (2, 3) and (2, 4)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(concat({v({2, 3}), v({3})}, 0), "concat: shapes differ outside axis 0: (2, 3) and (3,)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(concat({v({2, 3}), v({2, 3}), v({3, 3})}, -1),
                         "concat: shapes differ outside axis -1: (2, 3) and (3, 3)", ShapeError);
    CHECK_THROWS_WITH_AS(concat({v({2, 3})}, 2), "concat: axis 2 out of range for shape (2, 3)", ValueError);
    CHECK_THROWS_WITH_AS(concat<T>(std::span<const Var<T>>(), 0), "concat: no values to join", ValueError);
}

TEST_CASE_TEMPLATE("gather_rows backward adds the seed rows of repeated indices, and accumulates", T, float, double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    Var<T> x = Var<T>::parameter(random_array<T>({5, 3}, 1), "x");
    std::vector<std::size_t> rows = {2, 0, 2, 4, 2};
    Var<T> dy(random_array<T>({5, 3}, 2));
    Var<T> y = gather_rows<T>(x, rows);
    backward(y, dy, {.retain_graph = true});
    Array<T> want = scatter_ref(dy.value(), rows, 5);  // row 2 gets three seed rows, rows 1 and 3 none
    CHECK(test::all_close<T>(x.grad().value(), want, test::tolerance<T>()));
    backward(y, dy);
    CHECK(test::all_close<T>(x.grad().value(), Array<T>(T(2) * want), test::tolerance<T>()));
    x.zero_grad();
    backward(gather_rows<T>(x, rows), dy);
    CHECK(test::all_close<T>(x.grad().value(), want, test::tolerance<T>()));
}

TEST_CASE_TEMPLATE("scatter_rows, transpose and reshape backward with a random seed", T, float, double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    Var<T> x = Var<T>::parameter(random_array<T>({3, 4}, 1), "x");
    std::vector<std::size_t> rows = {1, 3, 1};
    SUBCASE("scatter_rows: dx gathers the seed's rows") {
        Var<T> dy(random_array<T>({5, 4}, 2));
        backward(scatter_rows<T>(x, rows, 5), dy);
        CHECK(same<T>(x.grad().value(), gather_ref(dy.value(), rows)));
    }
    SUBCASE("transpose: dx is the seed transposed") {
        Var<T> dy(random_array<T>({4, 3}, 3));
        backward(transpose(x), dy);
        CHECK(same<T>(x.grad().value(), transpose_ref(dy.value())));
    }
    SUBCASE("reshape: dx is the seed in x's shape") {
        Var<T> dy(random_array<T>({2, 3, 2}, 4));
        backward(reshape(x, {2, 3, 2}), dy);
        CHECK(same<T>(x.grad().value(), reshaped(dy.value(), {3, 4})));
    }
}

TEST_CASE_TEMPLATE("slice backward pads the seed with zeros; concat backward slices it", T, float, double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    Var<T> x = Var<T>::parameter(random_array<T>({2, 5, 3}, 1), "x");
    Var<T> dy(random_array<T>({2, 2, 3}, 2));
    backward(slice(x, 1, 1, 3), dy);
    Array<T> want = xt::zeros<T>(Shape{2, 5, 3});
    for (std::size_t i = 0; i < 2; ++i) {
        for (std::size_t j = 0; j < 2; ++j) {
            for (std::size_t k = 0; k < 3; ++k) {
                want(i, j + 1, k) = dy.value()(i, j, k);
            }
        }
    }
    CHECK(same<T>(x.grad().value(), want));

    Var<T> a = Var<T>::parameter(random_array<T>({3, 2}, 3), "a");
    Var<T> b(random_array<T>({3, 1}, 4));  // a constant between two parameters
    Var<T> c = Var<T>::parameter(random_array<T>({3, 4}, 5), "c");
    Var<T> seed(random_array<T>({3, 7}, 6));
    backward(concat({a, b, c}, 1), seed);
    CHECK(same<T>(a.grad().value(), slice_ref(seed.value(), 1, 0, 2)));
    CHECK(same<T>(c.grad().value(), slice_ref(seed.value(), 1, 3, 7)));
    CHECK_FALSE(b.grad().defined());

    SUBCASE("an empty slice sends zeros; a whole slice sends the seed") {
        x.zero_grad();
        backward(slice(x, 1, 5, 5), Var<T>(xt::zeros<T>(Shape{2, 0, 3})));
        CHECK(same<T>(x.grad().value(), xt::zeros<T>(Shape{2, 5, 3})));
        x.zero_grad();
        Var<T> whole(random_array<T>({2, 5, 3}, 7));
        backward(slice(x, -2, 0, 5), whole);
        CHECK(same<T>(x.grad().value(), whole.value()));
    }
}

TEST_CASE_TEMPLATE("concat of slices is the identity, forward and backward", T, float, double) {
    testing::poison_pool<T>();  // backward buffers come from the pool: unwritten elements show as NaN
    Var<T> x = Var<T>::parameter(random_array<T>({4, 6}, 1), "x");
    Var<T> seed(random_array<T>({4, 6}, 2));
    for (int axis : {0, 1, -1}) {
        CAPTURE(axis);
        std::size_t n = x.shape()[static_cast<std::size_t>(axis < 0 ? axis + 2 : axis)];
        Var<T> y = concat({slice(x, axis, 0, 1), slice(x, axis, 1, n - 1), slice(x, axis, n - 1, n)}, axis);
        CHECK(same<T>(y.value(), x.value()));
        backward(y, seed);
        CHECK(same<T>(x.grad().value(), seed.value()));
        x.zero_grad();
    }
}
