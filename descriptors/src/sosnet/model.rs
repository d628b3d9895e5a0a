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
//!
//! Two implementations: [`SosnetModel`], a burn module (any device, autodiff), and [`CpuSosnet`],
//! the same inference on host f32 buffers (batched im2col + AVX-512 `gemm`), which
//! [`super::Sosnet`] uses on the flex CPU device.

use std::ops::Range;

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::ops::PadMode;
use gemm::Parallelism;
use rayon::prelude::*;

use super::weights::{LAYERS, LayerSpec, SosnetWeights};
use crate::layers::conv2d;

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
            .map(|(spec, (w, b))| conv2d(spec.shape, w.clone(), b.clone(), device))
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

/// Input side of stage 7 (the 8×8 map stages 1–6 leave).
const HEAD_SIDE: usize = 8;
/// Length of one patch's stage-6 output, the input of the dense stage 7 (NHWC order).
const HEAD_INPUT: usize = HEAD_SIDE * HEAD_SIDE * DESCRIPTOR_SIZE;
/// Patches one worker takes through stages 1–6 at a time: their activations (128 KiB per patch
/// after stages 1 and 2) stay in the core's L2 cache.
const GROUP: usize = 4;
/// Floats of one im2col tile (512 KiB): each GEMM call covers this many floats of the unfolded input.
const COL_TILE: usize = 128 * 1024;
/// Pixels of one patch.
const PATCH_PIXELS: usize = PATCH_SIZE * PATCH_SIZE;

/// One conv stage (BatchNorm folded in) for [`CpuSosnet`], on NHWC f32 data.
#[derive(Clone, Debug)]
struct CpuConv {
    kernel: usize,
    stride: usize,
    padding: usize,
    c_in: usize,
    c_out: usize,
    /// `[kernel·kernel·c_in, c_out]` row-major, rows ordered (ky, kx, input channel) like the
    /// NHWC im2col rows.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl CpuConv {
    /// From a fused PyTorch-layout weight (`c_out × c_in × k × k`) and bias.
    fn new(spec: &LayerSpec, weight: &[f32], bias: &[f32]) -> Self {
        let (k, c_in, c_out) = (spec.shape.kernel, spec.shape.c_in, spec.shape.c_out);
        let mut w = vec![0.0; weight.len()];
        for (o, filter) in weight.chunks_exact(c_in * k * k).enumerate() {
            for (i, plane) in filter.chunks_exact(k * k).enumerate() {
                for (tap, &v) in plane.iter().enumerate() {
                    w[(tap * c_in + i) * c_out + o] = v;
                }
            }
        }
        Self {
            kernel: k,
            stride: spec.shape.stride,
            padding: spec.shape.padding,
            c_in,
            c_out,
            weight: w,
            bias: bias.to_vec(),
        }
    }

    /// Length of an im2col row.
    fn depth(&self) -> usize {
        self.kernel * self.kernel * self.c_in
    }

