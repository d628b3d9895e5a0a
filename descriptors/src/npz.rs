//! Feature files: one NumPy `.npz` per image, readable with `numpy.load`.
//!
//! | key | dtype | shape | content |
//! |---|---|---|---|
//! | `keypoints` | float32 | N×6 | x, y, size, angle, response, octave |
//! | `descriptors` | float32 or uint8 | N×D or N×bytes | one row per keypoint |
//! | `image_size` | int64 | 2 | height, width |
//! | `extractor` | uint8 | bytes | UTF-8 JSON `{"name": …, "config": …}` (`bytes(a).decode()`) |
//!
//! Writes are atomic (temporary file, then rename). `extractor` is optional on reading so that
//! files made by other tools load too.

use crate::Keypoint;
use crate::error::FeatureFileError;
use crate::features::{Descriptors, ExtractorInfo, FeatureSet};
use featleak_datasets::atomic::write_atomic;
use ndarray::{Array1, Array2, Ix1, Ix2, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter, ReadNpzError};
use std::fs::File;
use std::path::Path;

/// Writes `features` to `path` atomically.
pub fn write_features(path: &Path, features: &FeatureSet) -> Result<(), FeatureFileError> {
    let io_err = |source| FeatureFileError::Io {
        path: path.into(),
        source,
    };
    let n = features.len();
    let mut kps = Array2::<f32>::zeros((n, Keypoint::FIELDS));
    for (mut row, kp) in kps.rows_mut().into_iter().zip(&features.keypoints) {
        row.assign(&ndarray::ArrayView1::from(&kp.to_row()));
    }
    let size = Array1::from(vec![
        features.image_size.0 as i64,
        features.image_size.1 as i64,
    ]);
    let extractor =
        Array1::from(serde_json::to_vec(&features.extractor).expect("extractor info serialises"));
    write_atomic(path, |file| {
        let mut npz = NpzWriter::new(file);
        npz.add_array("keypoints", &kps)
            .map_err(std::io::Error::other)?;
        match &features.descriptors {
            Descriptors::Float(d) => npz.add_array("descriptors", d),
            Descriptors::Binary(d) => npz.add_array("descriptors", d),
        }
        .map_err(std::io::Error::other)?;
        npz.add_array("image_size", &size)
            .map_err(std::io::Error::other)?;
        npz.add_array("extractor", &extractor)
            .map_err(std::io::Error::other)?;
        npz.finish().map_err(std::io::Error::other)?;
        Ok(())
    })
    .map_err(io_err)
}

/// Reads a feature file written by [`write_features`] (or any `.npz` with the same keys).
pub fn read_features(path: &Path) -> Result<FeatureSet, FeatureFileError> {
    let format = |problem: String| FeatureFileError::Format {
        path: path.into(),
        problem,
    };
    let file = File::open(path).map_err(|source| FeatureFileError::Io {
        path: path.into(),
        source,
    })?;
    let mut npz =
        NpzReader::new(file).map_err(|e| format(format!("not a readable .npz archive ({e})")))?;
    let names = npz.names().map_err(|e| format(e.to_string()))?;
    let has = |key: &str| names.iter().any(|n| n == key || n == &format!("{key}.npy"));
    for key in ["keypoints", "descriptors", "image_size"] {
        if !has(key) {
            return Err(format(format!(
                "missing array '{key}' (found: {})",
                names.join(", ")
            )));
        }
    }
    let kps: Array2<f32> = npz
        .by_name::<OwnedRepr<f32>, Ix2>("keypoints")
        .map_err(|e| format(format!("'keypoints' must be a float32 N×6 array ({e})")))?;
    if kps.ncols() != Keypoint::FIELDS {
        return Err(format(format!(
            "'keypoints' has {} columns, expected 6",
            kps.ncols()
        )));
    }
    let descriptors = match npz.by_name::<OwnedRepr<f32>, Ix2>("descriptors") {
        Ok(d) => Descriptors::Float(d),
        Err(ReadNpzError::Npy(_)) => Descriptors::Binary(
            npz.by_name::<OwnedRepr<u8>, Ix2>("descriptors")
                .map_err(|e| {
                    format(format!(
                        "'descriptors' must be a float32 or uint8 2-D array ({e})"
                    ))
                })?,
        ),
        Err(e) => return Err(format(format!("cannot read 'descriptors' ({e})"))),
    };
    if descriptors.len() != kps.nrows() {
        return Err(format(format!(
            "{} keypoints but {} descriptors",
            kps.nrows(),
            descriptors.len()
        )));
    }
    let size: Array1<i64> = npz
        .by_name::<OwnedRepr<i64>, Ix1>("image_size")
        .map_err(|e| {
            format(format!(
                "'image_size' must be an int64 [height, width] array ({e})"
            ))
        })?;
    let image_size = match size.as_slice() {
        Some(&[h, w]) if h > 0 && w > 0 && h <= u32::MAX as i64 && w <= u32::MAX as i64 => {
            (h as u32, w as u32)
        }
        _ => {
            return Err(format(format!(
                "'image_size' must hold two positive values, got {size}"
            )));
        }
    };
    let extractor = if has("extractor") {
        let bytes: Array1<u8> = npz
            .by_name::<OwnedRepr<u8>, Ix1>("extractor")
            .map_err(|e| format(format!("'extractor' must be uint8 JSON bytes ({e})")))?;
        serde_json::from_slice(bytes.as_slice().unwrap_or_default())
            .map_err(|e| format(format!("'extractor' is not valid extractor JSON ({e})")))?
    } else {
        ExtractorInfo {
            name: "unknown".into(),
            config: serde_json::Value::Null,
        }
    };
    let keypoints = kps
        .rows()
        .into_iter()
        .map(|r| Keypoint::from_row(r.as_slice().expect("standard layout")))
        .collect();
    Ok(FeatureSet {
        image_size,
        keypoints,
        descriptors,
        extractor,
    })
}
