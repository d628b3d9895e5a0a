//! The hand-written CPU pieces under the inversion network, each checked against burn's generic
//! implementation (`attack/tests/network.rs`) and measured by the examples `bench_conv3x3` and
//! `bench_train_step`: the sparse first convolution that runs only at keypoints
//! ([`sparse_conv`]), the 3×3 convolution's forward and backward as im2col + GEMM ([`conv3x3`]),
//! BatchNorm + ReLU fused into one op ([`bn_relu`]), the encoder's max-pool ([`pool2x2`]), the
//! decoder's 2×2 transposed convolution ([`up2x2`]), the SSIM map of the loss ([`ssim`]), the
//! densifying first layer that fills every pixel from its nearest keypoint ([`nearest_fill`]),
//! the allocator setting that keeps freed memory ([`allocator`]), and output and scratch buffers
//! that are not zeroed before being written in full (`fresh`).

pub mod allocator;
pub mod bn_relu;
pub mod conv3x3;
mod fresh;
mod gemm;
pub mod nearest_fill;
pub mod pool2x2;
pub mod sparse_conv;
pub mod ssim;
pub mod up2x2;
