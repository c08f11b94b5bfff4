#!/usr/bin/python3
"""The cases of bench/autodiff_bench.cpp in PyTorch, one thread, as Debian's python3-torch has it.

  small_graph  1000 full-batch steps of the 2-1-1-1-2 tanh network on 1000 points, float32
  gradcheck    torch.autograd.gradcheck of a 64-16-4-16-64 autoencoder loss, 2276 parameters, double, batch 8

Same data and initialisation as the C++ side in distribution, drawn from numpy's generator rather than
std::mt19937_64, so final losses agree in size, not in digits.

  autodiff_torch.py [--case small_graph|gradcheck|all] [--repeats N] [--json]
"""
import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch


def make_points(n, seed):
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = rng.standard_normal(n)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return (x - x.mean(axis=0)) / x.std(axis=0)


def make_network(sizes, bias_limit, seed, dtype):
    """Glorot uniform weights (in, out), biases uniform in [-bias_limit, bias_limit]."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6 / (n_in + n_out))
        w = rng.uniform(-limit, limit, (n_in, n_out))
        b = rng.uniform(-bias_limit, bias_limit, n_out)
        params += [torch.tensor(w, dtype=dtype, requires_grad=True),
                   torch.tensor(b, dtype=dtype, requires_grad=True)]
    return params


def reconstruction_loss(params, x, sigmoid_out):
    h = x
    for i in range(0, len(params), 2):
        a = h @ params[i] + params[i + 1]
        h = torch.sigmoid(a) if sigmoid_out and i + 2 == len(params) else torch.tanh(a)
    return ((h - x) ** 2).mean()


def run_small_graph(repeats):
    steps, lr = 1000, 0.05
    x = torch.tensor(make_points(1000, 0), dtype=torch.float32)
    times = []
    for _ in range(repeats):
        # Fresh weights each repeat, so every repeat does the same work from the same start.
        params = make_network([2, 1, 1, 1, 2], 0.0, 1, torch.float32)
        start = time.perf_counter()
        for _ in range(steps):
            reconstruction_loss(params, x, False).backward()
            with torch.no_grad():
                for p in params:
                    p -= lr * p.grad
                    p.grad = None
        times.append(time.perf_counter() - start)
        with torch.no_grad():
            final_loss = reconstruction_loss(params, x, False).item()
    return {"case": "small_graph", "seconds": statistics.median(times), "runs": times,
            "steps": steps, "final_loss": final_loss}


def run_gradcheck(repeats):
    rng = np.random.default_rng(2)
    x = torch.tensor(rng.uniform(0, 1, (8, 64)), dtype=torch.float64)
    params = make_network([64, 16, 4, 16, 64], 0.1, 3, torch.float64)
    calls = 0

    def loss(*ps):
        nonlocal calls
        calls += 1
        return reconstruction_loss(ps, x, True)

    times = []
    for _ in range(repeats):
        calls = 0
        start = time.perf_counter()
        # raise_exception=False: a failure is reported as passed false, beside the time.
        passed = torch.autograd.gradcheck(loss, params, raise_exception=False)
        times.append(time.perf_counter() - start)
    return {"case": "gradcheck", "seconds": statistics.median(times), "runs": times,
            "parameters": sum(p.numel() for p in params), "evaluations": calls, "passed": bool(passed)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=["small_graph", "gradcheck", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object per case on stdout")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    torch.set_num_threads(1)
    header = f"PyTorch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    print(header, file=sys.stderr if args.json else sys.stdout)
    cases = {"small_graph": run_small_graph, "gradcheck": run_gradcheck}
    ok = True
    for name, run in cases.items():
        if args.case not in (name, "all"):
            continue
        result = run(args.repeats)
        result.update(torch=torch.__version__, threads=torch.get_num_threads())
        ok = ok and result.get("passed", True)
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            outcome = (f"final loss {result['final_loss']:.6f}" if "final_loss" in result
                       else f"passed {str(result['passed']).lower()}")
            print(f"{name:<12} {result['seconds']:.4f} s (median of {args.repeats}), {outcome}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
