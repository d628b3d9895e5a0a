#!/usr/bin/env python3
"""Write parity fixtures for `featleak-eval`'s image metrics (PSNR, MAE, SSIM).

Usage:  python tools/make_metric_fixtures.py [OUT_DIR]
        (default OUT_DIR: eval/tests/fixtures/metrics next to this script's repo root)

Each case is one uncompressed .npz holding float32 images `a`, `b` (H x W grey or
H x W x 3 colour, values in [0, 1]) and optionally a bool `mask` (H x W) and the
float64 `ssim_map` (skimage's full S map, averaged over channels).  Reference
values go to manifest.json together with the exact calls and library versions.

References are computed on the float32 data cast to float64: for float32 input
skimage would keep float32 for the filtering (`_supported_float_type`), whereas
the Rust implementation accumulates in float64.  The float32-input SSIM is also
recorded (`ssim_skimage_f32_input`) for information only.
"""

import json
import sys
from pathlib import Path

import numpy as np
import scipy
import skimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

TOLERANCE = 1e-4
PSNR_CAP_DB = 100.0
SSIM_KW = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
WIN_SIZE = 2 * int(3.5 * 1.5 + 0.5) + 1  # = 11, as skimage derives it from sigma
PAD = (WIN_SIZE - 1) // 2

CALLS = {
    "ssim_grey": "structural_similarity(a, b, gaussian_weights=True, sigma=1.5, "
    "use_sample_covariance=False, data_range=1.0)",
    "ssim_colour": "structural_similarity(a, b, gaussian_weights=True, sigma=1.5, "
    "use_sample_covariance=False, data_range=1.0, channel_axis=-1)",
    "ssim_map": "same call with full=True; S averaged over the channel axis for colour",
    "ssim_masked": "S = ssim_map; mean of S[pad:-pad, pad:-pad][mask[pad:-pad, pad:-pad]], "
    "pad = (win_size - 1) // 2 = 5 (featleak definition; skimage has no mask)",
    "psnr": "peak_signal_noise_ratio(a, b, data_range=1.0), capped at 100 dB; masked: "
    "10*log10(1/mse) with mse over masked pixels and all channels",
    "mae": "np.mean(np.abs(a - b)) (over masked pixels and all channels when masked)",
    "dtype": "a, b are the stored float32 arrays cast with .astype(np.float64)",
}


