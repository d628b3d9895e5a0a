//! Loading a PyTorch state_dict of SOSNet32x32 (yuruntian/SOSNet `sosnet_model.py`, identically
//! `kornia.feature.SOSNet`) through `burn::store::PytorchStore`.
//!
//! The pickle is parsed by burn's reader, never executed. Both the zip format (torch >= 1.6) and the
//! legacy format are read. The state_dict may be wrapped: any checkpoint whose tensors sit under a
//! common prefix ending in `layers.1.weight` is accepted, e.g. `{"state_dict": {...}}` (keys
//! `state_dict.layers.1.weight`) or a `DataParallel` one (`module.layers.1.weight`). kornia's and
//! the official pretrained files are plain state_dicts (`load_state_dict(torch.load(..), strict=True)`).
//!
//! Validation is strict like `load_state_dict(strict=True)`: every conv weight and BatchNorm
//! running statistic must be present with its exact shape, and no other tensor may sit under the
//! prefix (`num_batches_tracked` is read past, it has no effect at inference).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::store::{ModuleStore, PytorchStore};
use burn::tensor::DType;

/// One conv + BatchNorm stage of SOSNet32x32, with its index in the PyTorch `nn.Sequential`.
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec {
    /// `layers.{conv}.weight` in the state_dict.
    pub conv: usize,
    /// `layers.{bn}.running_mean` / `.running_var` in the state_dict.
    pub bn: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Side of the square kernel, in pixels.
    pub kernel: usize,
    /// Convolution stride, in pixels.
    pub stride: usize,
    /// Zero padding on each side, in pixels.
    pub padding: usize,
    /// Whether a ReLU follows the BatchNorm.
    pub relu: bool,
}

const fn spec(
    conv: usize,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    relu: bool,
) -> LayerSpec {
    LayerSpec {
        conv,
        bn: conv + 1,
        c_in,
        c_out,
        kernel,
        stride,
        padding,
        relu,
    }
}

/// The seven conv stages. Index 0 of the Sequential is InstanceNorm2d(1, affine=False) and index 19
/// is Dropout(0.1); neither has state. All convs are bias-free, all BatchNorms `affine=False`.
pub const LAYERS: [LayerSpec; 7] = [
    spec(1, 1, 32, 3, 1, 1, true),
    spec(4, 32, 32, 3, 1, 1, true),
    spec(7, 32, 64, 3, 2, 1, true),
    spec(10, 64, 64, 3, 1, 1, true),
    spec(13, 64, 128, 3, 2, 1, true),
    spec(16, 128, 128, 3, 1, 1, true),
    spec(20, 128, 128, 8, 1, 0, false),
];

/// PyTorch's BatchNorm2d default epsilon.
pub const BN_EPS: f64 = 1e-5;

/// The raw (unfused) tensors of one stage, row-major as in PyTorch.
#[derive(Clone, Debug)]
pub struct LayerWeights {
    /// `c_out × c_in × k × k`.
    pub weight: Vec<f32>,
    /// BatchNorm running mean, `c_out` values.
    pub running_mean: Vec<f32>,
    /// BatchNorm running variance, `c_out` values.
    pub running_var: Vec<f32>,
}

/// The SOSNet32x32 state_dict, checked against [`LAYERS`].
#[derive(Clone, Debug)]
pub struct SosnetWeights {
    /// One entry per stage of [`LAYERS`], in order.
    pub layers: Vec<LayerWeights>,
}

/// Why a checkpoint could not be loaded as SOSNet32x32.
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
    /// [`SosnetWeights::save_safetensors`] could not build or write the file.
    #[error("cannot write weights file {path}: {message}")]
    Write {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// No tensor named `layers.1.weight`, with or without a prefix: not a SOSNet state_dict.
    #[error(
        "{path} is not a SOSNet32x32 state_dict: no tensor `layers.1.weight` (nor `<prefix>.layers.1.weight`); it holds {count} tensors: {sample}"
    )]
    NotSosnet {
        /// The checkpoint file.
        path: PathBuf,
        /// Number of tensors the file holds.
        count: usize,
        /// The first (up to 8) tensor names, comma separated.
        sample: String,
    },
    /// A tensor SOSNet32x32 needs is absent.
    #[error("{path}: SOSNet32x32 tensor `{key}` is missing (expected shape {expected:?}){more}")]
    Missing {
        /// The checkpoint file.
        path: PathBuf,
        /// The first missing tensor's full name (prefix included).
        key: String,
        /// Its expected shape.
        expected: Vec<usize>,
        /// `" and N more"` when other tensors are missing too, else empty.
        more: String,
    },
    /// A tensor has the wrong shape: probably another architecture.
    #[error(
        "{path}: tensor `{key}` has shape {found:?}, SOSNet32x32 expects {expected:?} — a checkpoint of another architecture?"
    )]
    Shape {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor's full name.
        key: String,
        /// The shape SOSNet32x32 needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor SOSNet32x32 needs is not floating-point.
    #[error("{path}: tensor `{key}` has dtype {found}, expected a floating-point tensor")]
    DType {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor's full name.
        key: String,
        /// Its dtype, as burn names it.
        found: String,
    },
    /// A tensor under the state_dict's prefix that SOSNet32x32 does not have (strict loading).
    #[error(
        "{path}: unexpected tensor `{key}` (shape {shape:?}) in the SOSNet32x32 state_dict — a checkpoint of another architecture?"
    )]
    Unexpected {
        /// The checkpoint file.
        path: PathBuf,
        /// The tensor's full name.
        key: String,
        /// Its shape.
        shape: Vec<usize>,
    },
}

