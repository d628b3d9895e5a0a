"""Throughput of featleak's SOSNet (burn flex) and kornia's on CPU, side by side.

    python tools/bench_sosnet.py [--threads 2] [--batch 1024] [--runs 7] [--rounds 3]
           [--bin target/release/examples/bench_sosnet]
Build the Rust side first: `cargo build --release --example bench_sosnet -p featleak-descriptors`.
Needs torch and kornia. Random 32×32 patches in [0, 1], eval mode, no grad. Rounds alternate
between the two; prints each side's median patches/s over the runs of every round.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default="target/release/examples/bench_sosnet")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = kornia.feature.SOSNet(pretrained=False).eval()
    x = torch.rand(args.batch, 1, 32, 32)
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    ours, theirs = [], []
    for _ in range(args.rounds):
        out = subprocess.run([args.bin, "", str(args.batch), str(args.runs)], check=True, capture_output=True, text=True, env=env).stdout
        ours.append(float(re.search(r"median (\d+) patches/s", out).group(1)))
        theirs.append(kornia_rate(model, x, args.runs))
    print(f"SOSNet, batches of {args.batch} random 32×32 patches, {args.threads} threads, {args.rounds} alternating rounds\n")
    print("| round | featleak (burn flex) [patches/s] | kornia {} / torch {} [patches/s] | ratio |".format(kornia.__version__, torch.__version__))
    print("|---|---|---|---|")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        print(f"| {i + 1} | {a:.0f} | {b:.0f} | {a / b:.2f}× |")
    print(f"| median | {np.median(ours):.0f} | {np.median(theirs):.0f} | {np.median(ours) / np.median(theirs):.2f}× |")


if __name__ == "__main__":
    main()
