"""Reference MMA with OpenCV (python) on HPatches/Oxford-layout pairs, for parity with `featleak match-eval`.

    python tools/match_eval_reference.py PAIRS_DIR [--descriptor sift|freak] [--detector dog|harris]
           [--max-keypoints 2000] [--gray imread|cvtcolor]

Protocol (D2-Net / HPatches MMA): features on image 1 and image k, mutual nearest neighbours
(BFMatcher crossCheck; L2 for SIFT, Hamming for FREAK), a match is correct when image-1's keypoint
warped by H_1k lies within t px of the matched keypoint; MMA@t = correct / matches per pair, averaged
over pairs (a pair without matches counts 0). Prints MMA@1..10 as JSON.
"""
import argparse
import json
import os

import cv2
import numpy as np


def sequences(root):
    for dirpath, _, files in sorted(os.walk(root)):
        names = set(files)
        for first, img, hname in (("1", lambda k: str(k), lambda k: f"H_1_{k}"), ("img1", lambda k: f"img{k}", lambda k: f"H1to{k}p")):
            ext = next((e for e in ("ppm", "png", "pgm") if f"{first}.{e}" in names), None)
            if ext is None:
                continue
            for k in range(2, 7):
                if hname(k) in names:
                    yield (os.path.join(dirpath, f"{first}.{ext}"), os.path.join(dirpath, f"{img(k)}.{ext}"),
                           np.loadtxt(os.path.join(dirpath, hname(k))))
            break


def harris(gray, top, border=16, size=7.0):
    r = cv2.cornerHarris(gray, 2, 5, 0.04)
    peak = (r == cv2.dilate(r, np.ones((3, 3), np.uint8))) & (r > 0)
    h, w = gray.shape
    peak[:border, :] = peak[h - border:, :] = False
    peak[:, :border] = peak[:, w - border:] = False
    ys, xs = np.nonzero(peak)
    order = np.argsort(-r[ys, xs], kind="stable")[:top]
    return [cv2.KeyPoint(float(xs[i]), float(ys[i]), size, -1, float(r[ys[i], xs[i]]), 0) for i in order]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs")
    ap.add_argument("--descriptor", default="sift")
    ap.add_argument("--detector", default="dog")
    ap.add_argument("--max-keypoints", type=int, default=2000)
    ap.add_argument("--gray", default="cvtcolor", choices=["imread", "cvtcolor"])
    args = ap.parse_args()

    def load(path):
        if args.gray == "imread":
            return cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2GRAY)

    def features(gray):
        if args.detector == "dog":
            kps = cv2.SIFT_create(nfeatures=args.max_keypoints).detect(gray, None)
        else:
            kps = harris(gray, args.max_keypoints)
        if args.descriptor == "sift":
            if args.detector == "dog":
                return cv2.SIFT_create(nfeatures=args.max_keypoints).detectAndCompute(gray, None)
            upright = [cv2.KeyPoint(k.pt[0], k.pt[1], k.size, 0, k.response, k.octave) for k in kps]
            _, d = cv2.SIFT_create().compute(gray, upright)
            return kps, d
        return cv2.xfeatures2d.FREAK_create().compute(gray, kps)

    thresholds = range(1, 11)
    acc = np.zeros(len(thresholds))
    n_pairs = 0
    cache = {}
    for a, b, h in sequences(args.pairs):
        for p in (a, b):
            if p not in cache:
                cache[p] = features(load(p))
        (ka, da), (kb, db) = cache[a], cache[b]
        norm = cv2.NORM_L2 if args.descriptor == "sift" else cv2.NORM_HAMMING
        matches = cv2.BFMatcher(norm, crossCheck=True).match(da, db) if len(ka) and len(kb) else []
        n_pairs += 1
        if not matches:
            continue
        pa = np.array([ka[m.queryIdx].pt for m in matches], np.float64)
        pb = np.array([kb[m.trainIdx].pt for m in matches], np.float64)
        ph = np.c_[pa, np.ones(len(pa))] @ h.T
        warped = ph[:, :2] / ph[:, 2:]
        dist = np.linalg.norm(warped - pb, axis=1)
        acc += [np.mean(dist <= t) for t in thresholds]
    mma = acc / max(n_pairs, 1)
    print(json.dumps({"pairs": n_pairs, "opencv": cv2.__version__, "mma": {t: round(float(v), 4) for t, v in zip(thresholds, mma)}}))


if __name__ == "__main__":
    main()
