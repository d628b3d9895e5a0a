"""Side-by-side speed of `featleak extract` (SIFT, DoG) and opencv-python on the same photos.

    python tools/bench_extract.py PHOTO_DIR [--count 50] [--rounds 3] [--featleak target/release/featleak]

Both sides read each image, convert it to grey, run SIFT (nfeatures 2000) and write one .npz per
image. opencv-python runs in two ways on the same 2 cores: a plain loop (OpenCV's own threads
parallelise inside each image) and a 2-process pool with OpenCV single-threaded per process (one
image per core, which is what featleak does). Rounds alternate between the tools; medians are
reported. Prints a Markdown table.
"""
import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import tempfile
import time

import cv2
import numpy as np


def extract_one(args):
    path, out_dir = args
    gray = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
    kps, desc = cv2.SIFT_create(nfeatures=2000).detectAndCompute(gray, None)
    rows = np.array([[k.pt[0], k.pt[1], k.size, k.angle, k.response, k.octave] for k in kps], np.float32)
    name = os.path.splitext(os.path.basename(path))[0]
    np.savez(os.path.join(out_dir, name + ".npz"), keypoints=rows, descriptors=desc, image_size=np.array(gray.shape, np.int64))
    return len(kps)


def init_single_thread():
    cv2.setNumThreads(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--featleak", default="target/release/featleak")
    args = ap.parse_args()

    names = sorted(f for f in os.listdir(args.photos) if f.lower().endswith((".jpg", ".png")))[: args.count]
    work = tempfile.mkdtemp()
    images = os.path.join(work, "images")
    os.makedirs(images)
    for n in names:
        os.symlink(os.path.abspath(os.path.join(args.photos, n)), os.path.join(images, n))

    times = {"featleak": [], "cv2 loop": [], "cv2 2-process pool": []}
    kp_counts = {}
    for _ in range(args.rounds):
        out = tempfile.mkdtemp(dir=work)
        t = time.perf_counter()
        subprocess.run([args.featleak, "extract", "--images", images, "--out", out, "--max-keypoints", "2000",
                        "--threads", "2", "--overwrite"], check=True, stdout=subprocess.DEVNULL)
        times["featleak"].append(time.perf_counter() - t)

        out = tempfile.mkdtemp(dir=work)
        cv2.setNumThreads(2)
        t = time.perf_counter()
        counts = [extract_one((os.path.join(images, n), out)) for n in names]
        times["cv2 loop"].append(time.perf_counter() - t)
        kp_counts["cv2"] = sum(counts)

        out = tempfile.mkdtemp(dir=work)
        t = time.perf_counter()
        # "spawn": forking after OpenCV started its thread pool can deadlock.
        with mp.get_context("spawn").Pool(2, initializer=init_single_thread) as pool:

            pool.map(extract_one, [(os.path.join(images, n), out) for n in names])
        times["cv2 2-process pool"].append(time.perf_counter() - t)

    med = {k: statistics.median(v) for k, v in times.items()}
    best_cv = min(med["cv2 loop"], med["cv2 2-process pool"])
    print(f"{len(names)} images from {args.photos}, OpenCV {cv2.__version__}, {args.rounds} rounds, medians; "
          f"{kp_counts['cv2'] / len(names):.0f} keypoints per image (cv2)\n")
    print("| tool | seconds | images/s | time vs fastest opencv-python |")
    print("|---|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} | {len(names) / v:.1f} | {v / best_cv:.2f}× |")


if __name__ == "__main__":
    main()
