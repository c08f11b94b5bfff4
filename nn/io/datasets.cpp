#include "tapegrad/nn/io/datasets.hpp"

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "tapegrad_paths.hpp"

namespace tapegrad::nn {

namespace {

namespace fs = std::filesystem;

void check_whole_split(const std::string& name, const std::string& split) {
    if (split != "train" && split != "all") {
        tapegrad::detail::throw_value_error(
            fmt::format("load_dataset {}: no split \"{}\": it has one split, \"all\" (also called \"train\"); "
                        "make a test set with train_test_split",
                        name, split));
    }
}

Dataset digits(const std::string& split) {
    check_whole_split("digits", split);
    Dataset data = read_csv((fs::path(data_dir()) / "digits.csv.gz").string(), {.header = false, .label_column = -1});
    data.name = "digits";
    return data;
}

Dataset fashion_mnist(const std::string& split) {
    if (split != "train" && split != "test") {
        tapegrad::detail::throw_value_error(
            fmt::format("load_dataset fashion-mnist: no split \"{}\": \"train\" and \"test\" are there", split));
    }
    std::string prefix = split == "train" ? "train" : "t10k";
    fs::path dir(fashion_mnist_dir);
    std::string images = (dir / (prefix + "-images-idx3-ubyte.gz")).string();
    std::string labels = (dir / (prefix + "-labels-idx1-ubyte.gz")).string();
    for (const std::string& path : {images, labels}) {
        if (!fs::exists(path)) {
            detail::throw_file_error(fmt::format(
                "load_dataset fashion-mnist: {} not found: install it with `apt-get install dataset-fashion-mnist`",
                path));
        }
    }
    Dataset data = read_idx(images, labels);
    data.name = "fashion-mnist/" + split;
    data.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return data;
}

// An IDX images file, with its labels when the file MNIST's naming gives them is beside it.
Dataset idx_file(const std::string& path) {
    fs::path p(path);
    std::string name = p.filename().string();
    std::size_t at = name.find("images-idx3");
    if (at != std::string::npos) {
        fs::path labels = p.parent_path() / name.replace(at, 11, "labels-idx1");
        if (fs::exists(labels)) {
            return read_idx(path, labels.string());
        }
    }
    return Dataset{read_idx_images(path), {}, path};
}

Dataset npy_file(const std::string& path) {
    std::string what = fmt::format("npy {}", path);
    Array<float> x = read_npy<float>(path);
    if (x.dimension() == 0) {
        detail::throw_file_error(fmt::format("{}: a dataset needs rows, found shape ()", what));
    }
    std::size_t n = x.shape(0);
    x.reshape({n, n == 0 ? 0 : x.size() / n});
    check_finite(x, what);
    return Dataset{std::move(x), {}, path};
}

}  // namespace

std::string data_dir() {
    const char* env = std::getenv("TAPEGRAD_DATA");
    if (env != nullptr && *env != '\0') {
        return env;
    }
    // The source tree's copy while it is there (a build used in place), else the installed one.
    std::error_code error;
    if (fs::exists(fs::path(TAPEGRAD_SOURCE_DATA_DIR) / "digits.csv.gz", error)) {
        return TAPEGRAD_SOURCE_DATA_DIR;
    }
    return TAPEGRAD_INSTALL_DATA_DIR;
}

Dataset load_dataset(const std::string& name_or_path, const std::string& split) {
    const std::string& s = name_or_path;
    if (s == "digits") {
        return digits(split);
    }
    if (s == "fashion-mnist") {
        return fashion_mnist(split);
    }
    if (s.ends_with(".csv") || s.ends_with(".csv.gz")) {
        check_whole_split(s, split);
        return read_csv(s);  // read_csv refuses NaN and Inf itself, naming line and column
    }
    if (s.ends_with(".npy")) {
        check_whole_split(s, split);
        return npy_file(s);
    }
    if (s.ends_with("-idx3-ubyte") || s.ends_with("-idx3-ubyte.gz")) {
        check_whole_split(s, split);
        return idx_file(s);
    }
    tapegrad::detail::throw_value_error(
        fmt::format("load_dataset {}: neither a name (digits, fashion-mnist) nor a file it reads "
                    "(.csv, .csv.gz, .npy, *-idx3-ubyte[.gz])",
                    s));
}

}  // namespace tapegrad::nn
