"""Decoding parity fixtures: what opencv-python and Pillow read from small JPEG and PNG files,
compared by datasets/tests/decode_parity.rs.

Run from the repository root with the dev venv (tools/requirements.txt):
    python tools/make_decode_fixtures.py
Writes datasets/tests/fixtures/decode/: NAME.jpg / NAME.png (the input file) and, as lossless PNG,
NAME.rgb.png (cv2.imdecode(IMREAD_COLOR), as RGB), NAME.cvtcolor.png (cvtColor(BGR2GRAY) of it),
NAME.imread-grayscale.png (cv2.imdecode(IMREAD_GRAYSCALE)) and NAME.pil.png (Pillow's
Image.open(file).convert('L')), plus manifest.json (versions, SHA-256 of every reference's pixels,
tolerance: exact). Inputs are crops of the SIFT fixtures' procedural scenes
(descriptors/tests/fixtures/sift/, tools/fixture_images.py).
"""
import hashlib
import io
import json
import os

import cv2
import numpy as np
import PIL
from PIL import Image

ROOT = os.path.join(os.path.dirname(__file__), "..")
SCENES = os.path.join(ROOT, "descriptors", "tests", "fixtures", "sift")
OUT = os.path.join(ROOT, "datasets", "tests", "fixtures", "decode")
QUALITY = 90


def scene(name, height, width):
    """Top-left crop of a SIFT fixture scene, as RGB."""
    bgr = cv2.imread(os.path.join(SCENES, name + ".png"), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(bgr[:height, :width, ::-1])


def opencv_jpeg(rgb):
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    assert ok
    return buf.tobytes()


def pillow_jpeg(rgb, subsampling, exif=None):
    out = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    Image.fromarray(rgb).save(out, "JPEG", quality=QUALITY, subsampling=subsampling, **kwargs)
    return out.getvalue()


def opencv_png(rgb):
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return buf.tobytes()


def sha256(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def main():
    os.makedirs(OUT, exist_ok=True)
    rotated = Image.Exif()
    rotated[0x0112] = 6  # EXIF orientation: rotate 90° clockwise to display
    cases = [
        # (file, bytes, how it was encoded, whether Pillow's reference applies)
        ("odd_420.jpg", opencv_jpeg(scene("scene1", 97, 131)),
         f"cv2.imencode quality {QUALITY} (4:2:0 chroma), 131x97: odd sides", True),
        ("even_444.jpg", pillow_jpeg(scene("scene5", 64, 96), subsampling=0),
         f"Pillow quality {QUALITY}, subsampling=0 (4:4:4; OpenCV 4.6 cannot choose it), 96x64", True),
        ("grey.jpg", opencv_jpeg(cv2.cvtColor(scene("scene3", 48, 72), cv2.COLOR_RGB2GRAY)),
         f"cv2.imencode quality {QUALITY} of a one-channel image (a greyscale JPEG), 72x48", True),
        ("exif_rotated.jpg", pillow_jpeg(scene("scene4", 24, 40), subsampling=2, exif=rotated.tobytes()),
         f"Pillow quality {QUALITY}, 4:2:0, EXIF orientation 6, 40x24 stored (OpenCV decodes it 24x40); "
         "no Pillow reference: Pillow does not apply the orientation", False),
        ("scene.png", opencv_png(scene("scene0", 48, 64)),
         "cv2.imencode PNG (lossless RGB), 64x48: IMREAD_GRAYSCALE goes through libpng's conversion", True),
    ]
    manifest_cases = {}
    for name, data, how, with_pil in cases:
        path = os.path.join(OUT, name)
        with open(path, "wb") as f:
            f.write(data)
        stem = os.path.splitext(name)[0]
        buf = np.frombuffer(data, np.uint8)
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        refs = {
            "rgb": np.ascontiguousarray(bgr[..., ::-1]),
            "cvtcolor": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
            "imread-grayscale": cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE),
        }
        if with_pil:
            with Image.open(path) as im:
                refs["pil"] = np.asarray(im.convert("L"))
        entry = {"encoded": how, "bytes": len(data), "size": list(bgr.shape[:2]), "references": {}}
        for kind, pixels in refs.items():
            ref = f"{stem}.{kind}.png"
            ok = cv2.imwrite(os.path.join(OUT, ref), pixels[..., ::-1] if pixels.ndim == 3 else pixels)
            assert ok
            entry["references"][kind] = {"file": ref, "sha256": sha256(pixels)}
        manifest_cases[name] = entry
    manifest = {
        "made_by": "tools/make_decode_fixtures.py",
        "opencv-python": cv2.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "references": {
            "rgb": "cv2.imdecode(bytes, IMREAD_COLOR)[..., ::-1] (featleak: load_rgb)",
            "cvtcolor": "cv2.cvtColor(cv2.imdecode(bytes, IMREAD_COLOR), COLOR_BGR2GRAY) (GrayConversion::CvtColor)",
            "imread-grayscale": "cv2.imdecode(bytes, IMREAD_GRAYSCALE) (GrayConversion::ImreadGrayscale)",
            "pil": "PIL.Image.open(file).convert('L') (GrayConversion::Pil)",
        },
        "stored_as": "lossless PNG written by cv2.imwrite; sha256 of the row-major uint8 pixels (RGB or grey)",
        "tolerance": "exact",
        "cases": manifest_cases,
    }
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"{len(cases)} cases, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
