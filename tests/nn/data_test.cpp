// Datasets in memory: seeded permutations; choosing rows by index, predicate and label; train/test split
// sizes (scikit-learn's rounding), disjointness, coverage and reproducibility; mini-batches that cover
// every row once per epoch, change order between epochs and repeat for the same seed; the errors.
#include <algorithm>
#include <numeric>
#include <set>

#include <sstream>

#include <fmt/format.h>

#include "helpers.hpp"
#include "scratch.hpp"
#include "tapegrad/nn/data.hpp"
#include "tapegrad/nn/io/datasets.hpp"
#include "tapegrad/nn/io/npy.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;

namespace {

std::vector<std::string> text_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

// Row i is (i, 100 + i, 200 + i) with label i % 3, so that a row can be recognised by its first value.
Dataset numbered(std::size_t n, bool labels = true) {
    Dataset data;
    data.name = "numbered";
    data.x = xt::empty<float>(Shape{n, 3});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < 3; ++j) {
            data.x(i, j) = static_cast<float>(100 * j + i);
        }
        if (labels) {
            data.labels.push_back(static_cast<std::int64_t>(i % 3));
        }
    }
    return data;
}

// The dataset's rows, by their first value; and a check that each row is intact with its label.
std::vector<std::size_t> rows_of(const Array<float>& x, const std::vector<std::int64_t>& labels) {
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < x.shape(0); ++i) {
        auto r = static_cast<std::size_t>(x(i, 0));
        CHECK(x(i, 1) == static_cast<float>(100 + r));
        CHECK(x(i, 2) == static_cast<float>(200 + r));
        if (!labels.empty()) {
            CHECK(labels[i] == static_cast<std::int64_t>(r % 3));
        }
        rows.push_back(r);
    }
    return rows;
}

std::vector<std::size_t> sorted(std::vector<std::size_t> v) {
    std::sort(v.begin(), v.end());
    return v;
}

std::vector<std::size_t> iota(std::size_t n) {
    std::vector<std::size_t> v(n);
    std::iota(v.begin(), v.end(), std::size_t{0});
    return v;
}

}  // namespace

TEST_CASE("permutation: every index once, fixed by the seed") {
    CHECK(sorted(permutation(1000, 7)) == iota(1000));
    CHECK(permutation(1000, 7) == permutation(1000, 7));
    CHECK(permutation(1000, 7) != permutation(1000, 8));
    CHECK(permutation(1000, 7) != iota(1000));
    CHECK(permutation(0, 1).empty());
    CHECK(permutation(1, 1) == std::vector<std::size_t>{0});
    // Pinned: an order must not change with the standard library or a refactoring, or saved splits and
    // runs stop being reproducible.
    CHECK(permutation(8, 42) == std::vector<std::size_t>{2, 1, 5, 3, 0, 7, 4, 6});
    CHECK(permutation(6, 0) == std::vector<std::size_t>{3, 2, 1, 5, 4, 0});
}

TEST_CASE("select_rows and filter_by_label") {
    Dataset data = numbered(10);
    Dataset some = select_rows(data, {7, 2, 2});
    CHECK(rows_of(some.x, some.labels) == std::vector<std::size_t>{7, 2, 2});
    CHECK(some.name == "numbered");
    Dataset even = select_rows(data, [](std::size_t r) { return r % 2 == 0; });
    CHECK(rows_of(even.x, even.labels) == std::vector<std::size_t>{0, 2, 4, 6, 8});
    Dataset ones = filter_by_label(data, {1});
    CHECK(rows_of(ones.x, ones.labels) == std::vector<std::size_t>{1, 4, 7});
    Dataset not_two = filter_by_label(data, {0, 1});
    CHECK(not_two.size() == 7);
    CHECK(filter_by_label(data, {5}).size() == 0);
    CHECK(filter_by_label(data, {5}).dim() == 3);
    Dataset unlabeled = numbered(4, false);
    CHECK(select_rows(unlabeled, {3}).labels.empty());

    CHECK_THROWS_WITH_AS(select_rows(data, {3, 10}), "select_rows: row 10 out of range for 10 rows of numbered",
                         ValueError);
    CHECK_THROWS_WITH_AS(filter_by_label(unlabeled, {1}), "filter_by_label: dataset numbered has no labels",
                         ValueError);
    Dataset broken = data;
    broken.labels.pop_back();
    CHECK_THROWS_WITH_AS(select_rows(broken, {1}), "select_rows: dataset numbered: 9 labels for 10 rows", ShapeError);
}

