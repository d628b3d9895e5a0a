"""SOSNet parity fixtures: kornia's SOSNet with random weights, compared by descriptors/tests/sosnet_parity.rs.

Run from the repository root with the torch venv (torch + kornia, numpy<2):
    /work/venv-torch/bin/python tools/make_sosnet_fixtures.py
Writes descriptors/tests/fixtures/sosnet/:
  sosnet_random.pth         state_dict of kornia.feature.SOSNet(pretrained=False) with seeded random conv
                            weights AND random BatchNorm running statistics (so no BN is the identity),
                            torch.save (zip format); the 8×8 conv is saved as a strided view (see random_model)
  The other checkpoints hold a "cheap" SOSNet whose conv weights are overlapping strided views (strides 13, 1, 3, 5) of a
  few random numbers (torch.save stores only the small underlying storages), so they cost a few kB each:
  sosnet_cheap_legacy.pth   the cheap state_dict in the legacy (torch < 1.6) pickle format
  sosnet_cheap_wrapped.pth  the cheap state_dict wrapped as {"epoch": 3, "state_dict": {"module.<key>": ...}}
  sosnet_wrong_shape.pth    the cheap state_dict with layers.4.weight of shape 16x32x3x3
  sosnet_missing_key.pth    the cheap state_dict without layers.11.running_var
  hardnet_cheap.pth         kornia.feature.HardNet's state_dict made the same cheap way: another architecture
  patches.npz               patches uint8 N×32×32 (real-looking, cut from fixture_images.scene),
                            descriptors float32 N×128 = SOSNet(patches / 255) in eval mode,
                            descriptors_cheap float32 N×128 = the cheap SOSNet on the same input
  manifest.json
"""
import json
import os
import sys

import numpy as np
import torch
import kornia

sys.path.insert(0, os.path.dirname(__file__))
from fixture_images import scene  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "descriptors", "tests", "fixtures", "sosnet")
SEED = 1234
N_PATCHES = 64


def strided_random(shape, strides, std, gen):
    """A tensor of `shape` viewing a small random storage through overlapping `strides`.

    torch.save keeps the view and stores only the storage, which keeps the checkpoints small; the values
    still look random along every axis that matters for parity (each output channel sees its own window).
    """
    size = 1 + sum((n - 1) * s for n, s in zip(shape, strides))
    return (torch.randn(size, generator=gen) * std).as_strided(shape, strides)


def random_model():
    """kornia's SOSNet with seeded random weights and BN statistics, in eval mode, and the state_dict to save.

    Conv layers 1..6 get full i.i.d. weights. The 128×128×8×8 conv (4 MiB as float32) is a view of a
    ~20k-float storage: out channel o reads a contiguous 128·8·8 window starting at 97·o.
    """
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    model = kornia.feature.SOSNet(pretrained=False)
    saved = {}
    with torch.no_grad():
        for name, m in model.layers.named_children():
            if isinstance(m, torch.nn.Conv2d):
                co, ci, kh, kw = m.weight.shape
                std = (2.0 / (ci * kh * kw)) ** 0.5
                if kh == 8:
                    w = strided_random((co, ci, kh, kw), (97, kh * kw, kw, 1), std, gen)
                else:
                    w = torch.randn(co, ci, kh, kw, generator=gen) * std
                m.weight.copy_(w)
                saved[f"layers.{name}.weight"] = w
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 1.7 + 0.3)
                m.num_batches_tracked.fill_(1000)
    model.eval()
    sd = model.state_dict()
    assert set(saved) <= set(sd)
    for k, v in saved.items():
        assert torch.equal(sd[k], v)
    sd.update(saved)
    return model, sd