/// The state_dict keys and shapes SOSNet32x32 needs, in a stable order.
pub fn expected_tensors() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for l in &LAYERS {
        out.push((
            format!("layers.{}.weight", l.conv),
            vec![l.c_out, l.c_in, l.kernel, l.kernel],
        ));
        out.push((format!("layers.{}.running_mean", l.bn), vec![l.c_out]));
        out.push((format!("layers.{}.running_var", l.bn), vec![l.c_out]));
    }
    out
}

fn shape_vec(shape: &burn::tensor::Shape) -> Vec<usize> {
    shape.iter().copied().collect()
}

/// One tensor of a checkpoint, read as f32 when it is a floating-point one.
struct RawTensor {
    shape: Vec<usize>,
    dtype: String,
    /// `None` for integer tensors (e.g. `num_batches_tracked`).
    values: Option<Vec<f32>>,
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

impl SosnetWeights {
    /// Read and validate a SOSNet32x32 state_dict: a PyTorch `.pth`/`.pt` file, or a
    /// `.safetensors` file with the same tensor names (what `featleak train-descriptor` writes).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let path = path.as_ref();
        let tensors = if path.extension().is_some_and(|e| e == "safetensors") {
            let bytes = std::fs::read(path).map_err(|e| read_error(path, e.to_string()))?;
            read_safetensors(path, &bytes)?
        } else {
            read_pth(path)?
        };
        Self::from_tensors(path, &tensors)
    }

    /// Read and validate safetensors bytes (e.g. weights embedded in the binary); `name` stands
    /// for the file in errors.
    pub fn from_safetensors_bytes(bytes: &[u8], name: &Path) -> Result<Self, WeightsError> {
        Self::from_tensors(name, &read_safetensors(name, bytes)?)
    }

    /// Writes the state_dict as safetensors (F32, PyTorch's names and layouts), atomically.
    pub fn save_safetensors(&self, path: &Path) -> Result<(), WeightsError> {
        let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (spec, w) in LAYERS.iter().zip(&self.layers) {
            let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
            named.push((
                format!("layers.{}.weight", spec.conv),
                vec![spec.c_out, spec.c_in, spec.kernel, spec.kernel],
                bytes(&w.weight),
            ));
            named.push((
                format!("layers.{}.running_mean", spec.bn),
                vec![spec.c_out],
                bytes(&w.running_mean),
            ));
            named.push((
                format!("layers.{}.running_var", spec.bn),
                vec![spec.c_out],
                bytes(&w.running_var),
            ));
        }
        let views = named
            .iter()
            .map(|(k, shape, data)| {
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

    fn from_tensors(
        path: &Path,
        tensors: &BTreeMap<String, RawTensor>,
    ) -> Result<Self, WeightsError> {
        let p = || path.to_path_buf();
        // Find where the state_dict sits: the shortest prefix of a key ending in `layers.1.weight`.
        let anchor = "layers.1.weight";
        let prefix = tensors
            .keys()
            .filter_map(|k| k.strip_suffix(anchor))
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
            return Err(WeightsError::NotSosnet {
                path: p(),
                count: tensors.len(),
                sample,
            });
        };

        let expected = expected_tensors();
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
                key: format!("{prefix}{key}"),
                expected: shape.clone(),
                more,
            });
        }
        for (key, t) in tensors.iter() {
            let Some(local) = key.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if local.ends_with(".num_batches_tracked") || expected.iter().any(|(k, _)| k == local) {
                continue;
            }
            return Err(WeightsError::Unexpected {
                path: p(),
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

        let read = |key: &str| -> Vec<f32> {
            tensors[&format!("{prefix}{key}")]
                .values
                .clone()
                .expect("checked above")
        };
        let layers = LAYERS
            .iter()
            .map(|l| LayerWeights {
                weight: read(&format!("layers.{}.weight", l.conv)),
                running_mean: read(&format!("layers.{}.running_mean", l.bn)),
                running_var: read(&format!("layers.{}.running_var", l.bn)),
            })
            .collect();
        Ok(Self { layers })
    }

    /// Fold each `affine=False` BatchNorm into the bias-free conv before it:
    /// `BN(W*x) = (W / σ) * x − μ / σ` with `σ = sqrt(var + eps)`. Exact for inference.
    /// Returns per stage (weight `c_out × c_in × k × k`, bias `c_out`), computed in f64.
    pub fn fused(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        LAYERS
            .iter()
            .zip(&self.layers)
            .map(|(spec, w)| {
                let per_out = spec.c_in * spec.kernel * spec.kernel;
                let mut weight = Vec::with_capacity(w.weight.len());
                let mut bias = Vec::with_capacity(spec.c_out);
                for o in 0..spec.c_out {
                    let inv = 1.0 / (w.running_var[o] as f64 + BN_EPS).sqrt();
                    weight.extend(
                        w.weight[o * per_out..(o + 1) * per_out]
                            .iter()
                            .map(|&v| (v as f64 * inv) as f32),
                    );
                    bias.push((-(w.running_mean[o] as f64) * inv) as f32);
                }
                (weight, bias)
            })
            .collect()
    }
}

/// All tensor names and shapes in a checkpoint (after flattening nested dicts with `.`), for diagnostics.
pub fn list_tensors(path: impl AsRef<Path>) -> Result<BTreeMap<String, Vec<usize>>, WeightsError> {
    let path = path.as_ref();
    let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
    let tensors = store.get_all_tensors().map_err(|e| WeightsError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(tensors
        .iter()
        .map(|(k, t)| (k.clone(), shape_vec(&t.shape)))
        .collect())
}