    /// Output side for an input of side `side`.
    fn out_side(&self, side: usize) -> usize {
        (side + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Conv + bias + ReLU of NHWC maps of side `side` (`input`) into `output` (NHWC), by tiles of
    /// im2col rows, each one GEMM with the bias preloaded.
    fn forward_relu(&self, input: &[f32], side: usize, output: &mut [f32], col: &mut Vec<f32>) {
        let depth = self.depth();
        let rows = output.len() / self.c_out;
        let tile = (COL_TILE / depth).max(1);
        col.resize(tile * depth, 0.0);
        for start in (0..rows).step_by(tile) {
            let end = (start + tile).min(rows);
            let col = &mut col[..(end - start) * depth];
            self.im2col(input, side, start..end, col);
            let dst = &mut output[start * self.c_out..end * self.c_out];
            gemm_bias(
                col,
                (1, depth),
                &self.weight,
                &self.bias,
                dst,
                Parallelism::None,
            );
            relu_in_place(dst);
        }
    }

    /// Fill `col` with the im2col rows of output pixels `rows` (numbered over all maps, NHWC):
    /// each row is the `kernel × kernel × c_in` window, zeros where it hangs over the border.
    fn im2col(&self, input: &[f32], side: usize, rows: Range<usize>, col: &mut [f32]) {
        let (k, c) = (self.kernel, self.c_in);
        let out_side = self.out_side(side);
        let per_map = out_side * out_side;
        for (r, window) in rows.zip(col.chunks_exact_mut(self.depth())) {
            let (map, pixel) = (r / per_map, r % per_map);
            let (y, x) = (pixel / out_side, pixel % out_side);
            // Columns kx in [kx0, kx1) fall inside the map; they are contiguous in NHWC.
            let x0 = (x * self.stride) as isize - self.padding as isize;
            let kx0 = (-x0).max(0) as usize;
            let kx1 = (side as isize - x0).min(k as isize) as usize;
            for (ky, span) in window.chunks_exact_mut(k * c).enumerate() {
                let iy = (y * self.stride + ky) as isize - self.padding as isize;
                if !(0..side as isize).contains(&iy) {
                    span.fill(0.0);
                    continue;
                }
                let row_start = ((map * side + iy as usize) * side) as isize + x0;
                let src = (row_start + kx0 as isize) as usize * c
                    ..(row_start + kx1 as isize) as usize * c;
                span[..kx0 * c].fill(0.0);
                span[kx0 * c..kx1 * c].copy_from_slice(&input[src]);
                span[kx1 * c..].fill(0.0);
            }
        }
    }

    /// Stage 1 (3×3, one input channel, padding 1) on raw patches, InstanceNorm included: per
    /// patch, the 9 shifted copies of the zero-padded normalised patch (tap-major columns) times
    /// the weight, plus bias, ReLU. `output`: NHWC maps.
    fn first_stage(&self, patches: &[f32], output: &mut [f32], col: &mut Vec<f32>) {
        debug_assert_eq!(
            (self.kernel, self.stride, self.padding, self.c_in),
            (3, 1, 1, 1)
        );
        let padded_side = PATCH_SIZE + 2;
        let mut padded = vec![0.0; padded_side * padded_side];
        col.resize(9 * PATCH_PIXELS, 0.0);
        for (patch, dst) in patches
            .chunks_exact(PATCH_PIXELS)
            .zip(output.chunks_exact_mut(PATCH_PIXELS * self.c_out))
        {
            let (mean, std) = mean_std(patch);
            for (y, row) in patch.chunks_exact(PATCH_SIZE).enumerate() {
                let inner = &mut padded[(y + 1) * padded_side + 1..][..PATCH_SIZE];
                for (d, &v) in inner.iter_mut().zip(row) {
                    *d = (v - mean) / std;
                }
            }
            for (tap, plane) in col.chunks_exact_mut(PATCH_PIXELS).enumerate() {
                let (ky, kx) = (tap / 3, tap % 3);
                for (y, row) in plane.chunks_exact_mut(PATCH_SIZE).enumerate() {
                    row.copy_from_slice(&padded[(y + ky) * padded_side + kx..][..PATCH_SIZE]);
                }
            }
            gemm_bias(
                col,
                (PATCH_PIXELS, 1),
                &self.weight,
                &self.bias,
                dst,
                Parallelism::None,
            );
            relu_in_place(dst);
        }
    }
}

/// InstanceNorm2d statistics of one patch: mean and `sqrt(biased variance + eps)`.
fn mean_std(patch: &[f32]) -> (f32, f32) {
    let n = patch.len() as f64;
    let mean = patch.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = patch
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean as f32, (var + INSTANCE_NORM_EPS as f64).sqrt() as f32)
}

/// `dst = bias + lhs · rhs`, with `dst` `m × n` and `rhs` `k × n` row-major (`n = bias.len()`,
/// `k = rhs.len() / n`) and `lhs` `m × k` with (column, row) strides `lhs_strides`.
fn gemm_bias(
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    bias: &[f32],
    dst: &mut [f32],
    parallelism: Parallelism,
) {
    let n = bias.len();
    let (k, m) = (rhs.len() / n, dst.len() / n);
    let (lhs_cs, lhs_rs) = lhs_strides;
    if m == 0 {
        return;
    }
    assert!(
        k > 0 && (m - 1) * lhs_rs + (k - 1) * lhs_cs < lhs.len(),
        "lhs out of bounds"
    );
    for row in dst.chunks_exact_mut(n) {
        row.copy_from_slice(bias);
    }
    // SAFETY: `dst` (m × n, strides (1, n)), `lhs` (m × k, checked above) and `rhs` (k × n,
    // strides (1, n)) lie inside their slices, and `dst` is borrowed mutably, so it aliases
    // neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

fn relu_in_place(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// kornia's descriptor normalisation: `d + eps`, divided by its L2 norm.
fn l2_normalise(d: &mut [f32]) {
    for v in d.iter_mut() {
        *v += DESC_EPS;
    }
    let norm = d.iter().map(|v| v * v).sum::<f32>().sqrt();
    for v in d {
        *v /= norm;
    }
}

/// Per-worker activation and im2col buffers, reused across patch groups.
#[derive(Default)]
struct Scratch {
    current: Vec<f32>,
    next: Vec<f32>,
    col: Vec<f32>,
}

/// SOSNet inference on host f32 buffers, for the CPU: what [`SosnetModel::forward`] computes,
/// in another summation order and much faster than flex's convs.
///
/// Stages 1–6 run on NHWC activations, `GROUP` patches per rayon task so that they stay in
/// cache; each 3×3 conv is an im2col tile times the weight, one `gemm` call (bias preloaded)
/// followed by ReLU. Stage 7 is one parallel GEMM over all patches' stage-6 maps.
#[derive(Clone, Debug)]
pub struct CpuSosnet {
    /// Stages 1–6.
    convs: Vec<CpuConv>,
    /// Stage 7: its weight is `[HEAD_INPUT, 128]`, i.e. a dense layer over the NHWC 8×8×128 map.
    head: CpuConv,
}

impl CpuSosnet {
    /// Build from a validated state_dict (BatchNorm folded into the convs).
    pub fn from_weights(weights: &SosnetWeights) -> Self {
        let mut convs: Vec<CpuConv> = LAYERS
            .iter()
            .zip(weights.fused())
            .map(|(spec, (w, b))| CpuConv::new(spec, &w, &b))
            .collect();
        let head = convs.pop().expect("SOSNet has seven stages");
        Self { convs, head }
    }

    /// `patches`: N 32×32 grey patches, row-major, contiguous. `out`: N×128, gets the unit-norm
    /// descriptors.
    pub fn forward(&self, patches: &[f32], out: &mut [f32]) {
        let n = out.len() / DESCRIPTOR_SIZE;
        assert_eq!(
            (patches.len(), out.len()),
            (n * PATCH_PIXELS, n * DESCRIPTOR_SIZE),
            "SOSNet takes 32×32 patches and gives 128-d descriptors"
        );
        let mut features = vec![0.0; n * HEAD_INPUT];
        features
            .par_chunks_mut(GROUP * HEAD_INPUT)
            .zip(patches.par_chunks(GROUP * PATCH_PIXELS))
            .for_each_init(Scratch::default, |scratch, (f, x)| {
                self.features(x, f, scratch)
            });
        let head = &self.head;
        gemm_bias(
            &features,
            (1, HEAD_INPUT),
            &head.weight,
            &head.bias,
            out,
            Parallelism::Rayon(0),
        );
        out.chunks_exact_mut(DESCRIPTOR_SIZE).for_each(l2_normalise);
    }

    /// Stages 1–6 of a few patches: `features` gets their 8×8×128 maps (NHWC, after ReLU).
    fn features(&self, patches: &[f32], features: &mut [f32], s: &mut Scratch) {
        let n = patches.len() / PATCH_PIXELS;
        let (first, rest) = self.convs.split_first().expect("stage 1");
        let mut len = n * PATCH_PIXELS * first.c_out;
        s.current.resize(len, 0.0);
        first.first_stage(patches, &mut s.current[..len], &mut s.col);
        let mut side = PATCH_SIZE;
        for (i, conv) in rest.iter().enumerate() {
            let input = &s.current[..len];
            if i + 1 == rest.len() {
                debug_assert_eq!(conv.out_side(side), HEAD_SIDE);
                conv.forward_relu(input, side, features, &mut s.col);
                return;
            }
            let out_side = conv.out_side(side);
            len = n * out_side * out_side * conv.c_out;
            s.next.resize(len, 0.0);
            conv.forward_relu(input, side, &mut s.next[..len], &mut s.col);
            side = out_side;
            std::mem::swap(&mut s.current, &mut s.next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sosnet::weights::LayerWeights;

    /// Deterministic pseudo-random values in [-0.5, 0.5).
    fn noise(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn random_weights() -> SosnetWeights {
        let layers = LAYERS
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let fan_in = l.shape.fan_in() as f32;
                let seed = 3 * i as u64;
                LayerWeights {
                    weight: noise(l.shape.c_out * l.shape.fan_in(), seed)
                        .into_iter()
                        .map(|v| v * 3.0 / fan_in.sqrt())
                        .collect(),
                    running_mean: noise(l.shape.c_out, seed + 1)
                        .iter()
                        .map(|v| v * 0.2)
                        .collect(),
                    running_var: noise(l.shape.c_out, seed + 2)
                        .iter()
                        .map(|v| v + 1.0)
                        .collect(),
                }
            })
            .collect();
        SosnetWeights { layers }
    }

    #[test]
    fn cpu_forward_matches_burn_model() {
        let weights = random_weights();
        let device = Device::flex();
        let n = 2 * GROUP + 3; // a partial group
        let patches: Vec<f32> = noise(n * PATCH_PIXELS, 99)
            .iter()
            .map(|v| v + 0.5)
            .collect();
        let x = Tensor::<4>::from_data(
            TensorData::new(patches.clone(), [n, 1, PATCH_SIZE, PATCH_SIZE]),
            &device,
        );
        let want = SosnetModel::from_weights(&weights, &device)
            .forward(x)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let mut got = vec![0.0; n * DESCRIPTOR_SIZE];
        CpuSosnet::from_weights(&weights).forward(&patches, &mut got);
        let diff = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(diff <= 1e-5, "max |Δ| {diff}");
        assert!(
            want.iter().any(|v| v.abs() > 0.05),
            "degenerate descriptors"
        );
    }
}
