//! Reading a network's weights: PyTorch checkpoints (parsed by burn's `PytorchStore`, never
//! executed; zip and legacy formats) and safetensors files, checked strictly against the tensors an
//! architecture needs, like PyTorch's `load_state_dict(strict=True)`.
//!
//! The state_dict may be wrapped: it is found under the shortest prefix of a key ending in the
//! architecture's *anchor* tensor, e.g. `{"state_dict": {...}}` (keys `state_dict.<name>`) or a
//! `DataParallel` one (`module.<name>`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::store::{ModuleStore, PytorchStore};
use burn::tensor::DType;

/// Why a checkpoint could not be loaded as a given architecture.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file could not be read or parsed as weights (a PyTorch checkpoint or safetensors).
    #[error("cannot read weights file {path}: {message}")]
    Read {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Weights could not be built or written.
    #[error("cannot write weights file {path}: {message}")]
    Write {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// No tensor named like the architecture's anchor, with or without a prefix.
    #[error(
        "{path} is not a state_dict of {model}: no tensor `{anchor}` (nor `<prefix>.{anchor}`); it holds {count} tensors: {sample}"
    )]
    NotModel {
        /// The checkpoint file.
        path: PathBuf,
        /// The architecture looked for.
        model: &'static str,
        /// The tensor that locates its state_dict.
        anchor: &'static str,
        /// Number of tensors the file holds.
        count: usize,
        /// The first (up to 8) tensor names, comma separated.
        sample: String,
    },
    /// A tensor the architecture needs is absent.
    #[error("{path}: {model} tensor `{key}` is missing (expected shape {expected:?}){more}")]
    Missing {
        /// The checkpoint file.
        path: PathBuf,
        /// The architecture.
        model: &'static str,
        /// The first missing tensor's full name (prefix included).
        key: String,
        /// Its expected shape.
        expected: Vec<usize>,
        /// `" and N more"` when other tensors are missing too, else empty.
        more: String,
    },
    /// A tensor has the wrong shape: probably another architecture.
    #[error(
        "{path}: tensor `{key}` has shape {found:?}, {model} expects {expected:?} — a checkpoint of another architecture?"
    )]
    Shape {
        /// The checkpoint file.
        path: PathBuf,
        /// The architecture.
        model: &'static str,
        /// The tensor's full name.
        key: String,
        /// The shape the architecture needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor the architecture needs is not floating-point.
    #[error("{path}: tensor `{key}` has dtype {found}, expected a floating-point tensor")]
    DType {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor's full name.
        key: String,
        /// Its dtype, as burn names it.
        found: String,
    },
    /// A tensor under the state_dict's prefix that the architecture does not have (strict loading).
    #[error(
        "{path}: unexpected tensor `{key}` (shape {shape:?}) in the {model} state_dict — a checkpoint of another architecture?"
    )]
    Unexpected {
        /// The checkpoint file.
        path: PathBuf,
        /// The architecture.
        model: &'static str,
        /// The tensor's full name.
        key: String,
        /// Its shape.
        shape: Vec<usize>,
    },
}

/// PyTorch's BatchNorm2d default epsilon.
pub const BN_EPS: f64 = 1e-5;

/// A network's weights, read from a state_dict that holds what its architecture needs.
pub trait StateDictWeights: Sized {
    /// Name in errors, e.g. `SOSNet32x32`.
    const MODEL: &'static str;
    /// The tensor whose name locates the state_dict inside a wrapped checkpoint.
    const ANCHOR: &'static str;
    /// Tensors under these name prefixes may be present and are read past (parts of the network
    /// featleak does not run).
    const IGNORED: &'static [&'static str] = &[];
    /// Every tensor needed, by name (without prefix) and shape.
    fn expected_tensors() -> Vec<(String, Vec<usize>)>;
    /// The weights, from tensors that passed the checks.
    fn from_checked(tensors: &CheckedStateDict) -> Self;

    /// Reads and validates a PyTorch checkpoint (`.pth`, `.pt`: the zip or legacy format, its
    /// state_dict found by [`Self::ANCHOR`]) or a `.safetensors` file with the same names.
    fn load(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        load(path.as_ref())
    }

    /// Reads and validates safetensors bytes (e.g. weights embedded in the binary); `name`
    /// stands for the file in errors.
    fn from_safetensors_bytes(bytes: &[u8], name: &Path) -> Result<Self, WeightsError> {
        from_safetensors_bytes(bytes, name)
    }
}

/// A checkpoint's tensors that passed [`StateDictWeights`]' checks, read as f32.
pub struct CheckedStateDict {
    prefix: String,
    tensors: BTreeMap<String, RawTensor>,
}

