// Reductions and their adjoints: sum and mean (over everything or one axis), sum_to and broadcast_to.
// sum's backward is a broadcast and broadcast's backward is a sum: each is the other's transpose.
#include <algorithm>
#include <array>
#include <limits>

#include <fmt/format.h>

#include "../kernels.hpp"
#include "../op_impl.hpp"

namespace tapegrad {

namespace detail {
namespace {

// Attrs of sum and mean: p = over every axis; otherwise i = the axis and q = keepdims.
Attrs reduction(const Shape& shape, int axis, bool keepdims, std::string_view op) {
    auto rank = static_cast<int>(shape.size());
    if (axis < -rank || axis >= rank) {
        throw_value_error(fmt::format("{}: axis {} out of range for shape {}", op, axis, to_string(shape)));
    }
    return {.i = axis < 0 ? axis + rank : axis, .q = keepdims};
}

// The reduced shape with the summed axes kept as 1.
Shape kept_shape(const Shape& shape, const Attrs& attrs) {
    Shape kept = shape;
    if (attrs.p) {
        std::fill(kept.begin(), kept.end(), 1);
    } else {
        kept[static_cast<std::size_t>(attrs.i)] = 1;
    }
    return kept;
}

Shape result_shape(const Shape& shape, const Attrs& attrs) {
    if (attrs.p) {
        return Shape{};
    }
    Shape out = kept_shape(shape, attrs);
    if (!attrs.q) {
        out.erase(out.begin() + attrs.i);
    }
    return out;
}

std::size_t reduced_count(const Shape& shape, const Attrs& attrs) {
    if (!attrs.p) {
        return shape[static_cast<std::size_t>(attrs.i)];
    }
    std::size_t n = 1;
    for (std::size_t d : shape) {
        n *= d;
    }
    return n;
}

// sum (a[i] - b[i])^2, or sum a[i]^2 when Diff is false, over one chunk. Blocks of 256 elements are
// summed in 16 running sums in T, which the compiler turns into one vector register, and the blocks' sums
// are added in double: one running sum in float would lose digits over 100000 squares, and one in double
// would not vectorise.
template <bool Diff, class T>
double chunk_sum_of_squares(const T* a, const T* b, std::size_t n) {
    constexpr std::size_t lanes = 16;
    constexpr std::size_t block = 256;
    double total = 0;
    std::size_t i = 0;
    for (; i + block <= n; i += block) {
        T acc[lanes] = {};
        for (std::size_t k = i; k < i + block; k += lanes) {
            for (std::size_t j = 0; j < lanes; ++j) {
                T d = Diff ? a[k + j] - b[k + j] : a[k + j];
                acc[j] += d * d;
            }
        }
        double sum = 0;
        for (T v : acc) {
            sum += double(v);
        }
        total += sum;
    }
    for (; i < n; ++i) {
        double d = Diff ? double(a[i]) - double(b[i]) : double(a[i]);
        total += d * d;
    }
    return total;
}

// The same over all n, in chunks of at least 2^14 elements (at most 64 of them) whose sums are added in
// order: the chunks, not the threads, fix the order of the adds, so the result is the same on any number
// of threads. Each chunk is summed by the thread whose range holds its start.
template <bool Diff, class T>
double sum_of_squares(const T* a, const T* b, std::size_t n) {
    constexpr std::size_t most_chunks = 64;
    std::size_t chunk = std::max<std::size_t>(std::size_t(1) << 14, (n / most_chunks + 255) / 256 * 256);
    std::array<double, most_chunks + 1> partial{};
    parallel_for(n, chunk, [&](std::size_t begin, std::size_t end) {
        for (std::size_t c = (begin + chunk - 1) / chunk; c * chunk < end; ++c) {
            std::size_t first = c * chunk;
            partial[c] = chunk_sum_of_squares<Diff>(a + first, Diff ? b + first : nullptr, std::min(chunk, n - first));
        }
    });
    double total = 0;
    for (double p : partial) {
        total += p;
    }
    return total;
}

// Sum's and mean's forward.
template <class Op, class T>
Var<T> reduce(const Call<T>& c) {
    const Var<T>& x = c.in(0);
    const Attrs& attrs = c.attrs();
    Var<T> y = empty<T>(kept_shape(x.shape(), attrs));
    kernels::sum_to(x.value(), y.mutable_value());
    if (Op::mean) {
        T scale = T(1) / static_cast<T>(reduced_count(x.shape(), attrs));
        for (T& v : y.mutable_value()) {
            v *= scale;
        }
    }
    y.mutable_value().reshape(result_shape(x.shape(), attrs));
    return y;
}

// The shape sum_to and broadcast_to go to, kept in the entry's index.
template <class T>
Shape target_shape(const Call<T>& c) {
    return Shape(c.index().begin(), c.index().end());
}

// dy at the reduced shape, spread back over the input's shape.
template <class T>
Var<T> spread(Grads<T>& g) {
    const Shape& shape = g.in(0).shape();
    return broadcast_to(reshape(g.dy(), kept_shape(shape, g.attrs())), shape);
}

struct Sum {
    static constexpr std::string_view name = "sum";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    static constexpr bool mean = false;
    template <class T>
    static Var<T> forward(const Call<T>& c) {
        return reduce<Sum>(c);
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, spread(g));
    }
};

struct Mean {
    static constexpr std::string_view name = "mean";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    static constexpr bool mean = true;
    template <class T>
    static Var<T> forward(const Call<T>& c) {
        return reduce<Mean>(c);
    }
    template <class T>
    static void backward(Grads<T>& g) {
        T scale = T(1) / static_cast<T>(reduced_count(g.in(0).shape(), g.attrs()));
        g.add(0, spread(g) * scale);
    }
};

struct SumTo {
    static constexpr std::string_view name = "sum_to";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static Shape shape(const Call<T>& c) {
        Shape shape = target_shape(c);
        if (!kernels::broadcasts_to(shape, c.shape(0))) {
            throw_shape_error(
                fmt::format("sum_to: {} cannot be summed to {}", to_string(c.shape(0)), to_string(shape)));
        }
        return shape;
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        kernels::sum_to(c.value(0), out);
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, broadcast_to(g.dy(), g.in(0).shape()));
    }
};

struct BroadcastTo {
    static constexpr std::string_view name = "broadcast_to";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static Shape shape(const Call<T>& c) {
        Shape shape = target_shape(c);
        if (!kernels::broadcasts_to(c.shape(0), shape)) {
            throw_shape_error(
                fmt::format("broadcast_to: {} does not broadcast to {}", to_string(c.shape(0)), to_string(shape)));
        }
        return shape;
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        kernels::broadcast_to(c.value(0), out);
    }
    // this is sum in reverse: Grads::add sums dy back to the input's shape.
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.dy());
    }
};

