//! BatchNorm with batch statistics followed by ReLU, as one CPU operation with a hand-written
//! backward: what every [`crate::model::ConvBnRelu`] runs while training on the CPU.
//!
//! burn-flex has no batch-norm kernels of its own, so burn's generic `batch_norm_train` and its
//! backward are built from tensor ops: the activation is transposed and copied to get per-channel
//! means, centred, squared, transposed and copied again, then normalised, scaled and shifted
//! (one pass each), and ReLU adds a mask and another pass; the backward makes as many again.
//! Fusing them took the default network's 128² training step from 0.75× to about 1.1× PyTorch's
//! speed (BENCHMARKS.md).
//!
//! [`BnReluBackend::bn_relu_train`] does the same arithmetic in four passes: the forward reads the NCHW input
//! twice (per-channel mean, then centred variance, like burn's two-pass mean-then-variance; each
//! summed in f32 lanes over blocks of a thousand elements and in f64 across them) and writes `max(0, γ·x̂ + β)` once; the backward recomputes `x̂` and the
//! ReLU mask from the saved input, sums `g` and `g·x̂` per channel, and writes
//! `dx = γ/σ · (g − mean(g) − x̂·mean(g·x̂))` with `g = dy·[γ·x̂ + β > 0]`. Running statistics are
//! updated exactly as burn's `BatchNorm` does it. Other devices, and inference, take burn's path.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::relu;
use rayon::prelude::*;

use crate::device::is_flex;
use crate::kernels::conv3x3::f32_slice;
use crate::kernels::fresh::par_chunks_from;

/// `relu(bn.forward(x))` for a `B×C×H×W` input; fused on the CPU while training.
pub fn bn_relu(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    if !(is_flex(&device) && device.is_autodiff() && bn.training.is_enabled()) {
        return relu(bn.forward(x));
    }
    let (output, mean, variance) = <Dispatch as BnReluBackend>::bn_relu_train(
        x.into_dispatch(),
        bn.gamma.val().into_dispatch(),
        bn.beta.val().into_dispatch(),
        bn.epsilon,
    );
    let (mean, variance) = (
        Tensor::<1>::from_dispatch(mean),
        Tensor::<1>::from_dispatch(variance),
    );
    // As burn's `BatchNorm::forward_train`.
    let running_mean = bn.running_mean.value_sync().to_device(&device);
    let running_var = bn.running_var.value_sync().to_device(&device);
    let running_mean = running_mean
        .mul_scalar(1.0 - bn.momentum)
        .add(mean.detach().mul_scalar(bn.momentum));
    let running_var = running_var
        .mul_scalar(1.0 - bn.momentum)
        .add(variance.detach().mul_scalar(bn.momentum));
    bn.running_mean.update(running_mean.detach());
    bn.running_var.update(running_var.detach());
    Tensor::from_dispatch(output)
}

/// The backend operation behind [`bn_relu`] on the CPU.
#[backend_extension(Flex, Autodiff)]
pub trait BnReluBackend: burn::backend::Backend {
    /// `max(0, γ·(x − μ)/√(σ² + ε) + β)` with the batch's per-channel mean `μ` and biased
    /// variance `σ²`; returns the output, `μ` and `σ²`.
    fn bn_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl BnReluBackend for Flex {
    fn bn_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let forward = Forward::new(&x, &gamma, &beta, epsilon);
        let [mean, variance] = forward.statistics();
        (forward.output(&x), mean, variance)
    }
}

impl<C: CheckpointStrategy> BnReluBackend for Autodiff<Flex, C> {
    fn bn_relu_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let prepared = BnReluBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        let forward = Forward::new(&x, &gamma, &beta, epsilon);
        let output = forward.output(&x);
        let [mean, variance] = forward.statistics().map(FloatTensor::<Self>::new);
        let output = match prepared {
            OpsKind::Tracked(prep) => prep.finish((x, forward), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (output, mean, variance)
    }
}

/// Shape of an NCHW activation as the kernels walk it: `batch × channels` contiguous planes.
#[derive(Clone, Copy, Debug)]
struct Layout {
    dims: [usize; 4],
    batch: usize,
    channels: usize,
    plane: usize,
}

impl Layout {
    fn of(x: &FloatTensor<Flex>) -> Self {
        let dims = x.shape().dims::<4>();
        Self {
            dims,
            batch: dims[0],
            channels: dims[1],
            plane: dims[2] * dims[3],
        }
    }

