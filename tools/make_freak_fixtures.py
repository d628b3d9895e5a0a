#!/usr/bin/env python3
"""Generate parity fixtures for the Rust port of OpenCV's FREAK descriptor.

Each case is saved as ``<case>.npz`` in ``descriptors/tests/fixtures/freak/`` with:

* ``image``          uint8 H x W grey image FREAK ran on,
* ``keypoints_in``   float32 N x 6 (x, y, size, angle, response, octave) given to FREAK,
* ``keypoints_out``  float32 M x 6 as returned by OpenCV (after its border removal, angle set),
* ``descriptors``    uint8 M x 64 from ``cv2.xfeatures2d.FREAK_create(...).compute``,
* ``config``         float32 [orientationNormalized, scaleNormalized, patternScale, nOctaves].

Files are written uncompressed (``np.savez``): the Rust side reads them with ndarray-npy's
``npz`` feature, which has no deflate support. A ``manifest.json`` records how the fixtures were made. Everything is seeded and procedural,
so re-running the script with the same OpenCV build reproduces the files.

Requires opencv-contrib-python-headless==4.6.0.66 and numpy<2.

Usage: python tools/make_freak_fixtures.py [--out DIR]
"""

import argparse
import json
import os

import cv2
import numpy as np

FREAK_DEFAULTS = dict(orientationNormalized=True, scaleNormalized=True, patternScale=22.0, nOctaves=4)
HARRIS = dict(blockSize=2, ksize=5, k=0.04, border=16, max_keypoints=500, size=32.0)
SIFT_NFEATURES = 500


