// The one place that calls BLAS: every matrix product in tapegrad goes through gemm (declared in
// tapegrad/autodiff/blas.hpp), so the backend is gemm.cpp. Internal to the library.
#pragma once

#include "tapegrad/autodiff/blas.hpp"

namespace tapegrad::detail {
using tapegrad::gemm;
}  // namespace tapegrad::detail