// mean((a - b)^2) over every element of two values of one shape: the squared error as one op, a single
// pass forward and one backward, where sub, mul and mean would take seven. dA = 2 (a - b) dy / n, dB = -dA.
struct MeanSquaredError {
    static constexpr std::string_view name = "mean_squared_error";
    static constexpr int arity = 2;
    static constexpr bool kink = false;
    template <class T>
    static Var<T> forward(const Call<T>& c) {
        if (c.shape(0) != c.shape(1)) {
            throw_shape_error(fmt::format("mean_squared_error: shapes differ: {} and {}", to_string(c.shape(0)),
                                          to_string(c.shape(1))));
        }
        std::size_t n = c.in(0).size();
        double total = sum_of_squares<true, T>(c.value(0).data(), c.value(1).data(), n);
        return full<T>(Shape{}, static_cast<T>(n == 0 ? std::numeric_limits<double>::quiet_NaN() : total / double(n)));
    }
    template <class T>
    static void backward(Grads<T>& g) {
        T scale = T(2) / static_cast<T>(std::max<std::size_t>(g.in(0).size(), 1));
        Var<T> da = (g.in(0) - g.in(1)) * (g.dy() * scale);
        if (g.needs(1)) {
            g.add(1, -da);
        }
        g.add(0, std::move(da));
    }
    // The same in one pass over a and b, when nothing records.
    template <class T>
    static void fast_backward(Grads<T>& g) {
        const Var<T>& a = g.in(0);
        Var<T> da = empty<T>(a.shape());
        const T* pa = a.value().data();
        const T* pb = g.in(1).value().data();
        T* pd = da.mutable_value().data();
        T scale = T(2) / static_cast<T>(std::max<std::size_t>(a.size(), 1));
        T factor = g.dy().item() * scale;
        parallel_for(a.size(), elementwise_grain, [=](std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) {
                pd[i] = (pa[i] - pb[i]) * factor;
            }
        });
        if (g.needs(1)) {
            g.add(1, -da);
        }
        g.add(0, std::move(da));
    }
};

