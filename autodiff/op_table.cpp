#include <vector>

#include "op_impl.hpp"

namespace tapegrad {

std::span<const OpInfo> op_table() {
    static const std::vector<OpInfo> table = [] {
        std::vector<OpInfo> all;
        for (auto family : {detail::unary_ops(), detail::binary_ops(), detail::reduce_ops(), detail::shape_ops(),
                            detail::matmul_ops(), detail::conv_ops(), detail::pool_ops(),
                            detail::distributed_ops()}) {
            all.insert(all.end(), family.begin(), family.end());
        }
        return all;
    }();
    return table;
}

}  // namespace tapegrad
