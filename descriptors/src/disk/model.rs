//! DISK's U-Net (Tyszkiewicz et al., NeurIPS 2020; kornia's `DISK`), for inference: five encoder
//! blocks (the first at full resolution, each next after a 2×2 average pool) and four decoder
//! blocks (bilinear ×2 upsampling, concatenated with the encoder map of the same size). Every
//! block but the first is InstanceNorm (no affine) → PReLU (one slope per channel) → 5×5 conv
//! with bias. The output's first 128 channels are the dense descriptors, the last the heatmap.

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::module::{avg_pool2d, interpolate};
use burn::tensor::ops::{AvgPoolOptions, InterpolateMode, InterpolateOptions};

use crate::layers::{ConvShape, conv2d, instance_norm};

use super::weights::{BlockWeights, DOWN, DiskWeights, KERNEL};
/// Image sides must be multiples of this (four poolings).
pub const STRIDE: usize = 16;

#[derive(Debug)]
struct Block {
    prelu: Option<Tensor<4>>,
    conv: Conv2d,
}

impl Block {
    fn new(w: &BlockWeights, device: &Device) -> Self {
        let shape = ConvShape {
            c_in: w.c_in,
            c_out: w.c_out,
            kernel: KERNEL,
            stride: 1,
            padding: KERNEL / 2,
        };
        let conv = conv2d(shape, w.weight.clone(), w.bias.clone(), device);
        let prelu = w.prelu.as_ref().map(|slopes| {
            Tensor::from_data(TensorData::new(slopes.clone(), [1, w.c_in, 1, 1]), device)
        });
        Self { prelu, conv }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = match &self.prelu {
            Some(slopes) => {
                let x = instance_norm(x);
                x.clone().clamp_min(0.0) + x.clamp_max(0.0) * slopes.clone()
            }
            None => x,
        };
        self.conv.forward(x)
    }
}

/// The U-Net.
#[derive(Debug)]
pub struct DiskModel {
    down: Vec<Block>,
    up: Vec<Block>,
}

impl DiskModel {
    /// Builds the network from validated weights, on `device`.
    pub fn from_weights(weights: &DiskWeights, device: &Device) -> Self {
        let mut blocks = weights.blocks.iter().map(|w| Block::new(w, device));
        Self {
            down: blocks.by_ref().take(DOWN.len()).collect(),
            up: blocks.collect(),
        }
    }

    /// `x`: B×3×H×W images in [0, 1], H and W multiples of [`STRIDE`]. Returns B×129×H×W: 128
    /// dense descriptor channels (not normalised), then the heatmap.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        assert!(
            h % STRIDE == 0 && w % STRIDE == 0,
            "DISK takes images with sides multiples of {STRIDE}, got {h}×{w}"
        );
        let mut levels = vec![x];
        for (i, block) in self.down.iter().enumerate() {
            let prev = levels.last().expect("at least the input").clone();
            let input = if i == 0 {
                prev
            } else {
                avg_pool2d(prev, AvgPoolOptions::new([2, 2]).with_stride([2, 2]))
            };
            levels.push(block.forward(input));
        }
        let mut bottom = levels.pop().expect("the deepest level");
        for block in &self.up {
            let horizontal = levels.pop().expect("one encoder level per decoder block");
            let [_, _, hh, hw] = horizontal.dims();
            let up = interpolate(
                bottom,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(false)
                    .with_output_size([hh, hw]),
            );
            bottom = block.forward(Tensor::cat(vec![up, horizontal], 1));
        }
        bottom
    }
}
