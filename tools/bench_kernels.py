"""Side-by-side speed of featleak's kernels and their Python peers, on the same data and cores.

    python tools/bench_kernels.py [--pairs ../shared/data/matching/hpatches/v_churchill]
           [--bin target/release/examples/bench_kernels] [--threads 2]

Build the Rust side first: `cargo build --release --example bench_kernels -p featleak-eval`.
Kernels: FREAK descriptor computation (640×480 image, 2000 Harris keypoints) vs
cv2.xfeatures2d.FREAK; mutual-NN matching of ~2000×2000 SIFT descriptors vs
cv2.BFMatcher(NORM_L2, crossCheck=True) (and Hamming for FREAK descriptors); SSIM on a 512×512 RGB
pair vs scikit-image. Medians of repeated runs; prints a Markdown table with ratios.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import skimage
from skimage.metrics import structural_similarity

sys.path.insert(0, os.path.dirname(__file__))
from fixture_images import scene  # noqa: E402
from make_sift_fixtures import harris, to_rows  # noqa: E402


def median_ms(runs, f):
    f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def ssim_pair():
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:512, 0:512] / 512.0
    a = np.stack([0.5 + 0.4 * np.sin(6 * xx + 4 * yy + k) * np.cos(3 * yy - k) for k in range(3)], axis=-1)
    a = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    b = np.clip(0.9 * a + 0.05 + 0.08 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    return a, b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", default="../shared/data/matching/hpatches/v_churchill")
    ap.add_argument("--bin", default="target/release/examples/bench_kernels")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)

    freak_gray = cv2.cvtColor(scene(480, 640, seed=11), cv2.COLOR_RGB2GRAY)
    freak_kps = harris(freak_gray, top=2000)
    if os.path.isdir(args.pairs):
        grays = [cv2.imread(os.path.join(args.pairs, f"{i}.png"), cv2.IMREAD_GRAYSCALE) for i in (1, 2)]
        source = args.pairs
    else:
        grays = [cv2.cvtColor(scene(480, 640, seed=s), cv2.COLOR_RGB2GRAY) for s in (12, 13)]
        source = "procedural scenes"
    sift = [cv2.SIFT_create(nfeatures=2000).detectAndCompute(g, None)[1] for g in grays]
    freak = cv2.xfeatures2d.FREAK_create()
    binary = [freak.compute(g, harris(g, top=2000))[1] for g in grays]
    sa, sb = ssim_pair()
    data = os.path.join(tempfile.mkdtemp(), "bench.npz")
    np.savez(data, freak_image=freak_gray, freak_keypoints=to_rows(freak_kps), sift_a=sift[0], sift_b=sift[1],
             binary_a=binary[0], binary_b=binary[1], ssim_a=sa, ssim_b=sb)

    peers = {}
    for threads in (1, args.threads):
        cv2.setNumThreads(threads)
        peers[f"freak{threads}"] = median_ms(30, lambda: freak.compute(freak_gray, list(freak_kps)))
    cv2.setNumThreads(args.threads)
    l2 = cv2.BFMatcher(cv2.NORM_L2, crossCheck=True)
    peers["l2"] = median_ms(15, lambda: l2.match(sift[0], sift[1]))
    ham = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
    peers["hamming"] = median_ms(15, lambda: ham.match(binary[0], binary[1]))
    call = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1)
    peers["ssim64"] = median_ms(7, lambda: structural_similarity(sa.astype(np.float64), sb.astype(np.float64), **call))
    peers["ssim32"] = median_ms(7, lambda: structural_similarity(sa, sb, **call))

    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    ours = json.loads(subprocess.run([args.bin, data], check=True, capture_output=True, text=True, env=env).stdout)

    print(f"OpenCV {cv2.__version__}, scikit-image {skimage.__version__}, {args.threads} threads; SIFT/FREAK matching "
          f"data from {source} ({len(sift[0])}×{len(sift[1])} SIFT, {len(binary[0])}×{len(binary[1])} FREAK)\n")
    print("| kernel | featleak [ms] | peer | peer [ms] | featleak speed-up |")
    print("|---|---|---|---|---|")
    rows = [
        ("FREAK, 2000 Harris keypoints on 640×480, 1 thread", ours["freak_compute_1t_ms"], "cv2 FREAK.compute, 1 thread", peers["freak1"]),
        (f"FREAK, same, {args.threads} threads", ours["freak_compute_ms"], f"cv2 FREAK.compute, {args.threads} threads", peers[f"freak{args.threads}"]),
        ("mutual NN, SIFT (L2)", ours["float_mutual_nn_ms"], "cv2 BFMatcher(NORM_L2, crossCheck)", peers["l2"]),
        ("mutual NN, FREAK (Hamming)", ours["binary_mutual_nn_ms"], "cv2 BFMatcher(NORM_HAMMING, crossCheck)", peers["hamming"]),
        ("SSIM 512×512 RGB", ours["ssim_ms"], "skimage structural_similarity, float64", peers["ssim64"]),
        ("SSIM 512×512 RGB", ours["ssim_ms"], "skimage structural_similarity, float32 input", peers["ssim32"]),
    ]
    for name, ms, peer, peer_ms in rows:
        print(f"| {name} | {ms:.2f} | {peer} | {peer_ms:.2f} | {peer_ms / ms:.1f}× |")
    print(f"\nkiddo (k-d tree, exact) one-way NN of {ours['queries']} SIFT queries: {ours['kiddo_one_way_ms']:.1f} ms, "
          f"agrees with brute force on {ours['kiddo_agrees_with_brute_force']}/{ours['queries']}; "
          f"featleak's brute-force mutual NN (both directions): {ours['float_mutual_nn_ms']:.1f} ms.")
    print(f"matches: featleak L2 {ours['float_matches']}, Hamming {ours['binary_matches']}; "
          f"FREAK kept {ours['freak_kept']} keypoints; SSIM {ours['ssim']:.10f}")


if __name__ == "__main__":
    main()
