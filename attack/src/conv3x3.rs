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
//! - weight gradient: per batch item, an im2col of the input and one GEMM with the output
//!   gradient (the `gemm` crate that burn-flex itself uses), the items spread over rayon threads.
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

/// `dL/dw[o, i, u, v] = Σ_b Σ_p grad[b, o, p] · x_pad[b, i, p + (u−1, v−1)]`: per batch item an
/// im2col of `x` (`C_in·9 × H·W`) and one GEMM, summed over the batch.
fn weight_grad(x: &FloatTensor<Flex>, grad: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    let [batch, c_in, height, width] = x.shape().dims();
    let c_out = grad.shape().dims::<4>()[1];
    let hw = height * width;
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let (x, grad) = (f32_slice(&x), f32_slice(&grad));
    let n = c_in * 9;
    let partial = |b: usize| {
        let cols = im2col(&x[b * c_in * hw..(b + 1) * c_in * hw], c_in, height, width);
        let g = &grad[b * c_out * hw..(b + 1) * c_out * hw];
        let mut dw = vec![0f32; c_out * n];
        // SAFETY: dst is c_out × n row-major (strides 1, n) inside `dw`; lhs is c_out × hw
        // row-major inside `g`; rhs (hw × n) reads `cols[j·hw + p]` for p < hw, j < n, inside
        // `cols` (n·hw long). `dw` is a fresh buffer, so nothing aliases it.
        unsafe {
            gemm::gemm(
                c_out,
                n,
                hw,
                dw.as_mut_ptr(),
                1,
                n as isize,
                false,
                g.as_ptr(),
                1,
                hw as isize,
                cols.as_ptr(),
                hw as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
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
        .unwrap_or_else(|| vec![0f32; c_out * n]);
    FloatTensor::<Flex>::from_data(TensorData::new(dw, [c_out, c_in, 3, 3]))
}

/// Rows `(i·9 + u·3 + v)` of `x` (one image, `C_in×H×W`) shifted by `(u−1, v−1)`, zero outside.
fn im2col(x: &[f32], c_in: usize, height: usize, width: usize) -> Vec<f32> {
    let hw = height * width;
    let mut cols = vec![0f32; c_in * 9 * hw];
    cols.par_chunks_mut(9 * hw)
        .zip(x.par_chunks(hw))
        .for_each(|(rows, plane)| {
            for (k, row) in rows.chunks_mut(hw).enumerate() {
                let (du, dv) = ((k / 3) as isize - 1, (k % 3) as isize - 1);
                for y in 0..height {
                    let sy = y as isize + du;
                    if sy < 0 || sy >= height as isize {
                        continue;
                    }
                    let src = &plane[sy as usize * width..(sy as usize + 1) * width];
                    let dst = &mut row[y * width..(y + 1) * width];
                    // dst[x] = src[x + dv] where 0 <= x + dv < width.
                    let (d0, s0, len) = if dv < 0 {
                        (1, 0, width - 1)
                    } else if dv > 0 {
                        (0, 1, width - 1)
                    } else {
                        (0, 0, width)
                    };
                    dst[d0..d0 + len].copy_from_slice(&src[s0..s0 + len]);
                }
            }
        });
    cols
}

/// The f32 data of a contiguous flex tensor (the UNet trains in f32).
fn f32_slice(t: &FloatTensor<Flex>) -> &[f32] {
    t.as_slice::<f32>()
        .expect("Conv3x3 runs on contiguous f32 tensors")
}