impl CheckedStateDict {
    /// The values of `key` (a name of [`StateDictWeights::expected_tensors`]), row-major as in
    /// PyTorch.
    pub fn values(&self, key: &str) -> Vec<f32> {
        self.tensors[&format!("{}{key}", self.prefix)]
            .values
            .clone()
            .expect("checked to be floating-point")
    }
}

/// One tensor of a checkpoint, read as f32 when it is a floating-point one.
struct RawTensor {
    shape: Vec<usize>,
    dtype: String,
    /// `None` for integer tensors (e.g. `num_batches_tracked`).
    values: Option<Vec<f32>>,
}

/// Reads `path` (`.safetensors` by extension, otherwise a PyTorch checkpoint) as `W`.
pub(crate) fn load<W: StateDictWeights>(path: &Path) -> Result<W, WeightsError> {
    let tensors = if path.extension().is_some_and(|e| e == "safetensors") {
        let bytes = std::fs::read(path).map_err(|e| read_error(path, e.to_string()))?;
        read_safetensors(path, &bytes)?
    } else {
        read_pth(path)?
    };
    check(path, tensors)
}

/// Checks safetensors bytes (e.g. weights embedded in the binary); `name` stands for the file in
/// errors.
pub(crate) fn from_safetensors_bytes<W: StateDictWeights>(
    bytes: &[u8],
    name: &Path,
) -> Result<W, WeightsError> {
    check(name, read_safetensors(name, bytes)?)
}

fn check<W: StateDictWeights>(
    path: &Path,
    tensors: BTreeMap<String, RawTensor>,
) -> Result<W, WeightsError> {
    let p = || path.to_path_buf();
    let expected = W::expected_tensors();
    let prefix = tensors
        .keys()
        .filter_map(|k| k.strip_suffix(W::ANCHOR))
        .filter(|pre| pre.is_empty() || pre.ends_with('.'))
        .min_by_key(|pre| pre.len())
        .map(str::to_owned);
    let Some(prefix) = prefix else {
        let names: Vec<&str> = tensors.keys().map(String::as_str).take(8).collect();
        let sample = if tensors.len() > 8 {
            format!("{}, ...", names.join(", "))
        } else {
            names.join(", ")
        };
        return Err(WeightsError::NotModel {
            path: p(),
            model: W::MODEL,
            anchor: W::ANCHOR,
            count: tensors.len(),
            sample,
        });
    };
    let missing: Vec<&(String, Vec<usize>)> = expected
        .iter()
        .filter(|(k, _)| !tensors.contains_key(&format!("{prefix}{k}")))
        .collect();
    if let Some((key, shape)) = missing.first() {
        let more = if missing.len() > 1 {
            format!(" and {} more", missing.len() - 1)
        } else {
            String::new()
        };
        return Err(WeightsError::Missing {
            path: p(),
            model: W::MODEL,
            key: format!("{prefix}{key}"),
            expected: shape.clone(),
            more,
        });
    }
    for (key, t) in tensors.iter() {
        let Some(local) = key.strip_prefix(prefix.as_str()) else {
            continue;
        };
        if local.ends_with(".num_batches_tracked")
            || W::IGNORED.iter().any(|i| local.starts_with(i))
            || expected.iter().any(|(k, _)| k == local)
        {
            continue;
        }
        return Err(WeightsError::Unexpected {
            path: p(),
            model: W::MODEL,
            key: key.clone(),
            shape: t.shape.clone(),
        });
    }
    for (key, shape) in &expected {
        let full = format!("{prefix}{key}");
        let t = &tensors[&full];
        if &t.shape != shape {
            return Err(WeightsError::Shape {
                path: p(),
                model: W::MODEL,
                key: full,
                expected: shape.clone(),
                found: t.shape.clone(),
            });
        }
        if t.values.is_none() {
            return Err(WeightsError::DType {
                path: p(),
                key: full,
                found: t.dtype.clone(),
            });
        }
    }
    Ok(W::from_checked(&CheckedStateDict { prefix, tensors }))
}

