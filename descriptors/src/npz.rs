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
//! files made by other tools load too. Arrays in Fortran order (a transposed numpy array) read
//! as well. Before anything is read, every array's header is checked: its shape must be what the
//! key needs, and the bytes it claims must be in the archive member, so a header claiming 10¹²
//! rows or a compressed member that would expand to gigabytes of a wrong shape is refused
//! without allocating.

use crate::Keypoint;
use crate::error::FeatureFileError;
use crate::features::{Descriptors, ExtractorInfo, FeatureSet};
use featleak_datasets::atomic::write_atomic;
use ndarray::{Array1, Array2, Ix1, Ix2, OwnedRepr};
use ndarray_npy::npy::header::Header;
use ndarray_npy::{NpzReader, NpzWriter, ReadNpzError};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
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
    let open = || {
        File::open(path).map_err(|source| FeatureFileError::Io {
            path: path.into(),
            source,
        })
    };
    let shapes = array_shapes(open()?).map_err(format)?;
    check_shapes(&shapes).map_err(format)?;
    let file = open()?;
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
    let kps = kps.as_standard_layout().into_owned();
    let descriptors = match npz.by_name::<OwnedRepr<f32>, Ix2>("descriptors") {
        Ok(d) => Descriptors::Float(d.as_standard_layout().into_owned()),
        Err(ReadNpzError::Npy(_)) => Descriptors::Binary(
            npz.by_name::<OwnedRepr<u8>, Ix2>("descriptors")
                .map_err(|e| {
                    format(format!(
                        "'descriptors' must be a float32 or uint8 2-D array ({e})"
                    ))
                })?
                .as_standard_layout()
                .into_owned(),
        ),
        Err(e) => return Err(format(format!("cannot read 'descriptors' ({e})"))),
    };
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
    let features = FeatureSet {
        image_size,
        keypoints,
        descriptors,
        extractor,
    };
    check_values(&features).map_err(format)?;
    Ok(features)
}

/// Largest image side a feature file may declare, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 1 << 16;

/// Refuses what no extractor writes and every later stage would get wrong: an absurd image
/// size, keypoints with non-finite values or far outside the image, non-finite descriptors.
pub(crate) fn check_values(features: &FeatureSet) -> Result<(), String> {
    let (h, w) = features.image_size;
    if h > MAX_IMAGE_SIDE || w > MAX_IMAGE_SIDE {
        return Err(format!(
            "'image_size' says {w}×{h} pixels, more than {MAX_IMAGE_SIDE} a side"
        ));
    }
    for (i, k) in features.keypoints.iter().enumerate() {
        if k.to_row().iter().any(|v| !v.is_finite()) {
            return Err(format!(
                "keypoint {i} holds a value that is not a finite number ({k:?})"
            ));
        }
        // Pixel centres are at integer coordinates: the image spans [−0.5, side − 0.5].
        if !(-1.0..=w as f32).contains(&k.x) || !(-1.0..=h as f32).contains(&k.y) {
            return Err(format!(
                "keypoint {i} at ({}, {}) lies outside the {w}×{h} image",
                k.x, k.y
            ));
        }
    }
    if let Descriptors::Float(d) = &features.descriptors
        && let Some(i) = d
            .rows()
            .into_iter()
            .position(|r| r.iter().any(|v| !v.is_finite()))
    {
        return Err(format!(
            "descriptor {i} holds a value that is not a finite number"
        ));
    }
    Ok(())
}

/// Most bytes the arrays of a feature file may hold per byte of the file (plus
/// [`EXPANSION_SLACK`]): numpy's compression of real features gains a few times, a compression
/// bomb thousands.
pub const MAX_EXPANSION: u64 = 64;
/// Bytes the arrays may hold whatever the file's size.
pub const EXPANSION_SLACK: u64 = 1 << 20;

