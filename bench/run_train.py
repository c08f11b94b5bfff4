#!/usr/bin/python3
"""Trains the 784-256-64-256-784 autoencoder on Fashion-MNIST in tapegrad and in PyTorch in one go, and
prints seconds per epoch, their ratio and each run's final test MSE side by side.

  /usr/bin/python3 bench/run_train.py [--build build] [--epochs 3] [--variants vanilla,denoising,sparse]
                                      [--no-best] [--out build/bench/train.json]

Per variant: bench/train_bench (tapegrad), then bench/train_torch.py twice:
  PyTorch      as installed: the environment unchanged (apart from one OpenBLAS thread, see train_torch.py)
  PT best      at its best: OPENBLAS_CORETYPE set to the kernel tapegrad ran, when the user has not set it,
               and torch.set_flush_denormal(True) (tapegrad trains with flush-to-zero too)
Each time is the median over --epochs epochs of wall-clock seconds, data loading and the test pass left
out. ratio is PyTorch seconds / tapegrad seconds: how many times faster tapegrad is (below 1: slower).
"floor" is tapegrad's epoch over `train_bench --gemm-only`, one epoch's matrix products alone through the
same BLAS: how far the rest of the work puts an epoch above what the products cost. Test MSE is the plain
reconstruction MSE over the 10000 test images, whatever the variant trained on. The programs run one
after the other, so they never share the CPU.
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


def best_env(core):
    """The environment for PyTorch at its best: tapegrad's kernel, unless the user chose one."""
    env = dict(os.environ)
    if "OPENBLAS_CORETYPE" not in env and core:
        env["OPENBLAS_CORETYPE"] = core
    return env


def ratio(theirs, ours):
    return theirs["seconds_per_epoch"] / ours["seconds_per_epoch"]


def print_table(rows, gemm, best):
    head = f"{'variant':<10} {'tapegrad':>9} {'PyTorch':>8}"
    head += f" {'PT best':>8}" if best else ""
    head += f" {'ratio':>6}" + (f" {'r.best':>6}" if best else "") + f" {'floor':>6}"
    head += f"   {'test MSE tapegrad':>17} {'PyTorch':>8}" + (f" {'PT best':>8}" if best else "")
    print(head)
    print(f"{'':<10} {'s/epoch':>9} {'s/epoch':>8}" + (f" {'s/epoch':>8}" if best else ""))
    for r in rows:
        ours, theirs, top = r["tapegrad"], r["torch"], r.get("torch_best")
        line = f"{r['variant']:<10} {ours['seconds_per_epoch']:>9.3f} {theirs['seconds_per_epoch']:>8.3f}"
        line += f" {top['seconds_per_epoch']:>8.3f}" if top else ""
        line += f" {r['ratio']:>5.2f}x" + (f" {r['ratio_best']:>5.2f}x" if top else "")
        line += f" {r['gemm_floor_ratio']:>5.2f}x"
        line += f"   {ours['test_mse']:>17.5f} {theirs['test_mse']:>8.5f}"
        line += f" {top['test_mse']:>8.5f}" if top else ""
        print(line)
    print(f"\nGEMM only: {gemm['seconds_per_epoch']:.3f} s/epoch, {gemm['gflop']:.1f} GFLOP at "
          f"{gemm['gflops']:.1f} GFLOP/s ({'-'.join(map(str, gemm['sizes']))}, batch {gemm['batch_size']}, "
          f"{gemm['rows']} rows)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=DEFAULT_BUILD, help="meson build folder (default: the project's build/)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per run (median reported)")
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
    out = args.out or os.path.join(args.build, "bench", "train.json")
    bench = os.path.join(args.build, "bench", "train_bench")
    torch_script = os.path.join(HERE, "train_torch.py")
    epochs = ["--epochs", str(args.epochs)]

    if "OPENBLAS_CORETYPE" in os.environ:
        print(f"note: OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} is set in the environment: "
              "every run below uses that kernel", flush=True)
    # Other work on the machine slows every figure here: say how busy it was.
    load_start = os.getloadavg()[0]
    gemm_header, gemm = run_json([bench, "--gemm-only", "--json"] + epochs)
    print(gemm_header, flush=True)
    rows = []
    headers = {}
    for variant in variants:
        common = ["--json", "--variant", variant] + epochs
        headers["tapegrad"], ours = run_json([bench] + common)
        headers["torch"], theirs = run_json([sys.executable, torch_script] + common)
        row = {"variant": variant, "tapegrad": ours, "torch": theirs, "ratio": ratio(theirs, ours),
               "gemm_floor_ratio": ours["seconds_per_epoch"] / gemm["seconds_per_epoch"]}
        if args.best:
            headers["torch_best"], top = run_json([sys.executable, torch_script, "--flush-denormal"] + common,
                                                  env=best_env(ours.get("blas_core")))
            row.update(torch_best=top, ratio_best=ratio(top, ours),
                       torch_best_gemm_floor_ratio=top["seconds_per_epoch"] / gemm["seconds_per_epoch"])
        rows.append(row)
        print(f"  {variant}: done", file=sys.stderr, flush=True)  # progress only: stdout keeps the table
    print(headers["tapegrad"])
    print(f"{headers['torch']}  (as installed)")
    if args.best:
        print(f"{headers['torch_best']}  (at its best)")
    load_end = os.getloadavg()[0]
    print(f"median of {args.epochs} epoch(s) each, {gemm['rows']} training images, batch {gemm['batch_size']}; "
          f"load average (1 min) {load_start:.2f} at the start, {load_end:.2f} at the end, {os.cpu_count()} CPUs\n")
    print_table(rows, gemm, args.best)

    table = {"tapegrad_blas": headers["tapegrad"], "torch": headers["torch"], "torch_best": headers.get("torch_best"),
             "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE"), "epochs": args.epochs,
             "load_average": [load_start, load_end], "cpus": os.cpu_count(),
             "gemm": gemm, "variants": rows}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(table, f, indent=2)
        f.write("\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
