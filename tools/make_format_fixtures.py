"""Writes the feature-format fixtures of descriptors/tests/feature_formats.rs.

Tiny synthetic keypoints and descriptors (no photos) written with h5py in hloc's features.h5
layout and with Python's sqlite3 in COLMAP 3.8's database.db layout (the statements of COLMAP
3.8's scripts/python/database.py), plus broken variants, into descriptors/tests/fixtures/formats/,
and manifest.json: the versions used, what each file holds in featleak's conventions (pixel
centres at integers, size = 2 × scale, angle in degrees), the tolerance, and the layouts (dataset
dtypes and shapes, table columns) featleak's own files must have.

    .venv/bin/python tools/make_format_fixtures.py
"""

import json
import sqlite3
import sys
from pathlib import Path

import h5py
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "descriptors/tests/fixtures/formats"

MAX_IMAGE_ID = 2**31 - 1
# COLMAP 3.8 scripts/python/database.py.
COLMAP_38 = [
    """CREATE TABLE IF NOT EXISTS cameras (
    camera_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    model INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    params BLOB,
    prior_focal_length INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS images (
    image_id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    camera_id INTEGER NOT NULL,
    prior_qw REAL,
    prior_qx REAL,
    prior_qy REAL,
    prior_qz REAL,
    prior_tx REAL,
    prior_ty REAL,
    prior_tz REAL,
    CONSTRAINT image_id_check CHECK(image_id >= 0 and image_id < {}),
    FOREIGN KEY(camera_id) REFERENCES cameras(camera_id))
""".format(MAX_IMAGE_ID),
    """CREATE TABLE IF NOT EXISTS keypoints (
    image_id INTEGER PRIMARY KEY NOT NULL,
    rows INTEGER NOT NULL,
    cols INTEGER NOT NULL,
    data BLOB,
    FOREIGN KEY(image_id) REFERENCES images(image_id) ON DELETE CASCADE)
""",
    """CREATE TABLE IF NOT EXISTS descriptors (
    image_id INTEGER PRIMARY KEY NOT NULL,
    rows INTEGER NOT NULL,
    cols INTEGER NOT NULL,
    data BLOB,
    FOREIGN KEY(image_id) REFERENCES images(image_id) ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS matches (
    pair_id INTEGER PRIMARY KEY NOT NULL,
    rows INTEGER NOT NULL,
    cols INTEGER NOT NULL,
    data BLOB)""",
    """CREATE TABLE IF NOT EXISTS two_view_geometries (
    pair_id INTEGER PRIMARY KEY NOT NULL,
    rows INTEGER NOT NULL,
    cols INTEGER NOT NULL,
    data BLOB,
    config INTEGER NOT NULL,
    F BLOB,
    E BLOB,
    H BLOB,
    qvec BLOB,
    tvec BLOB)
""",
    "CREATE UNIQUE INDEX IF NOT EXISTS index_name ON images(name)",
]

rng = np.random.default_rng(19)


def keypoints(n, w, h):
    """N×2 float32 in OpenCV's convention, inside a w×h image."""
    return (rng.random((n, 2)) * [w - 1, h - 1]).astype(np.float32)


def expected(xy, desc, size, scales=None, oris=None, scores=None, image=None):
    """What featleak must read, in its conventions (descriptors one row per keypoint)."""
    n = len(xy)
    return {
        "image_size_hw": list(size),
        "x": xy[:, 0].astype(float).tolist(),
        "y": xy[:, 1].astype(float).tolist(),
        "size": (2.0 * scales).astype(float).tolist() if scales is not None else [2.0] * n,
        "angle": oris.astype(float).tolist() if oris is not None else [-1.0] * n,
        "response": scores.astype(float).tolist() if scores is not None else [0.0] * n,
        "descriptors": desc.astype(float).tolist(),
        "descriptor_kind": "binary" if desc.dtype == np.uint8 and image == "binary" else "float",
    }


