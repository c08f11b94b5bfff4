// The floor of a convolutional autoencoder's training epoch: the calls one training step makes to
// conv2d, conv_transpose2d, conv2d_weight_grad and the linear layers' products, forward and backward, on
// operands of the same shapes, with nothing else: no tape (NoGrad), no activations nor their gradients
// (relu and sigmoid after the convolutions; a linear op applies its own, as in training), no bias
// gradients, no reshapes, no loss, no optimizer. The ops are the public ones, so whichever kernels the
// library runs (im2col and tapegrad::gemm's backend today) are what is timed.
//
// Per layer, as the ops' backward formulas call them:
//   Conv2d            forward conv2d(x, W, b); dx conv_transpose2d(dy, W) (not for the first layer,
//                     whose input takes no gradient); dW conv2d_weight_grad(x, dy)
//   ConvTranspose2d   forward conv_transpose2d(x, W, b); dx conv2d(dy, W); dW conv2d_weight_grad(dy, x)
//   Linear            forward linear(x, W, b, act); dx = dy W^T and dW = x^T dy through tapegrad::gemm,
//                     with the transpose flags Grads::add_matmul passes (matmul's transposed form is
//                     internal to the library)
// in the step's order: the encoder's layers, the decoder's, then backward from the output down.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/models/autoencoder.hpp"

namespace bench {

// One call of a step, timed on its own.
struct OpCall {
    std::string layer;     // the model's name for it: "encoder.1"
    std::string role;      // "forward", "dx" or "dW"
    std::string op;        // the op or function called: "conv2d", "gemm"
    std::string operands;  // the shapes of a full batch: "(128, 1, 28, 28) * (16, 1, 3, 3)"
    double flops = 0;      // per full batch
    std::function<void()> run;
};

// One epoch of those calls over `rows` samples in batches of `batch`, the remainder last, as nn::Batches
// cuts them. Built from the model's configuration (a convolutional one) and checked against the model's
// own weights, name by name and shape by shape, so the replay cannot drift from what training runs.
class ConvOpsEpoch {
public:
    ConvOpsEpoch(const tapegrad::models::Autoencoder<float>& model, std::size_t rows, std::size_t batch,
                 std::uint64_t seed);

    // Runs the epoch under NoGrad, with tapegrad::count_product_time on; returns its seconds.
    double run();
    double gflop() const { return flops_ / 1e9; }
    // The calls of a full batch's step, in order; the seconds each took over the last run (remainder batch
    // included), and the part of them in matrix products (tapegrad::product_time, added over threads): the
    // rest of a convolution's time is its im2col or col2im, bias and output.
    const std::vector<OpCall>& calls() const { return full_; }
    const std::vector<double>& call_seconds() const { return seconds_; }
    const std::vector<double>& call_product_seconds() const { return product_seconds_; }

private:
    std::size_t rows_, batch_;
    std::vector<OpCall> full_, rest_;
    std::vector<double> seconds_, product_seconds_;
    double flops_ = 0;
};

}  // namespace bench
