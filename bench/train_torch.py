#!/usr/bin/python3
"""bench/train_bench.cpp's training in PyTorch, one thread, as Debian's python3-torch has it.

An autoencoder on Fashion-MNIST (pixels / 255), float32, Adam lr 1e-3, batch 128 shuffled each epoch,
torch.nn's default initialisation, then the plain reconstruction MSE on the 10000 test images. Models
(--model):
  dense  784-256-64-256-784, ReLU hidden layers and code, sigmoid output
  conv   Conv2d(1, 16, 3, stride 2, padding 1) ReLU, Conv2d(16, 32, 3, 2, 1) ReLU, Flatten,
         Linear(1568, 64) (no activation on the code), Linear(64, 1568) ReLU, Unflatten to (32, 7, 7),
         ConvTranspose2d(32, 16, 3, 2, 1, output_padding 1) ReLU, ConvTranspose2d(16, 1, 3, 2, 1,
         output_padding 1) Sigmoid, Flatten: tapegrad's models::Autoencoder with channels {16, 32} and
         sizes {784, 64}, taking and giving back rows of 784 as the dense one
Variants:
  vanilla    MSE
  denoising  trained on masked inputs (each element zeroed with probability 0.3, fresh each batch)
             against the clean ones
  sparse     dense only: sigmoid code, MSE + beta sum_j KL(rho || rho_hat_j) + lambda / 2 sum ||W||^2
             (weights only), rho 0.05, beta 0.1, lambda 1e-5, rho_hat clamped to [1e-6, 1 - 1e-6] as
             tapegrad's kl_bernoulli

Reads the same IDX files as tapegrad. torch.set_num_threads(1) sets PyTorch's own threads but not
OpenBLAS's, which does its products on its own pthreads: so, as tapegrad's programs do, this sets
OPENBLAS_NUM_THREADS=1 before OpenBLAS loads unless the user set it or OMP_NUM_THREADS. Nothing else
in the environment is changed here; bench/run_train.py sets OPENBLAS_CORETYPE for the "at its best" run.

  train_torch.py [--model dense|conv] [--variant vanilla|denoising|sparse] [--epochs N] [--threads N]
                 [--flush-denormal] [--json]

Each result also gives the process's peak resident memory (ru_maxrss), interpreter and libraries included.
"""
import argparse
import ctypes
import gzip
import json
import os
import statistics
import sys
import time

import resource


def threads_asked():
    """--threads N from the command line, read before argparse: OpenBLAS takes its count when it loads."""
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


if "OPENBLAS_NUM_THREADS" not in os.environ and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = threads_asked()

import numpy as np  # noqa: E402  (after the thread setting: numpy loads OpenBLAS too)
import torch  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"
HIDDEN = [256, 64]
CONV_CHANNELS = [16, 32]
CONV_LATENT = 64


def load_images(split):
    """IDX images as float32 (N, 784) in [0, 1]: a 16-byte header, then one byte per pixel."""
    name = {"train": "train-images-idx3-ubyte.gz", "test": "t10k-images-idx3-ubyte.gz"}[split]
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    rows, height, width = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    pixels = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(rows, height * width)
    return torch.from_numpy(pixels.astype(np.float32) / np.float32(255))


def openblas_info():
    """(core, threads) of the OpenBLAS that PyTorch loaded, or (None, None) when it is another BLAS."""
    try:
        # RTLD_NOLOAD: the copy PyTorch already loaded (by its soname), never a second one.
        lib = ctypes.CDLL("libopenblas.so.0", mode=os.RTLD_NOLOAD)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode(), lib.openblas_get_num_threads()
    except (OSError, AttributeError):
        return None, None


class Autoencoder(torch.nn.Module):
    def __init__(self, input_size, latent_activation):
        super().__init__()
        sizes = [input_size] + HIDDEN
        act = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid}
        enc, dec = [], []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i + 2 == len(sizes)
            enc += [torch.nn.Linear(n_in, n_out), act[latent_activation if last else "relu"]()]
            dec = [torch.nn.Linear(n_out, n_in), act["sigmoid" if i == 0 else "relu"]()] + dec
        self.encoder = torch.nn.Sequential(*enc)
        self.decoder = torch.nn.Sequential(*dec)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class ConvAutoencoder(torch.nn.Module):
    """Kernel 3, stride 2, padding 1 convolutions, each halving the image's side (rounding up), around
    dense layers to and from the code; the decoder's transposed convolutions take output padding where the
    side was even, so that the image comes back whole."""

    def __init__(self, side):
        super().__init__()
        channels = [1] + CONV_CHANNELS
        sides = [side]
        for _ in CONV_CHANNELS:
            sides.append((sides[-1] - 1) // 2 + 1)
        features = channels[-1] * sides[-1] * sides[-1]
        enc = [torch.nn.Unflatten(1, (1, side, side))]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            enc += [torch.nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), torch.nn.ReLU()]
        enc += [torch.nn.Flatten(), torch.nn.Linear(features, CONV_LATENT)]
        dec = [torch.nn.Linear(CONV_LATENT, features), torch.nn.ReLU(),
               torch.nn.Unflatten(1, (channels[-1], sides[-1], sides[-1]))]
        for i in reversed(range(len(CONV_CHANNELS))):
            pad = sides[i] + 1 - 2 * sides[i + 1]
            dec += [torch.nn.ConvTranspose2d(channels[i + 1], channels[i], 3, stride=2, padding=1,
                                             output_padding=pad),
                    torch.nn.Sigmoid() if i == 0 else torch.nn.ReLU()]
        dec.append(torch.nn.Flatten())
        self.encoder = torch.nn.Sequential(*enc)
        self.decoder = torch.nn.Sequential(*dec)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def make_model(args, input_size):
    if args.model == "conv":
        side = int(round(input_size ** 0.5))
        return ConvAutoencoder(side)
    return Autoencoder(input_size, "sigmoid" if args.variant == "sparse" else "relu")


