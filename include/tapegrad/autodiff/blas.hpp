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

// For programs, called first in main: when OpenBLAS detected a generic kernel on a CPU with AVX2 or
// AVX-512 and the user has not set OPENBLAS_CORETYPE, sets it to the fast kernel and runs the program
// again (OpenBLAS reads the variable once, when it loads). A user's own setting always wins. Returns
// only when nothing needs to change. Tests never call this.
void prefer_fast_blas_kernel(char** argv);

}  // namespace tapegrad
