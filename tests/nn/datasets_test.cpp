// Datasets by name: the bundled digits (shape, values, scikit-learn's label counts, the TAPEGRAD_DATA
// override) and Fashion-MNIST from Debian's package (train and test); by path: CSV, NPY (NaN refused by
// row and column) and IDX with its labels beside it; the errors for unknown names and splits.
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "helpers.hpp"
#include "scratch.hpp"
#include "tapegrad_paths.hpp"
#include "tapegrad/nn/data.hpp"

using namespace tapegrad;
using namespace tapegrad::nn;
namespace fs = std::filesystem;
using test::TempDir;
using test::write_bytes;

namespace {

std::map<std::int64_t, std::size_t> counts(const std::vector<std::int64_t>& labels) {
    std::map<std::int64_t, std::size_t> c;
    for (std::int64_t l : labels) {
        ++c[l];
    }
    return c;
}

std::pair<float, float> range(const Array<float>& x) {
    auto [lo, hi] = std::minmax_element(x.data(), x.data() + x.size());
    return {*lo, *hi};
}

// Sets an environment variable for one scope, then puts back what was there.
struct ScopedEnv {
    std::string name;
    std::optional<std::string> old;
    ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) {
        if (const char* v = std::getenv(name.c_str())) {
            old = v;
        }
        ::setenv(name.c_str(), value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (old) {
            ::setenv(name.c_str(), old->c_str(), 1);
        } else {
            ::unsetenv(name.c_str());
        }
    }
};

}  // namespace

TEST_CASE("digits: 1797 x 64, values 0..16, labels as scikit-learn counts them") {
    Dataset digits = load_dataset("digits");
    CHECK(digits.name == "digits");
    REQUIRE(digits.x.shape() == Shape{1797, 64});
    CHECK(range(digits.x) == std::pair{0.0f, 16.0f});
    REQUIRE(digits.labels.size() == 1797);
    std::map<std::int64_t, std::size_t> sklearn = {{0, 178}, {1, 182}, {2, 177}, {3, 183}, {4, 181},
                                                   {5, 182}, {6, 181}, {7, 179}, {8, 174}, {9, 180}};
    CHECK(counts(digits.labels) == sklearn);
    // The first image, as sklearn.datasets.load_digits().images[0] has it, top row.
    CHECK(std::vector<float>(digits.x.data(), digits.x.data() + 8) == std::vector<float>{0, 0, 5, 13, 9, 1, 0, 0});
    CHECK(digits.labels[0] == 0);
    CHECK(load_dataset("digits", "all").x == digits.x);
    CHECK_THROWS_WITH_AS(load_dataset("digits", "test"),
                         "load_dataset digits: no split \"test\": it has one split, \"all\" (also called \"train\"); "
                         "make a test set with train_test_split",
                         ValueError);
}

TEST_CASE("digits from the folder TAPEGRAD_DATA names") {
    TempDir dir("tapegrad_datasets_test");
    write_bytes(dir / "plain.csv", "1,2,3\n4,5,6\n");
    REQUIRE(std::system(fmt::format("gzip -nc '{}' > '{}'", dir / "plain.csv", dir / "digits.csv.gz").c_str()) == 0);
    {
        ScopedEnv env("TAPEGRAD_DATA", dir.path.string());
        CHECK(data_dir() == dir.path.string());
        Dataset small = load_dataset("digits");
        CHECK(small.x == Array<float>({{1, 2}, {4, 5}}));
        CHECK(small.labels == std::vector<std::int64_t>{3, 6});
    }
    {
        ScopedEnv env("TAPEGRAD_DATA", dir / "nowhere");
        CHECK_THROWS_WITH_AS(
            load_dataset("digits"),
            ("csv " + (dir / "nowhere/digits.csv.gz") + ": cannot open: No such file or directory").c_str(), FileError);
    }
    if (std::getenv("TAPEGRAD_DATA") == nullptr) {
        CHECK(data_dir() == TAPEGRAD_SOURCE_DATA_DIR);
    }
}

