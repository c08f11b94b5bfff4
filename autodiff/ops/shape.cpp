// Ops that move elements without arithmetic: reshape, transpose, row gather and scatter, slice, concat.
// Each one's backward is another of them: reshape/reshape, transpose/transpose, gather/scatter,
// slice/concat.
#include <numeric>

#include <fmt/format.h>

#include "../kernels.hpp"
#include "../op_impl.hpp"

namespace tapegrad {

namespace detail {
namespace {

std::size_t elements(const Shape& shape) {
    return std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>());
}

std::size_t normalize_axis(int axis, std::size_t rank, std::string_view op, const Shape& shape) {
    auto r = static_cast<int>(rank);
    if (axis < -r || axis >= r) {
        throw_value_error(fmt::format("{}: axis {} out of range for shape {}", op, axis, to_string(shape)));
    }
    return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

// Views a shape as (outer, shape[axis], inner) around an axis.
std::pair<std::size_t, std::size_t> outer_inner(const Shape& shape, std::size_t axis) {
    std::size_t outer = 1;
    std::size_t inner = 1;
    for (std::size_t d = 0; d < shape.size(); ++d) {
        (d < axis ? outer : inner) *= d == axis ? 1 : shape[d];
    }
    return {outer, inner};
}

// `what` says whose rows they are: the input's shape for gather_rows, the output's row count for
// scatter_rows.
void check_rows(std::string_view op, std::span<const std::size_t> rows, std::size_t n_rows, std::string_view what) {
    for (std::size_t r : rows) {
        if (r >= n_rows) {
            throw_value_error(fmt::format("{}: row {} out of range for {}", op, r, what));
        }
    }
}

struct Reshape {
    static constexpr std::string_view name = "reshape";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    // The new shape is kept in the entry's index.
    template <class T>
    static Var<T> forward(const Call<T>& c) {
        const Var<T>& x = c.in(0);
        Shape shape(c.index().begin(), c.index().end());
        if (elements(shape) != x.size()) {
            throw_shape_error(fmt::format("reshape: cannot reshape {} ({} elements) to {} ({} elements)",
                                          to_string(x.shape()), x.size(), to_string(shape), elements(shape)));
        }
        Var<T> y = empty<T>(shape);
        kernels::copy(x.value().data(), y.mutable_value().data(), x.size());
        return y;
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, reshape(g.dy(), g.in(0).shape()));
    }
};

struct Transpose {
    static constexpr std::string_view name = "transpose";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static Shape shape(const Call<T>& c) {
        if (c.in(0).ndim() != 2) {
            throw_shape_error(fmt::format("transpose: needs a 2-D value, got {}", to_string(c.shape(0))));
        }
        return Shape{c.shape(0)[1], c.shape(0)[0]};
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        kernels::transpose2d(c.value(0).data(), out.data(), c.shape(0)[0], c.shape(0)[1]);
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, transpose(g.dy()));
    }
};

struct GatherRows {
    static constexpr std::string_view name = "gather_rows";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static Shape shape(const Call<T>& c) {
        const Var<T>& x = c.in(0);
        if (x.ndim() == 0) {
            throw_shape_error("gather_rows: needs at least 1 dimension, got ()");
        }
        check_rows(name, c.index(), x.shape()[0], to_string(x.shape()));
        Shape shape = x.shape();
        shape[0] = c.index().size();
        return shape;
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        std::span<const std::size_t> rows = c.index();
        const Var<T>& x = c.in(0);
        std::size_t width = x.shape()[0] == 0 ? 0 : x.size() / x.shape()[0];
        const T* px = x.value().data();
        T* py = out.data();
        for (std::size_t r = 0; r < rows.size(); ++r) {
            std::copy(px + rows[r] * width, px + (rows[r] + 1) * width, py + r * width);
        }
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, scatter_rows(g.dy(), g.index(), g.in(0).shape()[0]));
    }
};

struct ScatterRows {
    static constexpr std::string_view name = "scatter_rows";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    // Attrs: i = the output's row count.
    template <class T>
    static Var<T> forward(const Call<T>& c) {
        const Var<T>& x = c.in(0);
        std::span<const std::size_t> rows = c.index();
        auto n_rows = static_cast<std::size_t>(c.attrs().i);
        if (x.ndim() == 0 || x.shape()[0] != rows.size()) {
            throw_shape_error(fmt::format("scatter_rows: {} rows of index for a value of shape {}", rows.size(),
                                          to_string(x.shape())));
        }
        check_rows(name, rows, n_rows, fmt::format("an output of {} rows", n_rows));
        Shape shape = x.shape();
        shape[0] = n_rows;
        Var<T> y = full<T>(shape, T(0));
        std::size_t width = rows.empty() ? 0 : x.size() / rows.size();
        const T* px = x.value().data();
        T* py = y.mutable_value().data();
        for (std::size_t r = 0; r < rows.size(); ++r) {
            kernels::add_inplace(py + rows[r] * width, px + r * width, width);
        }
        return y;
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, gather_rows(g.dy(), g.index()));
    }
};

