//! ALIKED-N16's dense network (Zhao et al., IEEE TIM 2023; `ALIKED.extract_dense_map`), for
//! inference:
//!
//! block1 (two 3×3 conv + BN + SELU, full resolution) → 2×2 average pool → block2 (residual,
//! 1/2) → 4×4 pool → block3 (residual, deformable convs, 1/8) → 4×4 pool → block4 (likewise,
//! 1/32). Each level goes through a 1×1 conv to 32 channels + SELU and is upsampled bilinearly
//! (corners aligned) to full resolution; the 128 concatenated channels are the feature map
//! (L2-normalised per pixel) and feed the score head (1×1 and three 3×3 convs, SELU between,
//! sigmoid). BatchNorms run folded into their convolutions ([`AlikedWeights`]).

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::{selu, sigmoid};
use burn::tensor::module::{avg_pool2d, deform_conv2d, interpolate};
use burn::tensor::ops::{AvgPoolOptions, DeformConvOptions, InterpolateMode, InterpolateOptions};

use crate::layers::{ConvShape, conv2d};

use super::weights::{AlikedWeights, Block, BlockConv, Conv};

/// Image sides must be multiples of this (the coarsest level is 1/32).
pub const STRIDE: usize = 32;

fn conv(c: &Conv, device: &Device) -> Conv2d {
    let shape = ConvShape {
        c_in: c.c_in,
        c_out: c.c_out,
        kernel: c.kernel,
        stride: 1,
        padding: c.kernel / 2,
    };
    conv2d(shape, c.weight.clone(), c.bias.clone(), device)
}

/// A 3×3 convolution, deformable when it has an offset convolution (torchvision's
/// `deform_conv2d` without mask; offsets clamped to a quarter of the map's longer side).
#[derive(Debug)]
struct Conv3 {
    conv: Conv2d,
    offsets: Option<Conv2d>,
}

impl Conv3 {
    fn new(c: &BlockConv, device: &Device) -> Self {
        Self {
            conv: conv(&c.conv, device),
            offsets: c.offsets.as_ref().map(|o| conv(o, device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let Some(offsets) = &self.offsets else {
            return self.conv.forward(x);
        };
        let [_, _, h, w] = x.dims();
        let max_offset = h.max(w) as f32 / 4.0;
        let offset = offsets.forward(x.clone()).clamp(-max_offset, max_offset);
        deform_conv2d(
            x,
            offset,
            self.conv.weight.val(),
            None,
            self.conv.bias.as_ref().map(|b| b.val()),
            DeformConvOptions::new([1, 1], [1, 1], [1, 1], 1, 1),
        )
    }
}

/// An encoder block: `SELU(conv2(SELU(conv1(x))) + downsample(x))`, without the residual for
/// block1.
#[derive(Debug)]
struct EncoderBlock {
    conv1: Conv3,
    conv2: Conv3,
    downsample: Option<Conv2d>,
}

impl EncoderBlock {
    fn new(b: &Block, device: &Device) -> Self {
        Self {
            conv1: Conv3::new(&b.conv1, device),
            conv2: Conv3::new(&b.conv2, device),
            downsample: b.downsample.as_ref().map(|c| conv(c, device)),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv2.forward(selu(self.conv1.forward(x.clone())));
        match &self.downsample {
            Some(d) => selu(y + d.forward(x)),
            None => selu(y),
        }
    }
}

/// The network.
#[derive(Debug)]
pub struct AlikedModel {
    blocks: Vec<EncoderBlock>,
    merge: Vec<Conv2d>,
    score_head: Vec<Conv2d>,
}

/// The dense maps of a B×3×H×W image.
#[derive(Debug)]
pub struct AlikedMaps {
    /// B×128×H×W, unit length along the channels.
    pub features: Tensor<4>,
    /// B×1×H×W keypoint scores in (0, 1).
    pub scores: Tensor<4>,
}

impl AlikedModel {
    /// Builds the network from validated weights, on `device`.
    pub fn from_weights(weights: &AlikedWeights, device: &Device) -> Self {
        Self {
            blocks: weights
                .blocks
                .iter()
                .map(|b| EncoderBlock::new(b, device))
                .collect(),
            merge: weights.merge.iter().map(|c| conv(c, device)).collect(),
            score_head: weights.score_head.iter().map(|c| conv(c, device)).collect(),
        }
    }

    /// `x`: B×3×H×W images in [0, 1], H and W multiples of [`STRIDE`].
    pub fn forward(&self, x: Tensor<4>) -> AlikedMaps {
        let [b, c, h, w] = x.dims();
        assert!(
            c == 3 && h % STRIDE == 0 && w % STRIDE == 0 && h > 0 && w > 0,
            "ALIKED takes B×3×H×W images with sides multiples of {STRIDE}, got {:?}",
            [b, c, h, w]
        );
        let pool =
            |t: Tensor<4>, k: usize| avg_pool2d(t, AvgPoolOptions::new([k, k]).with_stride([k, k]));
        let x1 = self.blocks[0].forward(x);
        let x2 = self.blocks[1].forward(pool(x1.clone(), 2));
        let x3 = self.blocks[2].forward(pool(x2.clone(), 4));
        let x4 = self.blocks[3].forward(pool(x3.clone(), 4));
        let up = |t: Tensor<4>| {
            interpolate(
                t,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_align_corners(true)
                    .with_output_size([h, w]),
            )
        };
        let levels: Vec<Tensor<4>> = [x1, x2, x3, x4]
            .into_iter()
            .zip(&self.merge)
            .enumerate()
            .map(|(i, (t, m))| {
                let t = selu(m.forward(t));
                if i == 0 { t } else { up(t) }
            })
            .collect();
        let all = Tensor::cat(levels, 1);
        let mut s = all.clone();
        for (i, conv) in self.score_head.iter().enumerate() {
            s = conv.forward(s);
            if i + 1 < self.score_head.len() {
                s = selu(s);
            }
        }
        // F.normalize: x / max(‖x‖, 1e-12).
        let norm = all.clone().square().sum_dim(1).sqrt().clamp_min(1e-12);
        AlikedMaps {
            features: all / norm,
            scores: sigmoid(s),
        }
    }
}
