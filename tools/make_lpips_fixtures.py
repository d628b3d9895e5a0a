"""LPIPS: the bundled linear layers and the parity fixtures, from the reference `lpips` package.

LPIPS (Zhang et al., CVPR 2018; richzhang/PerceptualSimilarity, BSD-2-Clause) compares two images
through an ImageNet backbone (torchvision's AlexNet or VGG16 `features`) and learned 1×1 "linear"
layers. The linear layers (v0.1) ship inside PyPI's `lpips` wheel and are bundled with featleak; the
backbones are torchvision's ImageNet weights, which the user supplies (none can be downloaded here).
So the fixtures use a *synthetic* backbone that both sides compute from one formula (splitmix64 of
each element's index, scaled like He's initialisation; `synthetic_backbone` below and
`eval/tests/lpips_parity.rs`), and the real linear layers:

    .venv/bin/pip download --no-deps lpips==0.1.4 -d /tmp/wheels
    .venv/bin/pip install --no-deps /tmp/wheels/lpips-0.1.4-py3-none-any.whl
    .venv/bin/python tools/make_lpips_fixtures.py

Writes
  eval/weights/lpips-v0.1-alex.safetensors, eval/weights/lpips-v0.1-vgg.safetensors
      the linear layers, F32, the package's names (`lin{k}.model.1.weight`, 1×C×1×1)
  eval/tests/fixtures/lpips/reference.npz
      a_I, b_I        uint8 H×W×3 image pairs (generated scenes; b is a blurred, noisy, shifted a,
                      or another scene)
      alex_I, vgg_I   float32 [1]: `lpips.LPIPS(net=…, pnet_rand=True)(a, b, normalize=True)` with the
                      synthetic backbone loaded
  eval/tests/fixtures/lpips/manifest.json  versions, formula, tolerances, sha256 of the linear layers
"""
import hashlib
import importlib.util
import os
import sys

import numpy as np
import safetensors.numpy
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fixture_images import scene, write_reference  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "eval", "tests", "fixtures", "lpips")
WEIGHTS = os.path.join(ROOT, "eval", "weights")
# (height, width, seed, how b is made from a).
PAIRS = [(64, 64, 51, "blur"), (80, 112, 52, "other"), (128, 128, 53, "shift")]
MASK = (1 << 64) - 1


def splitmix64(x):
    """splitmix64 of uint64 array `x` (wrapping arithmetic)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def synthetic(stream, count, bound):
    """`count` values uniform in [-bound, bound): element i is (2u − 1)·bound with
    u = (splitmix64(stream·2^40 + i) >> 11) / 2^53, computed in f64 and rounded to f32."""
    i = np.arange(count, dtype=np.uint64) + np.uint64(stream << 40)
    u = (splitmix64(i) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return ((2.0 * u - 1.0) * bound).astype(np.float32)


def synthetic_backbone(features):
    """The synthetic state_dict of torchvision `features`: conv `k` gets weight stream 2k + 1 with
    bound sqrt(6 / fan_in) and bias stream 2k + 2 with bound 0.1."""
    state = {}
    for k, layer in enumerate(m for m in features if isinstance(m, torch.nn.Conv2d)):
        index = [i for i, m in enumerate(features) if m is layer][0]
        shape = tuple(layer.weight.shape)
        fan_in = shape[1] * shape[2] * shape[3]
        w = synthetic(2 * k + 1, int(np.prod(shape)), np.sqrt(6.0 / fan_in)).reshape(shape)
        b = synthetic(2 * k + 2, shape[0], 0.1)
        state[f"{index}.weight"] = torch.from_numpy(w)
        state[f"{index}.bias"] = torch.from_numpy(b)
    return state


def distort(a, how, seed):
    rng = np.random.default_rng(seed)
    x = a.astype(np.float32)
    if how == "blur":
        x = (x + np.roll(x, 1, 0) + np.roll(x, 1, 1) + np.roll(x, -1, 0) + np.roll(x, -1, 1)) / 5
        x += rng.normal(0, 6, x.shape)
    elif how == "shift":
        x = np.roll(x, (3, -5), (0, 1)) * 0.9 + 10
    else:
        return scene(a.shape[0], a.shape[1], seed + 100)
    return np.clip(x, 0, 255).round().astype(np.uint8)


def main():
    torch.set_num_threads(1)
    import lpips

    package = importlib.util.find_spec("lpips").submodule_search_locations[0]
    manifest = {
        "generator": "tools/make_lpips_fixtures.py",
        "lpips": lpips.__version__ if hasattr(lpips, "__version__") else "0.1.4",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "backbone": "synthetic: conv k (0-based among the convs) weight = synthetic(2k+1, bound sqrt(6/fan_in)), "
        "bias = synthetic(2k+2, bound 0.1); synthetic(s, n, bound)[i] = (2u-1)*bound, "
        "u = (splitmix64(s*2^40 + i) >> 11) / 2^53, f64 rounded to f32",
        "pairs": [{"height": h, "width": w, "seed": s, "b": how} for h, w, s, how in PAIRS],
        "tolerance": {"distance_relative": 1e-5},
        "linear_layers": {},
    }
    nets = {}
    for name in ("alex", "vgg"):
        src = os.path.join(package, "weights", "v0.1", f"{name}.pth")
        raw = open(src, "rb").read()
        lins = torch.load(src, map_location="cpu")
        dst = os.path.join(WEIGHTS, f"lpips-v0.1-{name}.safetensors")
        safetensors.numpy.save_file({k: v.float().contiguous().numpy() for k, v in lins.items()}, dst)
        os.chmod(dst, 0o644)
        manifest["linear_layers"][name] = {
            "source": f"lpips-0.1.4 wheel, lpips/weights/v0.1/{name}.pth",
            "sha256_pth": hashlib.sha256(raw).hexdigest(),
            "sha256_safetensors": hashlib.sha256(open(dst, "rb").read()).hexdigest(),
        }
        net = lpips.LPIPS(net=name, pnet_rand=True, verbose=False).eval()
        # The five slices hold torchvision's `features` modules under their original indices.
        slices = [getattr(net.net, f"slice{j}") for j in range(1, 6)]
        features = [m for s in slices for m in s]
        state = synthetic_backbone(features)
        net.net.load_state_dict(
            {f"slice{j + 1}.{key}": v for j, s in enumerate(slices) for key, v in state.items() if key.split(".")[0] in s._modules},
            strict=True,
        )
        nets[name] = net
    arrays = {}
    with torch.inference_mode():
        for i, (h, w, seed, how) in enumerate(PAIRS):
            a = scene(h, w, seed)
            b = distort(a, how, seed)
            arrays[f"a_{i}"], arrays[f"b_{i}"] = a, b
            ta, tb = (torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255 for x in (a, b))
            for name, net in nets.items():
                arrays[f"{name}_{i}"] = net(ta, tb, normalize=True).reshape(1).numpy().astype(np.float32)
    write_reference(OUT, arrays, manifest)
    print({k: v for k, v in arrays.items() if k.startswith(("alex", "vgg"))})


if __name__ == "__main__":
    main()
