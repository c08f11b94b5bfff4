#!/usr/bin/python3
"""Data-parallel training on this machine, tapegrad beside PyTorch, and what it would be across machines.

Runs bench/distributed_bench (tapegrad's Trainer, the dense Fashion-MNIST autoencoder, global batch 128)
at 1 rank x 1 thread, 1 rank x 2 threads and 2 ranks x 1 thread (mpirun), and bench/distributed_torch.py
(PyTorch, at its best: OPENBLAS_CORETYPE for this CPU's widest vectors; at 2 threads, the faster of
OpenBLAS on 2 threads and on 1) at 1 process x 2 threads and 2
processes x 1 thread (DistributedDataParallel over gloo). Prints the epochs' times and ratios, the share
of the 2-rank step spent summing gradients, the bytes summed per step, the time of one such sum alone,
and one step with the sum overlapped with the forward and backward sweeps (MPI_Iallreduce) against after
them.

Then the estimate for N machines of one rank each, the global batch fixed at 128 (strong scaling):
  compute per step  t_c(N) = a + b / N, a and b from the 1-rank and 2-rank steps measured here (a: what
                    every rank does whatever its share, the optimizer step above all; the 2-rank step
                    less its gradient sums, waiting included, gives a + b / 2: optimistic, since on a
                    network the ranks wait for each other too)
  gradient sum      ring all-reduce of S bytes: 2 (N - 1) / N * S / B + 2 (N - 1) * alpha, for a link of
                    B bytes/s and a per-message latency alpha (assumed, not measured here: 30 us for TCP
                    over 10 Gbit/s Ethernet, 5 us for 100 Gbit/s RDMA)
  step              t_c(N) + the sum (no overlap: tapegrad sums after the backward sweep)
Communication dominates where the sum takes longer than t_c(N).

  run_distributed.py [--build DIR] [--epochs N] [--no-torch]
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run_train import DEFAULT_BUILD, best_env, fastest_openblas_kernel  # noqa: E402

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]
NETWORKS = [("10 Gbit/s", 10e9 / 8, 30e-6), ("100 Gbit/s", 100e9 / 8, 5e-6)]
NODES = [1, 2, 8, 16, 32, 64]


def run_json(command, env=None):
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        sys.exit(f"run_distributed: {' '.join(command)} exited with {done.returncode}")
    lines = [line for line in done.stdout.splitlines() if line.strip().startswith("{")]
    if not lines:
        sys.exit(f"run_distributed: no result from {' '.join(command)}")
    return json.loads(lines[-1])


def ring_seconds(nodes, size, bandwidth, latency):
    if nodes == 1:
        return 0.0
    return 2 * (nodes - 1) / nodes * size / bandwidth + 2 * (nodes - 1) * latency


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=DEFAULT_BUILD, help="meson build folder (default: the project's build/)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per run (median reported)")
    parser.add_argument("--no-torch", dest="torch", action="store_false", help="skip the PyTorch runs")
    parser.add_argument("--out", help="where to write the results as JSON (default: BUILD/bench/distributed.json)")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    bench = os.path.join(args.build, "bench", "distributed_bench")
    epochs = ["--epochs", str(args.epochs)]
    load_start = os.getloadavg()[0]
    ours = {
        "1x1": run_json([bench, "--threads", "1"] + epochs),
        "1x2": run_json([bench, "--threads", "2"] + epochs),
        "2x1": run_json(MPIRUN + ["-np", "2", bench, "--threads", "1"] + epochs),
    }
    theirs = {}
    if args.torch:
        env = best_env(fastest_openblas_kernel())
        script = [sys.executable, os.path.join(HERE, "distributed_torch.py")] + epochs
        # At 2 threads PyTorch's Linear ran 3x faster with OpenBLAS on 1 thread under its own 2 (3.1 s an
        # epoch against 9.3): the faster of the two counts.
        runs = [run_json(script + ["--ranks", "1", "--threads", "2"], env=e)
                for e in (env, dict(env, OPENBLAS_NUM_THREADS="1"))]
        runs[1]["openblas_threads"] = 1
        theirs["1x2"] = min(runs, key=lambda r: r["seconds_per_epoch"])
        theirs["2x1"] = run_json(script + ["--ranks", "2", "--threads", "1"], env=env)
    load_end = os.getloadavg()[0]

    two = ours["2x1"]
    print(f"tapegrad: {two['blas']}; {two['mpi']}")
    if theirs:
        print(f"PyTorch {theirs['2x1']['torch']} at its best (OPENBLAS_CORETYPE={fastest_openblas_kernel()}), "
              f"DistributedDataParallel over {theirs['2x1']['backend']}")
    print(f"dense 784-256-64-256-784 on Fashion-MNIST, global batch 128, median of {args.epochs} epoch(s); "
          f"load average {load_start:.2f} at the start, {load_end:.2f} at the end, {os.cpu_count()} CPUs\n")
    print("ranks x threads   tapegrad s/epoch   test MSE    PyTorch s/epoch   test MSE   tapegrad/PyTorch")
    for key in ["1x1", "1x2", "2x1"]:
        r = ours[key]
        line = f"{key:<17} {r['seconds_per_epoch']:>16.3f}   {r['test_mse']:.5f}"
        if key in theirs:
            t = theirs[key]
            line += (f"   {t['seconds_per_epoch']:>15.3f}   {t['test_mse']:.5f}   "
                     f"{r['seconds_per_epoch'] / t['seconds_per_epoch']:>15.2f}")
        print(line)
    ratio = two["seconds_per_epoch"] / ours["1x2"]["seconds_per_epoch"]
    steps = two["steps"] / args.epochs
    step = two["seconds_per_epoch"] / steps
    reduce_step = two["reduce_seconds"] / two["reduce_calls"]
    size = two["bytes_per_step"]
    print(f"\n2 ranks x 1 thread against 1 rank x 2 threads: {ratio:.2f}x the epoch time")
    print(f"gradient sums on 2 ranks: {100 * two['reduce_share']:.0f}% of the epoch, {1e3 * reduce_step:.2f} ms a "
          f"step of {1e3 * step:.2f} (waiting for the slower rank included); {size / 1e6:.2f} MB summed per step "
          f"({two['parameters']} float parameters), of which each rank sends {size / 1e6:.2f} MB in a 2-rank ring; "
          f"one such sum alone, the ranks in step: {1e3 * two['all_reduce_alone_seconds']:.2f} ms")

    overlap = two.get("overlap")
    if overlap:
        print(f"overlap, one step's forward and backward on 64 rows: alone {1e3 * overlap['forward_backward_seconds']:.2f} "
              f"ms; then the sum {1e3 * overlap['then_sum_seconds']:.2f} ms; the sum started before them "
              f"(MPI_Iallreduce) {1e3 * overlap['overlapped_seconds']:.2f} ms, polled between forward and backward "
              f"{1e3 * overlap['overlapped_polled_seconds']:.2f} ms")

    one_step = ours["1x1"]["seconds_per_epoch"] / steps
    compute_two = step - reduce_step
    b = 2 * (one_step - compute_two)
    a = one_step - b
    print(f"\nestimate for N machines of 1 rank x 1 thread (compute per step {1e3 * a:.2f} + {1e3 * b:.2f} / N ms, "
          f"{size / 1e6:.2f} MB ring all-reduce):")
    print("N     " + "".join(f"{name + ': sum, step, speed-up':<52}" for name, _, _ in NETWORKS))
    estimate = []
    for n in NODES:
        compute = a + b / n
        line = f"{n:<6}"
        for name, bandwidth, latency in NETWORKS:
            comm = ring_seconds(n, size, bandwidth, latency)
            total = compute + comm
            estimate.append({"nodes": n, "network": name, "compute_seconds": compute, "sum_seconds": comm,
                             "step_seconds": total, "speedup": one_step / total})
            mark = " (communication dominates)" if comm > compute else ""
            line += f"{f'{1e3 * comm:.2f} ms, {1e3 * total:.2f} ms, {one_step / total:.2f}x{mark}':<52}"
        print(line)

    out = args.out or os.path.join(args.build, "bench", "distributed.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump({"tapegrad": ours, "torch": theirs, "load_average": [load_start, load_end],
                   "compute_model": {"a": a, "b": b}, "estimate": estimate}, f, indent=2)
        f.write("\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
