"""JPEG parity fixture: what opencv-python's SIFT and FREAK give on real BSDS500 test photos,
read from the JPEG files themselves, under each grey conversion featleak offers. Compared by
tests/real_data.rs (sift_and_freak_on_jpeg_photos_equal_opencv_python), which runs featleak on
the same files.

Run from the repository root with the dev venv (tools/requirements.txt):
    python tools/make_jpeg_parity_fixture.py ../shared/data/photos/bsds500/test
Writes tests/fixtures/jpeg_parity.json. The photos are not stored, and nothing that could be
turned back into a picture: per photo only keypoint counts, SHA-256 digests of the keypoint
coordinates (and of FREAK's descriptor bytes) and the sum of SIFT's descriptor values.

Grey images: cvtcolor = cvtColor(imread(IMREAD_COLOR), BGR2GRAY); imread-grayscale =
imread(IMREAD_GRAYSCALE); pil = Pillow's Image.open(path).convert('L').
SIFT: cv2.SIFT_create(nfeatures=2000).detectAndCompute. FREAK: cv2.xfeatures2d.FREAK_create()
computed at featleak's Harris keypoints (re-implemented in make_sift_fixtures.py) and at
cv2.SIFT's DoG keypoints; the keypoints FREAK keeps are digested.
"""
import argparse
import hashlib
import json
import os
import sys

import cv2
import numpy as np
import PIL
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from make_sift_fixtures import MAX_KEYPOINTS, harris  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "jpeg_parity.json")
COUNT = 16
GRAYS = ("cvtcolor", "imread-grayscale", "pil")


def reference_gray(path, gray):
    """The grey image opencv-python (or Pillow) makes of the file at `path`."""
    if gray == "cvtcolor":
        return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
    if gray == "imread-grayscale":
        return cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def columns(kps, n):
    rows = [[k.pt[0], k.pt[1], k.size][:n] for k in kps]
    return np.array(rows, np.float32).reshape(-1, n)


def sift(gray):
    kps, desc = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS).detectAndCompute(gray, None)
    desc = np.zeros((0, 128), np.float32) if desc is None else desc
    return {"keypoints": len(kps), "xy_sha256": digest(columns(kps, 2)),
            "descriptor_sum": int(desc.astype(np.int64).sum())}


def freak(gray, detector):
    kps = harris(gray, top=MAX_KEYPOINTS) if detector == "harris" else \
        cv2.SIFT_create(nfeatures=MAX_KEYPOINTS).detect(gray, None)
    kps, desc = cv2.xfeatures2d.FREAK_create().compute(gray, kps)
    desc = np.zeros((0, 64), np.uint8) if desc is None else desc
    return {"keypoints": len(kps), "xy_size_sha256": digest(columns(kps, 3)),
            "descriptors_sha256": digest(desc)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos", help="the BSDS500 test photos (../shared/data/photos/bsds500/test)")
    args = ap.parse_args()
    names = sorted(f for f in os.listdir(args.photos) if f.lower().endswith((".jpg", ".jpeg")))[:COUNT]
    photos = {}
    for name in names:
        path = os.path.join(args.photos, name)
        photos[name] = {gray: {"sift+dog": sift(g), "freak+harris": freak(g, "harris"),
                               "freak+dog": freak(g, "dog")}
                        for gray, g in ((gray, reference_gray(path, gray)) for gray in GRAYS)}
    manifest = {
        "made_by": "tools/make_jpeg_parity_fixture.py",
        "opencv-python": cv2.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "photos": "the first 16 names, sorted, of photos/bsds500/test in FEATLEAK_DATA",
        "max_keypoints": MAX_KEYPOINTS,
        "digests": "SHA-256 of the row-major float32 bytes of (x, y) or (x, y, size) per kept keypoint, "
                   "in OpenCV's order; of the uint8 FREAK descriptor rows",
        "tolerance": {
            "keypoints": "exact (count and digest)",
            "freak descriptors": "exact",
            "sift descriptor_sum": "|featleak - OpenCV| <= 1 per 10000 descriptor values "
                                   "(measured: at most one unit apart per photo)",
        },
        "cases": photos,
    }
    with open(OUT, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(photos)} photos x {len(GRAYS)} grey conversions")


if __name__ == "__main__":
    main()
