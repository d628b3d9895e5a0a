//! The SSIM map of [`crate::loss`] (its 11-tap Gaussian window, 'valid', and the map's formula)
//! as one CPU operation with a hand-written backward.
//!
//! As burn tensor ops on flex it is two convolutions per window (layouts converted around an
//! im2col; the backward a transposed convolution through a column buffer) and some twenty
//! element-wise passes over the five filtered stacks forward, and as many again backward. Here,
//! per image channel on rayon's threads, the forward filters `x`, `y`, `x²`, `y²` and `x·y` (each
//! window pass a sum of shifted rows scaled by one tap, which the compiler vectorises) and
//! computes the map in one pass; the backward computes the map's derivatives with respect to the
//! five filtered values in one pass and spreads them back through the window ('full').

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

use crate::kernels::conv3x3::f32_slice;
use crate::loss::{DATA_RANGE, K1, K2, WIN_SIZE, gaussian_taps};

/// The SSIM map `B×C×(H−10)×(W−10)` of `pred` against `target` (both `B×C×H×W`, `H, W ≥ 11`), the
/// function [`crate::loss::ssim_map`] computes; only on burn's CPU backend (flex).
pub fn ssim_map(pred: Tensor<4>, target: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SsimBackend>::ssim_map(
        pred.into_dispatch(),
        target.into_dispatch(),
    ))
}

