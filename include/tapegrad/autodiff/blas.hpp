// The BLAS under every matrix product, and which kernel it runs: OpenBLAS picks its kernel from the CPU
// it detects, and Debian 12's build falls back to a generic one on CPUs newer than it knows.
#pragma once

#include <string>

namespace tapegrad {

struct BlasInfo {
    std::string library;  // "OpenBLAS 0.3.21"
    std::string core;     // the kernel OpenBLAS runs: "Haswell", "SkylakeX", "Prescott" (generic)
    int threads = 1;
    bool generic_kernel = false;  // a kernel slower than the CPU allows
    bool cpu_has_avx2 = false;
    bool cpu_has_avx512 = false;
};

BlasInfo blas_info();
// "OpenBLAS 0.3.21, kernel Haswell, 1 thread"
std::string blas_summary();
void set_blas_threads(int threads);

// For programs, called first in main. OpenBLAS reads its settings once, when it loads, so this sets
// them and runs the program again when they differ from what it wants:
// - threads: OPENBLAS_NUM_THREADS, unless the user set it or OMP_NUM_THREADS. Lowering the count later
//   leaves OpenBLAS's extra workers spinning on the other cores, which slows small products here.
// - the kernel: when OpenBLAS detected a generic one on a CPU with AVX2 or AVX-512 and the user has not
//   set OPENBLAS_CORETYPE, the Haswell kernel.
// A user's own setting always wins. Returns when nothing needs to change. Tests never call this.
void configure_blas(char** argv, int threads = 1);

}  // namespace tapegrad