/// Writes named F32 tensors (PyTorch names and row-major layouts) as a safetensors file,
/// atomically.
pub fn save_safetensors(
    path: &Path,
    named: &[(String, Vec<usize>, &[f32])],
) -> Result<(), WeightsError> {
    let bytes: Vec<Vec<u8>> = named
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = named
        .iter()
        .zip(&bytes)
        .map(|((k, shape, _), data)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                .map(|v| (k.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| write_error(path, format!("cannot build safetensors: {e}")))?;
    let bytes = safetensors::serialize(views, None)
        .map_err(|e| write_error(path, format!("cannot build safetensors: {e}")))?;
    featleak_datasets::atomic::write_bytes_atomic(path, &bytes)
        .map_err(|e| write_error(path, e.to_string()))
}

/// Folds a BatchNorm into the bias-free conv before it:
/// `BN(W*x) = (γ·W / σ) * x + β − γ·μ / σ` with `σ = sqrt(var + eps)`, exact for inference
/// (`affine` gives γ and β; without, `affine=False`: γ = 1, β = 0). `weight` is `c_out × …`
/// row-major with `c_out = running_mean.len()`; computed in f64. Returns the folded weight and
/// the bias.
pub(crate) fn fold_batch_norm(
    weight: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    affine: Option<(&[f32], &[f32])>,
    eps: f64,
) -> (Vec<f32>, Vec<f32>) {
    let per_out = weight.len() / running_mean.len();
    let mut folded = Vec::with_capacity(weight.len());
    let mut bias = Vec::with_capacity(running_mean.len());
    for (o, (&mean, &var)) in running_mean.iter().zip(running_var).enumerate() {
        let (gamma, beta) = affine.map_or((1.0, 0.0), |(g, b)| (g[o] as f64, b[o] as f64));
        let scale = gamma / (var as f64 + eps).sqrt();
        folded.extend(
            weight[o * per_out..(o + 1) * per_out]
                .iter()
                .map(|&v| (v as f64 * scale) as f32),
        );
        bias.push((beta - mean as f64 * scale) as f32);
    }
    (folded, bias)
}

/// All tensor names and shapes in a PyTorch checkpoint (after flattening nested dicts with `.`),
/// for diagnostics.
pub fn list_tensors(path: impl AsRef<Path>) -> Result<BTreeMap<String, Vec<usize>>, WeightsError> {
    let path = path.as_ref();
    let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
    let tensors = store
        .get_all_tensors()
        .map_err(|e| read_error(path, e.to_string()))?;
    Ok(tensors
        .iter()
        .map(|(k, t)| (k.clone(), shape_vec(&t.shape)))
        .collect())
}

fn shape_vec(shape: &burn::tensor::Shape) -> Vec<usize> {
    shape.iter().copied().collect()
}

fn write_error(path: &Path, message: impl Into<String>) -> WeightsError {
    WeightsError::Write {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read_error(path: &Path, message: impl Into<String>) -> WeightsError {
    WeightsError::Read {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The tensors of a PyTorch checkpoint, parsed by burn's pickle reader (never executed).
fn read_pth(path: &Path) -> Result<BTreeMap<String, RawTensor>, WeightsError> {
    // No contiguous renumbering: PyTorch's Sequential indices (1, 2, 4, 5, ...) are kept as is.
    let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
    let tensors = store
        .get_all_tensors()
        .map_err(|e| read_error(path, e.to_string()))?
        .clone();
    let mut out = BTreeMap::new();
    for (key, t) in tensors {
        let shape = shape_vec(&t.shape);
        let dtype = t.dtype;
        let values = if matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
            let data = burn::store::bridge::into_data(t)
                .map_err(|e| read_error(path, format!("tensor `{key}`: {e}")))?;
            Some(
                data.convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| read_error(path, format!("tensor `{key}`: {e:?}")))?,
            )
        } else {
            None
        };
        out.insert(
            key,
            RawTensor {
                shape,
                dtype: format!("{dtype:?}"),
                values,
            },
        );
    }
    Ok(out)
}

/// The tensors of a safetensors file (F32, F64, F16 and BF16 are read as f32).
fn read_safetensors(
    path: &Path,
    bytes: &[u8],
) -> Result<BTreeMap<String, RawTensor>, WeightsError> {
    use safetensors::Dtype;
    let file = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| read_error(path, format!("not a safetensors file ({e})")))?;
    let mut out = BTreeMap::new();
    for (key, view) in file.tensors() {
        let data = view.data();
        let values = match view.dtype() {
            Dtype::F32 => Some(
                data.chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .collect(),
            ),
            Dtype::F64 => Some(
                data.chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
                    .collect(),
            ),
            Dtype::F16 => Some(
                data.chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
            ),
            Dtype::BF16 => Some(
                data.chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
            ),
            _ => None,
        };
        out.insert(
            key,
            RawTensor {
                shape: view.shape().to_vec(),
                dtype: format!("{:?}", view.dtype()),
                values,
            },
        );
    }
    Ok(out)
}