/// The backend operation behind [`ssim_map`].
#[backend_extension(Flex, Autodiff)]
pub trait SsimBackend: burn::backend::Backend {
    /// The SSIM map of `pred` against `target`.
    fn ssim_map(pred: FloatTensor<Self>, target: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl SsimBackend for Flex {
    fn ssim_map(pred: FloatTensor<Self>, target: FloatTensor<Self>) -> FloatTensor<Self> {
        forward(&pred.to_contiguous(), &target.to_contiguous()).0
    }
}

impl<C: CheckpointStrategy> SsimBackend for Autodiff<Flex, C> {
    fn ssim_map(pred: FloatTensor<Self>, target: FloatTensor<Self>) -> FloatTensor<Self> {
        match SsimBackward
            .prepare::<C>([pred.node(), target.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let pred = pred.into_primitive().to_contiguous();
                let target = target.into_primitive().to_contiguous();
                let (map, filtered) = forward(&pred, &target);
                prep.finish((pred, target, filtered), map)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::ssim_map(
                pred.into_primitive(),
                target.into_primitive(),
            )),
        }
    }
}

/// Sizes of one SSIM computation: `planes` image channels of `h×w`, maps of `oh×ow`.
#[derive(Clone, Copy, Debug)]
struct Planes {
    planes: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

impl Planes {
    fn of(x: &FloatTensor<Flex>) -> Self {
        let [b, c, h, w] = x.shape().dims();
        Self {
            planes: b * c,
            h,
            w,
            oh: h + 1 - WIN_SIZE,
            ow: w + 1 - WIN_SIZE,
        }
    }

    fn map(&self) -> usize {
        self.oh * self.ow
    }
}

/// The window means `μx, μy, μxx, μyy, μxy` at one map position.
type Means = [f32; 5];

/// The SSIM stabilising constants `C1`, `C2` (for images in [0, 1]).
fn constants() -> (f32, f32) {
    (
        (K1 * DATA_RANGE).powi(2) as f32,
        (K2 * DATA_RANGE).powi(2) as f32,
    )
}

/// The map and, per position, the five window means (kept for the backward).
fn forward(
    pred: &FloatTensor<Flex>,
    target: &FloatTensor<Flex>,
) -> (FloatTensor<Flex>, Vec<Means>) {
    let p = Planes::of(pred);
    let [b, c, _, _] = pred.shape().dims::<4>();
    let (c1, c2) = constants();
    let mut map = vec![0f32; p.planes * p.map()];
    let mut filtered = vec![[0f32; 5]; p.planes * p.map()];
    map.par_chunks_mut(p.map())
        .zip(filtered.par_chunks_mut(p.map()))
        .zip(f32_slice(pred).par_chunks(p.h * p.w))
        .zip(f32_slice(target).par_chunks(p.h * p.w))
        .for_each(|(((map, means), x), y)| {
            let mut product = vec![0f32; p.h * p.w];
            let mut tmp = Vec::new();
            for (k, source) in [Source::X, Source::Y, Source::Xx, Source::Yy, Source::Xy]
                .into_iter()
                .enumerate()
            {
                let input: &[f32] = match source {
                    Source::X => x,
                    Source::Y => y,
                    _ => {
                        for (q, (&a, &b)) in product.iter_mut().zip(x.iter().zip(y)) {
                            *q = match source {
                                Source::Xx => a * a,
                                Source::Yy => b * b,
                                _ => a * b,
                            };
                        }
                        &product
                    }
                };
                let mean = window(&p, input, &mut tmp);
                for (m, v) in means.iter_mut().zip(mean) {
                    m[k] = v;
                }
            }
            for (s, m) in map.iter_mut().zip(means.iter()) {
                *s = Terms::new(m, c1, c2).ssim();
            }
        });
    let out = FloatTensor::<Flex>::from_data(TensorData::new(map, [b, c, p.oh, p.ow]));
    (out, filtered)
}

/// Which of the five filtered inputs.
#[derive(Clone, Copy)]
enum Source {
    X,
    Y,
    Xx,
    Yy,
    Xy,
}

/// The map's factors at one position: `SSIM = a1·a2 / (b1·b2)`.
struct Terms {
    m: Means,
    a1: f32,
    a2: f32,
    b1: f32,
    b2: f32,
}

impl Terms {
    fn new(&m: &Means, c1: f32, c2: f32) -> Self {
        let [ux, uy, uxx, uyy, uxy] = m;
        let (ux2, uy2, uxuy) = (ux * ux, uy * uy, ux * uy);
        Self {
            m,
            a1: uxuy * 2.0 + c1,
            a2: (uxy - uxuy) * 2.0 + c2,
            b1: ux2 + uy2 + c1,
            b2: (uxx - ux2) + (uyy - uy2) + c2,
        }
    }

    fn ssim(&self) -> f32 {
        (self.a1 * self.a2) / (self.b1 * self.b2)
    }

    /// `g · ∂SSIM/∂(μx, μy, μxx, μyy, μxy)`.
    fn grad(&self, g: f32) -> Means {
        let [ux, uy, ..] = self.m;
        let den = self.b1 * self.b2;
        let s = self.ssim();
        let (da, db) = ((self.a2 - self.a1) / den, s * (self.b2 - self.b1) / den);
        let second = -s / self.b2;
        [
            g * 2.0 * (uy * da - ux * db),
            g * 2.0 * (ux * da - uy * db),
            g * second,
            g * second,
            g * 2.0 * self.a1 / den,
        ]
    }
}

#[derive(Debug)]
struct SsimBackward;

impl Backward<Flex, 2> for SsimBackward {
    type State = (FloatTensor<Flex>, FloatTensor<Flex>, Vec<Means>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_pred, node_target] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (pred, target, filtered) = ops.state;
        let p = Planes::of(&pred);
        let (c1, c2) = constants();
        let (x, y) = (f32_slice(&pred), f32_slice(&target));
        let dims = pred.shape().dims::<4>();
        let want = [node_pred.is_some(), node_target.is_some()];
        // Per plane: the gradients of pred and of target (each only if wanted).
        let per_plane: Vec<[Vec<f32>; 2]> = (0..p.planes)
            .into_par_iter()
            .map(|i| {
                let span = i * p.map()..(i + 1) * p.map();
                let d: Vec<Means> = f32_slice(&grad)[span.clone()]
                    .iter()
                    .zip(&filtered[span])
                    .map(|(&g, m)| Terms::new(m, c1, c2).grad(g))
                    .collect();
                let mut tmp = Vec::new();
                let mut spread = |k: usize| {
                    let d: Vec<f32> = d.iter().map(|d| d[k]).collect();
                    window_back(&p, &d, &mut tmp)
                };
                let plane = i * p.h * p.w..(i + 1) * p.h * p.w;
                let (x, y) = (&x[plane.clone()], &y[plane]);
                // ∂μxx and ∂μyy are equal: one spread serves both squares.
                let square = spread(2);
                let cross = spread(4);
                let mut of = |first: usize, own: &[f32], other: &[f32]| -> Vec<f32> {
                    let mut g = spread(first);
                    for (((g, &a), &b), (&s, &c)) in g
                        .iter_mut()
                        .zip(own)
                        .zip(other)
                        .zip(square.iter().zip(&cross))
                    {
                        *g += 2.0 * a * s + b * c;
                    }
                    g
                };
                let dx = if want[0] { of(0, x, y) } else { Vec::new() };
                let dy = if want[1] { of(1, y, x) } else { Vec::new() };
                [dx, dy]
            })
            .collect();
        for (k, node) in [node_pred, node_target].into_iter().enumerate() {
            if let Some(node) = node {
                let g: Vec<f32> = per_plane
                    .iter()
                    .flat_map(|g| g[k].iter().copied())
                    .collect();
                let g = FloatTensor::<Flex>::from_data(TensorData::new(g, dims));
                grads.register::<Flex>(node.id, g);
            }
        }
    }
}

/// The window over one `h×w` plane, 'valid' (`oh×ow` values): horizontally into `tmp`
/// (`h×ow`), then vertically.
fn window(p: &Planes, src: &[f32], tmp: &mut Vec<f32>) -> Vec<f32> {
    let taps = gaussian_taps();
    tmp.clear();
    tmp.resize(p.h * p.ow, 0.0);
    for (dst, row) in tmp.chunks_exact_mut(p.ow).zip(src.chunks_exact(p.w)) {
        for (k, &t) in taps.iter().enumerate() {
            axpy(dst, t, &row[k..k + p.ow]);
        }
    }
    let mut out = vec![0f32; p.map()];
    for (r, dst) in out.chunks_exact_mut(p.ow).enumerate() {
        for (k, &t) in taps.iter().enumerate() {
            axpy(dst, t, &tmp[(r + k) * p.ow..][..p.ow]);
        }
    }
    out
}

/// The transpose of [`window`]: each of the `oh×ow` values of `src` spread back over the `h×w`
/// pixels its window read.
fn window_back(p: &Planes, src: &[f32], tmp: &mut Vec<f32>) -> Vec<f32> {
    let taps = gaussian_taps();
    tmp.clear();
    tmp.resize(p.h * p.ow, 0.0);
    for (r, row) in src.chunks_exact(p.ow).enumerate() {
        for (k, &t) in taps.iter().enumerate() {
            axpy(&mut tmp[(r + k) * p.ow..][..p.ow], t, row);
        }
    }
    let mut out = vec![0f32; p.h * p.w];
    for (dst, row) in out.chunks_exact_mut(p.w).zip(tmp.chunks_exact(p.ow)) {
        for (k, &t) in taps.iter().enumerate() {
            axpy(&mut dst[k..k + p.ow], t, row);
        }
    }
    out
}

/// `dst += a · src` (equal lengths).
fn axpy(dst: &mut [f32], a: f32, src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += a * s;
    }
}
