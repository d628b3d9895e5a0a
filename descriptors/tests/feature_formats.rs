//! Feature stores against files written by h5py and Python's sqlite3 in hloc's and COLMAP 3.8's
//! layouts (`tools/make_format_fixtures.py`, values and layouts in its manifest.json), and
//! featleak's own files read back and inspected with hdf5-metno and rusqlite directly.

use featleak_descriptors::store::{self, Format};
use featleak_descriptors::{Descriptors, ExtractorInfo, FeatureSet, Keypoint};
use ndarray::Array2;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/formats")
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("manifest.json")).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

/// Checks every image of fixture `file` against the manifest's expected values.
fn check_fixture(file: &str, tol: f32) {
    let m = manifest();
    let expected = &m["files"][file]["images"];
    let reader = store::open(&fixtures().join(file)).unwrap();
    let names = reader.names().unwrap();
    let mut want: Vec<&String> = expected.as_object().unwrap().keys().collect();
    want.sort();
    assert_eq!(names.iter().collect::<Vec<_>>(), want, "{file}");
    for name in &names {
        let e = &expected[name];
        let fs = reader.read(name).unwrap();
        assert_eq!(fs.extractor.name, "unknown");
        let hw = e["image_size_hw"].as_array().unwrap();
        assert_eq!(
            fs.image_size,
            (
                hw[0].as_u64().unwrap() as u32,
                hw[1].as_u64().unwrap() as u32
            ),
            "{file}:{name}"
        );
        for (field, get) in [
            ("x", (|k: &Keypoint| k.x) as fn(&Keypoint) -> f32),
            ("y", |k| k.y),
            ("size", |k| k.size),
            ("response", |k| k.response),
        ] {
            let want = floats(&e[field]);
            let got: Vec<f32> = fs.keypoints.iter().map(get).collect();
            assert_eq!(got.len(), want.len(), "{file}:{name} {field}");
            for (g, w) in got.iter().zip(&want) {
                assert!(close(*g, *w, tol), "{file}:{name} {field}: {g} vs {w}");
            }
        }
        for (k, w) in fs.keypoints.iter().zip(floats(&e["angle"])) {
            // Angles near 0/360 may wrap.
            let d = (k.angle - w).abs();
            assert!(
                d.min((d - 360.0).abs()) < 1e-3,
                "{file}:{name} angle {} vs {w}",
                k.angle
            );
        }
        let rows: Vec<Vec<f32>> = e["descriptors"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect();
        let want = Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j]);
        match (&fs.descriptors, e["descriptor_kind"].as_str().unwrap()) {
            (Descriptors::Float(d), "float") => {
                assert_eq!(d.dim(), want.dim(), "{file}:{name}");
                assert!(
                    d.iter().zip(&want).all(|(a, b)| close(*a, *b, tol)),
                    "{file}:{name}"
                );
            }
            (Descriptors::Binary(d), "binary") => {
                assert_eq!(d.mapv(f32::from), want, "{file}:{name}");
            }
            (d, kind) => panic!("{file}:{name}: {} descriptors, expected {kind}", d.dtype()),
        }
    }
}

#[test]
fn reads_hloc_files_written_by_h5py() {
    let tol = manifest()["tolerance"]["float16"].as_f64().unwrap() as f32;
    check_fixture("hloc.h5", tol);
    check_fixture("hloc_binary.h5", 0.0);
}

#[test]
fn reads_colmap_databases_written_by_sqlite3() {
    check_fixture("colmap.db", 1e-5);
    check_fixture("colmap4.db", 1e-6);
}

#[test]
fn refuses_broken_files_naming_the_file_and_the_problem() {
    let m = manifest();
    for (file, image) in [
        ("hloc_transposed.h5", "bad.png"),
        ("hloc_mismatch.h5", "bad.png"),
        ("colmap_bad_blob.db", "bad.png"),
    ] {
        let path = fixtures().join(file);
        let e = store::open(&path)
            .unwrap()
            .read(image)
            .unwrap_err()
            .to_string();
        let needle = m["files"][file]["error"].as_str().unwrap();
        assert!(
            e.contains(file) && e.contains(image) && e.contains(needle),
            "{e}"
        );
    }
}

fn extractor(name: &str) -> ExtractorInfo {
    ExtractorInfo {
        name: name.into(),
        config: serde_json::json!({"descriptor": {"kind": name}, "gray": "cvtcolor"}),
    }
}