TEST_CASE("train_test_split: sizes, disjoint, complete, reproducible") {
    Dataset data = numbered(10);
    for (auto [fraction, n_test] : {std::pair{0.25, 3}, {0.2, 2}, {0.5, 5}, {0.01, 1}, {0.7, 7}, {0.9, 9}}) {
        CAPTURE(fraction);
        auto [train, test] = train_test_split(data, fraction, 3);
        CHECK(test.size() == static_cast<std::size_t>(n_test));
        CHECK(train.size() == 10 - static_cast<std::size_t>(n_test));
        std::vector<std::size_t> all = rows_of(train.x, train.labels);
        std::vector<std::size_t> t = rows_of(test.x, test.labels);
        all.insert(all.end(), t.begin(), t.end());
        CHECK(sorted(all) == iota(10));
    }
    Dataset big = numbered(1797);
    auto [train, test] = train_test_split(big, 0.2, 0);
    CHECK(test.size() == 360);  // ceil(359.4), as scikit-learn
    // scikit-learn's rounding, floating-point product included: 0.07 * 100 is 7.000000000000001.
    CHECK(train_test_split(numbered(100), 0.07, 0).second.size() == 8);
    CHECK(train.size() == 1437);
    auto [train_again, test_again] = train_test_split(big, 0.2, 0);
    CHECK(train_again.x == train.x);
    CHECK(test_again.labels == test.labels);
    auto [train_other, test_other] = train_test_split(big, 0.2, 1);
    CHECK(train_other.x != train.x);

    CHECK_THROWS_WITH_AS(train_test_split(data, 0, 1), "train_test_split: test_fraction must be in (0, 1), got 0",
                         ValueError);
    CHECK_THROWS_WITH_AS(train_test_split(data, 1, 1), "train_test_split: test_fraction must be in (0, 1), got 1",
                         ValueError);
    CHECK_THROWS_WITH_AS(train_test_split(data, std::nan(""), 1),
                         "train_test_split: test_fraction must be in (0, 1), got nan", ValueError);
    CHECK_THROWS_WITH_AS(train_test_split(numbered(1), 0.5, 1),
                         "train_test_split: 1 rows with test_fraction 0.5 leave no training rows", ValueError);
}

TEST_CASE("batches: every row once per epoch, a new order each epoch, the same for the same seed") {
    Dataset data = numbered(10);
    Batches epoch0(data, {.batch_size = 4, .seed = 5}, 0);
    CHECK(epoch0.size() == 3);
    std::vector<std::size_t> seen;
    std::vector<std::size_t> sizes;
    for (const Batch& batch : epoch0) {
        sizes.push_back(batch.x.shape(0));
        CHECK(batch.x.shape(1) == 3);
        CHECK(batch.labels.size() == batch.x.shape(0));
        std::vector<std::size_t> rows = rows_of(batch.x, batch.labels);
        CHECK(rows == batch.rows);
        seen.insert(seen.end(), rows.begin(), rows.end());
    }
    CHECK(sizes == std::vector<std::size_t>{4, 4, 2});
    CHECK(sorted(seen) == iota(10));
    CHECK(seen == epoch0.order());
    CHECK(seen != iota(10));

    CHECK(Batches(data, {.batch_size = 4, .seed = 5}, 0).order() == epoch0.order());
    CHECK(Batches(data, {.batch_size = 4, .seed = 5}, 1).order() != epoch0.order());
    CHECK(Batches(data, {.batch_size = 4, .seed = 6}, 0).order() != epoch0.order());
    CHECK(sorted(Batches(data, {.batch_size = 4, .seed = 5}, 1).order()) == iota(10));
    CHECK(epoch0[1].rows == std::vector<std::size_t>(epoch0.order().begin() + 4, epoch0.order().begin() + 8));

    Batches in_order(data, {.batch_size = 3, .shuffle = false});
    CHECK(in_order.order() == iota(10));
    CHECK(in_order.size() == 4);
    CHECK(in_order[3].rows == std::vector<std::size_t>{9});

    Batches dropped(data, {.batch_size = 4, .drop_last = true, .seed = 5});
    CHECK(dropped.size() == 2);
    std::size_t count = 0;
    for (const Batch& batch : dropped) {
        CHECK(batch.x.shape(0) == 4);
        ++count;
    }
    CHECK(count == 2);

    Dataset unlabeled = numbered(5, false);
    for (const Batch& batch : Batches(unlabeled, {.batch_size = 2})) {
        CHECK(batch.labels.empty());
        CHECK(batch.x.shape(1) == 3);
    }
    CHECK(Batches(numbered(0), {.batch_size = 2}).size() == 0);
    CHECK(Batches(numbered(0), {.batch_size = 2}).begin() == Batches(numbered(0), {.batch_size = 2}).end());

    CHECK_THROWS_WITH_AS(Batches(data, {.batch_size = 0}), "batches: batch_size must be positive, got 0", ValueError);
    CHECK_THROWS_WITH_AS(epoch0[3], "batches: batch 3 out of range for 3 batches", ValueError);
}

