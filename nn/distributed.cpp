#include "tapegrad/nn/distributed.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace tapegrad::nn {

namespace {

// FNV-1a: a fingerprint of a text, the same on every machine.
std::uint64_t fingerprint(const std::string& text) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : text) {
        h = (h ^ c) * 1099511628211ull;
    }
    return h;
}

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

}  // namespace

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
    // Which grads are there, counted over the ranks: all or none, for each parameter.
    std::vector<double> present(params.size());
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
    thread_local std::vector<T> bucket;
    std::vector<std::size_t> members;
    std::size_t used = 0;
    auto flush = [&] {
        if (members.empty()) {
            return;
        }
        distributed::all_reduce_sum(bucket.data(), used);
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
            continue;
        }
        if (used + n > capacity) {
            flush();
        }
        if (bucket.size() < capacity) {
            bucket.resize(capacity);
        }
        std::memcpy(bucket.data() + used, g.value().data(), n * sizeof(T));
        used += n;
        members.push_back(i);
    }
    flush();
}

void check_same_on_all_ranks(std::string_view what, const std::string& text) {
    int ranks = distributed::size();
    if (ranks == 1) {
        return;
    }
    std::uint64_t mine = fingerprint(text);
    // Rank 0's fingerprint on every rank, in two exact halves, then how many ranks differ from it.
    double halves[2] = {0, 0};
    if (distributed::rank() == 0) {
        halves[0] = static_cast<double>(mine >> 32);
        halves[1] = static_cast<double>(mine & 0xffffffffu);
    }
    distributed::all_reduce_sum(halves, 2);
    std::uint64_t first = (static_cast<std::uint64_t>(halves[0]) << 32) | static_cast<std::uint64_t>(halves[1]);
    double differ = mine != first ? 1.0 : 0.0;
    distributed::all_reduce_sum(&differ, 1);
    if (differ == 0) {
        return;
    }
    // The lowest rank that differs, asked rank by rank: only on the way to an error.
    int other = ranks;
    for (int r = 1; r < ranks && other == ranks; ++r) {
        double flag = distributed::rank() == r && mine != first ? 1 : 0;
        distributed::all_reduce_sum(&flag, 1);
        if (flag != 0) {
            other = r;
        }
    }
    std::string theirs = text_of_rank(text, other);
    std::string ours = text_of_rank(text, 0);
    throw DistributedError(fmt::format("{} differs between the ranks: rank 0 has {}, rank {} has {}", what, ours,
                                       other, theirs));
}

template void broadcast_parameters<float>(const ParameterList<float>&);
template void broadcast_parameters<double>(const ParameterList<double>&);
template void all_reduce_gradients<float>(const ParameterList<float>&, std::size_t);
template void all_reduce_gradients<double>(const ParameterList<double>&, std::size_t);

}  // namespace tapegrad::nn
