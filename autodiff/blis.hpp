// BLIS, one of the two backends of gemm.cpp, in its own file: blis.h declares its own CBLAS, which
// clashes with OpenBLAS's cblas.h. Internal to the library.
#pragma once

#include <cstddef>
#include <string>

namespace tapegrad::detail::blis {

enum class Kernels { detect, avx2, avx512 };

// Initialises BLIS with the given kernels (haswell, skx) unless the user set BLIS_ARCH_TYPE.
void init(Kernels kernels);

void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, std::size_t lda,
          const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc);
void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
          std::size_t lda, const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc);

std::string version();  // "0.9.0"
std::string kernel();   // BLIS's name for its sub-configuration: "skx", "haswell", "generic"
void set_threads(int threads);

}  // namespace tapegrad::detail::blis
