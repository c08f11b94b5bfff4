#include "tapegrad/nn/distributed.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace tapegrad::nn {

namespace {

// A text sent from rank `from` to every rank: its length, then its bytes packed in doubles (a double
// holds 6 bytes exactly).
std::string text_of_rank(const std::string& text, int from) {
    double length = distributed::rank() == from ? static_cast<double>(text.size()) : 0;
    distributed::all_reduce_sum(&length, 1);
    std::vector<double> packed((static_cast<std::size_t>(length) + 5) / 6, 0.0);
    if (distributed::rank() == from) {
        for (std::size_t i = 0; i < text.size(); ++i) {
            packed[i / 6] += static_cast<double>(static_cast<unsigned char>(text[i])) *
                             static_cast<double>(std::uint64_t(1) << (8 * (i % 6)));
        }
    }
    distributed::all_reduce_sum(packed.data(), packed.size());
    std::string out(static_cast<std::size_t>(length), '\0');
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto word = static_cast<std::uint64_t>(packed[i / 6]);
        out[i] = static_cast<char>((word >> (8 * (i % 6))) & 0xff);
    }
    return out;
}

// One thread at a time calls MPI (MPI_THREAD_SERIALIZED), so one at a time adds here.
GradientReduceStats stats;

}  // namespace

GradientReduceStats gradient_reduce_stats() { return stats; }

void reset_gradient_reduce_stats() { stats = {}; }

template <class T>
void broadcast_parameters(const ParameterList<T>& params) {
    if (distributed::size() == 1) {
        return;
    }
    for (const NamedParameter<T>& p : params) {
        Var<T> v = p.var;
        distributed::broadcast(v.mutable_value().data(), v.size());
    }
}

template <class T>
void all_reduce_gradients(const ParameterList<T>& params, std::size_t bucket_bytes) {
    int ranks = distributed::size();
    if (ranks == 1) {
        return;
    }
    auto start = std::chrono::steady_clock::now();
    ++stats.calls;
    ++stats.sums;
    // Kept between calls, so that a training step allocates nothing here once they have grown.
    thread_local std::vector<double> present;
    thread_local std::vector<T> bucket;
    thread_local std::vector<std::size_t> members;
    // Which grads are there, counted over the ranks: all or none, for each parameter.
    present.assign(params.size(), 0.0);
    for (std::size_t i = 0; i < params.size(); ++i) {
        present[i] = params[i].var.grad().defined() ? 1 : 0;
    }
    distributed::all_reduce_sum(present.data(), present.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (present[i] != 0 && present[i] != ranks) {
            throw DistributedError(fmt::format("all_reduce_gradients: {} has a gradient on {} of {} ranks",
                                               params[i].name, present[i], ranks));
        }
    }
    // Packed in order into buckets; a grad larger than a bucket goes alone, in place.
    std::size_t capacity = std::max<std::size_t>(bucket_bytes / sizeof(T), 1);
    members.clear();
    std::size_t used = 0;
    auto flush = [&] {
        if (members.empty()) {
            return;
        }
        distributed::all_reduce_sum(bucket.data(), used);
        ++stats.sums;
        stats.bytes += used * sizeof(T);
        std::size_t offset = 0;
        for (std::size_t i : members) {
            Var<T> g = params[i].var.grad();
            std::memcpy(g.mutable_value().data(), bucket.data() + offset, g.size() * sizeof(T));
            offset += g.size();
        }
        members.clear();
        used = 0;
    };
    for (std::size_t i = 0; i < params.size(); ++i) {
        if (present[i] == 0) {
            continue;
        }
        Var<T> g = params[i].var.grad();
        std::size_t n = g.size();
        if (n == 0) {
            continue;  // nothing to sum, and an empty array's data() may be null
        }
        if (n > capacity) {
            distributed::all_reduce_sum(g.mutable_value().data(), n);
            ++stats.sums;
            stats.bytes += n * sizeof(T);
            continue;
        }
        if (used + n > capacity) {
            flush();
        }
        if (bucket.size() < used + n) {
            bucket.resize(used + n);
        }
        std::memcpy(bucket.data() + used, g.value().data(), n * sizeof(T));
        used += n;
        members.push_back(i);
    }
    flush();
    stats.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void check_same_on_all_ranks(std::string_view what, const std::string& text) {
    int ranks = distributed::size();
    if (ranks == 1) {
        return;
    }
    // Rank 0's text on every rank; then which ranks hold another, each rank marking its own place.
    std::string ours = text_of_rank(text, 0);
    std::vector<double> differs(static_cast<std::size_t>(ranks), 0.0);
    differs[static_cast<std::size_t>(distributed::rank())] = text != ours ? 1.0 : 0.0;
    distributed::all_reduce_sum(differs.data(), differs.size());
    auto first = std::find(differs.begin(), differs.end(), 1.0);
    if (first == differs.end()) {
        return;
    }
    int other = static_cast<int>(first - differs.begin());
    std::string theirs = text_of_rank(text, other);
    throw DistributedError(fmt::format("{} differs between the ranks: rank 0 has {}, rank {} has {}", what, ours,
                                       other, theirs));
}

template void broadcast_parameters<float>(const ParameterList<float>&);
template void broadcast_parameters<double>(const ParameterList<double>&);
template void all_reduce_gradients<float>(const ParameterList<float>&, std::size_t);
template void all_reduce_gradients<double>(const ParameterList<double>&, std::size_t);

}  // namespace tapegrad::nn