// Attrs: i = axis, j = begin, k = end.
struct Slice {
    static constexpr std::string_view name = "slice";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static Shape shape(const Call<T>& c) {
        Shape shape = c.shape(0);
        shape[static_cast<std::size_t>(c.attrs().i)] = static_cast<std::size_t>(c.attrs().k - c.attrs().j);
        return shape;
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        auto a = static_cast<std::size_t>(c.attrs().i);
        auto begin = static_cast<std::size_t>(c.attrs().j);
        auto end = static_cast<std::size_t>(c.attrs().k);
        auto [outer, inner] = outer_inner(c.shape(0), a);
        kernels::copy_blocks(c.value(0).data(), c.shape(0)[a], begin, out.data(), end - begin, 0, end - begin,
                             outer, inner);
    }
    // dy padded with zeros back to the input's extent along the axis.
    template <class T>
    static void backward(Grads<T>& g) {
        const Shape& shape = g.in(0).shape();
        auto axis = static_cast<std::size_t>(g.attrs().i);
        auto begin = static_cast<std::size_t>(g.attrs().j);
        auto end = static_cast<std::size_t>(g.attrs().k);
        Var<T> parts[3];
        std::size_t n = 0;
        if (begin > 0) {
            Shape before = shape;
            before[axis] = begin;
            parts[n++] = full<T>(before, T(0));
        }
        parts[n++] = g.dy();
        if (end < shape[axis]) {
            Shape after = shape;
            after[axis] = shape[axis] - end;
            parts[n++] = full<T>(after, T(0));
        }
        g.add(0, concat(std::span<const Var<T>>(parts, n), static_cast<int>(axis)));
    }
};

// Attrs: i = axis, j = the axis as given (negative from the end), for errors.
struct Concat {
    static constexpr std::string_view name = "concat";
    static constexpr int arity = -1;
    static constexpr bool kink = false;
    template <class T>
    static Shape shape(const Call<T>& c) {
        if (c.arity() == 0) {
            throw_value_error("concat: no values to join");
        }
        const Shape& first = c.shape(0);
        auto a = static_cast<std::size_t>(c.attrs().i);
        Shape shape = first;
        shape[a] = 0;
        for (const Var<T>& p : c.inputs()) {
            const Shape& s = p.shape();
            bool fits = s.size() == first.size();
            for (std::size_t d = 0; fits && d < s.size(); ++d) {
                fits = d == a || s[d] == first[d];
            }
            if (!fits) {
                throw_shape_error(fmt::format("concat: shapes differ outside axis {}: {} and {}", c.attrs().j,
                                              to_string(first), to_string(s)));
            }
            shape[a] += s[a];
        }
        return shape;
    }
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        auto a = static_cast<std::size_t>(c.attrs().i);
        auto [outer, inner] = outer_inner(out.shape(), a);
        std::size_t offset = 0;
        for (const Var<T>& p : c.inputs()) {
            std::size_t extent = p.shape()[a];
            kernels::copy_blocks(p.value().data(), extent, 0, out.data(), out.shape()[a], offset, extent, outer, inner);
            offset += extent;
        }
    }
    template <class T>
    static void backward(Grads<T>& g) {
        auto axis = static_cast<std::size_t>(g.attrs().i);
        std::size_t offset = 0;
        for (std::size_t k = 0; k < g.arity(); ++k) {
            std::size_t extent = g.in(k).shape()[axis];
            if (g.needs(k)) {
                g.add(k, slice(g.dy(), static_cast<int>(axis), offset, offset + extent));
            }
            offset += extent;
        }
    }
};

constexpr OpInfo rows[] = {
    op_info<Reshape>("shape"),     op_info<Transpose>("shape"), op_info<GatherRows>("shape"),
    op_info<ScatterRows>("shape"), op_info<Slice>("shape"),     op_info<Concat>("shape"),
};

}  // namespace

std::span<const OpInfo> shape_ops() { return rows; }

}  // namespace detail

template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape) {
    return apply<detail::Reshape>({x}, {}, std::span<const std::size_t>(shape.data(), shape.size()));
}

template <class T>
Var<T> transpose(const Var<T>& x) {
    return apply<detail::Transpose>({x});
}

template <class T>
Var<T> gather_rows(const Var<T>& x, std::span<const std::size_t> rows) {
    return apply<detail::GatherRows>({x}, {}, rows);
}

template <class T>
Var<T> scatter_rows(const Var<T>& x, std::span<const std::size_t> rows, std::size_t n_rows) {
    return apply<detail::ScatterRows>({x}, {.i = static_cast<std::int64_t>(n_rows)}, rows);
}

template <class T>
Var<T> slice(const Var<T>& x, int axis, std::size_t begin, std::size_t end) {
    std::size_t a = detail::normalize_axis(axis, x.ndim(), detail::Slice::name, x.shape());
    std::size_t extent = x.shape()[a];
    if (begin > end || end > extent) {
        detail::throw_value_error(fmt::format("slice: range [{}, {}) out of bounds for axis {} of {}", begin, end,
                                              axis, to_string(x.shape())));
    }
    return apply<detail::Slice>({x}, {.i = static_cast<std::int64_t>(a), .j = static_cast<std::int64_t>(begin),
                                      .k = static_cast<std::int64_t>(end)});
}

template <class T>
Var<T> concat(std::span<const Var<T>> parts, int axis) {
    if (parts.empty()) {
        detail::throw_value_error("concat: no values to join");
    }
    std::size_t a = detail::normalize_axis(axis, parts[0].ndim(), detail::Concat::name, parts[0].shape());
    return apply<detail::Concat>(parts, {.i = static_cast<std::int64_t>(a), .j = axis});
}

#define TAPEGRAD_INSTANTIATE(T)                                                                  \
    template Var<T> reshape<T>(const Var<T>&, const Shape&);                                     \
    template Var<T> transpose<T>(const Var<T>&);                                                 \
    template Var<T> gather_rows<T>(const Var<T>&, std::span<const std::size_t>);                 \
    template Var<T> scatter_rows<T>(const Var<T>&, std::span<const std::size_t>, std::size_t);   \
    template Var<T> slice<T>(const Var<T>&, int, std::size_t, std::size_t);                      \
    template Var<T> concat<T>(std::span<const Var<T>>, int);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
