// Working with datasets: choosing rows, a seeded train/test split, and mini-batches with seeded
// shuffling. Includes the rest of the data layer: Dataset, the loaders by name, the scalers.
//
// Every shuffle here is a Fisher-Yates shuffle driven by std::mt19937_64 with our own bounded draws
// (std::shuffle and std::uniform_int_distribution are free to differ between standard libraries), so a
// seed gives the same order on every platform.
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "tapegrad/nn/dataset.hpp"
#include "tapegrad/nn/io/datasets.hpp"
#include "tapegrad/nn/scaling.hpp"

namespace tapegrad::nn {

// 0..n-1 in an order fixed by the seed.
std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed);

// The rows in the given order (repeats allowed), with their labels. ValueError for a row out of range.
Dataset select_rows(const Dataset& data, const std::vector<std::size_t>& rows);
// The rows for which keep(row) is true, in order.
Dataset select_rows(const Dataset& data, const std::function<bool(std::size_t row)>& keep);
// The rows whose label is one of `labels`, in order: e.g. one class to train an anomaly detector on.
Dataset filter_by_label(const Dataset& data, const std::vector<std::int64_t>& labels);

// (train, test) as scikit-learn's train_test_split(shuffle=True) sizes them: ceil(test_fraction * n)
// test rows, the rest for training; both are taken from one seeded permutation, test rows first, and
// keep the permuted order. ValueError unless 0 < test_fraction < 1 and both parts have rows.
std::pair<Dataset, Dataset> train_test_split(const Dataset& data, double test_fraction, std::uint64_t seed);

// numpy's legacy `np.random.RandomState(seed).permutation(n)`, the same numbers in the same order: the
// Mersenne Twister seeded as numpy seeds it from an integer (init_genrand, which std::mt19937 shares),
// then a Fisher-Yates shuffle of 0..n-1 from the last place down, each place's partner drawn from 32-bit
// outputs masked to the smallest covering power of two, rejecting those above the place.
std::vector<std::size_t> numpy_legacy_permutation(std::size_t n, std::uint32_t seed);

// scikit-learn's `train_test_split(X, y, test_size=test_fraction, random_state=random_state)` with an
// integer random_state: the same rows in the same order, ceil(test_fraction * n) of them for the test
// part (tutorial 002's split of the digits, random_state 42). Errors as train_test_split.
std::pair<Dataset, Dataset> sklearn_train_test_split(const Dataset& data, double test_fraction,
                                                     std::uint32_t random_state);

struct BatchOptions {
    std::size_t batch_size = 64;
    bool shuffle = true;     // a new order each epoch, fixed by (seed, epoch)
    bool drop_last = false;  // drop a last batch smaller than batch_size
    std::uint64_t seed = 0;
};

// One mini-batch: rows of the dataset copied into x, (B, D), with their labels (empty when the dataset
// has none) and their row numbers in the dataset.
struct Batch {
    Array<float> x;
    std::vector<std::int64_t> labels;
    std::vector<std::size_t> rows;
};

// Part `part` of `parts` near-equal contiguous parts of `rows` rows: [rows * part / parts, rows * (part +
// 1) / parts). Sizes differ by one at most; with fewer rows than parts some parts are empty.
std::pair<std::size_t, std::size_t> shard_range(std::size_t rows, std::size_t part, std::size_t parts);

// The mini-batches of one epoch, range-for friendly:
//     for (const Batch& b : Batches(train, {.batch_size = 128, .seed = 1}, epoch)) { ... }
// Each row appears once per epoch (once at most with drop_last). The same (seed, epoch) gives the same
// batches; another epoch another order. Iterating refills one Batch, so a loop allocates only when the
// batch's size changes. The dataset must outlive the Batches.
class Batches {
public:
    Batches(const Dataset& data, const BatchOptions& options, std::uint64_t epoch = 0);

    std::size_t size() const;  // number of batches
    const std::vector<std::size_t>& order() const { return order_; }

    // Fills `batch` with batch i, reusing its storage.
    void fill(std::size_t i, Batch& batch) const;
    Batch operator[](std::size_t i) const;
    // The rows in batch i, and a part of them: rows [begin, end) of batch i (end <= rows(i)), what one
    // rank of a data-parallel run takes (see shard_range).
    std::size_t rows(std::size_t i) const;
    void fill(std::size_t i, std::size_t begin, std::size_t end, Batch& batch) const;

    class Iterator {
    public:
        using value_type = Batch;
        using difference_type = std::ptrdiff_t;
        Iterator() = default;
        Iterator(const Batches* batches, std::size_t index);
        const Batch& operator*() const { return batch_; }
        const Batch* operator->() const { return &batch_; }
        Iterator& operator++();
        void operator++(int) { ++*this; }
        bool operator==(const Iterator& other) const { return index_ == other.index_; }

    private:
        const Batches* batches_ = nullptr;
        std::size_t index_ = 0;
        Batch batch_;
    };
    Iterator begin() const { return Iterator(this, 0); }
    Iterator end() const { return Iterator(nullptr, size()); }

private:
    const Dataset* data_;
    BatchOptions options_;
    std::vector<std::size_t> order_;
};

}  // namespace tapegrad::nn