def make_loss(args, model):
    mse = torch.nn.functional.mse_loss
    if args.variant == "vanilla":
        return lambda x: mse(model(x), x)
    if args.variant == "denoising":
        return lambda x: mse(model(x * (torch.rand_like(x) >= args.level)), x)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    rho, eps = args.rho, 1e-6

    def sparse(x):
        code = model.encoder(x)
        q = code.mean(0).clamp(eps, 1 - eps)
        kl = (rho * torch.log(rho / q) + (1 - rho) * torch.log((1 - rho) / (1 - q))).sum()
        decay = sum((w * w).sum() for w in weights)
        return mse(model.decoder(code), x) + args.beta * kl + args.lam / 2 * decay
    return sparse


def train_epoch(model, adam, loss_of, train, batch_size, generator):
    """One epoch as tapegrad's bench runs it; returns the mean objective over the epoch's samples."""
    model.train()
    order = torch.randperm(train.shape[0], generator=generator)
    total = 0.0
    for first in range(0, train.shape[0], batch_size):
        x = train[order[first:first + batch_size]]
        adam.zero_grad(set_to_none=True)
        loss = loss_of(x)
        loss.backward()
        adam.step()
        total += loss.item() * x.shape[0]
    return total / train.shape[0]


def test_mse(model, test):
    """Plain reconstruction MSE over every pixel, whatever the variant's objective."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for first in range(0, test.shape[0], 1000):
            x = test[first:first + 1000]
            total += ((model(x) - x) ** 2).mean(1).double().sum().item()
    return total / test.shape[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["dense", "conv"], default="dense")
    parser.add_argument("--variant", choices=["vanilla", "denoising", "sparse"], default="vanilla")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--level", type=float, default=0.3, help="denoising: masking probability")
    parser.add_argument("--rho", type=float, default=0.05)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--lambda", dest="lam", type=float, default=1e-5)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch's and OpenBLAS's threads")
    parser.add_argument("--flush-denormal", action="store_true", help="torch.set_flush_denormal(True) (FTZ, DAZ)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if args.model == "conv" and args.variant == "sparse":
        parser.error("--model conv trains the vanilla and denoising variants, not sparse")

    if args.threads < 1:
        parser.error("--threads must be at least 1")
    torch.set_num_threads(args.threads)
    # Only when asked: the run "as installed" leaves PyTorch's default (off) untouched.
    flushed = args.flush_denormal and torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    train, test = load_images("train"), load_images("test")
    load_seconds = time.perf_counter() - start
    core, blas_threads = openblas_info()
    blas = f"OpenBLAS kernel {core}, {blas_threads} thread(s)" if core else "BLAS not OpenBLAS"
    header = (f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread(s), {blas}, "
              f"flush-to-zero {'on' if flushed else 'off'}")
    print(header, file=sys.stderr if args.json else sys.stdout)

    model = make_model(args, train.shape[1])
    adam = torch.optim.Adam(model.parameters(), lr=args.lr)
    loss_of = make_loss(args, model)
    generator = torch.Generator().manual_seed(args.seed)
    times, losses = [], []
    for _ in range(args.epochs):
        start = time.perf_counter()
        losses.append(train_epoch(model, adam, loss_of, train, args.batch_size, generator))
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    mse = test_mse(model, test)
    result = {"case": args.variant, "architecture": args.model, "seconds_per_epoch": statistics.median(times), "epoch_seconds": times,
              "train_loss": losses, "test_mse": mse, "test_seconds": time.perf_counter() - start,
              "load_seconds": load_seconds, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "blas_core": core, "blas_threads": blas_threads, "flush_denormals": bool(flushed),
              "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        name = f"conv {args.variant}" if args.model == "conv" else args.variant
        print(f"{name:<11} {result['seconds_per_epoch']:.3f} s/epoch (median of {args.epochs}), "
              f"train loss {losses[-1]:.5f}, test MSE {mse:.5f}, peak RSS {result['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
