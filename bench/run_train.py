#!/usr/bin/python3
"""Trains autoencoders on Fashion-MNIST in tapegrad and in PyTorch in one go, and prints one table per
model: seconds per epoch, their ratio, the floor ratio, each run's final test MSE and peak resident
memory, at each thread count; then writes the tables as JSON.

  /usr/bin/python3 bench/run_train.py [--build build] [--epochs 3] [--threads 1,2] [--models dense,conv]
                                      [--variants vanilla,denoising,sparse] [--no-best] [--out FILE]

The models (--models, both by default; the same in both programs, torch.nn's default initialisation):
  dense  784-256-64-256-784, ReLU hidden layers and code, sigmoid output
  conv   Conv(1->16, 3x3, stride 2, padding 1) ReLU, Conv(16->32, same) ReLU, Flatten, Linear(1568 -> 64),
         Linear(64 -> 1568) ReLU, Unflatten, ConvTranspose(32->16, 3x3, stride 2, padding 1, output padding
         1) ReLU, ConvTranspose(16->1, same) Sigmoid; it trains the vanilla and denoising variants (sparse
         is for the dense model), so --variants' others are skipped for it
Per thread count, model and variant, bench/train_bench (tapegrad) and bench/train_torch.py twice:
  PyTorch   as installed: the environment unchanged, apart from the thread count (OPENBLAS_NUM_THREADS,
            unless the user set it, as tapegrad's programs do)
  PT best   at its best: OPENBLAS_CORETYPE set to the fastest OpenBLAS kernel this CPU runs (SkylakeX
            with AVX-512, Haswell with AVX2), even over the environment's own setting, and
            torch.set_flush_denormal(True) (tapegrad trains with flush-to-zero too); for conv at more than
            one thread also OPENBLAS_NUM_THREADS=1, since PyTorch's convolutions call the BLAS from each of
            its threads and a threaded BLAS under them oversubscribes the cores (as installed, PyTorch's conv
            epoch at 2 threads on 2 cores took 2.5x its 1-thread time)
Each time is the median over --epochs epochs of wall-clock seconds, data loading and the test pass left
out. tg/PT is tapegrad's seconds over PyTorch's: 0.50 means twice as fast. The floor epoch, timed by
train_bench after each of its training epochs through the same kernels:
  dense  GEMM: one epoch's matrix products alone (tapegrad::gemm)
  conv   ops: one epoch of the step's convolutions and linear products alone, the same calls of conv2d,
         conv_transpose2d, conv2d_weight_grad, linear and gemm on the same shapes, under NoGrad
GEMM/PT (ops/PT) is that over PyTorch's epoch: the lowest tg/PT an epoch that does those products can
reach (PyTorch does the same ones); in tr is the time the products took inside the training epoch (bias
and activation included, as linear runs them; for conv every product of the convolutions too, added over
threads, so at 2 threads it can exceed the epoch); floor is the median over the pairs of the training epoch
over the floor epoch. For conv, a second table splits the ops-only epoch by op and gives the rest of the
training epoch (activations, bias gradients, loss, Adam, the tape). Test MSE is the plain reconstruction
MSE over the 10000 test images, whatever the variant trained on. RSS is each process's peak resident
memory (ru_maxrss; PyTorch's includes its interpreter). The programs run one after the other, so they
never share the CPU; the load average says whether anything else did.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BUILD = os.path.relpath(os.path.join(HERE, "..", "build"))
VARIANTS = ["vanilla", "denoising", "sparse"]
MODELS = ["dense", "conv"]
CONV_VARIANTS = ["vanilla", "denoising"]
# Per model: the key of its floor epoch in train_bench's JSON, its rows' keys, and its columns' names.
FLOORS = {
    "dense": {"seconds": "gemm_seconds_per_epoch", "over": "gemm_over_torch", "ratio": "gemm_floor_ratio",
              "name": "GEMM"},
    "conv": {"seconds": "ops_seconds_per_epoch", "over": "ops_over_torch", "ratio": "floor_ratio", "name": "ops"},
}


def run_json(command, env=None):
    """Runs a bench program with --json; returns its header (stderr's last line) and its result."""
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        sys.exit(f"run_train: {' '.join(command)} exited with {done.returncode}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        sys.exit(f"run_train: no result from {' '.join(command)}")
    header = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    return header, json.loads(lines[-1])


def fastest_openblas_kernel():
    """The OpenBLAS kernel for this CPU's widest vectors: what PyTorch would run at its best."""
    with open("/proc/cpuinfo") as f:
        flags = next((line.split() for line in f if line.startswith("flags")), [])
    if "avx512f" in flags:
        return "SkylakeX"
    return "Haswell" if "avx2" in flags else None


def best_env(kernel, model="dense", threads=1):
    env = dict(os.environ)
    if kernel:
        env["OPENBLAS_CORETYPE"] = kernel
    # PyTorch's CPU convolutions call the BLAS from each of their own threads (a parallel loop over the
    # batch): with OpenBLAS threaded too, 2 torch threads start 2 BLAS threads each on 2 cores, and the conv
    # epoch ran 2.5x slower than on 1 thread (15.3 s against 6.3, 5.6 with OpenBLAS on 1 thread).
    if model == "conv" and threads > 1:
        env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def print_table(rows, best, model="dense"):
    f = FLOORS[model]
    cols = [("case", "<10"), ("thr", ">3"), ("tapegrad", ">8"), ("PyTorch", ">8")]
    cols += [("PT best", ">8")] if best else []
    cols += [("tg/PT", ">6")] + ([("tg/best", ">7")] if best else [])
    cols += [(f"{f['name']}/PT", ">7"), (f["name"], ">6"), ("in tr", ">6")]
    cols += [("floor", ">6")]
    cols += [("MSE tg", ">8"), ("MSE PT", ">8")] + ([("MSE best", ">8")] if best else [])
    cols += [("RSS tg", ">7"), ("RSS PT", ">7")]
    print(" ".join(f"{name:{align}}" for name, align in cols))
    for r in rows:
        ours, theirs, top = r["tapegrad"], r["torch"], r.get("torch_best")
        cells = [f"{r['variant']:<10}", f"{r['threads']:>3}", f"{ours['seconds_per_epoch']:>8.3f}",
                 f"{theirs['seconds_per_epoch']:>8.3f}"]
        cells += [f"{top['seconds_per_epoch']:>8.3f}"] if top else []
        cells += [f"{r['tapegrad_over_torch']:>6.2f}"]
        cells += [f"{r['tapegrad_over_torch_best']:>7.2f}"] if top else []
        cells += [f"{r[f['over']]:>7.2f}"]
        cells += [f"{ours[f['seconds']]:>6.3f}", f"{ours['products_in_training_seconds']:>6.3f}",
                  f"{r[f['ratio']]:>5.2f}x"]
        cells += [f"{ours['test_mse']:>8.5f}", f"{theirs['test_mse']:>8.5f}"]
        cells += [f"{top['test_mse']:>8.5f}"] if top else []
        cells += [f"{ours['peak_rss_mb']:>5.0f}MB", f"{theirs['peak_rss_mb']:>5.0f}MB"]
        print(" ".join(cells))
    if model == "dense":
        print("seconds per epoch; tg/PT = tapegrad / PyTorch (0.50: twice as fast); GEMM/PT = GEMM / PyTorch, the "
              "lowest tg/PT the products allow; GEMM = the epoch's products alone, in tr = the same products inside "
              "training, floor = tapegrad / GEMM (median over the epochs)")
    else:
        print("seconds per epoch; tg/PT = tapegrad / PyTorch (0.50: twice as fast); ops/PT = ops / PyTorch, the "
              "lowest tg/PT the convolutions and products allow; ops = the epoch's convolutions and linear products "
              "alone, in tr = the products inside training (the convolutions' included, added over threads), "
              "floor = tapegrad / ops (median over the epochs)")
    bound = [r for r in rows if r[f["over"]] > 0.5]
    if bound:
        what = "the products" if model == "dense" else "tapegrad's convolutions and products"
        print(f"{f['name']}/PT above 0.50 (" + ", ".join(f"{r['variant']} at {r['threads']}" for r in bound) +
              f"): PyTorch's epoch takes less than twice {what} alone there, so no tapegrad epoch that does them can "
              "be twice as fast")


def op_kind(call):
    """The op of a conv floor call, linear's activations and gemm's operands set aside."""
    return "linear" if call["op"].startswith("linear") else call["op"]


def print_conv_breakdown(rows):
    """Where tapegrad's conv epoch goes: the ops-only epoch by op, and the training epoch's rest."""
    kinds = ["conv2d", "conv_transpose2d", "conv2d_weight_grad", "linear", "gemm"]
    cols = [("case", "<10"), ("thr", ">3")] + [(k, f">{max(len(k), 6)}") for k in kinds]
    cols += [("ops", ">6"), ("in gemm", ">7"), ("GFLOP/s", ">7"), ("rest", ">6")]
    print(" ".join(f"{name:{align}}" for name, align in cols))
    for r in rows:
        ours = r["tapegrad"]
        seconds = {k: 0.0 for k in kinds}
        products = 0.0
        for call in ours["ops_breakdown"]:
            seconds[op_kind(call)] += call["seconds"]
            products += call["product_seconds"]
        ops = ours["ops_seconds_per_epoch"]
        cells = [f"{r['variant']:<10}", f"{r['threads']:>3}"]
        cells += [f"{seconds[k]:>{max(len(k), 6)}.3f}" for k in kinds]
        cells += [f"{ops:>6.3f}", f"{products:>7.3f}", f"{ours['ops_gflop'] / ops:>7.1f}",
                  f"{ours['seconds_per_epoch'] - ops:>6.3f}"]
        print(" ".join(cells))
    print("seconds per epoch of the ops-only epoch, by op (the median of each call's, added up): conv2d = the "
          "encoder's forward and the decoder's dx, conv_transpose2d = the decoder's forward and the encoder's dx, "
          "conv2d_weight_grad = every dW, linear = the dense layers' forward, gemm = their dx and dW; in gemm = the "
          "part of the ops in matrix products (added over threads), the rest of a convolution being im2col or col2im "
          "and its output; GFLOP/s over the ops-only epoch; rest = the training epoch less the ops-only one")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=DEFAULT_BUILD, help="meson build folder (default: the project's build/)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per run (median reported)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, from " + ", ".join(MODELS))
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from " + ", ".join(VARIANTS))
    parser.add_argument("--no-best", dest="best", action="store_false", help="skip the PyTorch at-its-best runs")
    parser.add_argument("--out", help="where to write the table as JSON (default: BUILD/bench/train.json)")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        parser.error(f"--variants: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(VARIANTS)}")
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        parser.error(f"--models: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(MODELS)}")
    runs = [(m, v) for m in MODELS if m in models for v in variants if m == "dense" or v in CONV_VARIANTS]
    if "conv" in models and not any(m == "conv" for m, _ in runs):
        parser.error(f"--models conv: it trains {', '.join(CONV_VARIANTS)}, and --variants names neither")
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    try:
        thread_counts = [int(t) for t in args.threads.split(",") if t]
    except ValueError:
        parser.error(f"--threads: not a list of numbers: {args.threads}")
    if not thread_counts or min(thread_counts) < 1:
        parser.error("--threads: each count must be at least 1")
    out = args.out or os.path.join(args.build, "bench", "train.json")
    bench = os.path.join(args.build, "bench", "train_bench")
    torch_script = os.path.join(HERE, "train_torch.py")
    epochs = ["--epochs", str(args.epochs)]
    best_kernel = fastest_openblas_kernel()

    if "OPENBLAS_CORETYPE" in os.environ:
        print(f"note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} is set in the environment: tapegrad and "
              f"PyTorch as installed keep it; PyTorch at its best runs {best_kernel}", flush=True)
    load_start = os.getloadavg()[0]
    rows, headers = [], {}
    for threads in thread_counts:
        thr = ["--threads", str(threads)]
        for model, variant in runs:
            common = ["--json", "--model", model, "--variant", variant] + epochs + thr
            headers["tapegrad"], ours = run_json([bench] + common)
            headers["torch"], theirs = run_json([sys.executable, torch_script] + common)
            f = FLOORS[model]
            row = {"model": model, "variant": variant, "threads": threads, "tapegrad": ours, "torch": theirs,
                   "tapegrad_over_torch": ours["seconds_per_epoch"] / theirs["seconds_per_epoch"],
                   f["ratio"]: ours["floor_ratio"],
                   f["over"]: ours[f["seconds"]] / theirs["seconds_per_epoch"]}
            if args.best:
                headers["torch_best"], top = run_json(
                    [sys.executable, torch_script, "--flush-denormal"] + common, env=best_env(best_kernel, model, threads))
                row.update(torch_best=top, tapegrad_over_torch_best=ours["seconds_per_epoch"] / top["seconds_per_epoch"])
            rows.append(row)
            name = variant if model == "dense" else f"conv {variant}"
            print(f"  {name} at {threads} thread(s): done", file=sys.stderr, flush=True)
    load_end = os.getloadavg()[0]
    print(headers["tapegrad"])
    print(f"{headers['torch']}  (as installed)")
    if args.best:
        print(f"{headers['torch_best']}  (at its best)")
    first = rows[0]["tapegrad"]
    print(f"median of {args.epochs} epoch(s) each, {first['batches']} batches of {first['batch_size']}"
          f"; load average (1 min) {load_start:.2f} at the start, {load_end:.2f} at "
          f"the end, {os.cpu_count()} CPUs\n")
    dense = [r for r in rows if r["model"] == "dense"]
    conv = [r for r in rows if r["model"] == "conv"]
    if dense:
        print_table(dense, args.best)
    if conv:
        print(("\n" if dense else "") + "conv: Conv 1-16-32 (3x3, stride 2), Linear 1568-64-1568, ConvTranspose 32-16-1"
              + ("; PT best above 1 thread runs OpenBLAS on 1 thread under PyTorch's" if args.best else ""))
        print_table(conv, args.best, "conv")
        print()
        print_conv_breakdown(conv)

    table = {"tapegrad": headers["tapegrad"], "torch": headers["torch"], "torch_best": headers.get("torch_best"),
             "torch_best_kernel": best_kernel, "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"),
             "epochs": args.epochs, "load_average": [load_start, load_end], "cpus": os.cpu_count(),
             "rows": rows}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(table, f, indent=2)
        f.write("\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