// sum(x^2) over every element, one pass each way: an L2 penalty without a squared copy of every weight.
// dx = 2 x dy.
struct SumSquares {
    static constexpr std::string_view name = "sum_squares";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static Var<T> forward(const Call<T>& c) {
        return full<T>(Shape{}, static_cast<T>(sum_of_squares<false, T>(c.value(0).data(), nullptr, c.in(0).size())));
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, g.in(0) * (g.dy() * T(2)));
    }
    template <class T>
    static void fast_backward(Grads<T>& g) {
        const Var<T>& x = g.in(0);
        Var<T> dx = empty<T>(x.shape());
        const T* px = x.value().data();
        T* pd = dx.mutable_value().data();
        T factor = T(2) * g.dy().item();
        parallel_for(x.size(), elementwise_grain, [=](std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) {
                pd[i] = px[i] * factor;
            }
        });
        g.add(0, std::move(dx));
    }
};

constexpr OpInfo rows[] = {
    op_info<MeanSquaredError>("reduce"),
    op_info<SumSquares>("reduce"),
    op_info<Sum>("reduce"),
    op_info<Mean>("reduce"),
    op_info<SumTo>("reduce"),
    op_info<BroadcastTo>("reduce"),
};

}  // namespace

std::span<const OpInfo> reduce_ops() { return rows; }

}  // namespace detail

template <class T>
Var<T> sum(const Var<T>& x) {
    return apply<detail::Sum>({x}, {.p = true});
}

template <class T>
Var<T> sum(const Var<T>& x, int axis, bool keepdims) {
    return apply<detail::Sum>({x}, detail::reduction(x.shape(), axis, keepdims, detail::Sum::name));
}

template <class T>
Var<T> mean(const Var<T>& x) {
    if (x.size() == 0) {
        detail::throw_shape_error(fmt::format("mean: empty input {}", to_string(x.shape())));
    }
    return apply<detail::Mean>({x}, {.p = true});
}

template <class T>
Var<T> mean(const Var<T>& x, int axis, bool keepdims) {
    Attrs attrs = detail::reduction(x.shape(), axis, keepdims, detail::Mean::name);
    if (x.shape()[static_cast<std::size_t>(attrs.i)] == 0) {
        detail::throw_shape_error(fmt::format("mean: axis {} of {} is empty", axis, to_string(x.shape())));
    }
    return apply<detail::Mean>({x}, attrs);
}

template <class T>
Var<T> sum_to(const Var<T>& x, const Shape& shape) {
    return apply<detail::SumTo>({x}, {}, std::span<const std::size_t>(shape.data(), shape.size()));
}

template <class T>
Var<T> broadcast_to(const Var<T>& x, const Shape& shape) {
    return apply<detail::BroadcastTo>({x}, {}, std::span<const std::size_t>(shape.data(), shape.size()));
}

template <class T>
Var<T> sum_squares(const Var<T>& x) {
    return apply<detail::SumSquares>({x});
}

template <class T>
Var<T> mean_squared_error(const Var<T>& a, const Var<T>& b) {
    return apply<detail::MeanSquaredError>({a, b});
}

#define TAPEGRAD_INSTANTIATE(T)                                      \
    template Var<T> mean_squared_error<T>(const Var<T>&, const Var<T>&); \
    template Var<T> sum_squares<T>(const Var<T>&);                   \
    template Var<T> sum<T>(const Var<T>&);                           \
    template Var<T> sum<T>(const Var<T>&, int, bool);                \
    template Var<T> mean<T>(const Var<T>&);                          \
    template Var<T> mean<T>(const Var<T>&, int, bool);               \
    template Var<T> sum_to<T>(const Var<T>&, const Shape&);          \
    template Var<T> broadcast_to<T>(const Var<T>&, const Shape&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
