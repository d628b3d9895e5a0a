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

#[test]
fn fortran_order_arrays_read_as_numpy_means_them() {
    use ndarray::ShapeBuilder;
    let dir = tempfile::tempdir().unwrap();
    let (c, f) = (dir.path().join("c.npz"), dir.path().join("f.npz"));
    let features = FeatureSet {
        image_size: (20, 30),
        keypoints: vec![kp(1.0, 2.0, 0.5), kp(3.0, 4.0, 0.25), kp(5.0, 6.0, 0.125)],
        descriptors: Descriptors::Float(Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f32)),
        extractor: info(),
    };
    write_features(&c, &features).unwrap();
    // The same arrays stored transposed in memory, as `np.array(...).T.T` or `np.asfortranarray` do.
    let fortran = |a: Array2<f32>| {
        let mut t = Array2::zeros(a.raw_dim().f());
        t.assign(&a);
        t
    };
    let rows: Vec<f32> = features.keypoints.iter().flat_map(|k| k.to_row()).collect();
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&f).unwrap());
    npz.add_array(
        "keypoints",
        &fortran(Array2::from_shape_vec((3, 6), rows).unwrap()),
    )
    .unwrap();
    let Descriptors::Float(d) = &features.descriptors else {
        unreachable!()
    };
    npz.add_array("descriptors", &fortran(d.clone())).unwrap();
    npz.add_array("image_size", &ndarray::arr1(&[20i64, 30]))
        .unwrap();
    npz.finish().unwrap();
    let read = read_features(&f).unwrap();
    assert_eq!(read.keypoints, features.keypoints);
    assert_eq!(read.descriptors, features.descriptors);
}

/// A `.npy` header claiming `shape` of float32, followed by `data`.
fn npy_claiming(shape: &str, data: &[u8]) -> Vec<u8> {
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((dict.len() as u16).to_le_bytes());
    bytes.extend(dict.as_bytes());
    bytes.extend(data);
    bytes
}

#[test]
fn headers_are_checked_before_anything_is_allocated() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    // A header claiming 10¹² keypoints (24 TB) in a member of a few bytes.
    let lying = dir.path().join("lying.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&lying).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("keypoints.npy", options).unwrap();
    zip.write_all(&npy_claiming("(1000000000000, 6)", &[0; 24]))
        .unwrap();
    zip.start_file("descriptors.npy", options).unwrap();
    zip.write_all(&npy_claiming("(1, 1)", &[0; 4])).unwrap();
    zip.start_file("image_size.npy", options).unwrap();
    zip.write_all(&npy_claiming("(2,)", &[0; 8])).unwrap();
    zip.finish().unwrap();
    let e = read_features(&lying).unwrap_err().to_string();
    assert!(
        e.contains("lying.npz")
            && e.contains("'keypoints.npy' claims a 1000000000000×6 array of '<f4' but holds only"),
        "{e}"
    );

    // A .npy header whose length field claims 660 MB (version 3 reads it as 4 bytes): refused
    // before that header is allocated (found by tests/fuzz_readers.rs).
    let long = dir.path().join("long_header.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&long).unwrap());
    zip.start_file("keypoints.npy", options).unwrap();
    zip.write_all(b"\x93NUMPY\x03\x00v\x00{'descr': '<f4'}")
        .unwrap();
    zip.finish().unwrap();
    let e = read_features(&long).unwrap_err().to_string();
    assert!(
        e.contains("long_header.npz") && e.contains("its header claims 662372470 bytes"),
        "{e}"
    );

    // A compressed member that would expand to 28 MB (from 28 kB) of a shape no feature file
    // has: refused from the sizes the archive declares.
    let bomb = dir.path().join("bomb.npz");
    let mut npz = ndarray_npy::NpzWriter::new_compressed(std::fs::File::create(&bomb).unwrap());
    npz.add_array("keypoints", &Array2::<f32>::zeros((1_000_000, 7)))
        .unwrap();
    npz.add_array("descriptors", &Array2::<f32>::zeros((1, 8)))
        .unwrap();
    npz.add_array("image_size", &ndarray::arr1(&[10i64, 10]))
        .unwrap();
    npz.finish().unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1_000_000);
    let e = read_features(&bomb).unwrap_err().to_string();
    assert!(
        e.contains("bomb.npz") && e.contains("a compression bomb?"),
        "{e}"
    );

    // One of the right shape, 10⁷ keypoints of zeros (240 MB from 230 kB): refused before any
    // member is decompressed, from the sizes the archive declares.
    let bomb = dir.path().join("shaped.npz");
    let mut npz = ndarray_npy::NpzWriter::new_compressed(std::fs::File::create(&bomb).unwrap());
    npz.add_array("keypoints", &Array2::<f32>::zeros((10_000_000, 6)))
        .unwrap();
    npz.add_array("descriptors", &Array2::<f32>::zeros((10_000_000, 1)))
        .unwrap();
    npz.add_array("image_size", &ndarray::arr1(&[10i64, 10]))
        .unwrap();
    npz.finish().unwrap();
    let e = read_features(&bomb).unwrap_err().to_string();
    assert!(
        e.contains("shaped.npz") && e.contains("a compression bomb?"),
        "{e}"
    );
}

#[test]
fn values_no_extractor_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = || FeatureSet {
        image_size: (20, 30),
        keypoints: vec![kp(1.0, 2.0, 0.5), kp(29.0, 19.0, 0.25)],
        descriptors: Descriptors::Float(Array2::ones((2, 4))),
        extractor: info(),
    };
    let file = dir.path().join("f.npz");
    write_features(&file, &good()).unwrap();
    assert_eq!(read_features(&file).unwrap(), good());
    let refused = |features: FeatureSet, needle: &str| {
        write_features(&file, &features).unwrap();
        let e = read_features(&file).unwrap_err().to_string();
        assert!(e.contains("f.npz") && e.contains(needle), "{e}");
    };
    let mut f = good();
    let Descriptors::Float(d) = &mut f.descriptors else {
        unreachable!()
    };
    d[[1, 2]] = f32::NAN;
    refused(f, "descriptor 1 holds a value that is not a finite number");
    let mut f = good();
    f.keypoints[0].x = f32::INFINITY;
    refused(f, "keypoint 0 holds a value that is not a finite number");
    let mut f = good();
    f.keypoints[1].y = 500.0;
    refused(f, "keypoint 1 at (29, 500) lies outside the 30×20 image");
    let mut f = good();
    f.image_size = (1_000_000_000, 30);
    refused(
        f,
        "'image_size' says 30×1000000000 pixels, more than 65536 a side",
    );
}
