#include "tapegrad/nn/data.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include <fmt/format.h>

#include "tapegrad/autodiff/parallel.hpp"

namespace tapegrad::nn {

namespace {

// Uniform in [0, n), by Lemire's multiply-and-reject: exact, and the same on every platform.
std::uint64_t bounded(std::mt19937_64& rng, std::uint64_t n) {
    unsigned __int128 m = static_cast<unsigned __int128>(rng()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
        std::uint64_t threshold = (0 - n) % n;
        while (low < threshold) {
            m = static_cast<unsigned __int128>(rng()) * n;
            low = static_cast<std::uint64_t>(m);
        }
    }
    return static_cast<std::uint64_t>(m >> 64);
}

// splitmix64's finaliser: nearby (seed, epoch) pairs give unrelated generator seeds.
std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void copy_rows(const Dataset& data, const std::vector<std::size_t>& rows, Array<float>& x,
               std::vector<std::int64_t>& labels) {
    std::size_t d = data.dim();
    if (x.dimension() != 2 || x.shape(0) != rows.size() || x.shape(1) != d) {
        x.resize({rows.size(), d});
    }
    labels.resize(data.has_labels() ? rows.size() : 0);
    if (d > 0) {
        float* to = x.data();
        const float* from = data.x.data();
        parallel_for(rows.size(), tapegrad::detail::elementwise_grain / d + 1, [&](std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) {
                std::memcpy(to + i * d, from + rows[i] * d, d * sizeof(float));
            }
        });
    }
    for (std::size_t i = 0; i < labels.size(); ++i) {
        labels[i] = data.labels[rows[i]];
    }
}

}  // namespace

void check_finite(const Array<float>& x, std::string_view source) {
    for (std::size_t i = 0; i < x.size(); ++i) {
        float v = x.data()[i];
        if (!std::isfinite(v)) {
            std::size_t d = x.dimension() == 2 ? x.shape(1) : x.size();
            detail::throw_file_error(fmt::format("{}: not finite: x[{}, {}] is {}", source, i / d, i % d,
                                                 std::isnan(v) ? "nan"
                                                 : v > 0       ? "inf"
                                                               : "-inf"));
        }
    }
}

void check_dataset(const Dataset& data, std::string_view op) {
    if (data.x.dimension() != 2) {
        tapegrad::detail::throw_shape_error(
            fmt::format("{}: dataset {}: x must be (N, D), found {}", op, data.name, to_string(data.x.shape())));
    }
    if (data.has_labels() && data.labels.size() != data.size()) {
        tapegrad::detail::throw_shape_error(
            fmt::format("{}: dataset {}: {} labels for {} rows", op, data.name, data.labels.size(), data.size()));
    }
}

std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed) {
    std::vector<std::size_t> p(n);
    std::iota(p.begin(), p.end(), std::size_t{0});
    std::mt19937_64 rng(seed);
    for (std::size_t i = n; i > 1; --i) {
        std::swap(p[i - 1], p[bounded(rng, i)]);
    }
    return p;
}

Dataset select_rows(const Dataset& data, const std::vector<std::size_t>& rows) {
    check_dataset(data, "select_rows");
    for (std::size_t r : rows) {
        if (r >= data.size()) {
            tapegrad::detail::throw_value_error(
                fmt::format("select_rows: row {} out of range for {} rows of {}", r, data.size(), data.name));
        }
    }
    Dataset out;
    out.name = data.name;
    out.class_names = data.class_names;
    copy_rows(data, rows, out.x, out.labels);
    return out;
}

Dataset select_rows(const Dataset& data, const std::function<bool(std::size_t row)>& keep) {
    check_dataset(data, "select_rows");
    std::vector<std::size_t> rows;
    for (std::size_t r = 0; r < data.size(); ++r) {
        if (keep(r)) {
            rows.push_back(r);
        }
    }
    return select_rows(data, rows);
}

Dataset filter_by_label(const Dataset& data, const std::vector<std::int64_t>& labels) {
    check_dataset(data, "filter_by_label");
    if (!data.has_labels()) {
        tapegrad::detail::throw_value_error(fmt::format("filter_by_label: dataset {} has no labels", data.name));
    }
    return select_rows(
        data, [&](std::size_t r) { return std::find(labels.begin(), labels.end(), data.labels[r]) != labels.end(); });
}

