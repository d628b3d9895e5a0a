//! XFeat's network (`XFeatModel`, Potje et al., CVPR 2024) as a burn module, for inference:
//!
//! InstanceNorm2d(1) → block1 (1/4) + skip1 (AvgPool 4, 1×1 conv) → block2 → block3 (1/8) →
//! block4 (1/16) → block5 (1/32); block4 and block5 upsampled bilinearly to 1/8 and summed with
//! block3 → block_fusion: the 64-channel descriptor map. The reliability map is
//! `sigmoid(heatmap_head(fusion))`; the keypoint logits are `keypoint_head` applied to the
//! normalised image cut into 8×8 cells (64 pixel positions + "no keypoint").
//!
//! Every `BasicLayer` (conv, BatchNorm `affine=False`, ReLU) runs as one conv with the BatchNorm
//! folded in ([`XfeatWeights`]).

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::{avg_pool2d, interpolate};
use burn::tensor::ops::{AvgPoolOptions, InterpolateMode, InterpolateOptions};

use crate::layers::{conv2d, instance_norm};

use super::weights::{
    BLOCK1, BLOCK2, BLOCK3, BLOCK4, BLOCK5, ConvSpec, FUSION, HEATMAP_HEAD, KEYPOINT_HEAD, SKIP1,
    XfeatWeights,
};

/// Image sides must be multiples of this (the coarsest map is 1/32).
pub const STRIDE: usize = 32;
/// Side of the cells the keypoint head scores, in pixels.
pub const CELL: usize = 8;

/// A sequence of convs, each followed by a ReLU when it is a `BasicLayer`.
#[derive(Debug)]
pub struct ConvStack {
    convs: Vec<Conv2d>,
    relu: Vec<bool>,
}

impl ConvStack {
    fn new(specs: &[ConvSpec], weights: &XfeatWeights, device: &Device) -> Self {
        let convs = specs
            .iter()
            .map(|spec| {
                let (w, b) = weights.conv(spec);
                conv2d(spec.shape, w.clone(), b.clone(), device)
            })
            .collect();
        Self {
            convs,
            relu: specs.iter().map(|s| s.basic).collect(),
        }
    }

    fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for (conv, &relu_after) in self.convs.iter().zip(&self.relu) {
            x = conv.forward(x);
            if relu_after {
                x = relu(x);
            }
        }
        x
    }
}

/// The three maps XFeat computes from a B×1×H×W image (H, W multiples of [`STRIDE`]), each
/// B×C×H/8×W/8.
#[derive(Debug)]
pub struct XfeatMaps {
    /// Dense descriptors, 64 channels, not yet normalised (`M1`).
    pub feats: Tensor<4>,
    /// Keypoint logits, 65 channels (`K1`).
    pub logits: Tensor<4>,
    /// Reliability in (0, 1), 1 channel (`H1`).
    pub heatmap: Tensor<4>,
}

/// The network with its BatchNorms folded.
#[derive(Debug)]
pub struct XfeatModel {
    skip1: ConvStack,
    block1: ConvStack,
    block2: ConvStack,
    block3: ConvStack,
    block4: ConvStack,
    block5: ConvStack,
    fusion: ConvStack,
    heatmap_head: ConvStack,
    keypoint_head: ConvStack,
}

impl XfeatModel {
    /// Builds the network from validated weights, on `device`.
    pub fn from_weights(weights: &XfeatWeights, device: &Device) -> Self {
        let stack = |specs: &[ConvSpec]| ConvStack::new(specs, weights, device);
        Self {
            skip1: stack(&SKIP1),
            block1: stack(&BLOCK1),
            block2: stack(&BLOCK2),
            block3: stack(&BLOCK3),
            block4: stack(&BLOCK4),
            block5: stack(&BLOCK5),
            fusion: stack(&FUSION),
            heatmap_head: stack(&HEATMAP_HEAD),
            keypoint_head: stack(&KEYPOINT_HEAD),
        }
    }

    /// `x`: B×1×H×W grey images (any affine intensity scale; the reference feeds 0–255), H and
    /// W multiples of [`STRIDE`].
    pub fn forward(&self, x: Tensor<4>) -> XfeatMaps {
        let [b, c, h, w] = x.dims();
        assert!(
            c == 1 && h % STRIDE == 0 && w % STRIDE == 0 && h > 0 && w > 0,
            "XFeat takes B×1×H×W images with sides multiples of {STRIDE}, got {:?}",
            [b, c, h, w]
        );
        let x = instance_norm(x);

        let pooled = avg_pool2d(x.clone(), AvgPoolOptions::new([4, 4]).with_stride([4, 4]));
        let x1 = self.block1.forward(x.clone());
        let x2 = self.block2.forward(x1 + self.skip1.forward(pooled));
        let x3 = self.block3.forward(x2);
        let x4 = self.block4.forward(x3.clone());
        let x5 = self.block5.forward(x4.clone());
        let size = [h / CELL, w / CELL];
        let up = |t: Tensor<4>| {
            interpolate(
                t,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(false)
                    .with_output_size(size),
            )
        };
        let feats = self.fusion.forward(x3 + up(x4) + up(x5));
        let heatmap = sigmoid(self.heatmap_head.forward(feats.clone()));
        // The 8×8 cells as 64 channels, channel = 8·row + column within the cell.
        let cells = x
            .reshape([b, h / CELL, CELL, w / CELL, CELL])
            .permute([0, 2, 4, 1, 3])
            .reshape([b, CELL * CELL, h / CELL, w / CELL]);
        let logits = self.keypoint_head.forward(cells);
        XfeatMaps {
            feats,
            logits,
            heatmap,
        }
    }
}
