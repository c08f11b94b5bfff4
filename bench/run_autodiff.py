#!/usr/bin/python3
"""Runs tapegrad's autodiff bench and the same cases in PyTorch in one go, and prints them side by side.

  /usr/bin/python3 bench/run_autodiff.py [--build build] [--repeats 5] [--out build/bench/autodiff.json]

Ratio is PyTorch seconds / tapegrad seconds: how many times faster tapegrad is. Each time is the median
of --repeats runs: the first run of each pays one-time costs (buffer pools, lazy loading), which the
median leaves out from 3 repeats on. The two programs run one after the other, so they never share the CPU.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BUILD = os.path.relpath(os.path.join(HERE, "..", "build"))


def run_json(command):
    """Runs a bench program with --json; returns its header (stderr) and its results by case."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        print(f"run_autodiff: {' '.join(command)} exited with {done.returncode}", file=sys.stderr)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if not results:
        sys.exit(f"run_autodiff: no results from {' '.join(command)}")
    return done.stderr.strip(), {r["case"]: r for r in results}


def outcome(result):
    if "final_loss" in result:
        return f"loss {result['final_loss']:.4f}"
    return "passed" if result["passed"] else "FAILED"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=DEFAULT_BUILD, help="meson build folder (default: the project's build/)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", choices=["small_graph", "gradcheck", "all"], default="all")
    parser.add_argument("--out", help="where to write the table as JSON (default: BUILD/bench/autodiff.json)")
    args = parser.parse_args()
    out = args.out or os.path.join(args.build, "bench", "autodiff.json")
    common = ["--json", "--case", args.case, "--repeats", str(args.repeats)]

    tapegrad_header, ours = run_json([os.path.join(args.build, "bench", "autodiff_bench")] + common)
    torch_header, theirs = run_json([sys.executable, os.path.join(HERE, "autodiff_torch.py")] + common)
    print(tapegrad_header)
    print(torch_header)
    print(f"median of {args.repeats} runs each\n")

    rows = []
    print(f"{'case':<12} {'tapegrad s':>11} {'PyTorch s':>10} {'ratio':>12}   {'tapegrad':<13} {'PyTorch':<13}")
    for case in ours:
        a, b = ours[case], theirs[case]
        ratio = b["seconds"] / a["seconds"]
        rows.append({"case": case, "tapegrad_seconds": a["seconds"], "torch_seconds": b["seconds"],
                     "ratio": ratio, "tapegrad": a, "torch": b})
        print(f"{case:<12} {a['seconds']:>11.4f} {b['seconds']:>10.4f} {ratio:>6.1f}x faster"
              f"   {outcome(a):<13} {outcome(b):<13}")

    table = {"tapegrad_blas": tapegrad_header, "torch": torch_header, "repeats": args.repeats, "cases": rows}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(table, f, indent=2)
        f.write("\n")
    print(f"\nwrote {out}")
    failed = [r["case"] for r in rows if not (r["tapegrad"].get("passed", True) and r["torch"].get("passed", True))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
