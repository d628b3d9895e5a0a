//! Building blocks shared by the learned extractors: a burn convolution with given weights,
//! PyTorch's `InstanceNorm2d(affine=False)`, and its `F.normalize` of a descriptor.

use burn::module::Param;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;

/// PyTorch's default epsilon of its normalisation layers (added to the biased variance).
pub const NORM_EPS: f32 = 1e-5;

/// The shape of a square convolution with bias.
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Side of the square kernel, in pixels.
    pub kernel: usize,
    /// Stride, in pixels.
    pub stride: usize,
    /// Zero padding on each side, in pixels.
    pub padding: usize,
}

impl ConvShape {
    /// PyTorch's weight shape: `[c_out, c_in, kernel, kernel]`.
    pub const fn weight_dims(&self) -> [usize; 4] {
        [self.c_out, self.c_in, self.kernel, self.kernel]
    }

    /// Inputs one output value sees: `c_in × kernel²`.
    pub const fn fan_in(&self) -> usize {
        self.c_in * self.kernel * self.kernel
    }
}

/// A `burn` convolution of `shape` holding `weight` (`c_out × c_in × k × k`, row-major as in
/// PyTorch) and `bias` (`c_out`), on `device`.
pub fn conv2d(shape: ConvShape, weight: Vec<f32>, bias: Vec<f32>, device: &Device) -> Conv2d {
    let ConvShape {
        c_in,
        c_out,
        kernel,
        stride,
        padding: p,
    } = shape;
    let mut conv = Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(true)
        .init(device);
    conv.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(weight, shape.weight_dims()),
        device,
    ));
    conv.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(bias, [c_out]),
        device,
    )));
    conv
}

/// `InstanceNorm2d(affine=False)`: each channel of each image to zero mean and unit biased
/// variance, `(x − μ) · 1/sqrt(σ² + ε)`.
pub(crate) fn instance_norm(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let flat = x.reshape([b, c, h * w]);
    let (var, mean) = flat.clone().var_mean_bias(2);
    ((flat - mean) * (var + NORM_EPS).sqrt().recip()).reshape([b, c, h, w])
}

/// `F.normalize(v, dim=-1)`: `v` divided by its L2 norm, at least `1e-12`.
pub(crate) fn l2_normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}