def hloc_fixtures(manifest):
    files = {}
    # hloc's layout: keypoints N×2, descriptors D×N, scores N, image_size [W, H] (int64).
    a_xy, a_desc = keypoints(5, 64, 48), rng.random((5, 8)).astype(np.float32)
    a_scores = rng.random(5).astype(np.float32)
    b_xy = keypoints(3, 40, 30).astype(np.float16)
    b_desc = rng.random((3, 8)).astype(np.float16)
    b_scales = (1 + rng.random(3) * 4).astype(np.float32)
    b_oris = (rng.random(3) * 360).astype(np.float32)
    with h5py.File(OUT / "hloc.h5", "w") as f:
        g = f.create_group("a/one.png")
        g.create_dataset("keypoints", data=a_xy)
        g.create_dataset("descriptors", data=a_desc.T)
        g.create_dataset("scores", data=a_scores)
        g.create_dataset("image_size", data=np.array([64, 48]))
        # hloc's `as_half`: float16 keypoints and descriptors; dog's scales and oris.
        g = f.create_group("two.jpg")
        g.create_dataset("keypoints", data=b_xy)
        g.create_dataset("descriptors", data=b_desc.T)
        g.create_dataset("scales", data=b_scales)
        g.create_dataset("oris", data=b_oris)
        g.create_dataset("image_size", data=np.array([40, 30]))
    files["hloc.h5"] = {
        "holds": "two images in hloc's layout: float32 with scores; float16 with scales and oris",
        "images": {
            "a/one.png": expected(a_xy, a_desc, (48, 64), scores=a_scores),
            "two.jpg": expected(
                b_xy.astype(np.float32), b_desc.astype(np.float32), (30, 40),
                scales=b_scales, oris=b_oris,
            ),
        },
    }
    bits = rng.integers(0, 256, (4, 32), dtype=np.uint8)
    xy = keypoints(4, 50, 50)
    with h5py.File(OUT / "hloc_binary.h5", "w") as f:
        g = f.create_group("bin.png")
        g.create_dataset("keypoints", data=xy)
        g.create_dataset("descriptors", data=bits.T)
        g.create_dataset("image_size", data=np.array([50, 50]))
    files["hloc_binary.h5"] = {
        "holds": "one image with uint8 (binary, 32 bytes) descriptors stored bytes×N",
        "images": {"bin.png": expected(xy, bits, (50, 50), image="binary")},
    }
    for name, desc, error in [
        ("hloc_transposed.h5", rng.random((6, 16)).astype(np.float32), "transpose"),
        ("hloc_mismatch.h5", rng.random((16, 7)).astype(np.float32), "expected D×6"),
    ]:
        with h5py.File(OUT / name, "w") as f:
            g = f.create_group("bad.png")
            g.create_dataset("keypoints", data=keypoints(6, 32, 32))
            g.create_dataset("descriptors", data=desc)
            g.create_dataset("image_size", data=np.array([32, 32]))
        files[name] = {
            "holds": f"6 keypoints with descriptors of shape {desc.shape}",
            "error": error,
        }
    manifest["files"].update(files)


def colmap_db(path, schema, rows):
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    for statement in schema:
        db.execute(statement)
    for row in rows:
        row(db)
    db.commit()
    db.close()


