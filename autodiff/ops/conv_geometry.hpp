// The geometry of a convolution, shared by the im2col kernels (conv.cpp) and oneDNN's (conv_dnnl.cpp).
// Internal to the library.
#pragma once

#include <cstddef>

#include "tapegrad/autodiff/ops.hpp"

namespace tapegrad::detail {

// The geometry of one convolution C, as the tape stores it in Attrs: stride, padding, dilation (each below
// 2^16 per axis), groups, and `size`: the input side (H, W) for conv_transpose2d, the kernel (kh, kw) for
// conv2d_weight_grad, unused for conv2d.
struct ConvAttrs {
    Pair stride{1, 1};
    Pair padding{0, 0};
    Pair dilation{1, 1};
    std::size_t groups = 1;
    Pair size{0, 0};
};

// Everything the kernels need about one convolution C: x (n, c, h, w) * w (o, c / groups, kh, kw) ->
// (n, o, ho, wo).
struct Geometry {
    std::size_t n, c, h, w, o, kh, kw, ho, wo;
    ConvAttrs a;
    std::size_t cg() const { return c / a.groups; }
    std::size_t og() const { return o / a.groups; }
    std::size_t k() const { return cg() * kh * kw; }  // rows of a group's columns
    std::size_t in_plane() const { return h * w; }
    std::size_t out_plane() const { return ho * wo; }
};

}  // namespace tapegrad::detail