/// A feature set of `n` keypoints with every field set, `descriptors(n)` as descriptors.
fn features(n: usize, (h, w): (u32, u32), descriptors: Descriptors, name: &str) -> FeatureSet {
    FeatureSet {
        image_size: (h, w),
        keypoints: (0..n)
            .map(|i| Keypoint {
                x: (i as f32 * 7.31) % (w as f32 - 1.0),
                y: (i as f32 * 3.17) % (h as f32 - 1.0),
                size: 1.5 + i as f32 * 0.37,
                angle: if i % 3 == 0 {
                    -1.0
                } else {
                    i as f32 * 11.3 % 360.0
                },
                response: 0.01 * i as f32,
                octave: (i as i32 * 257) - 3,
            })
            .collect(),
        descriptors,
        extractor: extractor(name),
    }
}

/// Integer-valued SIFT on OpenCV's 0–255 scale, as featleak's SIFT gives it.
fn sift(n: usize) -> Descriptors {
    Descriptors::Float(Array2::from_shape_fn((n, 128), |(i, j)| {
        ((i * 31 + j * 7) % 140) as f32
    }))
}

fn write(path: &Path, images: &[(&str, &FeatureSet)]) {
    let mut w = store::create(path).unwrap();
    for (name, fs) in images {
        w.write(name, fs).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn featleak_h5_has_hlocs_layout_and_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.h5");
    let a = features(7, (48, 64), sift(7), "sift+dog");
    let b = features(0, (30, 40), sift(0), "sift+dog");
    write(&path, &[("a/one.png", &a), ("b.jpg", &b)]);

    let file = hdf5_metno::File::open(&path).unwrap();
    let layout = &manifest()["hloc_layout"];
    for (image, n) in [("a/one.png", 7), ("b.jpg", 0)] {
        let group = file.group(image).unwrap();
        for (dataset, spec) in layout.as_object().unwrap() {
            let ds = group.dataset(dataset).unwrap();
            let shape: Vec<usize> = spec[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| match d.as_str() {
                    Some("N") => n,
                    Some("D") => 128,
                    _ => d.as_u64().unwrap() as usize,
                })
                .collect();
            assert_eq!(ds.shape(), shape, "{image}/{dataset}");
            let dtype = ds.dtype().unwrap().to_descriptor().unwrap();
            assert_eq!(dtype.to_string(), spec[0], "{image}/{dataset}");
        }
    }
    let size: Vec<i64> = file
        .dataset("a/one.png/image_size")
        .unwrap()
        .read_raw()
        .unwrap();
    assert_eq!(size, [64, 48], "image_size is [W, H]");
    let desc: Array2<f32> = file
        .dataset("a/one.png/descriptors")
        .unwrap()
        .read_2d()
        .unwrap();
    let Descriptors::Float(d) = &a.descriptors else {
        unreachable!()
    };
    assert_eq!(desc, d.t(), "descriptors are D×N");

    let reader = store::open(&path).unwrap();
    assert_eq!(reader.names().unwrap(), ["a/one.png", "b.jpg"]);
    assert_eq!(reader.read("a/one.png").unwrap(), a);
    assert_eq!(reader.read("b.jpg").unwrap(), b);
}

#[test]
fn featleak_h5_keeps_binary_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.h5");
    let bits = Descriptors::Binary(Array2::from_shape_fn((5, 64), |(i, j)| (i * 13 + j) as u8));
    let fs = features(5, (40, 40), bits, "freak+fast");
    write(&path, &[("x.png", &fs)]);
    let ds = hdf5_metno::File::open(&path)
        .unwrap()
        .dataset("x.png/descriptors")
        .unwrap();
    assert_eq!(ds.shape(), [64, 5]);
    assert_eq!(store::open(&path).unwrap().read("x.png").unwrap(), fs);
}

