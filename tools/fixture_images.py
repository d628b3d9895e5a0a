"""Procedural test images shared by the fixture scripts (seeded, no data needed), and the way the
learned extractors' scripts write their reference outputs."""
import json
import os

import numpy as np


def scene(height, width, seed):
    """A colour image (H×W×3 uint8, RGB) of shaded shapes, stripes, gradients and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    c0, c1 = rng.random(3), rng.random(3)
    t = (x / width * rng.uniform(-1, 1) + y / height * rng.uniform(-1, 1)) % 1.0
    img += c0 * (1 - t[..., None]) + c1 * t[..., None]
    for _ in range(rng.integers(4, 9)):
        kind = rng.integers(0, 3)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.3) * min(height, width)
        color = rng.random(3)
        if kind == 0:
            mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        elif kind == 1:
            mask = (abs(x - cx) < r) & (abs(y - cy) < r * rng.uniform(0.3, 1.5))
        else:
            period = rng.uniform(4, 16)
            mask = ((x * np.cos(r) + y * np.sin(r)) % period < period / 2) & ((x - cx) ** 2 + (y - cy) ** 2 < 4 * r * r)
        img[mask] = color * rng.uniform(0.5, 1.0)
    img += rng.normal(0, 0.02, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def grey(rgb):
    """OpenCV's cvtColor(RGB2GRAY) rounding, in integers (the weights 4899, 9617, 1868 of 2^14)."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    return ((r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14).astype(np.uint8)


def write_reference(out_dir, arrays, manifest):
    """Writes OUT_DIR/reference.npz (the arrays, compressed) and OUT_DIR/manifest.json, and prints
    the manifest."""
    os.makedirs(out_dir, exist_ok=True)
    np.savez_compressed(os.path.join(out_dir, "reference.npz"), **arrays)
    with open(os.path.join(out_dir, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    print(json.dumps(manifest, indent=2))
