#include "blis.hpp"

#include <blis.h>

#include <algorithm>
#include <cstdlib>

namespace tapegrad::detail::blis {

namespace {

trans_t trans(bool t) { return t ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE; }

}  // namespace

// BLIS reads BLIS_ARCH_TYPE (the number of a sub-configuration) once, when it initialises: set it for
// that moment, then put the environment back as it was, so child processes choose for themselves.
void init(Kernels kernels) {
    if (kernels == Kernels::detect || std::getenv("BLIS_ARCH_TYPE") != nullptr) {
        bli_init();
        return;
    }
    arch_t arch = kernels == Kernels::avx512 ? BLIS_ARCH_SKX : BLIS_ARCH_HASWELL;
    setenv("BLIS_ARCH_TYPE", std::to_string(static_cast<int>(arch)).c_str(), 1);
    bli_init();
    unsetenv("BLIS_ARCH_TYPE");
}

// Row-major: a row stride of ld and a column stride of 1; BLIS applies the transposes to the stored
// matrices, so op(A) is (m, k) as for CBLAS.
void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a, std::size_t lda,
          const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
    bli_sgemm(trans(ta), trans(tb), dim_t(m), dim_t(n), dim_t(k), &alpha, const_cast<float*>(a), inc_t(lda), 1,
              const_cast<float*>(b), inc_t(ldb), 1, &beta, c, inc_t(ldc), 1);
}

void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
          std::size_t lda, const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc) {
    bli_dgemm(trans(ta), trans(tb), dim_t(m), dim_t(n), dim_t(k), &alpha, const_cast<double*>(a), inc_t(lda), 1,
              const_cast<double*>(b), inc_t(ldb), 1, &beta, c, inc_t(ldc), 1);
}

std::string version() { return bli_info_get_version_str(); }
std::string kernel() { return bli_arch_string(bli_arch_query_id()); }
// BLIS answers -1 until a count is set: it then runs on one thread.
void set_threads(int threads) { bli_thread_set_num_threads(threads); }

}  // namespace tapegrad::detail::blis
