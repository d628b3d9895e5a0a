//! hloc's `features.h5`: one HDF5 group per image (a name with `/` nests as subgroups) holding
//!
//! | dataset | dtype | shape | featleak [`Keypoint`] field |
//! |---|---|---|---|
//! | `keypoints` | float32 (float16, float64 read) | N×2 | x, y (pixel centres at integers) |
//! | `descriptors` | float32 (float16, float64 read) or uint8 | D×N | one column per keypoint |
//! | `image_size` | integer | 2 | **width, height** |
//! | `scores` | float | N | `response` (0 when absent) |
//! | `scales` | float | N | `size / 2` (when absent, size [`DEFAULT_SIZE`]) |
//! | `oris` | float | N | `angle` in degrees, −1: none (−1 when absent) |
//! | `octaves` | int32 | N | `octave` (featleak's addition; 0 when absent) |
//!
//! Binary descriptors are uint8 with one row per byte (bytes×N) and read back as binary. The
//! root attribute `featleak_extractor` (a JSON string) names the extractor of every image; files
//! without it read as extractor `"unknown"`. Claimed shapes are checked against the file's size
//! before anything is read.

use super::{OneExtractor, check_name, image_error, most_elements, store_error};
use crate::Keypoint;
use crate::error::FeatureFileError;
use crate::features::{Descriptors, ExtractorInfo, FeatureSet};
use hdf5_metno::types::{FloatSize, IntSize, TypeDescriptor, VarLenUnicode};
use hdf5_metno::{Dataset, File, Group};
use ndarray::{Array1, Array2};
use std::path::{Path, PathBuf};

/// The keypoint size (diameter, pixels) given when a file has no `scales`: twice a scale of 1.
pub const DEFAULT_SIZE: f32 = 2.0;

/// The root attribute holding the extractor JSON.
pub const EXTRACTOR_ATTR: &str = "featleak_extractor";

fn hdf5_error(path: &Path) -> impl Fn(hdf5_metno::Error) -> FeatureFileError + '_ {
    move |e| FeatureFileError::Library {
        path: path.to_path_buf(),
        library: "HDF5",
        message: e.to_string(),
    }
}

/// The extractor recorded in `file`'s root attribute; `None` without one.
fn recorded_extractor(path: &Path, file: &File) -> Result<Option<ExtractorInfo>, FeatureFileError> {
    if !file
        .attr_names()
        .map_err(hdf5_error(path))?
        .iter()
        .any(|n| n == EXTRACTOR_ATTR)
    {
        return Ok(None);
    }
    let text = file
        .attr(EXTRACTOR_ATTR)
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map_err(|e| {
            store_error(
                path,
                format!("attribute '{EXTRACTOR_ATTR}' is not a string ({e})"),
            )
        })?;
    serde_json::from_str(text.as_str()).map(Some).map_err(|e| {
        store_error(
            path,
            format!("attribute '{EXTRACTOR_ATTR}' is not extractor JSON ({e})"),
        )
    })
}

/// An hloc `.h5` opened for reading.
pub struct HlocReader {
    path: PathBuf,
    file: File,
    file_len: u64,
    extractor: ExtractorInfo,
}

impl HlocReader {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, FeatureFileError> {
        let file_len = std::fs::metadata(path)
            .map_err(|source| FeatureFileError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let file = File::open(path).map_err(hdf5_error(path))?;
        let extractor = recorded_extractor(path, &file)?.unwrap_or_else(super::unknown_extractor);
        Ok(Self {
            path: path.to_path_buf(),
            file,
            file_len,
            extractor,
        })
    }

    /// A dataset's shape, refused when it claims more elements than the file could hold.
    fn shape(&self, name: &str, ds: &Dataset, what: &str) -> Result<Vec<usize>, FeatureFileError> {
        let shape = ds.shape();
        let claimed = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
        if claimed.is_none_or(|c| c > most_elements(self.file_len)) {
            return Err(image_error(
                &self.path,
                name,
                format!(
                    "'{what}' claims a {} array, more than a {}-byte file holds",
                    dims(&shape),
                    self.file_len
                ),
            ));
        }
        Ok(shape)
    }

    /// The 1-D dataset `what` of `n` values as f32, or `None` when the group has none.
    fn optional_floats(
        &self,
        name: &str,
        group: &Group,
        what: &str,
        n: usize,
    ) -> Result<Option<Vec<f32>>, FeatureFileError> {
        if !group.link_exists(what) {
            return Ok(None);
        }
        let ds = group.dataset(what).map_err(hdf5_error(&self.path))?;
        let shape = self.shape(name, &ds, what)?;
        if shape != [n] {
            return Err(image_error(
                &self.path,
                name,
                format!(
                    "'{what}' is {}, expected {n} values (one per keypoint)",
                    dims(&shape)
                ),
            ));
        }
        read_floats(&ds)
            .map(Some)
            .map_err(|e| image_error(&self.path, name, format!("'{what}': {e}")))
    }
}

/// `3×128`.
fn dims(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "scalar".into();
    }
    shape
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("×")
}

