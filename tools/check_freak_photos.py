"""FREAK parity on real photos: featleak's FREAK against OpenCV's at the same keypoints.

    python tools/check_freak_photos.py PHOTO_DIR [--count 20] [--featleak target/release/featleak]

Photos are decoded by OpenCV and written as PNG first, so both sides see identical pixels (JPEG
decoders differ slightly). For each keypoint source (Harris, DoG) featleak extracts FREAK; OpenCV
computes FREAK at the keypoints featleak's detector gives (Harris re-implemented as in
make_sift_fixtures.py, DoG = cv2.SIFT detect, both shown identical by the SIFT parity fixtures).
Prints kept-keypoint agreement, % of bits equal and % of identical descriptors.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from make_sift_fixtures import harris  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--featleak", default="target/release/featleak")
    args = ap.parse_args()
    names = sorted(f for f in os.listdir(args.photos) if f.lower().endswith((".jpg", ".png")))[: args.count]
    work = tempfile.mkdtemp()
    images = os.path.join(work, "images")
    os.makedirs(images)
    for n in names:
        cv2.imwrite(os.path.join(images, os.path.splitext(n)[0] + ".png"), cv2.imread(os.path.join(args.photos, n)))
    freak = cv2.xfeatures2d.FREAK_create()
    for detector in ("harris", "dog"):
        out = os.path.join(work, detector)
        subprocess.run([args.featleak, "extract", "--descriptor", "freak", "--detector", detector, "--images", images,
                        "--out", out, "--max-keypoints", "2000"], check=True, stdout=subprocess.DEVNULL)
        same_sets = bits = bits_equal = desc = desc_equal = 0
        for n in names:
            stem = os.path.splitext(n)[0]
            gray = cv2.cvtColor(cv2.imread(os.path.join(images, stem + ".png")), cv2.COLOR_BGR2GRAY)
            kps = harris(gray, top=2000) if detector == "harris" else cv2.SIFT_create(nfeatures=2000).detect(gray, None)
            kps, ref = freak.compute(gray, kps)
            ours = np.load(os.path.join(out, stem + ".npz"))
            ref_pts = np.array([[k.pt[0], k.pt[1], k.size] for k in kps], np.float32).reshape(-1, 3)
            if ours["keypoints"].shape[0] == len(kps) and np.array_equal(ours["keypoints"][:, :3], ref_pts):
                same_sets += 1
                a, b = np.unpackbits(ours["descriptors"], axis=1), np.unpackbits(ref, axis=1)
                bits += a.size
                bits_equal += int((a == b).sum())
                desc += len(kps)
                desc_equal += int((ours["descriptors"] == ref).all(axis=1).sum())
        print(f"{detector}: {len(names)} photos, kept keypoints equal on {same_sets}; "
              f"bits equal {100 * bits_equal / max(bits, 1):.4f} %, identical descriptors "
              f"{100 * desc_equal / max(desc, 1):.4f} % ({desc} descriptors)")


if __name__ == "__main__":
    main()
