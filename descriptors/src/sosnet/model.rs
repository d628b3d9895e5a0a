//! SOSNet32x32 (Tian et al., CVPR 2019) as in yuruntian/SOSNet `codes/sosnet_model.py` and
//! `kornia.feature.SOSNet`, for inference:
//!
//! InstanceNorm2d(1, affine=False) → [conv3×3 32 → conv3×3 32 → conv3×3/2 64 → conv3×3 64 →
//! conv3×3/2 128 → conv3×3 128], each bias-free + BatchNorm2d(affine=False) + ReLU (padding 1) →
//! Dropout(0.1) (identity at inference) → conv8×8 128 (no padding) + BatchNorm2d(affine=False) →
//! L2 normalisation (kornia's `LocalResponseNorm(256, alpha=256, beta=0.5, k=0)` over 128 channels is
//! exactly `x / ||x||₂`, applied to `x + 1e-10`).
//!
//! The BatchNorms use their running statistics and are folded into the convs at load time
//! ([`SosnetWeights::fused`]), so each stage is one conv with bias.

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::ops::PadMode;

use super::weights::{LAYERS, SosnetWeights};

/// InstanceNorm2d's epsilon (added to the biased variance).
pub const INSTANCE_NORM_EPS: f32 = 1e-5;
/// kornia's `eps` added to the descriptor before the L2 normalisation.
pub const DESC_EPS: f32 = 1e-10;
/// Patch side the network takes.
pub const PATCH_SIZE: usize = 32;
/// Descriptor length.
pub const DESCRIPTOR_SIZE: usize = 128;

/// The network with BatchNorm folded into the convs (one conv with bias per stage).
///
/// Stages 2–6 are `burn::nn::conv::Conv2d`. The first (1 input channel) and the last (8×8 kernel
/// over an 8×8 map, i.e. a dense layer) are run as matrix products, which flex does much faster
/// than its per-sample im2col conv for those shapes: same arithmetic, summed in another order.
#[derive(Module, Debug)]
pub struct SosnetModel {
    /// Stage 1 weight as `[1, 32, 9]` (out channel × 3·3 taps), for a broadcast batched matmul.
    pub first_weight: Param<Tensor<3>>,
    /// Stage 1 bias as `[1, 32, 1]`.
    pub first_bias: Param<Tensor<3>>,
    /// Stages 2–6.
    pub convs: Vec<Conv2d>,
    /// Stage 7 weight as `[128·8·8, 128]` (flattened input × out channel).
    pub head_weight: Param<Tensor<2>>,
    /// Stage 7 bias as `[1, 128]`.
    pub head_bias: Param<Tensor<2>>,
}

impl SosnetModel {
    /// Build the network from a validated state_dict, on `device`.
    pub fn from_weights(weights: &SosnetWeights, device: &Device) -> Self {
        let fused = weights.fused();
        let (w0, b0) = &fused[0];
        let first_weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(w0.clone(), [1, 32, 9]),
            device,
        ));
        let first_bias = Param::from_tensor(Tensor::from_data(
            TensorData::new(b0.clone(), [1, 32, 1]),
            device,
        ));
        let convs = LAYERS[1..6]
            .iter()
            .zip(&fused[1..6])
            .map(|(spec, (w, b))| {
                let p = spec.padding;
                let mut conv =
                    Conv2dConfig::new([spec.c_in, spec.c_out], [spec.kernel, spec.kernel])
                        .with_stride([spec.stride, spec.stride])
                        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                        .with_bias(true)
                        .init(device);
                let shape = [spec.c_out, spec.c_in, spec.kernel, spec.kernel];
                conv.weight = Param::from_tensor(Tensor::from_data(
                    TensorData::new(w.clone(), shape),
                    device,
                ));
                conv.bias = Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(b.clone(), [spec.c_out]),
                    device,
                )));
                conv
            })
            .collect();
        let (w6, b6) = &fused[6];
        let k = 128 * 8 * 8;
        let head =
            Tensor::<2>::from_data(TensorData::new(w6.clone(), [128, k]), device).transpose();
        // Materialise the transpose once (contiguous [k, 128]).
        let head = Tensor::<2>::from_data(head.into_data(), device);
        let head_weight = Param::from_tensor(head);
        let head_bias = Param::from_tensor(Tensor::from_data(
            TensorData::new(b6.clone(), [1, 128]),
            device,
        ));
        Self {
            first_weight,
            first_bias,
            convs,
            head_weight,
            head_bias,
        }
    }

    /// `x`: N×1×32×32 grey patches (any affine intensity scale; kornia uses [0, 1]).
    /// Returns N×128 unit-norm descriptors.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [n, c, h, w] = x.dims();
        assert_eq!(
            [c, h, w],
            [1, PATCH_SIZE, PATCH_SIZE],
            "SOSNet takes N×1×32×32 patches"
        );
        // InstanceNorm2d(1, affine=False): per patch, biased variance.
        let flat = x.reshape([n, h * w]);
        let (var, mean) = flat.clone().var_mean_bias(1);
        let x = ((flat - mean) / (var + INSTANCE_NORM_EPS).sqrt()).reshape([n, 1, h, w]);
        // Stage 1: the 9 shifted copies of the zero-padded patch, times [32, 9].
        let padded = x.pad([(0, 0), (0, 0), (1, 1), (1, 1)], PadMode::Constant(0.0));
        let taps: Vec<Tensor<4>> = (0..3)
            .flat_map(|dy| (0..3).map(move |dx| (dy, dx)))
            .map(|(dy, dx)| padded.clone().slice([0..n, 0..1, dy..dy + h, dx..dx + w]))
            .collect();
        let cols = Tensor::cat(taps, 1).reshape([n, 9, h * w]);
        let y = self.first_weight.val().matmul(cols) + self.first_bias.val();
        let mut x = relu(y).reshape([n, 32, h, w]);
        for conv in &self.convs {
            x = relu(conv.forward(x));
        }
        // Stage 7 (Dropout is the identity at inference): dense layer over the 128×8×8 map.
        let [_, c7, h7, w7] = x.dims();
        let d = x.reshape([n, c7 * h7 * w7]).matmul(self.head_weight.val()) + self.head_bias.val();
        let d = d + DESC_EPS;
        let norm = d.clone().square().sum_dim(1).sqrt();
        d / norm
    }
}
