//! SOSNet: a learned 128-d descriptor of 32×32 grey patches (Tian et al., CVPR 2019), on burn's
//! pure-Rust CPU backend (`flex`).

pub mod model;
pub mod patches;
pub mod training;
pub mod weights;

use std::path::Path;

use burn::prelude::*;
use ndarray::{Array2, ArrayView3};

use crate::state_dict::StateDictWeights;
pub use model::{CpuSosnet, DESCRIPTOR_SIZE, PATCH_SIZE, SosnetModel};
pub use patches::{PatchSampling, sample_patches};
pub use weights::{SosnetWeights, WeightsError};

/// Patches per forward pass in [`Sosnet::describe`].
pub const DEFAULT_BATCH_SIZE: usize = 256;

/// Name of the weights featleak bundles: SOSNet32x32 trained by `featleak train-descriptor` on
/// photos (model card: `descriptors/weights/README.md`).
pub const BUNDLED_WEIGHTS: &str = "sosnet-featleak-v1";

/// The bundled weights file (a SOSNet32x32 state_dict in safetensors format).
const BUNDLED_BYTES: &[u8] = include_bytes!("../../weights/sosnet-featleak-v1.safetensors");

/// The bundled weights, parsed.
pub fn bundled_weights() -> SosnetWeights {
    SosnetWeights::from_safetensors_bytes(BUNDLED_BYTES, Path::new(BUNDLED_WEIGHTS))
        .expect("the bundled SOSNet weights are a valid state_dict (checked by a test)")
}

/// A loaded SOSNet ready to describe patches.
///
/// On the flex device, [`Sosnet::describe`] runs [`CpuSosnet`] (host f32 buffers, batched im2col +
/// GEMM); on any other device, the burn [`SosnetModel`].
#[derive(Debug)]
pub struct Sosnet {
    model: SosnetModel,
    cpu: Option<CpuSosnet>,
    device: Device,
    batch_size: usize,
}

impl Sosnet {
    /// The bundled weights ([`BUNDLED_WEIGHTS`]) on the flex CPU backend.
    pub fn bundled() -> Self {
        Self::from_weights(&bundled_weights(), Device::flex())
    }

    /// Load a SOSNet32x32 state_dict (PyTorch `.pth`, or `.safetensors`) onto the flex CPU
    /// backend.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        Self::load_on(path, Device::flex())
    }

    /// Load onto a given burn device.
    pub fn load_on(path: impl AsRef<Path>, device: Device) -> Result<Self, WeightsError> {
        let weights = SosnetWeights::load(path)?;
        Ok(Self::from_weights(&weights, device))
    }

    /// Build from a validated state_dict, on `device`.
    pub fn from_weights(weights: &SosnetWeights, device: Device) -> Self {
        let cpu = (device == Device::flex()).then(|| CpuSosnet::from_weights(weights));
        Self {
            model: SosnetModel::from_weights(weights, &device),
            cpu,
            device,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    /// Patches per forward pass (default [`DEFAULT_BATCH_SIZE`]).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The burn model (built on every device, though [`Sosnet::describe`] on flex runs
    /// [`CpuSosnet`] instead).
    pub fn model(&self) -> &SosnetModel {
        &self.model
    }

    /// The burn device the network runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Describe N×32×32 grey patches (intensities in [0, 1], as [`sample_patches`] gives them):
    /// returns N×128 unit-norm descriptors.
    pub fn describe(&self, patches: ArrayView3<'_, f32>) -> Array2<f32> {
        let (n, h, w) = patches.dim();
        assert_eq!(
            (h, w),
            (PATCH_SIZE, PATCH_SIZE),
            "SOSNet takes 32×32 patches"
        );
        let patches = patches.as_standard_layout();
        let patches = patches.as_slice().expect("standard layout");
        let mut out = Array2::<f32>::zeros((n, DESCRIPTOR_SIZE));
        let out_rows = out.as_slice_mut().expect("standard layout");
        let batches = patches
            .chunks(self.batch_size * h * w)
            .zip(out_rows.chunks_mut(self.batch_size * DESCRIPTOR_SIZE));
        for (batch, d) in batches {
            match &self.cpu {
                Some(cpu) => cpu.forward(batch, d),
                None => d.copy_from_slice(&self.forward_burn(batch)),
            }
        }
        out
    }

    /// One batch through the burn model on `self.device`.
    fn forward_burn(&self, batch: &[f32]) -> Vec<f32> {
        let n = batch.len() / (PATCH_SIZE * PATCH_SIZE);
        let x = Tensor::<4>::from_data(
            TensorData::new(batch.to_vec(), [n, 1, PATCH_SIZE, PATCH_SIZE]),
            &self.device,
        );
        self.model
            .forward(x)
            .into_data()
            .try_into_vec::<f32>()
            .expect("f32 descriptors")
    }
}
