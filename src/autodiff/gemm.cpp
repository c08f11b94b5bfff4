#include "gemm.hpp"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "tapegrad/autodiff/blas.hpp"

namespace tapegrad {

namespace detail {

template <>
void gemm<float>(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                 std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
                static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb),
                beta, c, static_cast<int>(ldc));
}

template <>
void gemm<double>(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
                  std::size_t lda, const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
                static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb),
                beta, c, static_cast<int>(ldc));
}

}  // namespace detail

namespace {

// OpenBLAS's names for kernels that use neither AVX2 nor AVX-512.
bool is_generic(std::string_view core) {
    for (std::string_view slow : {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai",
                                  "Coppermine", "Northwood", "Banias", "Opteron", "Barcelona", "Sandybridge",
                                  "Bulldozer", "Piledriver", "Steamroller", "Excavator", "Unknown"}) {
        if (core == slow) {
            return true;
        }
    }
    return false;
}

}  // namespace

BlasInfo blas_info() {
    BlasInfo info;
    std::string_view config = openblas_get_config();
    // The config string starts "OpenBLAS 0.3.21 ...".
    std::size_t end = config.find(' ', std::string_view("OpenBLAS ").size());
    info.library = std::string(config.substr(0, end));
    info.core = openblas_get_corename();
    info.threads = openblas_get_num_threads();
    __builtin_cpu_init();
    info.cpu_has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    info.cpu_has_avx512 = __builtin_cpu_supports("avx512f");
    info.generic_kernel = (info.cpu_has_avx2 || info.cpu_has_avx512) && is_generic(info.core);
    return info;
}

std::string blas_summary() {
    BlasInfo info = blas_info();
    return fmt::format("{}, kernel {}{}, {} thread{}", info.library, info.core,
                       info.generic_kernel ? " (generic: slower than this CPU allows)" : "", info.threads,
                       info.threads == 1 ? "" : "s");
}

void set_blas_threads(int threads) { openblas_set_num_threads(threads); }

void prefer_fast_blas_kernel(char** argv) {
    if (std::getenv("OPENBLAS_CORETYPE") != nullptr || std::getenv("TAPEGRAD_BLAS_REEXEC") != nullptr) {
        return;
    }
    BlasInfo info = blas_info();
    if (!info.generic_kernel) {
        return;
    }
    // Haswell's kernels need only AVX2 and FMA, which every CPU that reaches here has; they are what
    // OpenBLAS 0.3.21 runs on CPUs it does not know but which offer those.
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    setenv("TAPEGRAD_BLAS_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    // execv returned: keep running on the kernel we have.
    unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace tapegrad
