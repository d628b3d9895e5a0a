//! Reconstruction loss `L1 + (1 − SSIM)` (optionally plus an image-gradient L1 term) and the
//! validation metrics SSIM / PSNR.
//!
//! SSIM follows `skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
//! use_sample_covariance=False, data_range=1.0, channel_axis=...)`: an 11×11 Gaussian window
//! (σ = 1.5, scipy's `truncate=3.5` → radius 5, normalised), K1 = 0.01, K2 = 0.03,
//! C1 = (K1·1)², C2 = (K2·1)², biased (co)variances.
//!
//! The window is applied as a fixed separable depthwise convolution (1×11 then 11×1) with
//! **'valid' padding**: the SSIM map is (H−10)×(W−10). skimage filters with reflection and then
//! averages over the image with a 5-px border cropped — exactly the pixels whose 11×11 window
//! lies inside the image, i.e. the 'valid' map — so the mean of the valid map *is* skimage's
//! value (per channel, then averaged over channels), used for both the loss and [`ssim`].

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use serde::{Deserialize, Serialize};

use crate::device::is_flex;
use crate::kernels::ssim::ssim_map as fused_ssim_map;

/// Gaussian window side.
pub const WIN_SIZE: usize = 11;
/// Gaussian σ.
pub const SIGMA: f64 = 1.5;
/// SSIM's first stabilising constant (scikit-image's default).
pub const K1: f64 = 0.01;
/// SSIM's second stabilising constant (scikit-image's default).
pub const K2: f64 = 0.03;
/// Images are in [0, 1].
pub const DATA_RANGE: f64 = 1.0;

/// Normalised 1-D Gaussian taps (σ = 1.5, 11 taps).
pub fn gaussian_taps() -> [f32; WIN_SIZE] {
    let r = (WIN_SIZE / 2) as f64;
    let w: Vec<f64> = (0..WIN_SIZE)
        .map(|i| (-(i as f64 - r).powi(2) / (2.0 * SIGMA * SIGMA)).exp())
        .collect();
    let s: f64 = w.iter().sum();
    std::array::from_fn(|i| (w[i] / s) as f32)
}

/// Separable Gaussian filter, 'valid': `[N, 1, H, W] → [N, 1, H−10, W−10]`.
fn gaussian_valid(x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let taps = gaussian_taps().to_vec();
    let gx = Tensor::<4>::from_data(TensorData::new(taps.clone(), [1, 1, 1, WIN_SIZE]), &device);
    let gy = Tensor::<4>::from_data(TensorData::new(taps, [1, 1, WIN_SIZE, 1]), &device);
    let opts = || ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let x = conv2d(x, gx, None, opts());
    conv2d(x, gy, None, opts())
}

/// SSIM map `[B, C, H−10, W−10]` (differentiable). Both inputs B×C×H×W in [0, 1], H, W ≥ 11.
/// On the CPU one fused operation ([`crate::kernels::ssim::ssim_map`]), elsewhere
/// [`ssim_map_generic`].
pub fn ssim_map(pred: Tensor<4>, target: Tensor<4>) -> Tensor<4> {
    check_ssim_input(&pred, &target);
    if is_flex(&pred.device()) {
        return fused_ssim_map(pred, target);
    }
    ssim_map_generic(pred, target)
}

fn check_ssim_input(pred: &Tensor<4>, target: &Tensor<4>) {
    let [b, c, h, w] = pred.dims();
    assert_eq!(target.dims(), [b, c, h, w], "ssim: shape mismatch");
    assert!(
        h >= WIN_SIZE && w >= WIN_SIZE,
        "ssim: images must be at least {WIN_SIZE}×{WIN_SIZE}"
    );
}

/// [`ssim_map`] as burn tensor operations (two convolutions per window, element-wise ops for the
/// formula) on any device: what GPUs run, and what the CPU kernel is tested against.
pub fn ssim_map_generic(pred: Tensor<4>, target: Tensor<4>) -> Tensor<4> {
    check_ssim_input(&pred, &target);
    let [b, c, h, w] = pred.dims();
    let n = b * c;
    let x = pred.reshape([n, 1, h, w]);
    let y = target.reshape([n, 1, h, w]);
    let stacked = Tensor::cat(
        vec![
            x.clone(),
            y.clone(),
            x.clone() * x.clone(),
            y.clone() * y.clone(),
            x * y,
        ],
        0,
    );
    let f = gaussian_valid(stacked);
    let mut parts = f.chunk(5, 0).into_iter();
    let mut next = || parts.next().expect("5 chunks");
    let (ux, uy, uxx, uyy, uxy) = (next(), next(), next(), next(), next());
    let c1 = (K1 * DATA_RANGE).powi(2) as f32;
    let c2 = (K2 * DATA_RANGE).powi(2) as f32;
    let ux2 = ux.clone() * ux.clone();
    let uy2 = uy.clone() * uy.clone();
    let uxuy = ux * uy;
    let vx = uxx - ux2.clone();
    let vy = uyy - uy2.clone();
    let vxy = uxy - uxuy.clone();
    let num = (uxuy * 2.0 + c1) * (vxy * 2.0 + c2);
    let den = (ux2 + uy2 + c1) * (vx + vy + c2);
    (num / den).reshape([b, c, h - (WIN_SIZE - 1), w - (WIN_SIZE - 1)])
}