TEST_CASE("fashion-mnist: 60000 train and 10000 test images of 784 pixels, 10 balanced classes") {
    if (!fs::exists(std::string(fashion_mnist_dir))) {
        FAIL("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist (make test installs it)");
    }
    for (auto [split, n] : {std::pair{"train", 60000}, {"test", 10000}}) {
        CAPTURE(split);
        Dataset data = load_dataset("fashion-mnist", split);
        CHECK(data.name == std::string("fashion-mnist/") + split);
        REQUIRE(data.x.shape() == Shape{static_cast<std::size_t>(n), 784});
        CHECK(range(data.x) == std::pair{0.0f, 255.0f});
        std::map<std::int64_t, std::size_t> balanced;
        for (std::int64_t label = 0; label < 10; ++label) {
            balanced[label] = static_cast<std::size_t>(n / 10);
        }
        CHECK(counts(data.labels) == balanced);
    }
    CHECK_THROWS_WITH_AS(load_dataset("fashion-mnist", "validation"),
                         "load_dataset fashion-mnist: no split \"validation\": \"train\" and \"test\" are there",
                         ValueError);
}

TEST_CASE("datasets by path: csv, npy, idx") {
    TempDir dir("tapegrad_datasets_test");
    write_bytes(dir / "a.csv", "x,y\n1,2\n3,4\n");
    Dataset csv = load_dataset(dir / "a.csv");
    CHECK(csv.x == Array<float>({{1, 2}, {3, 4}}));
    CHECK(csv.labels.empty());
    CHECK(csv.name == dir / "a.csv");

    Array<double> cube = xt::zeros<double>(Shape{2, 3, 4});
    cube(1, 2, 3) = 7;
    write_npy(dir / "cube.npy", cube);
    Dataset flat = load_dataset(dir / "cube.npy");
    REQUIRE(flat.x.shape() == Shape{2, 12});
    CHECK(flat.x(1, 11) == 7);
    write_npy(dir / "column.npy", Array<float>({1, 2, 3}));
    CHECK(load_dataset(dir / "column.npy").x.shape() == Shape{3, 1});
    Array<float> bad = xt::zeros<float>(Shape{4, 5});
    bad(2, 3) = std::nanf("");
    write_npy(dir / "nan.npy", bad);
    CHECK_THROWS_WITH_AS(load_dataset(dir / "nan.npy"),
                         ("npy " + (dir / "nan.npy") + ": not finite: x[2, 3] is nan").c_str(), FileError);
    write_npy(dir / "scalar.npy", Array<float>(1.0f));
    CHECK_THROWS_WITH_AS(load_dataset(dir / "scalar.npy"),
                         ("npy " + (dir / "scalar.npy") + ": a dataset needs rows, found shape ()").c_str(), FileError);

    // IDX images with MNIST's naming: the labels file beside them is found.
    std::string images =
        std::string("\0\0\x08\x03\0\0\0\x02\0\0\0\x02\0\0\0\x02", 16) + "\x01\x02\x03\x04\x05\x06\x07\x08";
    write_bytes(dir / "toy-images-idx3-ubyte", images);
    Dataset unlabeled = load_dataset(dir / "toy-images-idx3-ubyte");
    CHECK(unlabeled.x == Array<float>({{1, 2, 3, 4}, {5, 6, 7, 8}}));
    CHECK(unlabeled.labels.empty());
    write_bytes(dir / "toy-labels-idx1-ubyte", std::string("\0\0\x08\x01\0\0\0\x02\x05\x09", 10));
    CHECK(load_dataset(dir / "toy-images-idx3-ubyte").labels == std::vector<std::int64_t>{5, 9});

    CHECK_THROWS_WITH_AS(load_dataset(dir / "a.csv", "test"),
                         ("load_dataset " + (dir / "a.csv") +
                          ": no split \"test\": it has one split, \"all\" (also called \"train\"); make a test set "
                          "with train_test_split")
                             .c_str(),
                         ValueError);
    CHECK_THROWS_WITH_AS(load_dataset("mnist"),
                         "load_dataset mnist: neither a name (digits, fashion-mnist) nor a file it reads "
                         "(.csv, .csv.gz, .npy, *-idx3-ubyte[.gz])",
                         ValueError);
    CHECK_THROWS_WITH_AS(load_dataset(dir / "missing.npy"),
                         ("npy " + (dir / "missing.npy") + ": cannot open: No such file or directory").c_str(),
                         FileError);
}