def cheap_state_dict(model):
    """A state_dict of SOSNet's keys and shapes whose tensors are expanded views of tiny storages."""
    g = torch.Generator().manual_seed(SEED + 1)
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out[k] = v.clone()
        elif k.endswith(".weight"):  # conv: one random number per (out, in) pair, repeated over the kernel
            out[k] = strided_random(tuple(v.shape), (13, 1, 3, 5), (2.0 / v[0].numel()) ** 0.5, g)
        elif k.endswith("running_mean"):
            out[k] = torch.randn(v.shape, generator=g) * 0.3
        else:
            out[k] = torch.rand(v.shape, generator=g) * 1.7 + 0.3
    return out


def make_patches():
    """64 grey 32×32 patches: crops at varied positions and scales (resized with INTER_AREA-like box filter)."""
    rng = np.random.default_rng(SEED)
    patches = []
    for i in range(4):
        rgb = scene(160, 200, seed=500 + i).astype(np.float32)
        grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        for _ in range(N_PATCHES // 4):
            f = int(rng.integers(1, 4))  # crop side 32·f, box-downsampled by f
            side = 32 * f
            y = int(rng.integers(0, grey.shape[0] - side + 1))
            x = int(rng.integers(0, grey.shape[1] - side + 1))
            crop = grey[y:y + side, x:x + side].reshape(32, f, 32, f).mean(axis=(1, 3))
            patches.append(np.clip(crop.round(), 0, 255).astype(np.uint8))
    # A flat patch: instance norm maps it to zeros, so only the BN statistics drive the descriptor.
    patches[-1][:] = 128
    return np.stack(patches)


def main():
    os.makedirs(OUT, exist_ok=True)
    model, sd = random_model()
    torch.save(sd, os.path.join(OUT, "sosnet_random.pth"))

    cheap = cheap_state_dict(model)
    torch.save(cheap, os.path.join(OUT, "sosnet_cheap_legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in cheap.items()}},
               os.path.join(OUT, "sosnet_cheap_wrapped.pth"))
    wrong = dict(cheap)
    wrong["layers.4.weight"] = strided_random((16, 32, 3, 3), (5, 1, 0, 0), 0.1, torch.Generator().manual_seed(7))
    torch.save(wrong, os.path.join(OUT, "sosnet_wrong_shape.pth"))
    missing = {k: v for k, v in cheap.items() if k != "layers.11.running_var"}
    torch.save(missing, os.path.join(OUT, "sosnet_missing_key.pth"))
    g = torch.Generator().manual_seed(SEED + 2)
    hardnet = {k: (strided_random(tuple(v.shape), (13, 1, 3, 5), 0.1, g) if v.dim() == 4 else v.clone())
               for k, v in kornia.feature.HardNet(pretrained=False).state_dict().items()}
    torch.save(hardnet, os.path.join(OUT, "hardnet_cheap.pth"))
    cheap_model = kornia.feature.SOSNet(pretrained=False)
    cheap_model.load_state_dict({k: v.contiguous() for k, v in cheap.items()})
    cheap_model.eval()

    patches = make_patches()
    x = torch.from_numpy(patches.astype(np.float32) / 255.0)[:, None]
    with torch.no_grad():
        desc = model(x).numpy().astype(np.float32)
        desc_cheap = cheap_model(x).numpy().astype(np.float32)
    np.savez_compressed(os.path.join(OUT, "patches.npz"), patches=patches, descriptors=desc,
                        descriptors_cheap=desc_cheap)

    manifest = {
        "what": "kornia.feature.SOSNet(pretrained=False) with seeded random weights and BN running stats, eval mode",
        "made_by": "tools/make_sosnet_fixtures.py",
        "seed": SEED,
        "input": "patches uint8 N×32×32; the model input is patches / 255 as float32, shape N×1×32×32",
        "files": sorted(set(os.listdir(OUT)) | {"manifest.json"}),
        "n_patches": int(len(patches)),
        "tolerance_max_abs_diff": 1e-5,
        "versions": {
            "torch": torch.__version__,
            "kornia": kornia.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote", OUT, manifest["files"])


if __name__ == "__main__":
    main()
