// Float convolutions on oneDNN, when the library is built with it (libdnnl-dev). conv.cpp cuts each
// convolution into parts of samples, one per thread, and calls run() for each part on its thread: oneDNN
// runs one thread inside it, so that tapegrad's threads are the only ones working, and each part's
// result does not depend on how many there are. Internal to the library.
#pragma once

#include <string>

#include "conv_geometry.hpp"

namespace tapegrad::detail::onednn {

// The three bilinear maps of conv.cpp: forward y = C(x, w) (+ bias), input x = Ct(y, w) (+ bias), weight
// dw = Cw(x, y).
enum class Pass { forward, input, weight };

// Runs one pass over the g.n samples given, on the calling thread, writing (not adding to) the output:
// for forward, a = x (n, c, h, w), b = w, out = y (n, o, ho, wo); for input, a = y, b = w, out = x; for
// weight, a = x, b = y, out = dw (o, c / groups, kh, kw). bias may be null. Returns false, having done
// nothing, when oneDNN does not run this pass: not built in, turned off (TAPEGRAD_CONV=im2col), or a
// shape where im2col measured faster (the input pass onto one channel per group).
bool run(Pass pass, const Geometry& g, const float* a, const float* b, const float* bias, float* out);

// Which kernels run the convolutions, for the first line of a program's output.
std::string summary();

// Whether oneDNN is built in, for gemm.cpp's TAPEGRAD_GEMM=onednn, and its version: "oneDNN 2.6.3".
bool built_in();
std::string version();

// C (m, n) = alpha op(A) op(B) + beta C, row-major, through dnnl_sgemm on the calling thread.
void sgemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
           std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc);

}  // namespace tapegrad::detail::onednn
