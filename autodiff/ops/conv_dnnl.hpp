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

}  // namespace tapegrad::detail::onednn
