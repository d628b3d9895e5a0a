//! The UNet's 3×3 convolution (stride 1, padding 1, no bias), with a CPU weight gradient that
//! costs about what its forward does.
//!
//! burn's `flex` CPU backend has a tiled im2col + GEMM forward convolution but no convolution
//! backward of its own: burn's generic fallback computes the input gradient with a transposed
//! convolution and the weight gradient with a convolution whose batch and channel axes are
//! swapped (a kernel the size of the whole image). The latter runs in flex's slow direct loops:
//! 2–4× the forward's time at 8²–64² and 14–17× at 128² (`examples/bench_conv3x3.rs`,
//! BENCHMARKS.md), which made a training step's backward about 3.5× its forward, where PyTorch's
//! is about 2×.
//!
//! [`Conv3x3`] keeps burn's forward and hand-writes the backward, through burn's backend-extension
//! mechanism (a custom autodiff op on `Autodiff<Flex>`):
//! - input gradient: flex's transposed convolution, as in burn's fallback (it is not the slow
//!   part);
//! - weight gradient: per batch item and band of rows, an im2col of the input and one GEMM with
//!   the output gradient (the `gemm` crate that burn-flex itself uses), the items spread over
//!   rayon threads.
//!
//! Other devices (wgpu) run burn's own `conv2d` and its backward.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use rayon::prelude::*;

use crate::device::is_flex;

/// 3×3 convolution, stride 1, padding 1, no bias; `weight` is `C_out×C_in×3×3` (the layout and
/// the record name of burn's `Conv2d`, so weights saved before this module load unchanged).
#[derive(Module, Debug)]
pub struct Conv3x3 {
    /// Weights, C_out×C_in×3×3.
    pub weight: Param<Tensor<4>>,
}

impl Conv3x3 {
    /// Initialised exactly as burn's `Conv2d` (Kaiming uniform) would be.
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        let conv = Conv2dConfig::new([c_in, c_out], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(device);
        Self {
            weight: conv.weight,
        }
    }

    /// `B×C_in×H×W` → `B×C_out×H×W`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let weight = self.weight.val();
        if is_flex(&x.device()) {
            Tensor::from_dispatch(<Dispatch as Conv3x3Backend>::conv3x3(
                x.into_dispatch(),
                weight.into_dispatch(),
            ))
        } else {
            conv2d(x, weight, None, options())
        }
    }
}

fn options() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

/// The backend operation behind [`Conv3x3::forward`] on the CPU.
#[backend_extension(Flex, Autodiff)]
pub trait Conv3x3Backend: burn::backend::Backend {
    /// 3×3 convolution, stride 1, padding 1, no bias.
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl Conv3x3Backend for Flex {
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        Flex::conv2d(x, weight, None, options())
    }
}

impl<C: CheckpointStrategy> Conv3x3Backend for Autodiff<Flex, C> {
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        match Conv3x3Backward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let weight = weight.into_primitive();
                let output = Flex::conv3x3(x.clone(), weight.clone());
                prep.finish((x, weight), output)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::conv3x3(x.into_primitive(), weight.into_primitive()))
            }
        }
    }
}

#[derive(Debug)]
struct Conv3x3Backward;

impl Backward<Flex, 2> for Conv3x3Backward {
    type State = (FloatTensor<Flex>, FloatTensor<Flex>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight) = ops.state;
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, weight_grad(&x, &grad));
        }
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, input_grad(grad, weight));
        }
    }
}

/// `dL/dx`: the transposed convolution of the output gradient with the same kernel (what burn's
/// generic backward does too; flex runs it at about the speed of its forward here).
fn input_grad(grad: FloatTensor<Flex>, weight: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let options = ConvTransposeOptions::new([1, 1], [1, 1], [0, 0], [1, 1], 1);
    Flex::conv_transpose2d(grad, weight, None, options)
}

