// The one place that calls BLAS: every matrix product in tapegrad goes through gemm (declared in
// tapegrad/autodiff/blas.hpp), so the backend is gemm.cpp. Internal to the library.
#pragma once

#include <chrono>
#include <optional>

#include "tapegrad/autodiff/blas.hpp"
#include "kernels.hpp"

namespace tapegrad::detail {
using tapegrad::gemm;

// C (m, n) = act(bias (n,) on every row + op(A) op(B)): a layer's affine map in one pass over C, each thread
// writing the bias into its own band of C before multiplying onto it, then applying act (when there is one)
// to that band while it is still in the thread's cache.
template <class T>
void biased_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda,
                 const T* b, std::size_t ldb, const T* bias, T* c, std::size_t ldc,
                 std::optional<kernels::Unary> act = std::nullopt);

// Adds the wall time of its scope to product_time() when counting is on: around each product, and around
// each convolution oneDNN runs (conv_dnnl.cpp), which takes the place of im2col's products.
class ProductClock {
public:
    ProductClock();
    ~ProductClock();
    ProductClock(const ProductClock&) = delete;
    ProductClock& operator=(const ProductClock&) = delete;

private:
    bool on_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace tapegrad::detail