def procedural_scene(h, w, seed, colour):
    """Textured shapes on a smooth gradient plus noise; BGR uint8 if colour else grey."""
    rng = np.random.default_rng(seed)
    ch = 3 if colour else 1
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.empty((h, w, ch), np.float32)
    for c in range(ch):
        a, b = rng.uniform(-0.4, 0.4, size=2)
        base[..., c] = 110 + a * xx + b * yy + 25 * np.sin(xx / rng.uniform(7, 19) + c) * np.cos(yy / rng.uniform(9, 23))
    img = np.clip(base, 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(img)
    for _ in range(40):
        colour_val = tuple(int(v) for v in rng.integers(0, 256, size=ch))
        kind = rng.integers(0, 3)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind == 0:
            x2, y2 = cx + int(rng.integers(8, 60)), cy + int(rng.integers(8, 60))
            cv2.rectangle(img, (cx, cy), (x2, y2), colour_val, -1)
        elif kind == 1:
            cv2.circle(img, (cx, cy), int(rng.integers(4, 30)), colour_val, -1)
        else:
            pts = (rng.integers(-35, 35, size=(int(rng.integers(3, 6)), 2)) + [cx, cy]).astype(np.int32)
            cv2.fillPoly(img, [pts], colour_val)
    checker = ((xx // 6 + yy // 6) % 2 == 0)[..., None]
    region = (xx > w * 0.55)[..., None] & (yy > h * 0.55)[..., None]
    img = np.where(checker & region, np.minimum(img.astype(np.int32) + 60, 255), img).astype(np.uint8)
    img = cv2.GaussianBlur(img, (3, 3), 0.8)
    noise = rng.normal(0, 6, size=img.shape if img.ndim == 3 else (h, w))
    img = np.clip(img.astype(np.float64).reshape(noise.shape) + noise, 0, 255).astype(np.uint8)
    return img if colour else img.reshape(h, w)


def to_gray(img):
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img


def harris_keypoints(gray, max_kp=HARRIS["max_keypoints"]):
    r = cv2.cornerHarris(gray, HARRIS["blockSize"], HARRIS["ksize"], HARRIS["k"])
    mask = (r == cv2.dilate(r, np.ones((3, 3), np.uint8))) & (r > 0)
    b = HARRIS["border"]
    mask[:b, :] = False
    mask[-b:, :] = False
    mask[:, :b] = False
    mask[:, -b:] = False
    ys, xs = np.nonzero(mask)  # raster order
    resp = r[ys, xs]
    order = np.argsort(-resp, kind="stable")[:max_kp]
    return [cv2.KeyPoint(float(xs[i]), float(ys[i]), HARRIS["size"], -1.0, float(resp[i]), 0) for i in order]


def dog_keypoints(gray):
    return list(cv2.SIFT_create(nfeatures=SIFT_NFEATURES).detect(gray, None))


def pattern_sizes(pattern_scale, n_octaves):
    """OpenCV's patternSizes[64] (buildPattern), to place keypoints exactly on the border rule."""
    big_r, small_r = 2.0 / 3.0, 2.0 / 24.0
    unit = (big_r - small_r) / 21.0
    radius = [big_r, big_r - 6 * unit, big_r - 11 * unit, big_r - 15 * unit, big_r - 18 * unit, big_r - 20 * unit, small_r, 0.0]
    sigma = [r / 2.0 for r in radius[:7]] + [radius[6] / 2.0]
    step = 2.0 ** (n_octaves / 64.0)
    out = []
    for s in range(64):
        f = step ** s
        out.append(max(int(np.ceil((r + sg) * f * pattern_scale)) + 1 for r, sg in zip(radius, sigma)))
    return out


def edge_keypoints(h, w):
    ps0 = pattern_sizes(FREAK_DEFAULTS["patternScale"], FREAK_DEFAULTS["nOctaves"])[0]  # size 7 -> scale 0
    cx, cy = w / 2.0, h / 2.0
    kps = []
    # exactly on / just inside the border rule at scale index 0 (size 7)
    for x, y in [(ps0, cy), (ps0 + 0.01, cy), (w - ps0, cy), (w - ps0 - 0.01, cy),
                 (cx, ps0), (cx, ps0 + 0.25), (cx, h - ps0), (cx, h - ps0 - 0.5),
                 (ps0 + 1, ps0 + 1), (w - ps0 - 1, h - ps0 - 1)]:
        kps.append(cv2.KeyPoint(float(x), float(y), 7.0, -1.0, 0.0, 0))
    # image corners and outside
    for x, y in [(0, 0), (w - 1, h - 1), (-5, 10), (w + 3, h / 2), (0.5, 0.5)]:
        kps.append(cv2.KeyPoint(float(x), float(y), 7.0, -1.0, 0.0, 0))
    # extreme sizes at the centre (1 and 0 clamp to scale 0, 500 / 1e6 clamp to 63)
    for s in [1.0, 0.0, 3.5, 6.9, 7.0, 7.2, 12.0, 500.0, 1e6]:
        kps.append(cv2.KeyPoint(float(cx) + 0.37, float(cy) - 0.61, s, 45.0, 1.0, 2))
    # sub-pixel centres with a non-trivial angle/octave, size range that fits
    rng = np.random.default_rng(7)
    for _ in range(30):
        s = float(rng.uniform(2, 30))
        kps.append(cv2.KeyPoint(float(rng.uniform(60, w - 60)), float(rng.uniform(60, h - 60)), s,
                                float(rng.uniform(0, 360)), float(rng.uniform(0, 1)), int(rng.integers(-1, 4))))
    return kps


def kp_array(kps):
    arr = np.array([[k.pt[0], k.pt[1], k.size, k.angle, k.response, k.octave] for k in kps], np.float64)
    return arr.reshape(-1, 6).astype(np.float32)


def run_case(out_dir, name, gray, kps, config, note):
    freak = cv2.xfeatures2d.FREAK_create(config["orientationNormalized"], config["scaleNormalized"],
                                         config["patternScale"], config["nOctaves"])
    kin = kp_array(kps)
    kps_out, desc = freak.compute(gray, list(kps))
    if desc is None:
        desc = np.zeros((0, 64), np.uint8)
    kout = kp_array(kps_out)
    assert desc.shape == (len(kps_out), 64), (name, desc.shape, len(kps_out))
    cfg = np.array([config["orientationNormalized"], config["scaleNormalized"], config["patternScale"],
                    config["nOctaves"]], np.float32)
    np.savez(os.path.join(out_dir, name + ".npz"), image=gray, keypoints_in=kin,
                        keypoints_out=kout, descriptors=desc.astype(np.uint8), config=cfg)
    print(f"{name}: image {gray.shape[1]}x{gray.shape[0]}, {len(kin)} keypoints in, {len(kout)} out")
    return dict(name=name, image_hw=list(gray.shape), keypoints_in=int(len(kin)), keypoints_out=int(len(kout)),
                freak=config, note=note)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(here, "..", "descriptors", "tests", "fixtures", "freak"))
    args = ap.parse_args()
    out_dir = os.path.normpath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    cv2.setNumThreads(1)

    # Harris keypoints have size 32 (pattern half-extent ~101 px): they need the larger scenes.
    big_a = procedural_scene(300, 400, seed=1, colour=False)
    big_b = to_gray(procedural_scene(300, 400, seed=2, colour=True))
    scene_a = procedural_scene(200, 240, seed=4, colour=False)
    scene_b = to_gray(procedural_scene(200, 240, seed=5, colour=True))
    tiny = procedural_scene(20, 20, seed=3, colour=False)
    d = FREAK_DEFAULTS
    plain = dict(d, orientationNormalized=False, scaleNormalized=False)
    small = dict(d, patternScale=8.0, nOctaves=3)

    cases = [
        run_case(out_dir, "harris_gray", big_a, harris_keypoints(big_a), d, "grey scene, Harris top-500, size 32"),
        run_case(out_dir, "dog_gray", scene_a, dog_keypoints(scene_a), d, "grey scene, SIFT DoG keypoints"),
        run_case(out_dir, "harris_colour", big_b, harris_keypoints(big_b), d, "colour scene -> BGR2GRAY, Harris"),
        run_case(out_dir, "dog_colour", scene_b, dog_keypoints(scene_b), d, "colour scene -> BGR2GRAY, SIFT DoG"),
        run_case(out_dir, "edges", scene_a, edge_keypoints(*scene_a.shape), d,
                 "hand-made: border rule boundaries, outside points, sizes 0/1/500/1e6, sub-pixel"),
        run_case(out_dir, "tiny", tiny, [cv2.KeyPoint(10.0, 10.0, s, -1.0, 0.0, 0) for s in (1.0, 7.0, 32.0)], d,
                 "20x20 image, smaller than the pattern: everything dropped"),
        run_case(out_dir, "empty", scene_a, [], d, "no keypoints"),
        run_case(out_dir, "dog_gray_plain", scene_a, dog_keypoints(scene_a), plain,
                 "orientationNormalized=False, scaleNormalized=False"),
        run_case(out_dir, "dog_gray_small_pattern", scene_a, dog_keypoints(scene_a), small,
                 "patternScale=8, nOctaves=3: inner points take the sigma<0.5 interpolation path"),
    ]
    manifest = dict(
        script="tools/make_freak_fixtures.py",
        opencv_version=cv2.__version__,
        numpy_version=np.__version__,
        descriptor="cv2.xfeatures2d.FREAK_create(orientationNormalized, scaleNormalized, patternScale, nOctaves).compute(gray, kps)",
        defaults=FREAK_DEFAULTS,
        harris=HARRIS,
        sift_nfeatures=SIFT_NFEATURES,
        keypoint_columns=["x", "y", "size", "angle", "response", "octave"],
        tolerance="bit-exact descriptors; kept keypoints equal (x, y, size exact; angle within 1e-3 deg)",
        cases=cases,
    )
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
