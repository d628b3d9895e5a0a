"""Parity on real photos: featleak's SIFT and FREAK against opencv-python's on the same photos.

    python tools/check_freak_photos.py PHOTO_DIR [--count 20] [--featleak target/release/featleak]
        [--source jpeg|png] [--gray cvtcolor|imread-grayscale|pil] [--json OUT.json]

--source jpeg (the default) gives featleak the photos themselves, so its decoding is checked too:
opencv-python reads them with cv2.imread and the grey image is made as --gray says (cvtcolor:
cvtColor(BGR2GRAY); imread-grayscale: cv2.imread(..., IMREAD_GRAYSCALE); pil: Pillow's
Image.open(...).convert('L')). --source png first decodes the photos with OpenCV and writes them as
PNG, so both sides see identical pixels and only the extractors are compared.

SIFT: featleak's sift+dog against cv2.SIFT_create(nfeatures=2000).detectAndCompute. FREAK: featleak
extracts FREAK on Harris and on DoG keypoints; OpenCV computes FREAK at the keypoints featleak's
detector gives (Harris re-implemented as in make_sift_fixtures.py, DoG = cv2.SIFT detect, both shown
identical by the SIFT parity fixtures). Prints one line per check and, with --json, writes the
numbers (read by the gated test in tests/real_data.rs).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from make_sift_fixtures import harris  # noqa: E402

MAX_KEYPOINTS = 2000


def reference_gray(path, gray):
    """The grey image opencv-python (or Pillow) makes of the file at `path`."""
    if gray == "cvtcolor":
        return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)
    if gray == "imread-grayscale":
        return cv2.imread(path, cv2.IMREAD_GRAYSCALE)
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def extract(args, images, out, descriptor, detector):
    cmd = [args.featleak, "extract", "--descriptor", descriptor, "--detector", detector, "--images", images,
           "--out", out, "--max-keypoints", str(MAX_KEYPOINTS)]
    if args.gray != "cvtcolor":
        cmd += ["--gray", args.gray]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def check_sift(args, images, inputs, work):
    out = os.path.join(work, "sift")
    extract(args, images, out, "sift", "dog")
    sift = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS)
    same_count = identical = 0
    max_offset = max_desc = 0.0
    count_diff = []
    found = total = 0
    for stem, path in inputs:
        kps, ref = sift.detectAndCompute(reference_gray(path, args.gray), None)
        ref_pts = np.array([k.pt for k in kps], np.float64).reshape(-1, 2)
        ours = np.load(os.path.join(out, stem + ".npz"))
        pts = ours["keypoints"][:, :2].astype(np.float64)
        count_diff.append(abs(len(pts) - len(ref_pts)) / max(len(ref_pts), 1))
        # Keypoints of ours with an OpenCV keypoint within 0.01 px (order-free).
        for chunk in np.array_split(pts, max(1, len(pts) // 256)):
            if len(ref_pts) and len(chunk):
                d = np.sqrt(((chunk[:, None, :] - ref_pts[None, :, :]) ** 2).sum(-1)).min(1)
                found += int((d <= 0.01).sum())
        total += len(pts)
        if len(pts) == len(ref_pts):
            same_count += 1
            # In order: OpenCV's order is kept, so equal sets line up row by row.
            offset = float(np.abs(pts - ref_pts).max()) if len(pts) else 0.0
            diff = float(np.abs(ours["descriptors"].astype(np.float64) - ref).max()) if len(pts) else 0.0
            max_offset, max_desc = max(max_offset, offset), max(max_desc, diff)
            identical += offset <= 0.01 and diff <= 1.0
    r = {"photos": len(inputs), "same_count": same_count, "identical": identical, "max_count_diff_percent": 100 * max(count_diff),
         "max_keypoint_offset_px": max_offset, "max_descriptor_diff": max_desc,
         "keypoints_within_0.01px_percent": 100 * found / max(total, 1), "keypoints": total}
    print(f"sift+dog: {len(inputs)} photos, same keypoint count on {same_count} (largest count difference "
          f"{r['max_count_diff_percent']:.2f} %), identical (offsets <= 0.01 px, descriptors within 1) on "
          f"{identical}; on same-count photos, max keypoint offset {max_offset:.4g} px, max descriptor "
          f"difference {max_desc:.4g}; {r['keypoints_within_0.01px_percent']:.3f} % of {total} keypoints have an "
          f"OpenCV keypoint within 0.01 px")
    return r


def check_freak(args, images, inputs, work, detector):
    out = os.path.join(work, "freak-" + detector)
    extract(args, images, out, "freak", detector)
    freak = cv2.xfeatures2d.FREAK_create()
    same_sets = bits = bits_equal = desc = desc_equal = at_ours = at_ours_equal = 0
    for stem, path in inputs:
        gray = reference_gray(path, args.gray)
        ours = np.load(os.path.join(out, stem + ".npz"))
        # OpenCV's FREAK on its own grey image at featleak's kept keypoints: the descriptors alone.
        mine = [cv2.KeyPoint(float(k[0]), float(k[1]), float(k[2]), float(k[3]), float(k[4]), int(k[5]))
                for k in ours["keypoints"]]
        mine_kept, mine_ref = freak.compute(gray, mine)
        if len(mine_kept) == len(mine) and len(mine):
            at_ours += len(mine)
            at_ours_equal += int((ours["descriptors"] == mine_ref).all(axis=1).sum())
        kps = harris(gray, top=MAX_KEYPOINTS) if detector == "harris" else \
            cv2.SIFT_create(nfeatures=MAX_KEYPOINTS).detect(gray, None)
        kps, ref = freak.compute(gray, kps)
        ref_pts = np.array([[k.pt[0], k.pt[1], k.size] for k in kps], np.float32).reshape(-1, 3)
        if ours["keypoints"].shape[0] == len(kps) and np.array_equal(ours["keypoints"][:, :3], ref_pts):
            same_sets += 1
            a, b = np.unpackbits(ours["descriptors"], axis=1), np.unpackbits(ref, axis=1)
            bits += a.size
            bits_equal += int((a == b).sum())
            desc += len(kps)
            desc_equal += int((ours["descriptors"] == ref).all(axis=1).sum())
    r = {"photos": len(inputs), "same_keypoints": same_sets, "bits_equal_percent": 100 * bits_equal / max(bits, 1),
         "identical_descriptors_percent": 100 * desc_equal / max(desc, 1), "descriptors": desc,
         "identical_at_featleak_keypoints_percent": 100 * at_ours_equal / max(at_ours, 1)}
    print(f"freak+{detector}: {len(inputs)} photos, kept keypoints equal on {same_sets}; "
          f"bits equal {r['bits_equal_percent']:.4f} %, identical descriptors "
          f"{r['identical_descriptors_percent']:.4f} % ({desc} descriptors); at featleak's keypoints "
          f"{r['identical_at_featleak_keypoints_percent']:.4f} % identical ({at_ours})")
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photos")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--featleak", default="target/release/featleak")
    ap.add_argument("--source", choices=["jpeg", "png"], default="jpeg")
    ap.add_argument("--gray", choices=["cvtcolor", "imread-grayscale", "pil"], default="cvtcolor")
    ap.add_argument("--json")
    args = ap.parse_args()
    names = sorted(f for f in os.listdir(args.photos) if f.lower().endswith((".jpg", ".jpeg", ".png")))[: args.count]
    work = tempfile.mkdtemp()
    images = os.path.join(work, "images")
    os.makedirs(images)
    inputs = []
    for n in names:
        stem, src = os.path.splitext(n)[0], os.path.join(os.path.abspath(args.photos), n)
        if args.source == "png":
            path = os.path.join(images, stem + ".png")
            cv2.imwrite(path, cv2.imread(src))
        else:
            path = os.path.join(images, n)
            os.symlink(src, path)
        inputs.append((stem, path))
    results = {"source": args.source, "gray": args.gray, "opencv": cv2.__version__,
               "sift+dog": check_sift(args, images, inputs, work)}
    for detector in ("harris", "dog"):
        results["freak+" + detector] = check_freak(args, images, inputs, work, detector)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