/// The shape each `.npy` member of an archive claims (keyed by its name without `.npy`), read
/// from its header alone; a claim of more bytes than the member holds is refused, and so are
/// members that would expand to more than [`MAX_EXPANSION`] times the file.
fn array_shapes(file: File) -> Result<HashMap<String, Vec<usize>>, String> {
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    let most = MAX_EXPANSION
        .saturating_mul(file_len)
        .saturating_add(EXPANSION_SLACK);
    let mut total: u64 = 0;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("not a readable .npz archive ({e})"))?;
    let mut shapes = HashMap::new();
    for i in 0..archive.len() {
        let mut member = archive
            .by_index(i)
            .map_err(|e| format!("not a readable .npz archive ({e})"))?;
        let name = member.name().to_string();
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let held = member.size();
        total = total.saturating_add(held);
        if total > most {
            return Err(format!(
                "its arrays would expand to at least {total} bytes from a {file_len}-byte file \
                 (over {MAX_EXPANSION}×): not features numpy writes (a compression bomb?)"
            ));
        }
        let preamble = npy_preamble(&mut member, held)
            .map_err(|problem| format!("'{name}' has no valid .npy header ({problem})"))?;
        let header = Header::from_reader(&mut std::io::Cursor::new(preamble).chain(&mut member))
            .map_err(|e| format!("'{name}' has no valid .npy header ({e})"))?;
        // The dtype, e.g. '<f4', ends with the size of one element in bytes.
        let descr = header.type_descriptor.to_string();
        let item: u64 = descr
            .trim_matches('\'')
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .map_err(|_| format!("'{name}' has an unsupported dtype {descr}"))?;
        let claimed = header
            .shape
            .iter()
            .try_fold(item, |n, &d| n.checked_mul(d as u64));
        if claimed.is_none_or(|c| c > held) {
            let shape: Vec<String> = header.shape.iter().map(ToString::to_string).collect();
            return Err(format!(
                "'{name}' claims a {} array of {descr} but holds only {held} bytes",
                shape.join("×")
            ));
        }
        shapes.insert(key, header.shape);
    }
    Ok(shapes)
}

/// Largest `.npy` header read, in bytes (numpy itself refuses headers above 10 000 bytes).
const MAX_NPY_HEADER: u64 = 1 << 16;

/// The magic string, version and header length of a `.npy` member, checked before its header is
/// read: a header length beyond [`MAX_NPY_HEADER`] or the member's `held` bytes is refused
/// instead of allocated.
fn npy_preamble(member: &mut impl Read, held: u64) -> Result<Vec<u8>, String> {
    let mut preamble = vec![0; 8];
    member
        .read_exact(&mut preamble)
        .map_err(|_| "shorter than a .npy preamble".to_string())?;
    if &preamble[..6] != b"\x93NUMPY" {
        return Err("no .npy magic string".into());
    }
    let width = match preamble[6] {
        1 => 2,
        2 | 3 => 4,
        v => return Err(format!("unknown .npy format version {v}")),
    };
    let mut len = vec![0; width];
    member
        .read_exact(&mut len)
        .map_err(|_| "shorter than a .npy preamble".to_string())?;
    let header_len = len.iter().rev().fold(0u64, |n, &b| (n << 8) | u64::from(b));
    if header_len > MAX_NPY_HEADER.min(held) {
        return Err(format!(
            "its header claims {header_len} bytes, more than {} allowed",
            MAX_NPY_HEADER.min(held)
        ));
    }
    preamble.extend(len);
    Ok(preamble)
}

/// Checks the shapes of the arrays a feature file needs before any is read.
fn check_shapes(shapes: &HashMap<String, Vec<usize>>) -> Result<(), String> {
    let shape = |key: &str| shapes.get(key).map(Vec::as_slice);
    let keypoints = match shape("keypoints") {
        Some(&[n, Keypoint::FIELDS]) => Some(n),
        Some(&[_, c]) => {
            return Err(format!(
                "'keypoints' has {c} columns, expected {}",
                Keypoint::FIELDS
            ));
        }
        Some(s) => {
            return Err(format!(
                "'keypoints' must be an N×{} array, its shape is {s:?}",
                Keypoint::FIELDS
            ));
        }
        None => None,
    };
    match (shape("descriptors"), keypoints) {
        (Some(&[n, _]), Some(k)) if n != k => Err(format!("{k} keypoints but {n} descriptors")),
        (Some(s), _) if s.len() != 2 => Err(format!(
            "'descriptors' must be a 2-D array, its shape is {s:?}"
        )),
        _ => Ok(()),
    }
}
