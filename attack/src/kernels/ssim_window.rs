//! SSIM's separable 11-tap Gaussian window with 'valid' padding (see [`crate::loss`]), forward and
//! backward written for the CPU.
//!
//! As two burn `conv2d`s (1×11, then 11×1) on flex, the forward converts layouts around an im2col
//! and the backward is flex's transposed convolution through a column buffer and a col2im, for a
//! filter of 22 multiply-adds per pixel. Here each pass is a sum of shifted rows scaled by one tap
//! (row AXPYs the compiler vectorises), per map on rayon's threads; the backward is the same
//! window applied 'full' (each output gradient spread back over the pixels it read).

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

use crate::kernels::conv3x3::f32_slice;
use crate::loss::{WIN_SIZE, gaussian_taps};

/// The window over each `H×W` map of `x` (`N×1×H×W`, `H, W ≥ 11`), 'valid': `N×1×(H−10)×(W−10)`.
/// Only on burn's CPU backend (flex); [`crate::loss`] takes burn's `conv2d` elsewhere.
pub fn ssim_window(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SsimWindowBackend>::ssim_window(
        x.into_dispatch(),
    ))
}

/// The backend operation behind [`ssim_window`].
#[backend_extension(Flex, Autodiff)]
pub trait SsimWindowBackend: burn::backend::Backend {
    /// The separable Gaussian window, 'valid', over each map of an `N×1×H×W` tensor.
    fn ssim_window(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl SsimWindowBackend for Flex {
    fn ssim_window(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let x = x.to_contiguous();
        let [n, _, h, w] = x.shape().dims();
        let (out_h, out_w) = (h + 1 - WIN_SIZE, w + 1 - WIN_SIZE);
        let taps = gaussian_taps();
        let mut out = vec![0f32; n * out_h * out_w];
        out.par_chunks_mut(out_h * out_w)
            .zip(f32_slice(&x).par_chunks(h * w))
            .for_each(|(out, x)| {
                // Horizontally: each of the H rows to W − 10 values.
                let mut rows = vec![0f32; h * out_w];
                for (dst, src) in rows.chunks_exact_mut(out_w).zip(x.chunks_exact(w)) {
                    for (k, &t) in taps.iter().enumerate() {
                        axpy(dst, t, &src[k..k + out_w]);
                    }
                }
                // Vertically: output row y sums rows y..y + 10.
                for (y, dst) in out.chunks_exact_mut(out_w).enumerate() {
                    for (k, &t) in taps.iter().enumerate() {
                        axpy(dst, t, &rows[(y + k) * out_w..][..out_w]);
                    }
                }
            });
        FloatTensor::<Flex>::from_data(TensorData::new(out, [n, 1, out_h, out_w]))
    }
}

impl<C: CheckpointStrategy> SsimWindowBackend for Autodiff<Flex, C> {
    fn ssim_window(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match SsimWindowBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let [_, _, h, w] = x.shape().dims();
                prep.finish([h, w], Flex::ssim_window(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::ssim_window(x.into_primitive())),
        }
    }
}

#[derive(Debug)]
struct SsimWindowBackward;

impl Backward<Flex, 1> for SsimWindowBackward {
    /// The input's height and width.
    type State = [usize; 2];

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let Some(node) = node_x else { return };
        let [h, w] = ops.state;
        let [n, _, out_h, out_w] = grad.shape().dims();
        let taps = gaussian_taps();
        let mut dx = vec![0f32; n * h * w];
        dx.par_chunks_mut(h * w)
            .zip(f32_slice(&grad).par_chunks(out_h * out_w))
            .for_each(|(dx, dy)| {
                // Vertically back: output row y came from rows y..y + 10.
                let mut rows = vec![0f32; h * out_w];
                for (y, src) in dy.chunks_exact(out_w).enumerate() {
                    for (k, &t) in taps.iter().enumerate() {
                        axpy(&mut rows[(y + k) * out_w..][..out_w], t, src);
                    }
                }
                // Horizontally back: value x of a row came from pixels x..x + 10.
                for (dst, src) in dx.chunks_exact_mut(w).zip(rows.chunks_exact(out_w)) {
                    for (k, &t) in taps.iter().enumerate() {
                        axpy(&mut dst[k..k + out_w], t, src);
                    }
                }
            });
        let dx = FloatTensor::<Flex>::from_data(TensorData::new(dx, [n, 1, h, w]));
        grads.register::<Flex>(node.id, dx);
    }
}

/// `dst += a · src` (equal lengths).
fn axpy(dst: &mut [f32], a: f32, src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += a * s;
    }
}
