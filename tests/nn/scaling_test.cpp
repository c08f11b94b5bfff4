// Scalers, for float and double: known values per feature and global, constant features, round trips
// (inverse of transform gives x back), state saved and loaded into a fresh scaler, and the errors:
// transform before fit, features that do not match, bad input to fit, bad state.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "helpers.hpp"
#include "tapegrad/nn/scaling.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;
using test::random_array;

namespace {

// Columns: 0, 2, 4 | 10, 20, 30 | constant 5.
template <class T>
Array<T> sample() {
    return Array<T>({{0, 10, 5}, {2, 20, 5}, {4, 30, 5}});
}

// Column j of x, in double.
template <class T>
std::vector<double> column(const Array<T>& x, std::size_t j) {
    std::vector<double> c;
    for (std::size_t i = 0; i < x.shape(0); ++i) {
        c.push_back(static_cast<double>(x(i, j)));
    }
    return c;
}

double mean_of(const std::vector<double>& c) {
    return std::accumulate(c.begin(), c.end(), 0.0) / static_cast<double>(c.size());
}

double std_of(const std::vector<double>& c) {
    double m = mean_of(c);
    double ss = 0;
    for (double v : c) {
        ss += (v - m) * (v - m);
    }
    return std::sqrt(ss / static_cast<double>(c.size()));
}

}  // namespace

TEST_CASE_TEMPLATE("min_max_scaler per feature: known values, constant features to 0, round trip", T, float, double) {
    MinMaxScaler scaler;
    Array<T> x = sample<T>();
    Array<T> y = scaler.fit_transform(x);
    CHECK(y == Array<T>({{0, 0, 0}, {0.5, 0.5, 0}, {1, 1, 0}}));
    CHECK(scaler.min() == Array<double>({0, 10, 5}));
    CHECK(scaler.max() == Array<double>({4, 30, 5}));
    CHECK(scaler.inverse_transform(y) == x);
    // New data goes through the fitted parameters, out of [0, 1] if it is out of the fitted range.
    CHECK(scaler.transform(Array<T>({{8, 0, 6}})) == Array<T>({{2, -0.5, 1}}));

    Array<T> r = random_array<T>({50, 7}, 3, -5, 5);
    MinMaxScaler fitted;
    Array<T> s = fitted.fit_transform(r);
    for (std::size_t j = 0; j < 7; ++j) {
        std::vector<double> c = column(s, j);
        CHECK(*std::min_element(c.begin(), c.end()) == 0);
        CHECK(*std::max_element(c.begin(), c.end()) == 1);
    }
    CHECK(test::all_close<T>(fitted.inverse_transform(s), r, test::tolerance<T>()));
}

TEST_CASE_TEMPLATE("min_max_scaler global: one range for all features, as for images", T, float, double) {
    MinMaxScaler scaler(MinMaxScaler::Scope::global);
    Array<T> x = sample<T>();
    Array<T> y = scaler.fit_transform(x);
    CHECK(scaler.min().dimension() == 0);
    CHECK(scaler.min()() == 0);
    CHECK(scaler.max()() == 30);
    CHECK(test::all_close<T>(y, Array<T>(x / T(30)), test::tolerance<T>()));
    CHECK(test::all_close<T>(scaler.inverse_transform(y), x, test::tolerance<T>()));
    // Any number of features: the range is the same for all.
    CHECK(scaler.transform(Array<T>({{15, 30, 0, 3}})) == Array<T>({{0.5, 1, 0, 0.1}}));
}

TEST_CASE_TEMPLATE("standard_scaler: known values, constant features keep scale 1, round trip", T, float, double) {
    StandardScaler scaler;
    Array<T> x = sample<T>();
    Array<T> y = scaler.fit_transform(x);
    double s = std::sqrt(8.0 / 3.0);  // population std of 0, 2, 4
    CHECK(test::close_to(y, Array<double>({{-2 / s, -1.224744871391589, 0}, {0, 0, 0}, {2 / s, 1.224744871391589, 0}}),
                         test::tolerance<T>()));
    CHECK(test::close_to(scaler.mean(), Array<double>({2, 20, 5}), 1e-15));
    CHECK(test::close_to(scaler.scale(), Array<double>({s, 5 * s, 1}), 1e-14));
    CHECK(test::all_close<T>(scaler.inverse_transform(y), x, test::tolerance<T>()));

    // A column of 0.1: a mean summed from 0 would be rounded and leave a std of rounding noise.
    Array<T> tenths = xt::empty<T>(Shape{1000, 2});
    for (std::size_t i = 0; i < 1000; ++i) {
        tenths(i, 0) = T(0.1);
        tenths(i, 1) = static_cast<T>(i);
    }
    StandardScaler constant;
    Array<T> z = constant.fit_transform(tenths);
    CHECK(constant.scale()(0) == 1);
    CHECK(column(z, 0) == std::vector<double>(1000, 0.0));

    Array<T> r = random_array<T>({200, 5}, 4, -3, 7);
    StandardScaler fitted;
    Array<T> t = fitted.fit_transform(r);
    for (std::size_t j = 0; j < 5; ++j) {
        CHECK(std::abs(mean_of(column(t, j))) < 1e-6);
        CHECK(std::abs(std_of(column(t, j)) - 1) < 1e-5);
    }
    CHECK(test::all_close<T>(fitted.inverse_transform(t), r, test::tolerance<T>()));
}

