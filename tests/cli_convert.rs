//! End-to-end tests of `featleak convert` (and `extract --out FILE.h5|FILE.db`) through the
//! built binary.

mod common;

use common::{assert_error, featleak};
use featleak_descriptors::store;
use featleak_descriptors::{Descriptors, read_features};
use std::path::Path;

fn convert(from: &Path, to: &Path) -> std::process::Output {
    featleak()
        .args([
            "convert",
            "--from",
            from.to_str().unwrap(),
            "--to",
            to.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

#[test]
fn extract_to_h5_then_convert_h5_db_npz_keeps_the_features() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    common::write_scene(&images.join("a/one.png"), 96, 80, 1);
    common::write_scene(&images.join("two.jpg"), 96, 80, 2);
    let npz = dir.path().join("npz");
    let h5 = dir.path().join("features.h5");
    for out in [&npz, &h5] {
        featleak()
            .args([
                "extract",
                "--detector",
                "harris",
                "--max-keypoints",
                "40",
                "--images",
            ])
            .args([images.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .assert()
            .success();
    }
    assert!(
        !dir.path().join("features.h5.extract").exists(),
        "staging folder removed"
    );

    let db = dir.path().join("database.db");
    let back = dir.path().join("back");
    for (from, to) in [(&h5, &db), (&db, &back)] {
        let out = convert(from, to);
        assert!(out.status.success(), "{}", common::stderr(&out));
    }
    let h5_store = store::open(&h5).unwrap();
    assert_eq!(h5_store.names().unwrap(), ["a/one.png", "two.jpg"]);
    for (name, file) in [("a/one.png", "a/one.npz"), ("two.jpg", "two.npz")] {
        let original = read_features(&npz.join(file)).unwrap();
        assert_eq!(
            h5_store.read(name).unwrap(),
            original,
            "{name}: .h5 is exact"
        );
        let round = read_features(&back.join(file)).unwrap();
        assert_eq!(round.keypoints, original.keypoints, "{name}");
        assert_eq!(round.image_size, original.image_size);
        assert_eq!(round.extractor, original.extractor);
        let (Descriptors::Float(a), Descriptors::Float(b)) =
            (&round.descriptors, &original.descriptors)
        else {
            panic!("float SIFT expected")
        };
        // OpenCV's SIFT is integer-valued on the 0–255 scale: COLMAP's uint8 keeps it.
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 0.5), "{name}");
    }
}

#[test]
fn convert_refuses_what_it_cannot_read_or_must_not_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("descriptors/tests/fixtures/formats");
    let p = |name: &str| dir.path().join(name);

    assert_error(
        &convert(&fixtures.join("hloc.h5"), &p("out.hdf5")),
        "unknown extension '.hdf5'",
    );
    std::fs::write(p("mine.db"), "not a database").unwrap();
    assert_error(
        &convert(&fixtures.join("hloc.h5"), &p("mine.db")),
        "not written by featleak",
    );
    assert_eq!(std::fs::read(p("mine.db")).unwrap(), b"not a database");
    std::fs::create_dir(p("folder")).unwrap();
    std::fs::write(p("folder/notes.txt"), "mine").unwrap();
    assert_error(
        &convert(&fixtures.join("colmap.db"), &p("folder")),
        "did not write",
    );

    for (file, problem) in [
        ("hloc_transposed.h5", "hloc stores D×N"),
        ("hloc_mismatch.h5", "expected D×6"),
        ("colmap_bad_blob.db", "but its blob holds 24 bytes"),
    ] {
        let out = convert(&fixtures.join(file), &p(&file.replace('.', "_")));
        assert_error(&out, problem);
        assert_error(&out, file);
        assert!(!common::stderr(&out).contains("panicked"));
    }
}
