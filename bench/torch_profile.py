#!/usr/bin/python3
"""Where PyTorch's training step of the conv autoencoder goes, at 1 thread: torch.profiler's self time by op.

The same model, data, batch and optimizer as bench/train_torch.py --model conv (whose code it imports).
After 30 warm-up steps it times `--steps` steps without the profiler, then profiles as many and prints the
share of the profiled time in PyTorch's convolution and matrix-product kernels, then the slowest ops. That
share bounds what any framework doing the same work on kernels no faster can gain over PyTorch.

  /usr/bin/python3 bench/torch_profile.py [--steps N]
"""
import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy and torch load OpenBLAS
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import train_torch  # noqa: E402

# PyTorch 1.13's ops that run the convolutions and the linear layers' products (forward and backward).
KERNELS = ("aten::convolution_backward", "aten::slow_conv_transpose2d", "aten::mkldnn_convolution",
           "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward", "aten::mm", "aten::addmm")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train = train_torch.load_images("train")
    options = argparse.Namespace(model="conv", variant="vanilla")
    model = train_torch.make_model(options, train.shape[1])
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_of = train_torch.make_loss(options, model)
    order = torch.randperm(train.shape[0], generator=torch.Generator().manual_seed(0))
    batches = train.shape[0] // args.batch_size

    def step(i):
        first = (i % batches) * args.batch_size
        x = train[order[first:first + args.batch_size]]
        adam.zero_grad(set_to_none=True)
        loss = loss_of(x)
        loss.backward()
        adam.step()

    for i in range(30):
        step(i)
    start = time.perf_counter()
    for i in range(args.steps):
        step(i)
    plain = (time.perf_counter() - start) / args.steps * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(args.steps):
            step(i)
    ops = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    per_step = [(e.key, e.self_cpu_time_total / args.steps / 1e3) for e in ops]
    total = sum(ms for _, ms in per_step)
    kernels = sum(ms for key, ms in per_step if key in KERNELS)
    print(f"PyTorch {torch.__version__}, 1 thread, batch {args.batch_size}, {args.steps} steps: "
          f"{plain:.2f} ms a step without the profiler, {total:.2f} ms profiled, of which "
          f"{kernels:.2f} ms ({kernels / total:.0%}) in convolution and product kernels")
    for key, ms in per_step[:15]:
        print(f"  {key:50s} {ms:7.3f} ms{'  (kernel)' if key in KERNELS else ''}")


if __name__ == "__main__":
    main()
