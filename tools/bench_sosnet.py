"""Throughput of featleak's SOSNet (burn flex) and kornia's on CPU, side by side.

    python tools/bench_sosnet.py [--threads 2] [--batch 1024] [--runs 7] [--rounds 3]
           [--bin target/release/examples/bench_sosnet [--bin OTHER_BUILD ...]]
Build the Rust side first: `cargo build --release --example bench_sosnet -p featleak-descriptors`.
Needs torch and kornia. Random 32×32 patches in [0, 1], eval mode, no grad. Rounds alternate
between the sides (each --bin, e.g. a copy of an older build to compare, then kornia); prints each
side's median patches/s over the runs of every round, and featleak / kornia ratios.
"""
import argparse
import os
import re
import subprocess
import time


import numpy as np
import torch
import kornia


def kornia_rate(model, x, runs):
    rates = []
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(runs):
            t = time.perf_counter()
            model(x)
            rates.append(x.shape[0] / (time.perf_counter() - t))
    return float(np.median(rates))


def featleak_rate(binary, batch, runs, env):
    out = subprocess.run([binary, "", str(batch), str(runs)], check=True, capture_output=True, text=True, env=env).stdout
    return float(re.search(r"median (\d+) patches/s", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", action="append", help="featleak bench_sosnet build(s) (default: target/release/examples/bench_sosnet)")
    args = ap.parse_args()
    bins = args.bin or ["target/release/examples/bench_sosnet"]
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = kornia.feature.SOSNet(pretrained=False).eval()
    x = torch.rand(args.batch, 1, 32, 32)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    ours, theirs = [[] for _ in bins], []
    for _ in range(args.rounds):
        for rates, binary in zip(ours, bins):
            rates.append(featleak_rate(binary, args.batch, args.runs, env))
        theirs.append(kornia_rate(model, x, args.runs))
    print(f"SOSNet, batches of {args.batch} random 32×32 patches, {args.threads} threads, {args.rounds} alternating rounds\n")
    names = ["featleak"] if len(bins) == 1 else [f"featleak `{b}`" for b in bins]
    ratios = ["ratio"] if len(bins) == 1 else [f"ratio {i + 1}" for i in range(len(bins))]
    kornia_name = f"kornia {kornia.__version__} / torch {torch.__version__}"
    print("| round | " + " | ".join(f"{n} [patches/s]" for n in names) + f" | {kornia_name} [patches/s] | " + " | ".join(ratios) + " |")
    print("|---" * (2 + 2 * len(bins)) + "|")
    rows = [[r[i] for r in ours] + [theirs[i]] for i in range(args.rounds)]
    medians = [float(np.median(r)) for r in ours] + [float(np.median(theirs))]
    for label, row in [(str(i + 1), row) for i, row in enumerate(rows)] + [("median", medians)]:
        cells = [f"{v:.0f}" for v in row] + [f"{v / row[-1]:.2f}×" for v in row[:-1]]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