    /// Elements per channel (the statistics' sample count).
    fn count(&self) -> f64 {
        (self.batch * self.plane) as f64
    }

    /// Per channel `c`, the sums of `f(c, plane)` over the element ranges of its planes.
    fn per_channel<const N: usize>(
        &self,
        f: impl Fn(usize, std::ops::Range<usize>) -> [f64; N] + Sync,
    ) -> Vec<[f64; N]> {
        (0..self.channels)
            .into_par_iter()
            .map(|c| {
                (0..self.batch).fold([0.0; N], |mut sums, b| {
                    let start = (b * self.channels + c) * self.plane;
                    let plane = f(c, start..start + self.plane);
                    sums.iter_mut().zip(plane).for_each(|(s, p)| *s += p);
                    sums
                })
            })
            .collect()
    }
}

/// Lanes of independent partial sums in [`lane_sums`]: one running sum is a chain of dependent
/// additions the compiler may not reorder, and so cannot vectorise.
const LANES: usize = 16;

/// Elements summed in f32 lanes before their partial sums are added in f64: f32 lanes vectorise
/// twice as wide as f64 ones and need no conversion, and each lane then sums only
/// `BLOCK / LANES` values in f32.
const BLOCK: usize = 1024;

/// `Σ f(v)` over `values`, each of the `N` sums taken in f32 [`LANES`] within blocks of
/// [`BLOCK`] elements and in f64 across blocks.
fn lane_sums<const N: usize>(values: &[f32], f: impl Fn(f32) -> [f32; N]) -> [f64; N] {
    lane_sums2(values, values, |v, _| f(v))
}

/// `Σ f(a, b)` over the pairs of `a` and `b` (of equal length), as [`lane_sums`] does.
fn lane_sums2<const N: usize>(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> [f32; N]) -> [f64; N] {
    let mut sums = [0f64; N];
    for (a, b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let mut lanes = [[0f32; LANES]; N];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (ca, cb) in ca.zip(cb) {
            for l in 0..LANES {
                let v = f(ca[l], cb[l]);
                for k in 0..N {
                    lanes[k][l] += v[k];
                }
            }
        }
        for (&x, &y) in ra.iter().zip(rb) {
            let v = f(x, y);
            for k in 0..N {
                lanes[k][0] += v[k];
            }
        }
        for k in 0..N {
            sums[k] += lanes[k].iter().map(|&l| l as f64).sum::<f64>();
        }
    }
    sums
}

/// The forward's batch statistics and the per-channel map `x ↦ (x − μ)·scale + β` that
/// normalises, scales by γ and shifts by β (centred first, as burn does: folding μ into the
/// shift would cancel catastrophically when σ is small).
#[derive(Clone, Debug)]
struct Forward {
    layout: Layout,
    mean: Vec<f32>,
    variance: Vec<f64>,
    inv_std: Vec<f32>,
    scale: Vec<f32>,
    beta: Vec<f32>,
}

impl Forward {
    fn new(
        x: &FloatTensor<Flex>,
        gamma: &FloatTensor<Flex>,
        beta: &FloatTensor<Flex>,
        epsilon: f64,
    ) -> Self {
        let layout = Layout::of(x);
        let x = x.to_contiguous();
        let x = f32_slice(&x);
        let n = layout.count();
        let mean: Vec<f64> = layout
            .per_channel(|_, p| lane_sums(&x[p], |v| [v]))
            .into_iter()
            .map(|[s]| s / n)
            .collect();
        let variance: Vec<f64> = layout
            .per_channel(|c, p| {
                let m = mean[c] as f32;
                lane_sums(&x[p], |v| [(v - m) * (v - m)])
            })
            .into_iter()
            .map(|[s]| s / n)
            .collect();
        let gamma = f32_slice(&gamma.to_contiguous()).to_vec();
        let beta = f32_slice(&beta.to_contiguous()).to_vec();
        let inv_std: Vec<f32> = variance
            .iter()
            .map(|&v| (1.0 / (v + epsilon).sqrt()) as f32)
            .collect();
        let scale: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
        Self {
            layout,
            mean: mean.iter().map(|&m| m as f32).collect(),
            variance,
            inv_std,
            scale,
            beta,
        }
    }

