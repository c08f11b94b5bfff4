#!/usr/bin/python3
"""Trains the 784-256-64-256-784 autoencoder on Fashion-MNIST in tapegrad and in PyTorch in one go, and
prints one table: seconds per epoch, their ratio, the GEMM floor ratio, each run's final test MSE and
peak resident memory, at each thread count; then writes the table as JSON.

  /usr/bin/python3 bench/run_train.py [--build build] [--epochs 3] [--threads 1,2]
                                      [--variants vanilla,denoising,sparse] [--no-best] [--out FILE]

Per thread count and variant, bench/train_bench (tapegrad) and bench/train_torch.py twice:
  PyTorch   as installed: the environment unchanged, apart from the thread count (OPENBLAS_NUM_THREADS,
            unless the user set it, as tapegrad's programs do)
  PT best   at its best: OPENBLAS_CORETYPE set to the fastest OpenBLAS kernel this CPU runs (SkylakeX
            with AVX-512, Haswell with AVX2), even over the environment's own setting, and
            torch.set_flush_denormal(True) (tapegrad trains with flush-to-zero too)
Each time is the median over --epochs epochs of wall-clock seconds, data loading and the test pass left
out. tg/PT is tapegrad's seconds over PyTorch's: 0.50 means twice as fast. GEMM is one epoch's matrix
products alone through the same backend (tapegrad::gemm), timed by train_bench after each of its training
epochs; GEMM/PT is that over PyTorch's epoch: the lowest tg/PT an epoch that does those products can reach
(PyTorch does the same ones, through its OpenBLAS); in tr is the time the products took inside the training
epoch (bias and activation included, as linear runs them); floor is the median over the pairs of the training epoch over the GEMM-only epoch. Test
MSE is the plain reconstruction MSE over the 10000 test images, whatever the variant trained on. RSS is
each process's peak resident memory (ru_maxrss; PyTorch's includes its interpreter). The programs run
one after the other, so they never share the CPU; the load average says whether anything else did.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BUILD = os.path.relpath(os.path.join(HERE, "..", "build"))
VARIANTS = ["vanilla", "denoising", "sparse"]


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


def best_env(kernel):
    env = dict(os.environ)
    if kernel:
        env["OPENBLAS_CORETYPE"] = kernel
    return env


def print_table(rows, best):
    cols = [("case", "<10"), ("thr", ">3"), ("tapegrad", ">8"), ("PyTorch", ">8")]
    cols += [("PT best", ">8")] if best else []
    cols += [("tg/PT", ">6")] + ([("tg/best", ">7")] if best else []) + [("GEMM/PT", ">7"), ("GEMM", ">6"), ("in tr", ">6")]
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
        cells += [f"{r['gemm_over_torch']:>7.2f}"]
        cells += [f"{ours['gemm_seconds_per_epoch']:>6.3f}", f"{ours['products_in_training_seconds']:>6.3f}",
                  f"{r['gemm_floor_ratio']:>5.2f}x"]
        cells += [f"{ours['test_mse']:>8.5f}", f"{theirs['test_mse']:>8.5f}"]
        cells += [f"{top['test_mse']:>8.5f}"] if top else []
        cells += [f"{ours['peak_rss_mb']:>5.0f}MB", f"{theirs['peak_rss_mb']:>5.0f}MB"]
        print(" ".join(cells))
    print("seconds per epoch; tg/PT = tapegrad / PyTorch (0.50: twice as fast); GEMM/PT = GEMM / PyTorch, the lowest "
          "tg/PT the products allow; GEMM = the epoch's products alone, in tr = the same products inside training, "
          "floor = tapegrad / GEMM (median over the epochs)")
    bound = [r for r in rows if r["gemm_over_torch"] > 0.5]
    if bound:
        print("GEMM/PT above 0.50 (" + ", ".join(f"{r['variant']} at {r['threads']}" for r in bound) + "): PyTorch's "
              "epoch takes less than twice the products alone there, so no tapegrad epoch that does them can be twice "
              "as fast")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=DEFAULT_BUILD, help="meson build folder (default: the project's build/)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per run (median reported)")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from " + ", ".join(VARIANTS))
    parser.add_argument("--no-best", dest="best", action="store_false", help="skip the PyTorch at-its-best runs")
    parser.add_argument("--out", help="where to write the table as JSON (default: BUILD/bench/train.json)")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        parser.error(f"--variants: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(VARIANTS)}")
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
        for variant in variants:
            common = ["--json", "--variant", variant] + epochs + thr
            headers["tapegrad"], ours = run_json([bench] + common)
            headers["torch"], theirs = run_json([sys.executable, torch_script] + common)
            row = {"variant": variant, "threads": threads, "tapegrad": ours, "torch": theirs,
                   "tapegrad_over_torch": ours["seconds_per_epoch"] / theirs["seconds_per_epoch"],
                   "gemm_floor_ratio": ours["floor_ratio"],
                   "gemm_over_torch": ours["gemm_seconds_per_epoch"] / theirs["seconds_per_epoch"]}
            if args.best:
                headers["torch_best"], top = run_json(
                    [sys.executable, torch_script, "--flush-denormal"] + common, env=best_env(best_kernel))
                row.update(torch_best=top, tapegrad_over_torch_best=ours["seconds_per_epoch"] / top["seconds_per_epoch"])
            rows.append(row)
            print(f"  {variant} at {threads} thread(s): done", file=sys.stderr, flush=True)
    load_end = os.getloadavg()[0]
    print(headers["tapegrad"])
    print(f"{headers['torch']}  (as installed)")
    if args.best:
        print(f"{headers['torch_best']}  (at its best)")
    first = rows[0]["tapegrad"]
    print(f"median of {args.epochs} epoch(s) each, {first['batches']} batches of {first['batch_size']}"
          f"; load average (1 min) {load_start:.2f} at the start, {load_end:.2f} at "
          f"the end, {os.cpu_count()} CPUs\n")
    print_table(rows, args.best)

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
