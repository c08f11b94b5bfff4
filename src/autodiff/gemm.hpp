// The one place that calls BLAS: every matrix product in tapegrad goes through gemm, so the backend is
// this file and gemm.cpp. Internal to the library.
#pragma once

#include <cstddef>

namespace tapegrad::detail {

// C (m, n) = alpha * op(A) op(B) + beta * C, row-major; op(A) is (m, k), op(B) is (k, n). ta and tb read
// A and B transposed in place, so no transposed copy is ever made.
template <class T>
void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
          const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

}  // namespace tapegrad::detail
