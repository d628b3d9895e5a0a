//! Feature files round-trip exactly and bad files give errors naming the file and the problem.

use featleak_descriptors::{
    Descriptors, ExtractorInfo, FeatureSet, Keypoint, read_features, write_features,
};
use ndarray::{Array2, array};

fn info() -> ExtractorInfo {
    ExtractorInfo {
        name: "test+none".into(),
        config: serde_json::json!({"k": 1}),
    }
}

fn kp(x: f32, y: f32, response: f32) -> Keypoint {
    Keypoint {
        x,
        y,
        size: 3.5,
        angle: -1.0,
        response,
        octave: 16_712_703,
    }
}

#[test]
fn float_binary_and_empty_sets_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let sets = [
        FeatureSet {
            image_size: (48, 64),
            keypoints: vec![kp(1.25, 2.5, 0.1), kp(63.0, 47.0, 0.9)],
            descriptors: Descriptors::Float(array![[0.5, 1.0, 255.0], [0.0, -1.0, 3.25]]),
            extractor: info(),
        },
        FeatureSet {
            image_size: (10, 20),
            keypoints: vec![kp(3.0, 4.0, 1.0)],
            descriptors: Descriptors::Binary(array![[0b1010_0001, 255]]),
            extractor: info(),
        },
        FeatureSet {
            image_size: (10, 20),
            keypoints: vec![],
            descriptors: Descriptors::Float(Array2::zeros((0, 128))),
            extractor: info(),
        },
    ];
    for (i, set) in sets.iter().enumerate() {
        let path = dir.path().join(format!("{i}.npz"));
        write_features(&path, set).unwrap();
        assert_eq!(&read_features(&path).unwrap(), set);
    }
}

#[test]
fn bad_files_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let not_zip = dir.path().join("garbage.npz");
    std::fs::write(&not_zip, b"not a zip archive").unwrap();
    let e = read_features(&not_zip).unwrap_err().to_string();
    assert!(
        e.contains("garbage.npz") && e.contains("not a readable .npz"),
        "{e}"
    );

    let missing = dir.path().join("missing.npz");
    let e = read_features(&missing).unwrap_err().to_string();
    assert!(e.contains("missing.npz"), "{e}");

    // An .npz without descriptors.
    let partial = dir.path().join("partial.npz");
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&partial).unwrap());
    npz.add_array("keypoints", &Array2::<f32>::zeros((2, 6)))
        .unwrap();
    npz.finish().unwrap();
    let e = read_features(&partial).unwrap_err().to_string();
    assert!(
        e.contains("partial.npz") && e.contains("missing array 'descriptors'"),
        "{e}"
    );

    // Keypoints with the wrong number of columns.
    let wrong = dir.path().join("wrong.npz");
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&wrong).unwrap());
    npz.add_array("keypoints", &Array2::<f32>::zeros((2, 4)))
        .unwrap();
    npz.add_array("descriptors", &Array2::<f32>::zeros((2, 8)))
        .unwrap();
    npz.add_array("image_size", &ndarray::arr1(&[10i64, 10]))
        .unwrap();
    npz.finish().unwrap();
    let e = read_features(&wrong).unwrap_err().to_string();
    assert!(e.contains("wrong.npz") && e.contains("4 columns"), "{e}");

    // Row counts that disagree.
    let rows = dir.path().join("rows.npz");
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&rows).unwrap());
    npz.add_array("keypoints", &Array2::<f32>::zeros((2, 6)))
        .unwrap();
    npz.add_array("descriptors", &Array2::<u8>::zeros((3, 8)))
        .unwrap();
    npz.add_array("image_size", &ndarray::arr1(&[10i64, 10]))
        .unwrap();
    npz.finish().unwrap();
    let e = read_features(&rows).unwrap_err().to_string();
    assert!(e.contains("2 keypoints but 3 descriptors"), "{e}");
}
