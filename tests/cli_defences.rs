//! End-to-end tests of `featleak mitigate apply --defence NAME --strength S`: descriptor-level
//! defences, alone and after a keypoint subset.

mod common;

use common::{assert_error, featleak, write_scene};
use featleak_descriptors::{Descriptors, read_features};
use std::path::{Path, PathBuf};

/// Features of two generated scenes by `descriptor` (SIFT on DoG, FREAK on Harris).
fn features(dir: &Path, descriptor: &str) -> PathBuf {
    let images = dir.join("images");
    if !images.exists() {
        std::fs::create_dir_all(&images).unwrap();
        write_scene(&images.join("a.png"), 200, 150, 1);
        write_scene(&images.join("b.png"), 200, 150, 2);
    }
    let out = dir.join(descriptor);
    let detector = if descriptor == "sift" {
        "dog"
    } else {
        "harris"
    };
    featleak()
        .args([
            "extract",
            "--descriptor",
            descriptor,
            "--detector",
            detector,
        ])
        .args(["--images", images.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .assert()
        .success();
    out
}

fn apply(features: &Path, out: &Path, args: &[&str]) -> std::process::Output {
    featleak()
        .args(["mitigate", "apply", "--seed", "4"])
        .args(["--features", features.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .args(args)
        .output()
        .unwrap()
}

fn float_rows(d: &Descriptors) -> &ndarray::Array2<f32> {
    match d {
        Descriptors::Float(d) => d,
        Descriptors::Binary(_) => panic!("binary"),
    }
}

#[test]
fn defences_change_descriptors_keep_keypoints_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let sift = features(dir.path(), "sift");
    for (name, strength) in [
        ("quantise", "2"),
        ("pca", "8"),
        ("random-projection", "16"),
        ("binarise", "32"),
        ("noise", "50"),
        ("lift-random", "4"),
    ] {
        let out = dir.path().join(name);
        let o = apply(&sift, &out, &["--defence", name, "--strength", strength]);
        assert!(o.status.success(), "{name}: {}", common::stderr(&o));
        for file in ["a.npz", "b.npz"] {
            let full = read_features(&sift.join(file)).unwrap();
            let defended = read_features(&out.join(file)).unwrap();
            assert_eq!(defended.keypoints, full.keypoints, "{name}");
            assert_eq!(defended.extractor, full.extractor, "{name}");
            let (a, b) = (
                float_rows(&full.descriptors),
                float_rows(&defended.descriptors),
            );
            assert_eq!(a.dim(), b.dim(), "{name}");
            assert_ne!(a, b, "{name}");
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        let kind = if name.starts_with("lift") {
            "lift"
        } else {
            name
        };
        assert_eq!(manifest["defence"]["kind"], kind, "{name}");
        assert!(manifest["strategy"].is_null(), "{name}");
    }
    // Two bits per value: at most four distinct values in each descriptor.
    let q = read_features(&dir.path().join("quantise/a.npz")).unwrap();
    for row in float_rows(&q.descriptors).rows() {
        let mut values: Vec<u32> = row.iter().map(|v| v.to_bits()).collect();
        values.sort();
        values.dedup();
        assert!(values.len() <= 4, "{values:?}");
    }
    // Lifting writes each file's subspace bases beside it: N×4×128, orthonormal rows.
    let lifted = read_features(&dir.path().join("lift-random/a.npz")).unwrap();
    let bases: ndarray::Array3<f32> =
        ndarray_npy::read_npy(dir.path().join("lift-random/a.subspaces.npy")).unwrap();
    assert_eq!(bases.dim(), (lifted.len(), 4, 128));
    let first = bases.index_axis(ndarray::Axis(0), 0);
    let gram = first.dot(&first.t());
    for ((i, j), v) in gram.indexed_iter() {
        let want = if i == j { 1.0 } else { 0.0 };
        assert!((v - want).abs() < 1e-4, "gram[{i}, {j}] = {v}");
    }
}

#[test]
fn a_subset_then_a_defence_and_binary_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let sift = features(dir.path(), "sift");
    let out = dir.path().join("both");
    let o = apply(
        &sift,
        &out,
        &[
            "--strategy",
            "random",
            "--keep",
            "0.5",
            "--defence",
            "quantise",
            "--strength",
            "4",
        ],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let full = read_features(&sift.join("a.npz")).unwrap();
    let part = read_features(&out.join("a.npz")).unwrap();
    assert_eq!(part.len(), (full.len() as f64 * 0.5).round() as usize);
    // The revealed keypoints are originals; their descriptors are quantised, not copied.
    assert!(part.keypoints.iter().all(|k| full.keypoints.contains(k)));
    let i = full
        .keypoints
        .iter()
        .position(|k| *k == part.keypoints[0])
        .unwrap();
    assert_ne!(part.descriptors.select(&[0]), full.descriptors.select(&[i]));

    // FREAK is binary: noise (randomised response) and coarsening apply, PCA does not.
    let freak = features(dir.path(), "freak");
    let o = apply(
        &freak,
        &dir.path().join("rr"),
        &["--defence", "noise", "--strength", "64"],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let noisy = read_features(&dir.path().join("rr/a.npz")).unwrap();
    assert!(matches!(noisy.descriptors, Descriptors::Binary(_)));
    let o = apply(
        &freak,
        &dir.path().join("coarse"),
        &["--defence", "coarsen-positions", "--strength", "8"],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let coarse = read_features(&dir.path().join("coarse/a.npz")).unwrap();
    assert!(
        coarse
            .keypoints
            .iter()
            .all(|k| (k.x + 0.5) % 8.0 == 4.0 && (k.y + 0.5) % 8.0 == 4.0)
    );
    let o = apply(
        &freak,
        &dir.path().join("pca"),
        &["--defence", "pca", "--strength", "8"],
    );
    assert_error(&o, "pca applies to float descriptors; these are binary");
}

#[test]
fn bad_defence_arguments_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let sift = features(dir.path(), "sift");
    let out = dir.path().join("out");
    for (args, needle) in [
        (&[][..], "nothing to apply"),
        (&["--defence", "quantise", "--strength", "0"][..], "1 to 16"),
        (
            &["--defence", "noise", "--strength", "-1"][..],
            "ε must be a positive",
        ),
        (
            &["--defence", "pca", "--strength", "128"][..],
            "below the descriptor's length 128",
        ),
        (
            &["--defence", "blur", "--strength", "1"][..],
            "invalid value 'blur'",
        ),
        (&["--defence", "pca"][..], "--strength"),
        (&["--strategy", "random"][..], "--keep"),
    ] {
        let o = apply(&sift, &out, args);
        assert_error(&o, needle);
    }
}

#[test]
fn hloc_and_colmap_features_are_mitigated_into_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sift = features(dir.path(), "sift");
    let h5 = dir.path().join("features.h5");
    featleak()
        .args([
            "convert",
            "--from",
            sift.to_str().unwrap(),
            "--to",
            h5.to_str().unwrap(),
        ])
        .assert()
        .success();
    let out = dir.path().join("from-h5");
    let o = apply(&h5, &out, &["--strategy", "top-response", "--keep", "0.5"]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    for name in ["a", "b"] {
        let full = read_features(&sift.join(format!("{name}.npz"))).unwrap();
        let part = read_features(&out.join(format!("{name}.npz"))).unwrap();
        assert_eq!(part.len(), (full.len() as f64 * 0.5).round() as usize);
        assert!(part.keypoints.iter().all(|k| full.keypoints.contains(k)));
    }
    // The output is a folder: a file name is refused with the way to get one.
    let o = apply(
        &h5,
        &dir.path().join("out.db"),
        &["--defence", "noise", "--strength", "9"],
    );
    assert_error(&o, "featleak convert");
}
