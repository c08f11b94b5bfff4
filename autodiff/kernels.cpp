#include "kernels.hpp"
#include "elementwise.hpp"

// GCC 12 warns of uninitialised values inside its own AVX-512 intrinsics (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <xsimd/xsimd.hpp>

#include "tapegrad/autodiff/parallel.hpp"

namespace tapegrad::detail::kernels {

Shape broadcast_shape(std::string_view op, const Shape& a, const Shape& b) {
    std::size_t rank = std::max(a.size(), b.size());
    Shape out(rank);
    for (std::size_t d = 0; d < rank; ++d) {
        std::size_t da = d + a.size() >= rank ? a[d + a.size() - rank] : 1;
        std::size_t db = d + b.size() >= rank ? b[d + b.size() - rank] : 1;
        if (da != db && da != 1 && db != 1) {
            throw_shape_error(fmt::format("{}: shapes do not broadcast: {} and {}", op, to_string(a), to_string(b)));
        }
        out[d] = da == 1 ? db : da;
    }
    return out;
}

bool broadcasts_to(const Shape& from, const Shape& to) {
    if (from.size() > to.size()) {
        return false;
    }
    std::size_t lead = to.size() - from.size();
    for (std::size_t d = 0; d < from.size(); ++d) {
        if (from[d] != 1 && from[d] != to[d + lead]) {
            return false;
        }
    }
    return true;
}

namespace {

// Walks an output shape row by row (the last axis is the row) with N inputs broadcast to it. Each
// input's strides are its contiguous strides with 0 on the axes it is broadcast along, so a row of an
// input has stride 1 or 0. f(out_offset, in_offsets, row_length, in_row_strides).
template <std::size_t N, class F>
void for_each_row(const Shape& out_shape, const std::array<const Shape*, N>& in_shapes, F f) {
    std::size_t rank = out_shape.size();
    std::size_t total = 1;
    for (std::size_t d : out_shape) {
        total *= d;
    }
    if (total == 0) {
        return;
    }
    std::array<std::size_t, N> offsets{};
    std::array<std::ptrdiff_t, N> row_strides{};
    bool all_full = true;
    for (std::size_t k = 0; k < N; ++k) {
        std::size_t size = 1;
        for (std::size_t d : *in_shapes[k]) {
            size *= d;
        }
        all_full = all_full && size == total;
    }
    if (rank == 0 || all_full) {  // no broadcasting: one flat row
        row_strides.fill(1);
        f(std::size_t{0}, offsets, total, row_strides);
        return;
    }
    // Fixed storage: walking a shape allocates nothing.
    constexpr std::size_t max_rank = 16;
    if (rank > max_rank) {
        throw_shape_error(fmt::format("broadcast: {} dimensions, more than the {} supported", rank, max_rank));
    }
    // Axes from the last to the first, with each input's stride along them (0 where it broadcasts).
    // Axes of extent 1 are dropped and an axis is merged into the one after it when every input steps
    // through both as through one, so that (1000, 1) + (1,) is one row of 1000, not 1000 rows of 1.
    std::array<std::size_t, max_rank> extent{};
    std::array<std::array<std::size_t, N>, max_rank> strides{};
    std::array<std::size_t, N> stride{};
    stride.fill(1);
    std::size_t axes = 0;
    for (std::size_t d = rank; d-- > 0;) {
        std::array<std::size_t, N> step{};
        for (std::size_t k = 0; k < N; ++k) {
            const Shape& s = *in_shapes[k];
            std::size_t lead = rank - s.size();
            std::size_t dim = d >= lead ? s[d - lead] : 1;
            step[k] = dim == 1 ? 0 : stride[k];
            stride[k] *= dim;
        }
        if (out_shape[d] == 1) {
            continue;
        }
        bool merges = axes > 0;
        for (std::size_t k = 0; merges && k < N; ++k) {
            merges = step[k] == strides[axes - 1][k] * extent[axes - 1];
        }
        if (merges) {
            extent[axes - 1] *= out_shape[d];
        } else {
            extent[axes] = out_shape[d];
            strides[axes] = step;
            ++axes;
        }
    }
    // Axis 0 is now the row; the others are walked with a carried multi-index.
    std::size_t row = extent[0];
    for (std::size_t k = 0; k < N; ++k) {
        row_strides[k] = static_cast<std::ptrdiff_t>(strides[0][k]);
    }
    std::array<std::size_t, max_rank> index{};
    std::size_t rows = total / row;
    for (std::size_t r = 0; r < rows; ++r) {
        f(r * row, offsets, row, row_strides);
        for (std::size_t a = 1; a < axes; ++a) {
            ++index[a];
            for (std::size_t k = 0; k < N; ++k) {
                offsets[k] += strides[a][k];
            }
            if (index[a] < extent[a]) {
                break;
            }
            for (std::size_t k = 0; k < N; ++k) {
                offsets[k] -= strides[a][k] * index[a];
            }
            index[a] = 0;
        }
    }
}

}  // namespace

template <class T>
void map(Unary f, const T* x, T* y, std::size_t n) {
    switch (f) {
    case Unary::relu: return map_scalar(x, y, n, Relu{});
    case Unary::sigmoid: return map_batches(x, y, n, Sigmoid{});
    case Unary::tanh: return map_batches(x, y, n, Tanh{});
    }
}

namespace {

// Whether `small`, broadcast to `full`, repeats with period small.size() along full's flat order: its
// shape, less leading 1s, is the tail of full's. A bias (n,) added to (batch, n) is such.
bool periodic(const Shape& small, const Shape& full) {
    std::size_t lead = 0;
    while (lead < small.size() && small[lead] == 1) {
        ++lead;
    }
    std::size_t len = small.size() - lead;
    if (len > full.size()) {
        return false;
    }
    return std::equal(small.begin() + static_cast<std::ptrdiff_t>(lead), small.end(),
                      full.end() - static_cast<std::ptrdiff_t>(len));
}

// Periods below this make rows too short to walk one by one; they are tiled instead.
constexpr std::size_t short_period = 16;
constexpr std::size_t tile_size = 256;

template <class T, class F>
void binary_rows(F f, const Array<T>& a, const Array<T>& b, Array<T>& out) {
    const T* pa = a.data();
    const T* pb = b.data();
    T* po = out.data();
    std::size_t total = out.size();
    // A full input and a short periodic one: repeat the period into a tile once, then run flat loops.
    bool a_full = a.size() == total;
    const Array<T>& small = a_full ? b : a;
    std::size_t period = small.size();
    if ((a_full || b.size() == total) && period > 1 && period < short_period && total > tile_size &&
        periodic(small.shape(), out.shape())) {
        alignas(64) std::array<T, tile_size> tile;
        std::size_t chunk = tile_size / period * period;
        for (std::size_t i = 0; i < chunk; i += period) {
            std::copy(small.data(), small.data() + period, tile.data() + i);
        }
        const T* full = a_full ? pa : pb;
        for (std::size_t start = 0; start < total; start += chunk) {
            std::size_t n = std::min(chunk, total - start);
            const T* x = full + start;
            T* y = po + start;
            if (a_full) {
                for (std::size_t i = 0; i < n; ++i) y[i] = f(x[i], tile[i]);
            } else {
                for (std::size_t i = 0; i < n; ++i) y[i] = f(tile[i], x[i]);
            }
        }
        return;
    }
    for_each_row<2>(out.shape(), {&a.shape(), &b.shape()},
                    [&](std::size_t o, const std::array<std::size_t, 2>& in, std::size_t n,
                        const std::array<std::ptrdiff_t, 2>& s) {
                        T* y = po + o;
                        const T* x0 = pa + in[0];
                        const T* x1 = pb + in[1];
                        if (s[0] == 1 && s[1] == 1) {
                            for (std::size_t i = 0; i < n; ++i) y[i] = f(x0[i], x1[i]);
                        } else if (s[0] == 1) {
                            const T v1 = *x1;
                            for (std::size_t i = 0; i < n; ++i) y[i] = f(x0[i], v1);
                        } else if (s[1] == 1) {
                            const T v0 = *x0;
                            for (std::size_t i = 0; i < n; ++i) y[i] = f(v0, x1[i]);
                        } else {
                            std::fill(y, y + n, f(*x0, *x1));
                        }
                    });
}

}  // namespace

template <class T>
void binary(Binary f, const Array<T>& a, const Array<T>& b, Array<T>& out) {
    switch (f) {
    case Binary::add: return binary_rows<T>([](T u, T v) { return u + v; }, a, b, out);
    case Binary::sub: return binary_rows<T>([](T u, T v) { return u - v; }, a, b, out);
    case Binary::mul: return binary_rows<T>([](T u, T v) { return u * v; }, a, b, out);
    case Binary::div: return binary_rows<T>([](T u, T v) { return u / v; }, a, b, out);
    // NaN in either input gives NaN, as PyTorch's maximum and minimum do.
    case Binary::maximum:
        return binary_rows<T>([](T u, T v) { return (u > v || u != u) ? u : v; }, a, b, out);
    case Binary::minimum:
        return binary_rows<T>([](T u, T v) { return (u < v || u != u) ? u : v; }, a, b, out);
    case Binary::greater: return binary_rows<T>([](T u, T v) { return T(u > v); }, a, b, out);
    case Binary::equal: return binary_rows<T>([](T u, T v) { return T(u == v); }, a, b, out);
    }
}

template <class T>
void where(const Array<T>& mask, const Array<T>& a, const Array<T>& b, Array<T>& out) {
    const T* pm = mask.data();
    const T* pa = a.data();
    const T* pb = b.data();
    T* po = out.data();
    for_each_row<3>(out.shape(), {&mask.shape(), &a.shape(), &b.shape()},
                    [&](std::size_t o, const std::array<std::size_t, 3>& in, std::size_t n,
                        const std::array<std::ptrdiff_t, 3>& s) {
                        for (std::size_t i = 0; i < n; ++i) {
                            std::size_t si = i;
                            po[o + i] = pm[in[0] + si * s[0]] != 0 ? pa[in[1] + si * s[1]] : pb[in[2] + si * s[2]];
                        }
                    });
}

template <class T>
void broadcast_to(const Array<T>& x, Array<T>& out) {
    const T* px = x.data();
    T* po = out.data();
    for_each_row<1>(out.shape(), {&x.shape()},
                    [&](std::size_t o, const std::array<std::size_t, 1>& in, std::size_t n,
                        const std::array<std::ptrdiff_t, 1>& s) {
                        if (s[0] == 1) {
                            std::copy(px + in[0], px + in[0] + n, po + o);
                        } else {
                            std::fill(po + o, po + o + n, px[in[0]]);
                        }
                    });
}

namespace {

// A sum in double over eight independent partial sums: the adds pipeline instead of waiting on
// each other, and a long float sum keeps its precision.
template <class T>
double sum_row(const T* row, std::size_t n) {
    std::array<double, 8> acc{};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (std::size_t l = 0; l < 8; ++l) {
            acc[l] += row[i + l];
        }
    }
    for (; i < n; ++i) {
        acc[0] += row[i];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// x as (outer, mid, inner) when `small`, broadcast to x's shape `full`, keeps one block of middle axes
// whole and reduces everything before and after it, with something after it (inner > 1): a convolution's
// bias gradient, (n, c, h, w) summed to (1, c, 1, 1) or (c, 1, 1). Empty when the shapes are otherwise.
std::optional<std::array<std::size_t, 3>> middle_block(const Shape& small, const Shape& full) {
    if (small.size() > full.size()) {
        return std::nullopt;
    }
    std::size_t pad = full.size() - small.size();
    auto dim = [&](std::size_t axis) { return axis < pad ? std::size_t(1) : small[axis - pad]; };
    std::size_t first = 0;
    while (first < full.size() && dim(first) == 1) {
        ++first;
    }
    std::size_t last = full.size();
    while (last > first && dim(last - 1) == 1) {
        --last;
    }
    std::array<std::size_t, 3> block{1, 1, 1};
    for (std::size_t axis = 0; axis < full.size(); ++axis) {
        if (axis >= first && axis < last && dim(axis) != full[axis]) {
            return std::nullopt;
        }
        block[axis < first ? 0 : axis < last ? 1 : 2] *= full[axis];
    }
    if (block[2] <= 1) {
        return std::nullopt;
    }
    return block;
}

}  // namespace

template <class T>
void sum_to(const Array<T>& x, Array<T>& out, bool first_only) {
    // Walks x's shape with out broadcast to it: each row of x adds into out's matching row. Rows that
    // collapse to one element are summed in double.
    T* po = out.data();
    const T* px = x.data();
    std::size_t period = out.size();
    if (!first_only && period > 1 && period < short_period && x.size() > tile_size && periodic(out.shape(), x.shape())) {
        // A bias gradient, (batch, n) summed to (n,) with n small: add x into a tile a chunk at a time
        // (flat, vectorised), then fold the tile's copies of the period together.
        alignas(64) std::array<double, tile_size> tile{};
        std::size_t chunk = tile_size / period * period;
        for (std::size_t start = 0; start < x.size(); start += chunk) {
            std::size_t n = std::min(chunk, x.size() - start);
            for (std::size_t i = 0; i < n; ++i) {
                tile[i] += px[start + i];
            }
        }
        for (std::size_t c = 0; c < period; ++c) {
            double acc = 0;
            for (std::size_t i = c; i < chunk; i += period) {
                acc += tile[i];
            }
            po[c] = static_cast<T>(acc);
        }
        return;
    }
    if (!first_only && period >= short_period && x.size() > period && periodic(out.shape(), x.shape())) {
        // A bias gradient, (batch, n) summed to (n,): each thread sums its own columns, row after row, as
        // the general walk below would.
        std::size_t rows = x.size() / period;
        parallel_for(period, elementwise_grain / rows + 1, [=](std::size_t c0, std::size_t c1) {
            std::fill(po + c0, po + c1, T(0));
            for (std::size_t r = 0; r < rows; ++r) {
                const T* row = px + r * period;
                for (std::size_t c = c0; c < c1; ++c) {
                    po[c] += row[c];
                }
            }
        });
        return;
    }
    if (auto block = first_only ? std::nullopt : middle_block(out.shape(), x.shape())) {
        // Each element of the middle block sums its (outer, inner) slab in double, in a fixed order; the
        // threads share the middle block, so the sums do not depend on how many there are.
        // Named copies, not a structured binding: clang 14 (the fuzz build) cannot capture those.
        std::size_t outer = (*block)[0];
        std::size_t mid = (*block)[1];
        std::size_t inner = (*block)[2];
        std::size_t grain = elementwise_grain / std::max<std::size_t>(outer * inner, 1) + 1;
        auto slabs = [=](std::size_t m0, std::size_t m1) {
            for (std::size_t m = m0; m < m1; ++m) {
                double acc = 0;
                for (std::size_t o = 0; o < outer; ++o) {
                    acc += sum_row(px + (o * mid + m) * inner, inner);
                }
                po[m] = static_cast<T>(acc);
            }
        };
        parallel_for(mid, grain, slabs, 1);
        return;
    }
    std::fill(po, po + out.size(), T(0));
    std::vector<bool> seen;
    if (first_only) {
        seen.assign(out.size(), false);
    }
    for_each_row<1>(x.shape(), {&out.shape()},
                    [&](std::size_t o, const std::array<std::size_t, 1>& in, std::size_t n,
                        const std::array<std::ptrdiff_t, 1>& s) {
                        const T* row = px + o;
                        T* target = po + in[0];
                        if (first_only) {
                            for (std::size_t i = 0; i < n; ++i) {
                                std::size_t t = in[0] + i * static_cast<std::size_t>(s[0]);
                                if (!seen[t]) {
                                    po[t] = row[i];
                                    seen[t] = true;
                                }
                            }
                        } else if (s[0] == 1) {
                            for (std::size_t i = 0; i < n; ++i) target[i] += row[i];
                        } else {
                            *target += static_cast<T>(sum_row(row, n));
                        }
                    });
}

template <class T>
void copy(const T* x, T* y, std::size_t n) {
    if (n == 0) {
        return;  // an empty array's data() may be null, which memcpy may not see even for 0 bytes
    }
    parallel_for(n, elementwise_grain, [=](std::size_t begin, std::size_t end) {
        std::memcpy(y + begin, x + begin, (end - begin) * sizeof(T));
    });
}

template <class T>
void add_inplace(T* a, const T* b, std::size_t n) {
    parallel_for(n, elementwise_grain, [=](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i) {
            a[i] += b[i];
        }
    });
}

template <class T>
void transpose2d(const T* x, T* y, std::size_t rows, std::size_t cols) {
    constexpr std::size_t block = 32;  // tiles that fit in L1 on both sides
    for (std::size_t r0 = 0; r0 < rows; r0 += block) {
        for (std::size_t c0 = 0; c0 < cols; c0 += block) {
            std::size_t r1 = std::min(rows, r0 + block);
            std::size_t c1 = std::min(cols, c0 + block);
            for (std::size_t r = r0; r < r1; ++r) {
                for (std::size_t c = c0; c < c1; ++c) {
                    y[c * rows + r] = x[r * cols + c];
                }
            }
        }
    }
}

template <class T>
void copy_blocks(const T* src, std::size_t src_mid, std::size_t src_begin, T* dst, std::size_t dst_mid,
                 std::size_t dst_begin, std::size_t mid, std::size_t outer, std::size_t inner) {
    for (std::size_t o = 0; o < outer; ++o) {
        const T* from = src + (o * src_mid + src_begin) * inner;
        T* to = dst + (o * dst_mid + dst_begin) * inner;
        std::copy(from, from + mid * inner, to);
    }
}

template <class T>
std::optional<std::size_t> first_nonfinite(const T* x, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i])) {
            return i;
        }
    }
    return std::nullopt;
}

#define TAPEGRAD_INSTANTIATE(T)                                                                              \
    template void map<T>(Unary, const T*, T*, std::size_t);                                  \
    template void binary<T>(Binary, const Array<T>&, const Array<T>&, Array<T>&);                            \
    template void where<T>(const Array<T>&, const Array<T>&, const Array<T>&, Array<T>&);                   \
    template void broadcast_to<T>(const Array<T>&, Array<T>&);                                               \
    template void sum_to<T>(const Array<T>&, Array<T>&, bool);                                              \
    template void add_inplace<T>(T*, const T*, std::size_t);                                                 \
    template void copy<T>(const T*, T*, std::size_t);                                                        \
    template void transpose2d<T>(const T*, T*, std::size_t, std::size_t);                                    \
    template void copy_blocks<T>(const T*, std::size_t, std::size_t, T*, std::size_t, std::size_t,           \
                                 std::size_t, std::size_t, std::size_t);                                     \
    template std::optional<std::size_t> first_nonfinite<T>(const T*, std::size_t);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::detail::kernels
