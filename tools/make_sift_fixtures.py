"""SIFT parity fixtures: OpenCV's SIFT on procedural images, compared by descriptors/tests/sift_parity.rs.

Run from the repository root with the dev venv (tools/requirements.txt):
    python tools/make_sift_fixtures.py
Writes descriptors/tests/fixtures/sift/: NAME.png (the RGB input), NAME.<case>.npz
(keypoints float32 N×6: x, y, size, angle, response, octave; descriptors float32 N×128)
and manifest.json.
"""
import json
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from fixture_images import scene  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "descriptors", "tests", "fixtures", "sift")
SIZES = [(144, 192), (160, 160), (120, 200), (177, 131), (150, 190), (96, 128)]
MAX_KEYPOINTS = 2000
HARRIS_TOP = 300


def harris(gray, border=16, size=7.0, top=MAX_KEYPOINTS):
    """featleak's Harris detector: cornerHarris(2, 5, 0.04), 3×3 NMS (ties kept), R > 0, border, top-N."""
    r = cv2.cornerHarris(gray, 2, 5, 0.04)
    peak = (r == cv2.dilate(r, np.ones((3, 3), np.uint8))) & (r > 0)
    h, w = gray.shape
    peak[:border, :] = False
    peak[h - border:, :] = False
    peak[:, :border] = False
    peak[:, w - border:] = False
    ys, xs = np.nonzero(peak)  # raster order
    order = np.argsort(-r[ys, xs], kind="stable")[:top]
    return [cv2.KeyPoint(float(xs[i]), float(ys[i]), size, -1, float(r[ys[i], xs[i]]), 0) for i in order]


def to_rows(kps):
    return np.array([[k.pt[0], k.pt[1], k.size, k.angle, k.response, k.octave] for k in kps], np.float32).reshape(-1, 6)


def main():
    os.makedirs(OUT, exist_ok=True)
    cases = {}
    for i, (h, w) in enumerate(SIZES):
        name = f"scene{i}"
        rgb = scene(h, w, seed=100 + i)
        path = os.path.join(OUT, name + ".png")
        cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        gray = cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)

        sift = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS)
        kps, desc = sift.detectAndCompute(gray, None)
        np.savez_compressed(os.path.join(OUT, f"{name}.dog.npz"), keypoints=to_rows(kps), descriptors=desc.astype(np.float32))

        hk = harris(gray, top=HARRIS_TOP)
        upright = [cv2.KeyPoint(k.pt[0], k.pt[1], k.size, 0, k.response, k.octave) for k in hk]
        upright, hdesc = cv2.SIFT_create().compute(gray, upright)
        assert len(upright) == len(hk)
        np.savez_compressed(os.path.join(OUT, f"{name}.harris.npz"), keypoints=to_rows(hk), descriptors=hdesc.astype(np.float32))
        cases[name] = {"size": [h, w], "dog": len(kps), "harris": len(hk)}

    manifest = {
        "made_by": "tools/make_sift_fixtures.py",
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "inputs": "procedural RGB scenes (tools/fixture_images.py), PNG; grey = cvtColor(BGR2GRAY)",
        "cases": {
            "dog": f"cv2.SIFT_create(nfeatures={MAX_KEYPOINTS}).detectAndCompute(gray, None)",
            "harris": "featleak Harris (cornerHarris 2/5/0.04, 3x3 NMS, R>0, border 16, size 7, top 300) "
                      "then cv2.SIFT_create().compute with angle 0 (stored angle -1)",
        },
        "images": cases,
        "tolerance": {"keypoint_count": "equal", "position_px": 0.01, "descriptor_max_abs": 1.0,
                      "or_descriptor_cosine_min": 0.9999},
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    print(json.dumps(cases))


if __name__ == "__main__":
    main()