namespace {

std::size_t test_rows(const Dataset& data, double test_fraction, const char* op) {
    check_dataset(data, op);
    if (!(test_fraction > 0 && test_fraction < 1)) {
        tapegrad::detail::throw_value_error(
            fmt::format("{}: test_fraction must be in (0, 1), got {}", op, test_fraction));
    }
    std::size_t n = data.size();
    // scikit-learn's rounding, floating-point product included: ceil(0.07 * 100) is 8 there as here.
    auto n_test = static_cast<std::size_t>(std::ceil(test_fraction * static_cast<double>(n)));
    if (n_test >= n) {
        tapegrad::detail::throw_value_error(
            fmt::format("{}: {} rows with test_fraction {} leave no training rows", op, n, test_fraction));
    }
    return n_test;
}

// (train, test): the permutation's first n_test rows are the test part, the rest the training part.
std::pair<Dataset, Dataset> split_by(const Dataset& data, const std::vector<std::size_t>& p, std::size_t n_test) {
    std::vector<std::size_t> test(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n_test));
    std::vector<std::size_t> train(p.begin() + static_cast<std::ptrdiff_t>(n_test), p.end());
    return {select_rows(data, train), select_rows(data, test)};
}

}  // namespace

std::pair<Dataset, Dataset> train_test_split(const Dataset& data, double test_fraction, std::uint64_t seed) {
    std::size_t n_test = test_rows(data, test_fraction, "train_test_split");
    return split_by(data, permutation(data.size(), seed), n_test);
}

std::vector<std::size_t> numpy_legacy_permutation(std::size_t n, std::uint32_t seed) {
    std::vector<std::size_t> p(n);
    std::iota(p.begin(), p.end(), std::size_t{0});
    std::mt19937 rng(seed);
    for (std::size_t i = n; i-- > 1;) {
        // numpy's random_interval(i): 32-bit draws while i fits in 32 bits, as every dataset here does.
        if (i > 0xffffffffULL) {
            tapegrad::detail::throw_value_error(
                fmt::format("numpy_legacy_permutation: {} rows: numpy draws 64-bit numbers past 2^32", n));
        }
        std::uint32_t mask = static_cast<std::uint32_t>(i);
        for (int shift : {1, 2, 4, 8, 16}) {
            mask |= mask >> shift;
        }
        std::uint32_t j = 0;
        do {
            j = static_cast<std::uint32_t>(rng()) & mask;
        } while (j > i);
        std::swap(p[i], p[j]);
    }
    return p;
}

std::pair<Dataset, Dataset> sklearn_train_test_split(const Dataset& data, double test_fraction,
                                                     std::uint32_t random_state) {
    std::size_t n_test = test_rows(data, test_fraction, "sklearn_train_test_split");
    return split_by(data, numpy_legacy_permutation(data.size(), random_state), n_test);
}

Batches::Batches(const Dataset& data, const BatchOptions& options, std::uint64_t epoch)
    : data_(&data), options_(options) {
    check_dataset(data, "batches");
    if (options.batch_size == 0) {
        tapegrad::detail::throw_value_error("batches: batch_size must be positive, got 0");
    }
    if (options.shuffle) {
        order_ = permutation(data.size(), mix(options.seed ^ mix(epoch)));
    } else {
        order_.resize(data.size());
        std::iota(order_.begin(), order_.end(), std::size_t{0});
    }
}

std::size_t Batches::size() const {
    std::size_t n = order_.size();
    return options_.drop_last ? n / options_.batch_size : (n + options_.batch_size - 1) / options_.batch_size;
}

void Batches::fill(std::size_t i, Batch& batch) const { fill(i, 0, rows(i), batch); }

std::size_t Batches::rows(std::size_t i) const {
    if (i >= size()) {
        tapegrad::detail::throw_value_error(fmt::format("batches: batch {} out of range for {} batches", i, size()));
    }
    return std::min(options_.batch_size, order_.size() - i * options_.batch_size);
}

void Batches::fill(std::size_t i, std::size_t begin, std::size_t end, Batch& batch) const {
    std::size_t n = rows(i);
    if (begin > end || end > n) {
        tapegrad::detail::throw_value_error(
            fmt::format("batches: rows [{}, {}) out of range for batch {} of {} rows", begin, end, i, n));
    }
    auto first = order_.begin() + static_cast<std::ptrdiff_t>(i * options_.batch_size);
    batch.rows.assign(first + static_cast<std::ptrdiff_t>(begin), first + static_cast<std::ptrdiff_t>(end));
    copy_rows(*data_, batch.rows, batch.x, batch.labels);
}

std::pair<std::size_t, std::size_t> shard_range(std::size_t rows, std::size_t part, std::size_t parts) {
    if (parts == 0 || part >= parts) {
        tapegrad::detail::throw_value_error(fmt::format("shard_range: part {} of {} parts", part, parts));
    }
    return {rows * part / parts, rows * (part + 1) / parts};
}

Batch Batches::operator[](std::size_t i) const {
    Batch batch;
    fill(i, batch);
    return batch;
}

Batches::Iterator::Iterator(const Batches* batches, std::size_t index) : batches_(batches), index_(index) {
    if (batches_ != nullptr && index_ < batches_->size()) {
        batches_->fill(index_, batch_);
    }
}

Batches::Iterator& Batches::Iterator::operator++() {
    ++index_;
    if (batches_ != nullptr && index_ < batches_->size()) {
        batches_->fill(index_, batch_);
    }
    return *this;
}

}  // namespace tapegrad::nn
