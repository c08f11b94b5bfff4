#!/usr/bin/python3
"""Whether tapegrad and PyTorch reach the same test MSE, within what changing the seed does: trains each
variant of bench/run_train.py with seeds 0..N-1 in both (1 thread, flush-to-zero in both), then prints per
variant each framework's mean, standard deviation and range of the final test MSE, and writes every run
as JSON. One seed gives one draw of the initial weights, the batch order and the noise; the two frameworks'
random generators differ, so their runs pair by seed number only.

  /usr/bin/python3 bench/mse_seeds.py [--build build] [--seeds 5] [--epochs 3]
                                      [--variants vanilla,denoising,sparse] [--out FILE]
"""
import argparse
import json
import os
import statistics
import sys

from run_train import DEFAULT_BUILD, HERE, VARIANTS, run_json


def summary(values):
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.5f} +- {spread:.5f}  [{min(values):.5f} .. {max(values):.5f}]"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=DEFAULT_BUILD, help="meson build folder (default: the project's build/)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per run (default 3)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from " + ", ".join(VARIANTS))
    parser.add_argument("--out", help="where to write the runs as JSON (default: BUILD/bench/mse_seeds.json)")
    args = parser.parse_args()
    bench = os.path.join(args.build, "bench", "train_bench")
    if not os.path.exists(bench):
        sys.exit(f"mse_seeds: {bench} is missing: build first (make build)")
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    runs = []
    for variant in args.variants.split(","):
        for seed in range(args.seeds):
            common = ["--variant", variant, "--epochs", str(args.epochs), "--seed", str(seed), "--json"]
            _, ours = run_json([bench, *common], env)
            _, theirs = run_json([sys.executable, os.path.join(HERE, "train_torch.py"), *common, "--flush-denormal"],
                                 env)
            runs.append({"variant": variant, "seed": seed, "tapegrad": ours["test_mse"], "torch": theirs["test_mse"]})
            print(f"  {variant} seed {seed}: tapegrad {ours['test_mse']:.5f}, PyTorch {theirs['test_mse']:.5f}",
                  file=sys.stderr, flush=True)
    print(f"final test MSE after {args.epochs} epochs, seeds 0..{args.seeds - 1}: mean +- sd [min .. max]")
    for variant in args.variants.split(","):
        mine = [r for r in runs if r["variant"] == variant]
        print(f"{variant:<10} tapegrad {summary([r['tapegrad'] for r in mine])}")
        print(f"{'':<10} PyTorch  {summary([r['torch'] for r in mine])}")
    out = args.out or os.path.join(args.build, "bench", "mse_seeds.json")
    with open(out, "w") as f:
        json.dump({"epochs": args.epochs, "runs": runs}, f, indent=1)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
