#!/usr/bin/env python3
"""How much of a reconstruction's error is colour: rescores the reconstructions of
`featleak attack reconstruct --images` with oracle help from the true photo.

    python3 tools/colour_oracle.py REC_DIR [REC_DIR ...]

REC_DIR is a reconstruct output folder (index.html embeds each victim's reference at the
reconstruction's size; NAME.png is the reconstruction). For every folder it prints the mean over
its victims of:

  rgb            PSNR / SSIM of the reconstruction as featleak scores it (scikit-image, 8-bit,
                 SSIM over RGB channels, Gaussian 11×11 σ 1.5): checks the extraction below
  luma           PSNR / SSIM of the luma (BT.601 Y) alone: what the grey-level picture gets right
  true mean      the reconstruction shifted per channel to the photo's mean colour
  true chroma    the reconstruction's luma with the photo's chroma (YCbCr, BT.601)

Needs numpy, pillow and scikit-image. Diagnostic only; nothing in featleak uses it.
"""
import base64
import io
import json
import os
import re
import sys

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio as psnr
from skimage.metrics import structural_similarity as ssim

ROW = re.compile(r'data:image/png;base64,([A-Za-z0-9+/=]+)')


def references(folder):
    """The reference of every gallery row, by victim name, in the order of metrics.json."""
    names = [i["name"] for i in json.load(open(os.path.join(folder, "metrics.json")))["images"]]
    html = open(os.path.join(folder, "index.html")).read()
    pictures = ROW.findall(html)
    # Each row shows reference, revealed keypoints, reconstruction.
    assert len(pictures) == 3 * len(names), (len(pictures), len(names))
    return {n: decode(pictures[3 * i]) for i, n in enumerate(names)}


def decode(b64):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"))


def ycbcr(rgb):
    return np.asarray(Image.fromarray(rgb).convert("YCbCr"))


def rgb_of(ycc):
    return np.asarray(Image.fromarray(ycc, "YCbCr").convert("RGB"))


def scores(ref, rec):
    """PSNR and SSIM of two 8-bit images, RGB (H×W×3) or grey (H×W), as featleak computes them."""
    return (psnr(ref, rec, data_range=255),
            ssim(ref, rec, data_range=255, channel_axis=2 if ref.ndim == 3 else None,
                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for folder in sys.argv[1:]:
        rows = {k: [] for k in ("rgb", "luma", "true mean", "true chroma")}
        for name, ref in references(folder).items():
            rec = np.asarray(Image.open(os.path.join(folder, name + ".png")).convert("RGB"))
            rows["rgb"].append(scores(ref, rec))
            rows["luma"].append(scores(ycbcr(ref)[..., 0], ycbcr(rec)[..., 0]))
            shift = ref.reshape(-1, 3).mean(0) - rec.reshape(-1, 3).mean(0)
            shifted = np.clip(np.rint(rec + shift), 0, 255).astype(np.uint8)
            rows["true mean"].append(scores(ref, shifted))
            mixed = ycbcr(ref).copy()
            mixed[..., 0] = ycbcr(rec)[..., 0]
            rows["true chroma"].append(scores(ref, rgb_of(mixed)))
        print(f"{folder} ({len(rows['rgb'])} victims)")
        for k, v in rows.items():
            p, s = np.mean(v, axis=0)
            print(f"  {k:12s} PSNR {p:6.2f} dB  SSIM {s:.3f}")


if __name__ == "__main__":
    main()