TEST_CASE("check_finite names the first bad element") {
    Array<float> x = xt::zeros<float>(Shape{3, 4});
    check_finite(x, "npy a.npy");
    x(2, 1) = std::numeric_limits<float>::infinity();
    x(2, 3) = std::nanf("");
    CHECK_THROWS_WITH_AS(check_finite(x, "npy a.npy"), "npy a.npy: not finite: x[2, 1] is inf", FileError);
    x(1, 0) = std::nanf("");
    CHECK_THROWS_WITH_AS(check_finite(x, "npy a.npy"), "npy a.npy: not finite: x[1, 0] is nan", FileError);
}

// numpy and scikit-learn themselves, not rows written down here: Debian's python3-numpy and python3-sklearn
// print the permutations and the split, and ours must match them element for element.
TEST_CASE("numpy_legacy_permutation is numpy's RandomState(seed).permutation(n)") {
    test::TempDir dir("tapegrad_data_test");
    const std::vector<std::pair<std::size_t, std::uint32_t>> cases = {
        {1, 0}, {2, 7}, {10, 42}, {33, 1}, {1000, 0}, {1797, 42}, {70000, 123}, {5, 4294967295U}};
    std::string code = "for n, s in [";
    for (auto [n, s] : cases) {
        code += fmt::format("({}, {}), ", n, s);
    }
    code += "]:\n    print(' '.join(map(str, np.random.RandomState(s).permutation(n))))\n";
    std::vector<std::string> lines = text_lines(test::run_python(dir, code));
    REQUIRE(lines.size() == cases.size());
    for (std::size_t c = 0; c < cases.size(); ++c) {
        auto [n, s] = cases[c];
        CAPTURE(n);
        CAPTURE(s);
        std::vector<std::size_t> p = numpy_legacy_permutation(n, s);
        std::vector<std::size_t> theirs;
        std::istringstream in(lines[c]);
        for (std::size_t v = 0; in >> v;) {
            theirs.push_back(v);
        }
        CHECK(p == theirs);
    }
}

TEST_CASE("sklearn_train_test_split takes scikit-learn's rows of the digits, in its order") {
    test::TempDir dir("tapegrad_data_test");
    std::string out = test::run_python(dir, R"(
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
digits = load_digits()
rows = np.arange(len(digits.target))
X_train, X_test, i_train, i_test = train_test_split(digits.data, rows, test_size=0.2, random_state=42)
print(' '.join(map(str, i_train)))
print(' '.join(map(str, i_test)))
np.save(os.path.join(d, 'x_train.npy'), X_train)
np.save(os.path.join(d, 'x_test.npy'), X_test)
)");
    std::vector<std::string> lines = text_lines(out);
    REQUIRE(lines.size() == 2);
    auto numbers = [](const std::string& line) {
        std::vector<std::size_t> v;
        std::istringstream in(line);
        for (std::size_t x = 0; in >> x;) {
            v.push_back(x);
        }
        return v;
    };
    auto [train, test] = sklearn_train_test_split(numbered(1797), 0.2, 42);
    CHECK(train.size() == 1437);
    CHECK(test.size() == 360);
    CHECK(rows_of(train.x, train.labels) == numbers(lines[0]));
    CHECK(rows_of(test.x, test.labels) == numbers(lines[1]));
    // The bundled digits are scikit-learn's, row for row: the split gives the very pixels it gives.
    Dataset digits = load_dataset("digits");
    auto [digits_train, digits_test] = sklearn_train_test_split(digits, 0.2, 42);
    CHECK(digits_train.x == (read_npy<float>((dir.path / "x_train.npy").string())));
    CHECK(digits_test.x == (read_npy<float>((dir.path / "x_test.npy").string())));
    CHECK_THROWS_WITH_AS(sklearn_train_test_split(numbered(1), 0.5, 1),
                         "sklearn_train_test_split: 1 rows with test_fraction 0.5 leave no training rows", ValueError);
}