TEST_CASE_TEMPLATE("scaler state: a fresh scaler loaded from it transforms alike", T, float, double) {
    Array<T> x = random_array<T>({30, 4}, 5, 0, 255);
    for (auto scope : {MinMaxScaler::Scope::per_feature, MinMaxScaler::Scope::global}) {
        MinMaxScaler scaler(scope);
        scaler.fit(x);
        ScalerState state = scaler.state();
        REQUIRE(state.size() == 2);
        CHECK(state[0].first == "min");
        CHECK(state[1].first == "max");
        MinMaxScaler loaded;  // per feature until the state says otherwise
        loaded.load_state(state);
        CHECK(loaded.scope() == scope);
        CHECK(loaded.transform(x) == scaler.transform(x));
    }
    StandardScaler scaler;
    scaler.fit(x);
    ScalerState state = scaler.state();
    CHECK(state[0].first == "mean");
    CHECK(state[1].first == "scale");
    StandardScaler loaded;
    loaded.load_state(state);
    CHECK(loaded.transform(x) == scaler.transform(x));
    CHECK(loaded.inverse_transform(x) == scaler.inverse_transform(x));
}

TEST_CASE("scaler errors") {
    Array<float> x = sample<float>();
    MinMaxScaler minmax;
    StandardScaler standard;
    CHECK_THROWS_WITH_AS(minmax.transform(x), "min_max_scaler.transform: not fitted: call fit or load_state first",
                         ValueError);
    CHECK_THROWS_WITH_AS(minmax.inverse_transform(x),
                         "min_max_scaler.inverse_transform: not fitted: call fit or load_state first", ValueError);
    CHECK_THROWS_WITH_AS(standard.transform(x), "standard_scaler.transform: not fitted: call fit or load_state first",
                         ValueError);
    CHECK_THROWS_WITH_AS(standard.state(), "standard_scaler.state: not fitted: call fit or load_state first",
                         ValueError);

    minmax.fit(x);
    standard.fit(x);
    Array<float> narrow = xt::zeros<float>(Shape{2, 2});
    CHECK_THROWS_WITH_AS(minmax.transform(narrow), "min_max_scaler.transform: fitted on 3 features, x is (2, 2)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(standard.inverse_transform(narrow),
                         "standard_scaler.inverse_transform: fitted on 3 features, x is (2, 2)", ShapeError);
    CHECK_THROWS_WITH_AS(minmax.transform(Array<float>({1, 2, 3})),
                         "min_max_scaler.transform: x must be (N, D), found (3,)", ShapeError);

    CHECK_THROWS_WITH_AS(MinMaxScaler().fit(Array<float>({1, 2})), "min_max_scaler.fit: x must be (N, D), found (2,)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(StandardScaler().fit(Array<double>(xt::zeros<double>(Shape{0, 3}))),
                         "standard_scaler.fit: no rows to fit on: x is (0, 3)", ValueError);
    Array<float> bad = x;
    bad(1, 2) = std::nanf("");
    CHECK_THROWS_WITH_AS(MinMaxScaler().fit(bad), "min_max_scaler.fit: not finite: x[1, 2] is nan", ValueError);
    CHECK_THROWS_WITH_AS(StandardScaler().fit(bad), "standard_scaler.fit: not finite: x[1, 2] is nan", ValueError);

    CHECK_THROWS_WITH_AS(MinMaxScaler().load_state({{"min", Array<double>({0.0})}}),
                         "min_max_scaler.load_state: no \"max\" in the state", ValueError);
    CHECK_THROWS_WITH_AS(
        MinMaxScaler().load_state({{"min", Array<double>({0.0, 1.0})}, {"max", Array<double>({1.0})}}),
        "min_max_scaler.load_state: min and max must both be 0-d (global) or (D,), found (2,) and (1,)", ShapeError);
    CHECK_THROWS_WITH_AS(MinMaxScaler().load_state({{"min", Array<double>({2.0})}, {"max", Array<double>({1.0})}}),
                         "min_max_scaler.load_state: feature 0: min 2 and max 1 are not a finite range", ValueError);
    CHECK_THROWS_WITH_AS(StandardScaler().load_state({{"mean", Array<double>({0.0})}, {"scale", Array<double>({0.0})}}),
                         "standard_scaler.load_state: feature 0: mean 0 and scale 0 are not finite with scale > 0",
                         ValueError);
    CHECK_THROWS_WITH_AS(StandardScaler().load_state({{"scale", Array<double>({1.0})}}),
                         "standard_scaler.load_state: no \"mean\" in the state", ValueError);
}
