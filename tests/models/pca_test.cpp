// PCA against numpy's SVD (Debian's python3-numpy) to near machine precision, and against the identity
// that ties its reconstruction error to the variance it leaves out.
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <xtensor/xmath.hpp>

#include "helpers.hpp"
#include "scratch.hpp"
#include <xtensor-blas/xlinalg.hpp>

#include "tapegrad/models/pca.hpp"

using namespace tapegrad;
using namespace tapegrad::models;

namespace {

// Correlated data: random codes through a random mixing, plus a little noise.
Array<double> make_data(std::size_t n, std::size_t d, std::uint64_t seed) {
    Array<double> codes = test::random_array<double>({n, d}, seed, -1, 1);
    Array<double> mix = test::random_array<double>({d, d}, seed + 1, -1, 1);
    Array<double> x = xt::empty<double>(Shape{n, d});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < d; ++j) {
            double v = 0;
            for (std::size_t k = 0; k < d; ++k) {
                v += codes(i, k) * mix(k, j) * (1.0 / double(k + 1));
            }
            x(i, j) = v + 3.0 * double(j);
        }
    }
    return x;
}

// Runs numpy on the data: explained variance of every component, then the per-sample reconstruction
// error with k components, one number a line.
std::vector<double> numpy_reference(const Array<double>& x, std::size_t k) {
    test::TempDir dir("tapegrad_pca_test");
    std::ofstream out(dir / "data.txt");
    for (std::size_t i = 0; i < x.shape()[0]; ++i) {
        for (std::size_t j = 0; j < x.shape()[1]; ++j) {
            out << fmt::format("{:.17g} ", x(i, j));
        }
        out << "\n";
    }
    out.close();
    std::string printed = test::run_python(
        dir, fmt::format("x = np.loadtxt(os.path.join(d, 'data.txt')); k = {}; c = x - x.mean(0); "
                         "u, s, vt = np.linalg.svd(c, full_matrices=False); v = vt[:k]; r = c @ v.T @ v - c; "
                         "print('\\n'.join(repr(float(t)) for t in list(s * s / (len(x) - 1)) + list((r * r).mean(1))))",
                         k));
    std::vector<double> values;
    std::istringstream lines(printed);
    for (std::string line; std::getline(lines, line);) {
        values.push_back(std::stod(line));
    }
    return values;
}

}  // namespace

TEST_CASE("explained variance and reconstruction error agree with numpy's SVD") {
    Array<double> x = make_data(60, 7, 1);
    const std::size_t k = 3;
    std::vector<double> ref = numpy_reference(x, k);
    REQUIRE(ref.size() == 7 + 60);
    for (PcaSolver solver : {PcaSolver::svd, PcaSolver::covariance}) {
        CAPTURE(int(solver));
        Pca<double> pca({.components = k, .solver = solver});
        pca.fit(x);
        double total = 0;
        for (std::size_t c = 0; c < 7; ++c) {
            total += ref[c];
        }
        for (std::size_t c = 0; c < k; ++c) {
            CHECK(pca.explained_variance()(c) == doctest::Approx(ref[c]).epsilon(1e-12));
            CHECK(pca.explained_variance_ratio()(c) == doctest::Approx(ref[c] / total).epsilon(1e-12));
        }
        Array<double> err = pca.reconstruction_error(x);
        for (std::size_t i = 0; i < 60; ++i) {
            CHECK(err(i) == doctest::Approx(ref[7 + i]).epsilon(1e-9).scale(1e-14));
        }
    }
}

TEST_CASE_TEMPLATE("the error left is the variance left out; components are orthonormal", T, float, double) {
    Array<double> data = make_data(200, 6, 2);
    Array<T> x = xt::cast<T>(data);
    Pca<T> all({.components = 6, .solver = PcaSolver::svd});
    all.fit(x);
    for (std::size_t k = 1; k <= 6; ++k) {
        Pca<T> pca({.components = k});
        pca.fit(x);
        double left_out = 0;
        for (std::size_t c = k; c < 6; ++c) {
            left_out += all.explained_variance()(c);
        }
        // mean over samples and features of the squared residual = left-out variance * (n - 1) / n / d.
        double want = left_out * 199.0 / 200.0 / 6.0;
        double got = xt::mean(xt::cast<double>(pca.reconstruction_error(x)))();
        CHECK(got == doctest::Approx(want).epsilon(std::is_same_v<T, float> ? 1e-4 : 1e-10).scale(1e-6));
        Array<double> gram = xt::linalg::dot(pca.components(), xt::transpose(pca.components()));
        CHECK(test::all_close<double>(gram, xt::eye<double>(k), 1e-12));
    }
}

TEST_CASE("whitened codes have unit variance and decode back") {
    Array<double> x = make_data(100, 5, 3);
    Pca<double> pca({.components = 3, .whiten = true});
    pca.fit(x);
    Array<double> z = pca.encode(x);
    Array<double> var = xt::sum(z * z, {0}) / 99.0;
    CHECK(test::all_close<double>(var, xt::ones<double>(Shape{3}), 1e-10));
    Pca<double> plain({.components = 3});
    plain.fit(x);
    CHECK(test::all_close<double>(pca.reconstruct(x), plain.reconstruct(x), 1e-10));
}

TEST_CASE("misuse is named") {
    Pca<float> pca({.components = 4});
    Array<float> x = test::random_array<float>({10, 3}, 4);
    CHECK_THROWS_WITH_AS(pca.encode(x), "pca: encode before fit", ValueError);
    CHECK_THROWS_WITH_AS(pca.fit(x),
                         "pca: 4 components need at least as many samples and features, and two samples; data is "
                         "(10, 3)",
                         ValueError);
    Pca<float> two({.components = 2});
    two.fit(x);
    CHECK_THROWS_WITH_AS(two.encode(test::random_array<float>({5, 4}, 5)), "pca: encode needs (samples, 3), got (5, 4)",
                         ShapeError);
    CHECK_THROWS_WITH_AS(Pca<float>({.components = 0}), "pca: needs at least one component", ValueError);
}