    /// The batch's per-channel mean and biased variance, as f32 vectors.
    fn statistics(&self) -> [FloatTensor<Flex>; 2] {
        let channels = self.layout.channels;
        [
            vector(self.mean.clone(), channels),
            vector(self.variance.iter().map(|&v| v as f32).collect(), channels),
        ]
    }

    /// `(x − μ)·scale + β` for an element `v` of channel `c`.
    fn affine(&self, c: usize, v: f32) -> f32 {
        (v - self.mean[c]) * self.scale[c] + self.beta[c]
    }

    /// `max(0, (x − μ)·scale + β)`, per channel.
    fn output(&self, x: &FloatTensor<Flex>) -> FloatTensor<Flex> {
        let x = x.to_contiguous();
        let x = f32_slice(&x);
        let (plane, channels) = (self.layout.plane, self.layout.channels);
        let out = par_chunks_from(x.len(), plane, |i| {
            let c = i % channels;
            x[i * plane..(i + 1) * plane]
                .iter()
                .map(move |&v| self.affine(c, v).max(0.0))
        });
        FloatTensor::<Flex>::from_data(TensorData::new(out, self.layout.dims))
    }
}

#[derive(Debug)]
struct BnReluBackward;

impl Backward<Flex, 3> for BnReluBackward {
    type State = (FloatTensor<Flex>, Forward);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, forward) = ops.state;
        let x = x.to_contiguous();
        let grad = grad.to_contiguous();
        let (x, dy) = (f32_slice(&x), f32_slice(&grad));
        let layout = forward.layout;
        let channels = layout.channels;
        // g = dy where the ReLU let the value through; sums of g and g·x̂ per channel.
        let normalised = |c: usize, v: f32| (v - forward.mean[c]) * forward.inv_std[c];
        let passes = |c: usize, v: f32| forward.affine(c, v) > 0.0;
        let sums = layout.per_channel(|c, p| {
            let (x, dy) = (&x[p.clone()], &dy[p]);
            lane_sums2(x, dy, |v, g| {
                let g = if passes(c, v) { g } else { 0.0 };
                [g, g * normalised(c, v)]
            })
        });
        let sum_g: Vec<f64> = sums.iter().map(|s| s[0]).collect();
        let sum_gx: Vec<f64> = sums.iter().map(|s| s[1]).collect();
        let n = layout.count();
        if let Some(node) = node_x {
            let plane = layout.plane;
            let dx = par_chunks_from(x.len(), plane, |i| {
                let c = i % channels;
                let a = forward.scale[c];
                let (mean_g, mean_gx) = ((sum_g[c] / n) as f32, (sum_gx[c] / n) as f32);
                let span = i * plane..(i + 1) * plane;
                x[span.clone()].iter().zip(&dy[span]).map(move |(&v, &g)| {
                    let g = if passes(c, v) { g } else { 0.0 };
                    a * (g - mean_g - normalised(c, v) * mean_gx)
                })
            });
            let dx = FloatTensor::<Flex>::from_data(TensorData::new(dx, layout.dims));
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            let dgamma = sum_gx.iter().map(|&s| s as f32).collect();
            grads.register::<Flex>(node.id, vector(dgamma, channels));
        }
        if let Some(node) = node_beta {
            let dbeta = sum_g.iter().map(|&s| s as f32).collect();
            grads.register::<Flex>(node.id, vector(dbeta, channels));
        }
    }
}

fn vector(values: Vec<f32>, len: usize) -> FloatTensor<Flex> {
    FloatTensor::<Flex>::from_data(TensorData::new(values, [len]))
}
