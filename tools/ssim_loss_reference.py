#!/usr/bin/env python3
"""Reference values for `featleak-attack`'s training SSIM and PSNR (attack/tests/network.rs,
`ssim_matches_skimage`).

Usage:  python tools/ssim_loss_reference.py

Builds the same two synthetic colour image pairs as the test, bit for bit (values computed in
float64 and rounded to float32, exactly as the Rust closure `pair(h, w, s)` does), and prints
scikit-image's SSIM and PSNR of each pair with full float64 precision:

    a[c, y, x] = f32(0.5 + 0.4 * sin(0.37 x + 0.23 y + 1.1 c + s))
    b[c, y, x] = f32(clip(f64(a) + 0.15 * cos(0.91 x (y + 1) + 0.5 c + 2 s), 0, 1))

Pairs: (h, w, s) = (32, 24, 0) and (20, 27, 1).  The references are computed on float64 copies
of the float32 images (featleak accumulates in float32 on the tensor backend; the test allows
2e-5 for SSIM and 1e-3 dB for PSNR):

    structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                          data_range=1.0, channel_axis=-1)
    peak_signal_noise_ratio(a, b, data_range=1.0)

Needs Python with tools/requirements.txt (scikit-image).  Nothing is written; copy the printed
values into the test if the images there change.
"""

import sys

import numpy as np
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

PAIRS = [(32, 24, 0.0), (20, 27, 1.0)]


def pair(h, w, s):
    """The test's image pair, channels last (H x W x 3), float32 values."""
    c, y, x = np.meshgrid(np.arange(3.0), np.arange(float(h)), np.arange(float(w)), indexing="ij")
    a = (0.5 + 0.4 * np.sin(0.37 * x + 0.23 * y + 1.1 * c + s)).astype(np.float32)
    b = np.clip(
        a.astype(np.float64) + 0.15 * np.cos(0.91 * x * (y + 1.0) + 0.5 * c + 2.0 * s), 0.0, 1.0
    ).astype(np.float32)
    return np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1)


def main():
    print(f"# skimage {skimage.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    for h, w, s in PAIRS:
        a, b = pair(h, w, s)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        ssim = structural_similarity(
            a64,
            b64,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=-1,
        )
        psnr = peak_signal_noise_ratio(a64, b64, data_range=1.0)
        print(f"pair({h}, {w}, {s}): ssim {ssim!r} psnr {psnr!r}")


if __name__ == "__main__":
    main()