/// `dL/dw[o, i, u, v] = Σ_b Σ_p grad[b, o, p] · x_pad[b, i, p + (u−1, v−1)]`: per batch item and
/// band of image rows, an im2col of `x` and one accumulating GEMM with the output gradient, summed
/// over the batch.
///
/// The GEMM computes `dwᵀ (C_in·9 × C_out) = cols · gradᵀ` with `cols` written column-major (each
/// pixel's `C_in·9` taps contiguous): gemm packs its left operand fastest in that layout, where
/// `grad · colsᵀ` (both operands contiguous along the pixels) made it gather across rows, which
/// took about a fifth of a training step. The bands keep the im2col buffer near 1 MiB, in cache
/// for its GEMM (a whole 16-channel 256² image would need 38 MB).
fn weight_grad(x: &FloatTensor<Flex>, grad: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    let [batch, c_in, height, width] = x.shape().dims();
    let c_out = grad.shape().dims::<4>()[1];
    let hw = height * width;
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let (x, grad) = (f32_slice(&x), f32_slice(&grad));
    let taps = c_in * 9;
    let band = (IM2COL_FLOATS / (taps * width)).clamp(1, height);
    let partial = |b: usize| {
        let image = &x[b * c_in * hw..(b + 1) * c_in * hw];
        let g = &grad[b * c_out * hw..(b + 1) * c_out * hw];
        let mut dw = vec![0f32; c_out * taps];
        let mut cols = vec![0f32; taps * band * width];
        for y0 in (0..height).step_by(band) {
            let rows = band.min(height - y0);
            let k = rows * width;
            im2col(
                image,
                (c_in, height, width),
                y0..y0 + rows,
                &mut cols[..taps * k],
            );
            // SAFETY: dst (taps × c_out, element (j, o) at o·taps + j) is `dw`; lhs (taps × k,
            // element (j, p) at p·taps + j) lies in the taps·k floats of `cols` just written; rhs
            // (k × c_out, element (p, o) at o·hw + y0·W + p) stays inside `g` because
            // y0·W + k ≤ hw. `dw` and `cols` are this closure's own buffers: nothing aliases dst.
            unsafe {
                gemm::gemm(
                    taps,
                    c_out,
                    k,
                    dw.as_mut_ptr(),
                    taps as isize,
                    1,
                    y0 > 0,
                    cols.as_ptr(),
                    taps as isize,
                    1,
                    g.as_ptr().add(y0 * width),
                    hw as isize,
                    1,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        dw
    };
    let dw = (0..batch)
        .into_par_iter()
        .map(partial)
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0f32; c_out * taps]);
    FloatTensor::<Flex>::from_data(TensorData::new(dw, [c_out, c_in, 3, 3]))
}

/// Floats in one band's im2col buffer (1 MiB).
const IM2COL_FLOATS: usize = 1 << 18;

/// Into `cols`, column-major (`rows.len()·W` columns of `C_in·9` taps): the tap `i·9 + u·3 + v`
/// of pixel `(y, x)` (y in `rows`) is channel `i` of `x` (one image, `C_in×H×W`) at
/// `(y + u − 1, x + v − 1)`, zero outside the image.
fn im2col(
    x: &[f32],
    (c_in, height, width): (usize, usize, usize),
    rows: std::ops::Range<usize>,
    cols: &mut [f32],
) {
    let taps = c_in * 9;
    debug_assert_eq!(cols.len(), taps * rows.len() * width);
    for (r, y) in rows.enumerate() {
        let row = &mut cols[r * width * taps..(r + 1) * width * taps];
        for (px, column) in row.chunks_exact_mut(taps).enumerate() {
            for (i, plane) in x.chunks_exact(height * width).enumerate() {
                for u in 0..3 {
                    let sy = (y + u).wrapping_sub(1);
                    for v in 0..3 {
                        let sx = (px + v).wrapping_sub(1);
                        column[i * 9 + u * 3 + v] = if sy < height && sx < width {
                            plane[sy * width + sx]
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

/// The f32 data of a contiguous flex tensor (the UNet trains in f32); shared with the other
/// hand-written CPU kernels ([`crate::kernels::bn_relu`]).
pub(crate) fn f32_slice(t: &FloatTensor<Flex>) -> &[f32] {
    t.as_slice::<f32>()
        .expect("featleak's CPU kernels run on contiguous f32 tensors")
}
