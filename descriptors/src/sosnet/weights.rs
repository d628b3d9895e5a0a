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

use std::path::Path;

use crate::layers::ConvShape;
use crate::state_dict::{self, CheckedStateDict, StateDictWeights};
pub use crate::state_dict::{BN_EPS, WeightsError, list_tensors};

/// One conv + BatchNorm stage of SOSNet32x32, with its index in the PyTorch `nn.Sequential`.
#[derive(Clone, Copy, Debug)]
pub struct LayerSpec {
    /// `layers.{conv}.weight` in the state_dict.
    pub conv: usize,
    /// `layers.{bn}.running_mean` / `.running_var` in the state_dict.
    pub bn: usize,
    /// Channels, kernel, stride and padding.
    pub shape: ConvShape,
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
        shape: ConvShape {
            c_in,
            c_out,
            kernel,
            stride,
            padding,
        },
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

/// The state_dict keys and shapes SOSNet32x32 needs, in a stable order.
pub fn expected_tensors() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for l in &LAYERS {
        out.push((
            format!("layers.{}.weight", l.conv),
            l.shape.weight_dims().to_vec(),
        ));
        out.push((format!("layers.{}.running_mean", l.bn), vec![l.shape.c_out]));
        out.push((format!("layers.{}.running_var", l.bn), vec![l.shape.c_out]));
    }
    out
}

impl StateDictWeights for SosnetWeights {
    const MODEL: &'static str = "SOSNet32x32";
    const ANCHOR: &'static str = "layers.1.weight";

    fn expected_tensors() -> Vec<(String, Vec<usize>)> {
        expected_tensors()
    }

    fn from_checked(tensors: &CheckedStateDict) -> Self {
        let layers = LAYERS
            .iter()
            .map(|l| LayerWeights {
                weight: tensors.values(&format!("layers.{}.weight", l.conv)),
                running_mean: tensors.values(&format!("layers.{}.running_mean", l.bn)),
                running_var: tensors.values(&format!("layers.{}.running_var", l.bn)),
            })
            .collect();
        Self { layers }
    }
}

impl SosnetWeights {
    /// Writes the state_dict as safetensors (F32, PyTorch's names and layouts), atomically.
    pub fn save_safetensors(&self, path: &Path) -> Result<(), WeightsError> {
        let mut named: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
        for (spec, w) in LAYERS.iter().zip(&self.layers) {
            named.push((
                format!("layers.{}.weight", spec.conv),
                spec.shape.weight_dims().to_vec(),
                &w.weight,
            ));
            named.push((
                format!("layers.{}.running_mean", spec.bn),
                vec![spec.shape.c_out],
                &w.running_mean,
            ));
            named.push((
                format!("layers.{}.running_var", spec.bn),
                vec![spec.shape.c_out],
                &w.running_var,
            ));
        }
        state_dict::save_safetensors(path, &named)
    }

    /// Fold each `affine=False` BatchNorm into the bias-free conv before it
    /// (`state_dict::fold_batch_norm`). Returns per stage (weight `c_out × c_in × k × k`, bias
    /// `c_out`).
    pub fn fused(&self) -> Vec<(Vec<f32>, Vec<f32>)> {
        self.layers
            .iter()
            .map(|w| {
                state_dict::fold_batch_norm(
                    &w.weight,
                    &w.running_mean,
                    &w.running_var,
                    None,
                    BN_EPS,
                )
            })
            .collect()
    }
}
