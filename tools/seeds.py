#!/usr/bin/python3
import json, statistics as st
rows = []
for v in ["vanilla", "denoising", "sparse", "contractive", "variational"]:
    for size in ["", "-h32l8"]:
        for kind in ["base", "final"]:
            vals = []
            for s in (0, 1, 2):
                m = json.load(open(f"/tmp/defaults/dig-{v}{size}-{kind}-s{s}/metrics.json"))
                vals.append(m["test_mse"])
            mean, pca = m["mean_image_test_mse"], m["pca_test_mse"]
            ratios = [a / mean for a in vals]
            print(f"| {v} | {'64-32' if not size else '64-32-8'} | {kind} | " + " / ".join(f"{a:.4f}" for a in vals)
                  + f" | {st.mean(vals):.4f} ± {st.stdev(vals):.4f} | {min(ratios):.2f}–{max(ratios):.2f} | {st.mean(vals)/pca:.2f} |")
