//! The encoder's 2×2 max-pool with stride 2, forward and backward written for the CPU.
//!
//! burn-flex pools through its generic 3-D pooling, keeping an i64 index per output, and burn's
//! backward scatters the output gradient into a zeroed input-sized tensor through those indices.
//! Here the forward keeps which of its four inputs each output took (one byte) and the backward
//! writes each gradient straight to that input, per plane on rayon's threads.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

use crate::kernels::conv3x3::f32_slice;

/// `max_pool2d` with a 2×2 kernel and stride 2 (odd last rows and columns dropped, as burn does)
/// over `B×C×H×W`; only on burn's CPU backend (flex): the UNet takes burn's `MaxPool2d` elsewhere.
/// Of equal values in a window, the first in row-major order is the one taken.
pub fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as MaxPool2x2Backend>::max_pool2x2(
        x.into_dispatch(),
    ))
}

/// The backend operation behind [`max_pool2x2`].
#[backend_extension(Flex, Autodiff)]
pub trait MaxPool2x2Backend: burn::backend::Backend {
    /// 2×2 max-pool with stride 2 over `B×C×H×W`.
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl MaxPool2x2Backend for Flex {
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        forward(&x.to_contiguous()).0
    }
}

impl<C: CheckpointStrategy> MaxPool2x2Backend for Autodiff<Flex, C> {
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match MaxPool2x2Backward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive().to_contiguous();
                let dims = x.shape().dims::<4>();
                let (output, taken) = forward(&x);
                prep.finish(Taken { dims, taken }, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::max_pool2x2(x.into_primitive())),
        }
    }
}

/// Which input of its window each output took (`2·dy + dx`), and the input's dimensions.
#[derive(Clone, Debug)]
struct Taken {
    dims: [usize; 4],
    taken: Vec<u8>,
}

/// The pooled tensor and, per output, which of its four inputs it took.
fn forward(x: &FloatTensor<Flex>) -> (FloatTensor<Flex>, Vec<u8>) {
    let [batch, channels, h, w] = x.shape().dims();
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![0f32; batch * channels * oh * ow];
    let mut taken = vec![0u8; out.len()];
    if !out.is_empty() {
        out.par_chunks_mut(oh * ow)
            .zip(taken.par_chunks_mut(oh * ow))
            .zip(f32_slice(x).par_chunks(h * w))
            .for_each(|((out, taken), x)| {
                for y in 0..oh {
                    let (top, bottom) = (&x[2 * y * w..][..w], &x[(2 * y + 1) * w..][..w]);
                    for c in 0..ow {
                        let window = [top[2 * c], top[2 * c + 1], bottom[2 * c], bottom[2 * c + 1]];
                        let mut best = 0;
                        for k in 1..4 {
                            if window[k] > window[best] {
                                best = k;
                            }
                        }
                        out[y * ow + c] = window[best];
                        taken[y * ow + c] = best as u8;
                    }
                }
            });
    }
    let out = FloatTensor::<Flex>::from_data(TensorData::new(out, [batch, channels, oh, ow]));
    (out, taken)
}

#[derive(Debug)]
struct MaxPool2x2Backward;

impl Backward<Flex, 1> for MaxPool2x2Backward {
    type State = Taken;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let Some(node) = node_x else { return };
        let Taken { dims, taken } = ops.state;
        let [batch, channels, h, w] = dims;
        let (oh, ow) = (h / 2, w / 2);
        let mut dx = vec![0f32; batch * channels * h * w];
        if oh * ow > 0 {
            dx.par_chunks_mut(h * w)
                .zip(f32_slice(&grad).par_chunks(oh * ow))
                .zip(taken.par_chunks(oh * ow))
                .for_each(|((dx, dy), taken)| {
                    for (i, (&g, &k)) in dy.iter().zip(taken).enumerate() {
                        let (y, c) = (i / ow, i % ow);
                        let (dy, dc) = (usize::from(k / 2), usize::from(k % 2));
                        dx[(2 * y + dy) * w + 2 * c + dc] = g;
                    }
                });
        }
        let dx = FloatTensor::<Flex>::from_data(TensorData::new(dx, dims));
        grads.register::<Flex>(node.id, dx);
    }
}