#[test]
fn featleak_db_has_colmap_38s_tables_and_reads_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("database.db");
    let a = features(6, (48, 64), sift(6), "sift+dog");
    let b = features(2, (30, 40), sift(2), "sift+dog");
    write(&path, &[("a/one.png", &a), ("b.jpg", &b)]);

    let db = rusqlite::Connection::open(&path).unwrap();
    let tables = &manifest()["colmap_tables"];
    for (table, want) in tables.as_object().unwrap() {
        let got: Vec<Value> = db
            .prepare(&format!("PRAGMA table_info({table})"))
            .unwrap()
            .query_map([], |r| {
                Ok(serde_json::json!([
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(5)?
                ]))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(&Value::Array(got), want, "table {table}");
    }
    let (w, h, rows, cols, data): (i64, i64, i64, i64, Vec<u8>) = db
        .query_row(
            "SELECT width, height, rows, cols, data FROM images JOIN cameras USING (camera_id) \
             JOIN keypoints USING (image_id) WHERE name = 'a/one.png'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!((w, h, rows, cols, data.len()), (64, 48, 6, 4, 6 * 4 * 4));
    let x = f32::from_le_bytes(data[16..20].try_into().unwrap());
    assert_eq!(x, a.keypoints[1].x + 0.5, "COLMAP's origin is the corner");
    let (rows, cols, desc): (i64, i64, Vec<u8>) = db
        .query_row(
            "SELECT rows, cols, data FROM descriptors WHERE image_id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((rows, cols, desc.len()), (6, 128, 6 * 128), "uint8 SIFT");

    let reader = store::open(&path).unwrap();
    assert_eq!(reader.names().unwrap(), ["a/one.png", "b.jpg"]);
    assert_eq!(reader.read("a/one.png").unwrap(), a);
    assert_eq!(reader.read("b.jpg").unwrap(), b);
}

#[test]
fn colmap_rounds_unit_norm_descriptors_and_refuses_signed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let root = Descriptors::Float(Array2::from_shape_fn((3, 128), |(i, j)| {
        ((i + j) % 9) as f32 / 40.0
    }));
    let fs = features(3, (32, 32), root.clone(), "sift+dog");
    let path = dir.path().join("root.db");
    write(&path, &[("r.png", &fs)]);
    let back = store::open(&path).unwrap().read("r.png").unwrap();
    let (Descriptors::Float(got), Descriptors::Float(want)) = (&back.descriptors, &root) else {
        unreachable!()
    };
    assert!(
        got.iter()
            .zip(want)
            .all(|(g, w)| (g - w).abs() <= 0.5 / 512.0)
    );

    let signed = Descriptors::Float(Array2::from_elem((3, 128), -0.1));
    let mut w = store::create(&dir.path().join("s.db")).unwrap();
    let e = w
        .write("s.png", &features(3, (32, 32), signed, "sosnet+dog"))
        .unwrap_err();
    assert!(
        e.to_string().contains("uint8") && e.to_string().contains("s.png"),
        "{e}"
    );
}

#[test]
fn a_store_holds_one_extractor() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["h5", "db"] {
        let mut w = store::create(&dir.path().join(format!("f.{ext}"))).unwrap();
        w.write("a.png", &features(2, (32, 32), sift(2), "sift+dog"))
            .unwrap();
        let e = w
            .write("b.png", &features(2, (32, 32), sift(2), "sift+harris"))
            .unwrap_err();
        assert!(e.to_string().contains("one extractor"), "{e}");
    }
}

#[test]
fn npz_folder_keeps_image_names_through_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("npz");
    let a = features(4, (48, 64), sift(4), "sift+dog");
    write(&out, &[("a/one.png", &a), ("two.jpg", &a)]);
    assert!(out.join("a/one.npz").is_file() && out.join("manifest.json").is_file());
    let reader = store::open(&out).unwrap();
    assert_eq!(reader.names().unwrap(), ["a/one.png", "two.jpg"]);
    assert_eq!(reader.read("a/one.png").unwrap(), a);
}

#[test]
fn formats_follow_the_path_and_foreign_destinations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    assert_eq!(Format::of(&p("x.h5")).unwrap(), Format::Hloc);
    assert_eq!(Format::of(&p("x.db")).unwrap(), Format::Colmap);
    assert_eq!(Format::of(&p("features")).unwrap(), Format::NpzFolder);
    let e = Format::of(&p("x.hdf5")).unwrap_err().to_string();
    assert!(e.contains("unknown extension '.hdf5'"), "{e}");

    // Files of other tools: the fixtures, copied.
    for (fixture, to) in [("hloc.h5", "theirs.h5"), ("colmap.db", "theirs.db")] {
        std::fs::copy(fixtures().join(fixture), p(to)).unwrap();
        let e = store::create(&p(to)).err().unwrap().to_string();
        assert!(
            e.contains("not written by featleak") && e.contains(to),
            "{e}"
        );
    }
    std::fs::create_dir(p("folder")).unwrap();
    std::fs::write(p("folder/notes.txt"), "mine").unwrap();
    let e = store::create(&p("folder")).err().unwrap().to_string();
    assert!(e.contains("did not write"), "{e}");

    // featleak's own are replaced.
    let fs = features(2, (32, 32), sift(2), "sift+dog");
    for to in ["ours.h5", "ours.db", "ours"] {
        write(&p(to), &[("a.png", &fs)]);
        write(&p(to), &[("b.png", &fs)]);
        assert_eq!(
            store::open(&p(to)).unwrap().names().unwrap(),
            ["b.png"],
            "{to}"
        );
    }
}
