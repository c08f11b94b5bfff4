// The matrix products under every op, and which library and kernel run them.
//
// Two BLAS libraries are linked: OpenBLAS (also LAPACK's BLAS, for PCA) and BLIS. OpenBLAS picks its kernel
// from the CPU it detects or from OPENBLAS_CORETYPE; Debian 12's build falls back to a generic kernel on
// CPUs newer than it knows, and a workplace may force an older kernel. BLIS's kernels are chosen here
// from the CPU's own features (AVX-512: skx, AVX2 and FMA: haswell), so the products do not depend on
// either. The backend, chosen once per process:
// - TAPEGRAD_GEMM=openblas or TAPEGRAD_GEMM=blis, when the user sets it;
// - else OpenBLAS when it runs a kernel for the CPU's widest vectors (SkylakeX or newer on an AVX-512
//   CPU, Haswell or Zen on an AVX2 one): with its kernel for the CPU it was as fast as BLIS or faster on
//   the machines we measured (README, BLAS);
// - else BLIS, with the kernels the CPU allows (BLIS_ARCH_TYPE, when the user sets it, wins), for
//   products of at least 2^19 multiply-adds with both output sides at least 64; smaller ones stay on
//   OpenBLAS, which starts a product in ~0.1 us where BLIS takes ~6.
// When the library is built with oneDNN (libdnnl-dev), the float products run on its dnnl_sgemm instead,
// unless TAPEGRAD_GEMM names OpenBLAS or BLIS: it picks the CPU's widest instructions itself, and took
// 13% (1 thread) and 20% (2 threads) less time than OpenBLAS's own Cooperlake kernel on the training
// products, medians of four runs each (README, BLAS). The
// doubles stay on the choice above.
// Both run one thread per call: with more threads (tapegrad/autodiff/parallel.hpp), tapegrad cuts each
// product from 2^18 multiply-adds into bands of rows or columns, one per thread, so that the same threads
// run the products and everything between them, and no BLAS worker spins waiting for the next product
// while ours need the core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tapegrad {

struct BlasInfo {
    std::string backend;  // what runs the double products (and the float ones unless float_backend says):
                          // "BLIS 0.9.0" or "OpenBLAS 0.3.21"
    std::string kernel;   // its kernel: "skx", "haswell" (BLIS); "SkylakeX", "Haswell", "Prescott" (OpenBLAS)
    std::string why;      // how the backend was chosen
    std::string openblas;       // "OpenBLAS 0.3.21, kernel Haswell": LAPACK's BLAS, whatever runs the products
    std::string float_backend;  // "oneDNN 2.6.3, dnnl_sgemm" when it runs the float products, else empty
    int threads = 1;  // tapegrad's threads, which share out the products
    bool generic_kernel = false;  // the products run a kernel slower than the CPU allows
    bool cpu_has_avx2 = false;
    bool cpu_has_avx512 = false;
};

BlasInfo blas_info();
// "BLIS 0.9.0, kernel skx, 1 thread for products from 2^19 multiply-adds, OpenBLAS 0.3.21, kernel Haswell
// below and for LAPACK"
std::string blas_summary();

// Which kernels run the convolutions (conv2d, conv_transpose2d, conv2d_weight_grad): "oneDNN 2.6.3
// jit:avx512_core for float, im2col + products for double and transposed convolutions onto one channel",
// or im2col and the products alone when the library is built without oneDNN (libdnnl-dev) or
// TAPEGRAD_CONV=im2col turns it off. The choice is by measurement (README, Convolutional autoencoders).
std::string conv_summary();

// C (m, n) = alpha * op(A) op(B) + beta * C, row-major; op(A) is (m, k), op(B) is (k, n). ta and tb read
// A and B transposed in place, so no transposed copy is ever made. Every op's product goes through here;
// it is public for benchmarks that time the products alone.
template <class T>
void gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda,
          const T* b, std::size_t ldb, T beta, T* c, std::size_t ldc);

template <>
void gemm<float>(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
                 std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc);
template <>
void gemm<double>(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, double alpha, const double* a,
                  std::size_t lda, const double* b, std::size_t ldb, double beta, double* c, std::size_t ldc);

// Wall time spent in products, for benchmarks that split an epoch into its products and the rest. While
// counting, each call of gemm, and each op's product (linear's bias and activation, applied band by band
// inside it, included), adds the time from its start to its end, all bands done, as the thread that called it
// sees it; products called by several threads at once add up. Off by default, when a product pays one
// relaxed atomic load for it.
struct ProductTime {
    double seconds = 0;
    std::uint64_t products = 0;
};
// Turns counting on or off; turning it on starts from zero.
void count_product_time(bool on);
// What was counted since counting was last turned on.
ProductTime product_time();

// For programs, called first in main. OpenBLAS reads its settings once, when it loads, so this sets
// them and runs the program again when they differ from what it wants:
// - OpenBLAS's threads: OPENBLAS_NUM_THREADS=1, unless the user set it or OMP_NUM_THREADS: the products
//   run one thread per call, on tapegrad's threads. Lowering OpenBLAS's count once it has started leaves its
//   workers spinning on the other cores for a while.
// - the kernel: when OpenBLAS detected a generic one on a CPU with AVX2 or AVX-512 and the user has not
//   set OPENBLAS_CORETYPE, the Haswell kernel (for LAPACK; the products would run on BLIS anyway).
// A user's own kernel setting always wins. Then sets tapegrad's thread count (set_threads) and OpenBLAS's
// and BLIS's to 1. Returns when nothing needs to change. Tests never call this.
void configure_blas(char** argv, int threads = 1);

}  // namespace tapegrad