def smooth_image(rng, shape, scale=6.0):
    """Random smooth-ish image in [0, 1]: sum of a few sinusoids plus noise."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = shape[2] if len(shape) == 3 else 1
    out = np.empty((h, w, chans))
    for c in range(chans):
        img = np.zeros((h, w))
        for _ in range(3):
            fy, fx = rng.uniform(0.02, 0.3, size=2) * scale / 6.0
            ph = rng.uniform(0, 2 * np.pi)
            img += np.sin(fy * yy + fx * xx + ph)
        img += 0.3 * rng.standard_normal((h, w))
        img = (img - img.min()) / (img.max() - img.min() + 1e-12)
        out[..., c] = img
    out = out if len(shape) == 3 else out[..., 0]
    return out.astype(np.float32)


def degrade(rng, a, noise=0.08):
    b = a + noise * rng.standard_normal(a.shape)
    b = 0.9 * b + 0.05  # contrast/brightness change
    return np.clip(b, 0.0, 1.0).astype(np.float32)


def psnr_ref(a, b, mask):
    if mask is None:
        if np.array_equal(a, b):
            return PSNR_CAP_DB
        return min(float(peak_signal_noise_ratio(a, b, data_range=1.0)), PSNR_CAP_DB)
    d = (a - b)[mask]
    mse = float(np.mean(d * d))
    return PSNR_CAP_DB if mse == 0.0 else min(10.0 * np.log10(1.0 / mse), PSNR_CAP_DB)


def mae_ref(a, b, mask):
    d = np.abs(a - b)
    return float(np.mean(d if mask is None else d[mask]))


def ssim_ref(a, b, mask):
    """(ssim, ssim_map, ssim_f32_input) or raises ValueError like skimage."""
    colour = a.ndim == 3
    kw = dict(SSIM_KW, channel_axis=-1) if colour else dict(SSIM_KW)
    mssim, S = structural_similarity(a, b, full=True, **kw)
    smap = S.mean(axis=-1) if colour else S
    if mask is None:
        val = float(mssim)
    else:
        crop = (slice(PAD, smap.shape[0] - PAD), slice(PAD, smap.shape[1] - PAD))
        val = float(smap[crop][mask[crop]].mean())
    f32 = float(structural_similarity(a.astype(np.float32), b.astype(np.float32), **kw))
    return val, smap, f32  # f32: skimage on the float32 arrays (computes in float32)


def main():
    root = Path(__file__).resolve().parent.parent
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "eval/tests/fixtures/metrics"
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)

    cases = []

    def add(name, a, b, mask=None, store_map=False, note=""):
        assert a.shape == b.shape and a.dtype == np.float32 and b.dtype == np.float32
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        entry = {
            "name": name,
            "file": f"{name}.npz",
            "shape": list(a.shape),
            "masked": mask is not None,
            "psnr": psnr_ref(a64, b64, mask),
            "mae": mae_ref(a64, b64, mask),
        }
        arrays = {"a": a, "b": b}
        if mask is not None:
            assert mask.shape == a.shape[:2] and mask.dtype == np.bool_
            arrays["mask"] = mask
        try:
            ssim, smap, f32 = ssim_ref(a64, b64, mask)
            entry["ssim"] = ssim
            if mask is None:
                entry["ssim_skimage_f32_input"] = f32
            if store_map:
                arrays["ssim_map"] = smap.astype(np.float64)
                entry["has_ssim_map"] = True
        except ValueError as e:
            entry["ssim"] = None
            entry["ssim_error"] = "image_too_small"
            entry["skimage_message"] = str(e)
        if note:
            entry["note"] = note
        np.savez(out_dir / f"{name}.npz", **arrays)
        cases.append(entry)

    # Grey, odd size, with the S map.
    a = smooth_image(rng, (37, 53))
    add("grey_37x53", a, degrade(rng, a), store_map=True)

    # Colour, odd size, with the S map.
    a = smooth_image(rng, (37, 53, 3))
    add("rgb_37x53", a, degrade(rng, a, 0.05), store_map=True)

    # Colour with an irregular mask (disk minus a stripe, plus random holes).
    a = smooth_image(rng, (41, 46, 3))
    yy, xx = np.mgrid[0:41, 0:46]
    mask = ((yy - 20) ** 2 + (xx - 25) ** 2 < 16**2) & ~((xx > 12) & (xx < 16))
    mask &= rng.uniform(size=mask.shape) > 0.2
    add("rgb_41x46_mask", a, degrade(rng, a, 0.1), mask=mask)

    # Grey with a rectangular mask touching the border.
    a = smooth_image(rng, (29, 31))
    mask = np.zeros((29, 31), dtype=bool)
    mask[:18, 3:25] = True
    add("grey_29x31_mask", a, degrade(rng, a, 0.12), mask=mask)

    # Minimal size: exactly the 11x11 window (crop leaves a single pixel).
    a = smooth_image(rng, (11, 11, 3))
    add("rgb_11x11", a, degrade(rng, a), note="smallest accepted size")

    # Too small for SSIM: skimage raises ValueError (win_size 11 > 7).
    a = smooth_image(rng, (7, 7))
    add("grey_7x7", a, degrade(rng, a), note="skimage raises ValueError for SSIM")
    a = smooth_image(rng, (7, 7, 3))
    add("rgb_7x7", a, degrade(rng, a), note="skimage raises ValueError for SSIM")
    a = smooth_image(rng, (9, 40))
    add("grey_9x40", a, degrade(rng, a), note="one side < 11: skimage raises ValueError")

    # Identical images: PSNR capped at 100 dB, SSIM 1.
    a = smooth_image(rng, (16, 20, 3))
    add("rgb_16x20_identical", a, a.copy(), note="PSNR capped at 100 dB")

    # Constant images: finite SSIM thanks to C1, C2.
    add(
        "grey_12x13_constant",
        np.full((12, 13), 0.5, np.float32),
        np.full((12, 13), 0.25, np.float32),
        note="constant images: S = (2*ux*uy + C1) / (ux^2 + uy^2 + C1)",
    )

    manifest = {
        "script": "tools/make_metric_fixtures.py",
        "versions": {
            "skimage": skimage.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "python": sys.version.split()[0],
        },
        "calls": CALLS,
        "win_size": WIN_SIZE,
        "pad": PAD,
        "psnr_cap_db": PSNR_CAP_DB,
        "tolerance_abs": TOLERANCE,
        "cases": cases,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(p.stat().st_size for p in out_dir.iterdir())
    print(f"wrote {len(cases)} cases to {out_dir} ({total / 1024:.1f} KiB)")


if __name__ == "__main__":
    main()
