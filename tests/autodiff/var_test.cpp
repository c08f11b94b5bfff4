// Var: leaves, handles, names, item, detach, the modes, and the pool under the nodes.
#include "helpers.hpp"
#include "tapegrad/autodiff/testing.hpp"

using namespace tapegrad;

TEST_CASE_TEMPLATE("a leaf holds its value, shape, name and whether it requires grad", T, float, double) {
    Array<T> value = test::random_array<T>({3, 4}, 1);
    Var<T> p = Var<T>::parameter(value, "encoder.0.weight");
    CHECK(p.defined());
    CHECK(p.is_leaf());
    CHECK(p.requires_grad());
    CHECK(p.name() == "encoder.0.weight");
    CHECK(p.shape() == Shape{3, 4});
    CHECK(p.size() == 12);
    CHECK(p.ndim() == 2);
    CHECK(p.value() == value);
    Var<T> c(value);
    CHECK_FALSE(c.requires_grad());
    c.set_requires_grad(true).set_name("c");
    CHECK(c.requires_grad());
    CHECK(c.name() == "c");
}

TEST_CASE("copies share the value; detach copies it and leaves the graph") {
    Var<double> p = Var<double>::parameter(Array<double>{1.0, 2.0}, "p");
    Var<double> q = p;
    q.mutable_value()(0) = 5.0;
    CHECK(p.value()(0) == 5.0);
    Var<double> d = p.detach();
    d.mutable_value()(1) = 7.0;
    CHECK(p.value()(1) == 2.0);
    CHECK(d.is_leaf());
    CHECK_FALSE(d.requires_grad());
}

TEST_CASE("item reads a single element and names the shape otherwise") {
    CHECK(Var<double>::scalar(2.5).item() == 2.5);
    CHECK(Var<double>(Array<double>(Shape{1, 1}, 4.0)).item() == 4.0);
    Var<double> m(xt::zeros<double>(Shape{3, 4}));
    CHECK_THROWS_WITH_AS(m.item(), "item: value has 12 elements, not 1: (3, 4)", ShapeError);
}

TEST_CASE("only a leaf changes whether it requires grad") {
    Var<double> p = Var<double>::parameter(Array<double>{1.0}, "p");
    Var<double> y = tanh(p);
    CHECK_FALSE(y.is_leaf());
    CHECK_THROWS_AS(y.set_requires_grad(false), GraphError);
    CHECK_THROWS_WITH(y.set_requires_grad(false), doctest::Contains("only a leaf"));
}

TEST_CASE("an empty handle is an error, not a crash") {
    Var<double> empty;
    CHECK_FALSE(empty.defined());
    CHECK_THROWS_WITH_AS(empty.value(), "var: empty handle (a default-constructed or moved-from Var)", GraphError);
    CHECK_THROWS_AS(tanh(empty), GraphError);
}

TEST_CASE("mode guards nest and restore") {
    CHECK(grad_enabled());
    {
        NoGrad off;
        CHECK_FALSE(grad_enabled());
        {
            GradMode on(true);
            CHECK(grad_enabled());
        }
        CHECK_FALSE(grad_enabled());
    }
    CHECK(grad_enabled());
    CHECK_FALSE(check_numerics_enabled());
    {
        CheckNumerics on;
        CHECK(check_numerics_enabled());
    }
    CHECK_FALSE(check_numerics_enabled());
}

TEST_CASE("a freed value's buffer is handed to the next op of the same size") {
    Var<float> x(test::random_array<float>({32, 8}, 2));
    const float* first;
    {
        Var<float> y = tanh(x);
        first = y.value().data();
    }
    Var<float> z = exp(x);
    CHECK(z.value().data() == first);
    Var<float> other_shape = reshape(x, {8, 32});  // same size, other shape: same pool bucket
    CHECK(other_shape.shape() == Shape{8, 32});
    release_cached_memory<float>();
    CHECK(testing::pooled_buffers<float>() == 0);
}
