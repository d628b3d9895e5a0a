"""Throughput of kornia's SOSNet on CPU, to compare with the Rust port (burn flex backend).

    /work/venv-torch/bin/python tools/bench_sosnet.py [--threads 2] [--batch 1024] [--runs 7]
Random 32×32 patches in [0, 1], eval mode, no grad; prints the median patches/s over the runs.
"""
import argparse
import time

import numpy as np
import torch
import kornia


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = kornia.feature.SOSNet(pretrained=False).eval()
    x = torch.rand(args.batch, 1, 32, 32)
    rates = []
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(args.runs):
            t = time.perf_counter()
            model(x)
            rates.append(args.batch / (time.perf_counter() - t))
    rates.sort()
    print(f"kornia {kornia.__version__} / torch {torch.__version__} SOSNet: batch {args.batch}, "
          f"{torch.get_num_threads()} threads: median {np.median(rates):.0f} patches/s "
          f"(min {rates[0]:.0f}, max {rates[-1]:.0f}, {args.runs} runs)")


if __name__ == "__main__":
    main()