/// `mean |pred − target| + (1 − SSIM(pred, target))`, SSIM averaged over the valid map,
/// channels and batch. Returns a 1-element tensor (call `.backward()` on it).
pub fn l1_ssim_loss(pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let l1 = (pred.clone() - target.clone()).abs().mean();
    let s = ssim_map(pred, target).mean();
    l1 - s + 1.0
}

/// Mean absolute difference of the horizontal and of the vertical finite differences (the
/// image gradients) of `pred` and `target`, summed: it rewards edges in the right places,
/// which L1 and SSIM alone learn slowly from sparse inputs.
pub fn gradient_l1(pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    let [b, c, h, w] = pred.dims();
    let dx = |t: Tensor<4>| {
        t.clone().slice([0..b, 0..c, 0..h, 1..w]) - t.slice([0..b, 0..c, 0..h, 0..w - 1])
    };
    let dy = |t: Tensor<4>| {
        t.clone().slice([0..b, 0..c, 1..h, 0..w]) - t.slice([0..b, 0..c, 0..h - 1, 0..w])
    };
    (dx(pred.clone()) - dx(target.clone())).abs().mean() + (dy(pred) - dy(target)).abs().mean()
}

/// The training loss of an attacker:
/// `L1 + (1 − SSIM) + gradient · gradient_l1 + mse · mean (pred − target)²`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossConfig {
    /// Weight of the image-gradient term ([`gradient_l1`]); 0 leaves it out.
    pub gradient: f64,
    /// Weight of the mean squared error, the term PSNR measures (runs written before this
    /// field: 0, none).
    #[serde(default)]
    pub mse: f64,
}

impl LossConfig {
    /// The loss of `pred` against `target` (a 1-element tensor).
    pub fn loss(&self, pred: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
        let mut loss = l1_ssim_loss(pred.clone(), target.clone());
        if self.gradient != 0.0 {
            loss = loss + gradient_l1(pred.clone(), target.clone()) * self.gradient;
        }
        if self.mse != 0.0 {
            loss = loss + (pred - target).powi_scalar(2).mean() * self.mse;
        }
        loss
    }

    /// Checks the weights are finite numbers ≥ 0.
    pub fn validate(&self) -> Result<(), String> {
        for (name, weight) in [("gradient-loss", self.gradient), ("mse-loss", self.mse)] {
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(format!(
                    "the {name} weight must be a finite number ≥ 0 (got {weight})"
                ));
            }
        }
        Ok(())
    }
}

/// Mean SSIM over batch and channels (skimage's value for each image, averaged over the batch).
pub fn ssim(pred: Tensor<4>, target: Tensor<4>) -> f32 {
    let [b, ..] = pred.dims();
    let m: Vec<f32> = ssim_map(pred, target)
        .reshape([b as i32, -1])
        .mean_dim(1)
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32");
    m.iter().map(|&v| v as f64).sum::<f64>() as f32 / b as f32
}

/// PSNR in dB for data range 1, computed per image (MSE over C×H×W) and averaged over the
/// batch (`skimage.metrics.peak_signal_noise_ratio(t, p, data_range=1)` per image). An exact
/// match gives `+inf`.
pub fn psnr(pred: Tensor<4>, target: Tensor<4>) -> f32 {
    let [b, ..] = pred.dims();
    let d = pred - target;
    let mse: Vec<f32> = (d.clone() * d)
        .reshape([b as i32, -1])
        .mean_dim(1)
        .into_data()
        .try_into_vec_as::<f32>()
        .expect("f32");
    let total: f64 = mse
        .iter()
        .map(|&m| 10.0 * (DATA_RANGE * DATA_RANGE / m as f64).log10())
        .sum();
    (total / b as f64) as f32
}