/// A float dataset (16, 32 or 64 bits) as f32, in memory order.
fn read_floats(ds: &Dataset) -> Result<Vec<f32>, String> {
    let descriptor = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| e.to_string())?;
    match descriptor {
        TypeDescriptor::Float(FloatSize::U2) => ds
            .read_raw::<half::f16>()
            .map(|v| v.into_iter().map(f32::from).collect()),
        TypeDescriptor::Float(FloatSize::U4) => ds.read_raw::<f32>(),
        TypeDescriptor::Float(FloatSize::U8) => ds
            .read_raw::<f64>()
            .map(|v| v.into_iter().map(|x| x as f32).collect()),
        other => return Err(format!("expected floating-point values, found {other}")),
    }
    .map_err(|e| e.to_string())
}

/// An integer dataset as i64, in memory order.
fn read_ints(ds: &Dataset) -> Result<Vec<i64>, String> {
    match ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| e.to_string())?
    {
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            ds.read_raw::<i64>().map_err(|e| e.to_string())
        }
        other => Err(format!("expected integers, found {other}")),
    }
}

impl super::FeatureReader for HlocReader {
    fn path(&self) -> &Path {
        &self.path
    }

    fn names(&self) -> Result<Vec<String>, FeatureFileError> {
        let mut names = Vec::new();
        let mut pending = vec![self.file.as_group().map_err(hdf5_error(&self.path))?];
        while let Some(group) = pending.pop() {
            if group.link_exists("keypoints") {
                names.push(group.name().trim_start_matches('/').to_string());
            }
            pending.extend(group.groups().map_err(hdf5_error(&self.path))?);
        }
        if names.is_empty() {
            return Err(store_error(
                &self.path,
                "holds no image (no group with 'keypoints')",
            ));
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, name: &str) -> Result<FeatureSet, FeatureFileError> {
        let problem = |p: String| image_error(&self.path, name, p);
        let group = self
            .file
            .group(name)
            .map_err(|_| problem("not in this file".into()))?;
        let dataset = |what: &str| {
            if !group.link_exists(what) {
                return Err(problem(format!("no '{what}' dataset")));
            }
            group.dataset(what).map_err(hdf5_error(&self.path))
        };
        let kps = dataset("keypoints")?;
        let n = match self.shape(name, &kps, "keypoints")?[..] {
            [n, 2] => n,
            ref s => {
                return Err(problem(format!(
                    "'keypoints' is {}, expected N×2 (x, y)",
                    dims(s)
                )));
            }
        };
        let desc = dataset("descriptors")?;
        let d = match self.shape(name, &desc, "descriptors")?[..] {
            [d, m] if m == n => d,
            [d, m] if d == n => {
                return Err(problem(format!(
                    "'descriptors' is {d}×{m}: N×D for {n} keypoints, but hloc stores D×N \
                     (one column per keypoint); transpose it"
                )));
            }
            ref s => {
                return Err(problem(format!(
                    "'descriptors' is {}, expected D×{n} (one column per keypoint)",
                    dims(s)
                )));
            }
        };
        let size = dataset("image_size")?;
        if self.shape(name, &size, "image_size")? != [2] {
            return Err(problem(
                "'image_size' must hold two values, width and height".into(),
            ));
        }
        let image_size =
            match read_ints(&size).map_err(|e| problem(format!("'image_size': {e}")))?[..] {
                [w, h] => super::image_size_from_wh(w, h).map_err(&problem)?,
                _ => unreachable!("shape checked"),
            };

        let xy = read_floats(&kps).map_err(|e| problem(format!("'keypoints': {e}")))?;
        let descriptors = match desc
            .dtype()
            .and_then(|t| t.to_descriptor())
            .map_err(hdf5_error(&self.path))?
        {
            TypeDescriptor::Unsigned(IntSize::U1) => {
                let bytes = desc.read_raw::<u8>().map_err(hdf5_error(&self.path))?;
                let columns = Array2::from_shape_vec((d, n), bytes).expect("shape checked");
                Descriptors::Binary(columns.reversed_axes().as_standard_layout().into_owned())
            }
            _ => {
                let values =
                    read_floats(&desc).map_err(|e| problem(format!("'descriptors': {e}")))?;
                let columns = Array2::from_shape_vec((d, n), values).expect("shape checked");
                Descriptors::Float(columns.reversed_axes().as_standard_layout().into_owned())
            }
        };
        let scores = self.optional_floats(name, &group, "scores", n)?;
        let scales = self.optional_floats(name, &group, "scales", n)?;
        let oris = self.optional_floats(name, &group, "oris", n)?;
        let octaves = if group.link_exists("octaves") {
            let ds = dataset("octaves")?;
            if self.shape(name, &ds, "octaves")? != [n] {
                return Err(problem(format!("'octaves' must hold {n} values")));
            }
            Some(read_ints(&ds).map_err(|e| problem(format!("'octaves': {e}")))?)
        } else {
            None
        };
        let keypoints = (0..n)
            .map(|i| Keypoint {
                x: xy[2 * i],
                y: xy[2 * i + 1],
                size: scales.as_ref().map_or(DEFAULT_SIZE, |s| 2.0 * s[i]),
                angle: oris.as_ref().map_or(-1.0, |o| o[i]),
                response: scores.as_ref().map_or(0.0, |s| s[i]),
                octave: octaves.as_ref().map_or(0, |o| o[i] as i32),
            })
            .collect();
        let features = FeatureSet {
            image_size,
            keypoints,
            descriptors,
            extractor: self.extractor.clone(),
        };
        crate::npz::check_values(&features).map_err(problem)?;
        Ok(features)
    }
}

/// A new hloc `.h5`, written to `<path>.partial` and moved into place by `finish`.
pub struct HlocWriter {
    path: PathBuf,
    partial: PathBuf,
    file: File,
    extractor: OneExtractor,
}

impl HlocWriter {
    /// Refuses `path` when a file there was not written by featleak.
    pub fn check_destination(path: &Path) -> Result<(), FeatureFileError> {
        if path.exists() {
            let ours = File::open(path)
                .ok()
                .and_then(|f| recorded_extractor(path, &f).ok().flatten())
                .is_some();
            if !ours {
                return Err(store_error(
                    path,
                    "exists and was not written by featleak (no 'featleak_extractor' attribute); \
                     choose another destination",
                ));
            }
        }
        Ok(())
    }

