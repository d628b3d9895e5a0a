#!/usr/bin/env python3
"""Time scikit-image's SSIM on a 512x512 RGB pair (median of several runs).

Usage:  python tools/bench_ssim.py [PAIR.npz] [RUNS]
Writes the pair (float32 `a`, `b` in [0, 1], seed 7) to PAIR.npz (default
/tmp/bench_ssim_512.npz) if it does not exist, so that the Rust benchmark
(`examples/bench_ssim.rs`) can time the same data.  Run both with the same number
of cores available (e.g. `taskset -c 0,1`).
"""
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import skimage
from skimage.metrics import structural_similarity

CALL = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1)


def make_pair(path):
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:512, 0:512] / 512.0
    a = np.stack([0.5 + 0.4 * np.sin(6 * xx + 4 * yy + k) * np.cos(3 * yy - k) for k in range(3)], axis=-1)
    a = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    b = np.clip(0.9 * a + 0.05 + 0.08 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    np.savez(path, a=a, b=b)


def bench(a, b, runs):
    structural_similarity(a, b, **CALL)  # warm-up
    times, val = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        val = structural_similarity(a, b, **CALL)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times), float(val)


def main():
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench_ssim_512.npz")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 11
    if not path.exists():
        make_pair(path)
    with np.load(path) as f:
        a32, b32 = f["a"], f["b"]
    print(f"skimage {skimage.__version__}, numpy {np.__version__}, {a32.shape}, {runs} runs")
    for label, a, b in [("float64 inputs", a32.astype(np.float64), b32.astype(np.float64)), ("float32 inputs", a32, b32)]:
        med, best, val = bench(a, b, runs)
        print(f"skimage SSIM {label}: median {med:.2f} ms (min {best:.2f} ms), ssim = {val:.10f}")


if __name__ == "__main__":
    main()