def colmap_fixtures(manifest):
    files = {}
    images = {}

    def image(name, w, h, kp_cols, n, desc_dtype=np.uint8, desc_type=None):
        xy = keypoints(n, w, h)
        scale = (1 + rng.random(n) * 3).astype(np.float32)
        ori = (rng.random(n) * 2 * np.pi - np.pi).astype(np.float32)
        if kp_cols == 2:
            data = xy + 0.5
        elif kp_cols == 4:
            data = np.column_stack([xy + 0.5, scale, ori])
        else:
            c, s = np.cos(ori) * scale, np.sin(ori) * scale
            data = np.column_stack([xy + 0.5, c, -s, s, c])
        data = data.astype(np.float32)
        if desc_dtype == np.uint8:
            desc = rng.integers(0, 120, (n, 128), dtype=np.uint8)
        else:
            desc = rng.standard_normal((n, 64)).astype(np.float32)

        def insert(db):
            params = np.array([1.2 * max(w, h), w / 2, h / 2, 0.0], np.float64)
            cam = db.execute(
                "INSERT INTO cameras VALUES (?, ?, ?, ?, ?, ?)",
                (None, 2, w, h, params.tobytes(), 0),
            ).lastrowid
            nan = float("nan")
            img = db.execute(
                "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (None, name, cam, nan, nan, nan, nan, nan, nan, nan),
            ).lastrowid
            db.execute(
                "INSERT INTO keypoints VALUES (?, ?, ?, ?)",
                (img,) + data.shape + (data.tobytes(),),
            )
            if desc_type is None:
                db.execute(
                    "INSERT INTO descriptors VALUES (?, ?, ?, ?)",
                    (img,) + desc.shape + (desc.tobytes(),),
                )
            else:
                db.execute(
                    "INSERT INTO descriptors VALUES (?, ?, ?, ?, ?)",
                    (img, desc_type) + desc.shape + (desc.tobytes(),),
                )

        angle = (np.rad2deg(ori.astype(np.float64)) % 360).astype(np.float32)
        images[name] = expected(
            xy, desc, (h, w),
            scales=scale if kp_cols > 2 else None,
            oris=angle if kp_cols > 2 else None,
        )
        return insert

    colmap_db(OUT / "colmap.db", COLMAP_38, [
        image("a/one.png", 64, 48, 4, 5),
        image("b.jpg", 40, 30, 6, 3),
        image("c.png", 20, 20, 2, 2),
    ])
    files["colmap.db"] = {
        "holds": "COLMAP 3.8 database.py layout, SIFT uint8 descriptors; keypoints with 4, 6 and "
        "2 columns (x, y at the corner origin: featleak's + 0.5)",
        "images": dict(images),
    }
    images.clear()
    schema4 = [s.replace("    rows INTEGER NOT NULL,\n    cols INTEGER NOT NULL,\n    data BLOB,\n"
                         "    FOREIGN KEY", "    type INTEGER NOT NULL,\n    rows INTEGER NOT NULL,"
                         "\n    cols INTEGER NOT NULL,\n    data BLOB,\n    FOREIGN KEY")
               if s.startswith("CREATE TABLE IF NOT EXISTS descriptors") else s
               for s in COLMAP_38]
    colmap_db(OUT / "colmap4.db", schema4, [
        image("learned.png", 32, 32, 2, 3, desc_dtype=np.float32, desc_type=1),
    ])
    files["colmap4.db"] = {
        "holds": "COLMAP 4 layout (descriptors.type column), one image with float32 descriptors "
        "of type 1 (ALIKED_N16ROT)",
        "images": dict(images),
    }

    def bad_blob(db):
        db.execute("INSERT INTO cameras VALUES (1, 2, 32, 32, NULL, 0)")
        db.execute("INSERT INTO images (image_id, name, camera_id) VALUES (1, 'bad.png', 1)")
        db.execute(
            "INSERT INTO keypoints VALUES (1, 1000000, 2, ?)",
            (np.zeros((3, 2), np.float32).tobytes(),),
        )
        db.execute("INSERT INTO descriptors VALUES (1, 3, 128, ?)", (bytes(3 * 128),))

    colmap_db(OUT / "colmap_bad_blob.db", COLMAP_38, [bad_blob])
    files["colmap_bad_blob.db"] = {
        "holds": "keypoints row claiming 1000000×2 float32 with a 24-byte blob",
        "error": "claims 1000000×2 values of 4 byte(s) but its blob holds 24 bytes",
    }
    manifest["files"].update(files)

    # The columns COLMAP 3.8's tables have, as PRAGMA table_info reports them.
    db = sqlite3.connect(OUT / "colmap.db")
    manifest["colmap_tables"] = {
        t: [[c[1], c[2], c[3], c[5]] for c in db.execute(f"PRAGMA table_info({t})")]
        for t in ["cameras", "images", "keypoints", "descriptors", "matches",
                  "two_view_geometries"]
    }
    db.close()


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {
        "generator": "tools/make_format_fixtures.py",
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version,
            "sqlite": sqlite3.sqlite_version,
        },
        "tolerance": {
            "float16": 1e-3,
            "float32": 1e-6,
            "note": "x, y, size, angle of COLMAP keypoints go through float32 sums and "
            "trigonometry: compared within float32 tolerance (1e-4 relative for angles)",
        },
        # What featleak's files must look like to hloc's readers (N keypoints, D values).
        "hloc_layout": {
            "keypoints": ["float32", ["N", 2]],
            "descriptors": ["float32", ["D", "N"]],
            "scores": ["float32", ["N"]],
            "scales": ["float32", ["N"]],
            "oris": ["float32", ["N"]],
            "image_size": ["int64", [2]],
        },
        "files": {},
    }
    hloc_fixtures(manifest)
    colmap_fixtures(manifest)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(manifest['files'])} fixtures to {OUT}")


if __name__ == "__main__":
    main()