    /// Starts writing `path`; an existing file there must be one featleak wrote.
    pub fn create(path: &Path) -> Result<Self, FeatureFileError> {
        Self::check_destination(path)?;
        let partial = super::partial_path(path);
        let file = File::create(&partial).map_err(hdf5_error(&partial))?;
        Ok(Self {
            path: path.to_path_buf(),
            partial,
            file,
            extractor: OneExtractor::default(),
        })
    }
}

impl super::FeatureWriter for HlocWriter {
    fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, name: &str, features: &FeatureSet) -> Result<(), FeatureFileError> {
        check_name(&self.path, name)?;
        let err = hdf5_error(&self.partial);
        if self
            .extractor
            .check(&self.path, name, &features.extractor)?
        {
            let json = serde_json::to_string(&features.extractor).expect("extractor serialises");
            let value: VarLenUnicode = json
                .parse()
                .map_err(|e| image_error(&self.path, name, format!("extractor JSON: {e}")))?;
            self.file
                .new_attr::<VarLenUnicode>()
                .create(EXTRACTOR_ATTR)
                .and_then(|a| a.write_scalar(&value))
                .map_err(&err)?;
        }
        if self.file.link_exists(name) {
            return Err(image_error(&self.path, name, "written twice"));
        }
        let group = self.file.create_group(name).map_err(&err)?;
        let n = features.len();
        let kps = &features.keypoints;
        let xy = Array2::from_shape_fn((n, 2), |(i, j)| if j == 0 { kps[i].x } else { kps[i].y });
        let column = |f: fn(&Keypoint) -> f32| kps.iter().map(f).collect::<Array1<f32>>();
        let (h, w) = features.image_size;
        group
            .new_dataset_builder()
            .with_data(&xy)
            .create("keypoints")
            .map_err(&err)?;
        match &features.descriptors {
            Descriptors::Float(d) => group
                .new_dataset_builder()
                .with_data(&d.t().as_standard_layout())
                .create("descriptors"),
            Descriptors::Binary(d) => group
                .new_dataset_builder()
                .with_data(&d.t().as_standard_layout())
                .create("descriptors"),
        }
        .map_err(&err)?;
        for (what, values) in [
            ("scores", column(|k| k.response)),
            ("scales", column(|k| k.size / 2.0)),
            ("oris", column(|k| k.angle)),
        ] {
            group
                .new_dataset_builder()
                .with_data(&values)
                .create(what)
                .map_err(&err)?;
        }
        group
            .new_dataset_builder()
            .with_data(&kps.iter().map(|k| k.octave).collect::<Array1<i32>>())
            .create("octaves")
            .map_err(&err)?;
        group
            .new_dataset_builder()
            .with_data(&Array1::from(vec![i64::from(w), i64::from(h)]))
            .create("image_size")
            .map_err(&err)?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), FeatureFileError> {
        let Self {
            path,
            partial,
            file,
            ..
        } = *self;
        file.close().map_err(hdf5_error(&partial))?;
        super::move_into_place(&partial, &path)
    }
}
