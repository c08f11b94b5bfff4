// The op that reaches across processes: all_reduce, the sum over the ranks of an MPI job
// (distributed.hpp). It is linear and its own adjoint, so its backward is itself and it differentiates
// again; alone it is the identity.
#include "tapegrad/autodiff/distributed.hpp"

#include "../kernels.hpp"
#include "../op_impl.hpp"

namespace tapegrad {

namespace detail {
namespace {

struct AllReduce {
    static constexpr std::string_view name = "all_reduce";
    static constexpr int arity = 1;
    static constexpr bool kink = false;
    template <class T>
    static void forward(const Call<T>& c, Array<T>& out) {
        kernels::copy(c.value(0).data(), out.data(), out.size());
        distributed::all_reduce_sum(out.data(), out.size());
    }
    template <class T>
    static void backward(Grads<T>& g) {
        g.add(0, all_reduce(g.dy()));
    }
};

constexpr OpInfo rows[] = {op_info<AllReduce>("distributed")};

}  // namespace

std::span<const OpInfo> distributed_ops() { return rows; }

}  // namespace detail

template <class T>
Var<T> all_reduce(const Var<T>& x) {
    return apply<detail::AllReduce>({x});
}

template Var<float> all_reduce<float>(const Var<float>&);
template Var<double> all_reduce<double>(const Var<double>&);

}  // namespace tapegrad
