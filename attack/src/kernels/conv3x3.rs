//! The UNet's 3×3 convolution (stride 1, padding 1, no bias), forward and backward written for
//! the CPU.
//!
//! burn's `flex` CPU backend computes a convolution by converting the input to NHWC, an im2col in
//! 512-pixel tiles into zeroed buffers, a GEMM that repacks that im2col, and a scatter of the
//! result back to NCHW: for the 16–32-channel layers at 128²–256² those passes cost several times
//! the arithmetic. It has no convolution backward of its own: burn's generic fallback computes the
//! input gradient with a transposed convolution (through a column buffer of up to 8 MiB per image
//! and a col2im) and the weight gradient with a convolution whose batch and channel axes are
//! swapped (a kernel the size of the whole image), which flex runs in slow direct loops.
//!
//! [`Conv3x3`] replaces all three through burn's backend-extension mechanism (a custom op on
//! `Flex` and a custom autodiff op on `Autodiff<Flex>`), each per batch item and band of rows on
//! rayon's threads, with the `gemm` crate that burn-flex itself uses:
//! - forward: a tap-major im2col of the band made of whole-row copies, and one GEMM of the weights
//!   with it written straight into the output's NCHW rows;
//! - input gradient: the same forward applied to the output gradient with the kernel turned
//!   around (channel axes swapped, taps reversed);
//! - weight gradient: an im2col of the input (the forward's, or pixel-major for many channels)
//!   and one accumulating GEMM with the output gradient.
//!
//! Other devices (wgpu) run burn's own `conv2d` and its backward.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::module::{Module, Param};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use rayon::prelude::*;

use crate::device::is_flex;
use crate::kernels::fresh::{par_sum, with_scratch};
use crate::kernels::gemm::{SharedOut, Strided, matmul};

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
        forward(&x.to_contiguous(), &weight.to_contiguous())
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

/// `dL/dx`: the output gradient convolved, by [`forward`], with the kernel turned around
/// (`w'[i, o, u, v] = w[o, i, 2 − u, 2 − v]`): for stride 1 and padding 1, the same sums as the
/// transposed convolution burn's generic backward runs, which flex computes through a column
/// buffer up to 8 MiB per image and a col2im pass.
fn input_grad(grad: FloatTensor<Flex>, weight: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let [c_out, c_in, _, _] = weight.shape().dims();
    let weight = weight.to_contiguous();
    let w = f32_slice(&weight);
    let mut turned = vec![0f32; c_in * c_out * 9];
    for o in 0..c_out {
        for i in 0..c_in {
            for t in 0..9 {
                turned[(i * c_out + o) * 9 + 8 - t] = w[(o * c_in + i) * 9 + t];
            }
        }
    }
    let turned = FloatTensor::<Flex>::from_data(TensorData::new(turned, [c_in, c_out, 3, 3]));
    forward(&grad.to_contiguous(), &turned)
}

/// `dL/dw[o, i, u, v] = Σ_b Σ_p grad[b, o, p] · x_pad[b, i, p + (u−1, v−1)]`: per batch item and
/// band of image rows, an im2col of `x` and one accumulating GEMM with the output gradient, summed
/// over the batch.
///
/// Up to [`TAP_MAJOR_MAX_C_IN`] input channels the im2col is the forward's tap-major one (row
/// copies) and the GEMM computes `dw (C_out × C_in·9) = grad · colsᵀ` into a column-major
/// buffer, which gemm takes without transposing the problem; with more channels (the 8²–16²
/// levels, where the bands are whole images of few pixels) the pixel-major im2col and
/// `dwᵀ = cols · gradᵀ` are faster (BENCHMARKS.md). The bands keep the im2col buffer near 1 MiB,
/// in cache for its GEMM (a whole 16-channel 256² image would need 38 MB).
fn weight_grad(x: &FloatTensor<Flex>, grad: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    let [batch, c_in, height, width] = x.shape().dims();
    let c_out = grad.shape().dims::<4>()[1];
    let hw = height * width;
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let (x, grad) = (f32_slice(&x), f32_slice(&grad));
    let taps = c_in * 9;
    let band = (IM2COL_FLOATS / (taps * width)).clamp(1, height);
    let tap_major = c_in <= TAP_MAJOR_MAX_C_IN;
    let stride = band * width + TAP_ROW_PAD;
    let partial = |b: usize| {
        let image = &x[b * c_in * hw..(b + 1) * c_in * hw];
        let g = &grad[b * c_out * hw..(b + 1) * c_out * hw];
        let mut dw = vec![0f32; c_out * taps];
        with_scratch(taps * stride, |cols| {
            for y0 in (0..height).step_by(band) {
                let rows = band.min(height - y0);
                let k = rows * width;
                let g = g[y0 * width..].as_ptr();
                if tap_major {
                    tap_rows(image, (c_in, height, width), y0..y0 + rows, cols, stride);
                    // SAFETY: dst (C_out × taps, element (o, j) at j·C_out + o) is `dw`; lhs (C_out ×
                    // k, element (o, p) at o·HW + p from row y0) stays inside `g` because
                    // y0·W + k ≤ HW; rhs (k × taps, element (p, j) at j·stride + p) lies in `cols`,
                    // just filled, since k ≤ stride. `dw` and `cols` are this closure's own.
                    unsafe {
                        matmul(
                            (c_out, taps, k),
                            Strided::new(dw.as_mut_ptr(), c_out, 1),
                            y0 > 0,
                            Strided::new(g, 1, hw),
                            Strided::new(cols.as_ptr(), stride, 1),
                        );
                    }
                } else {
                    im2col(
                        image,
                        (c_in, height, width),
                        y0..y0 + rows,
                        &mut cols[..taps * k],
                    );
                    // SAFETY: dst (taps × C_out, element (j, o) at o·taps + j) is `dw`; lhs (taps ×
                    // k, element (j, p) at p·taps + j) lies in the taps·k floats of `cols` just
                    // written; rhs (k × C_out, element (p, o) at o·HW + p from row y0) stays inside
                    // `g` because y0·W + k ≤ HW. `dw` and `cols` are this closure's own.
                    unsafe {
                        matmul(
                            (taps, c_out, k),
                            Strided::new(dw.as_mut_ptr(), taps, 1),
                            y0 > 0,
                            Strided::new(cols.as_ptr(), taps, 1),
                            Strided::new(g, hw, 1),
                        );
                    }
                }
            }
        });
        dw
    };
    let dw = par_sum(batch, c_out * taps, partial);
    let dw = if tap_major {
        // Column-major C_out × taps to burn's row-major C_out × C_in × 3 × 3.
        (0..c_out * taps)
            .map(|e| dw[(e % taps) * c_out + e / taps])
            .collect()
    } else {
        dw
    };
    FloatTensor::<Flex>::from_data(TensorData::new(dw, [c_out, c_in, 3, 3]))
}

/// Most input channels for which the weight gradient uses the tap-major im2col.
const TAP_MAJOR_MAX_C_IN: usize = 128;

/// Floats in one band's im2col buffer (1 MiB).
const IM2COL_FLOATS: usize = 1 << 18;

/// Floats after each row of the forward's im2col: a row length that is a multiple of 4 KiB would
/// map the GEMM's reads of consecutive taps onto the same L1 cache sets.
const TAP_ROW_PAD: usize = 16;

/// `y = x ⊛ w` (NCHW, 3×3, stride 1, padding 1): per image and band of rows, a tap-major im2col
/// of the band (row `i·9 + u·3 + v` holds channel `i` shifted by `(u − 1, v − 1)`: whole-row
/// copies) and one GEMM `w (C_out × C_in·9) · cols` written straight into the output's rows. The
/// bands run on rayon's threads. Unlike flex's convolution, it converts no layout and copies no
/// result, and gemm reads both operands in place.
fn forward(x: &FloatTensor<Flex>, weight: &FloatTensor<Flex>) -> FloatTensor<Flex> {
    let [batch, c_in, height, width] = x.shape().dims();
    let c_out = weight.shape().dims::<4>()[0];
    let hw = height * width;
    let (xs, ws) = (f32_slice(x), f32_slice(weight));
    let taps = c_in * 9;
    let band = (IM2COL_FLOATS / (taps * width)).clamp(1, height);
    let stride = band * width + TAP_ROW_PAD;
    let len = batch * c_out * hw;
    let mut out = Vec::<f32>::with_capacity(len);
    let dst = SharedOut(out.as_mut_ptr());
    let tasks: Vec<(usize, usize)> = (0..batch)
        .flat_map(|b| (0..height).step_by(band).map(move |y0| (b, y0)))
        .collect();
    tasks.par_iter().for_each(|&(b, y0)| {
        let rows = band.min(height - y0);
        let image = &xs[b * c_in * hw..(b + 1) * c_in * hw];
        with_scratch(taps * stride, |cols| {
            tap_rows(image, (c_in, height, width), y0..y0 + rows, cols, stride);
            // SAFETY: dst (C_out × rows·W, element (o, p) at o·HW + p) is image b's output from
            // row y0 on: inside `out`'s capacity, and no other task writes these rows of this
            // image; gemm writes them without reading (no accumulation). lhs (C_out × C_in·9,
            // element (o, j) at o·C_in·9 + j) is `ws`, C_out·C_in·9 floats; rhs (C_in·9 ×
            // rows·W, element (j, p) at j·stride + p) lies in `cols`, which `tap_rows` just
            // filled, since rows·W ≤ stride.
            unsafe {
                matmul(
                    (c_out, rows * width, taps),
                    Strided::new(dst.at(b * c_out * hw + y0 * width), 1, hw),
                    false,
                    Strided::new(ws.as_ptr(), 1, taps),
                    Strided::new(cols.as_ptr(), 1, stride),
                );
            }
        });
    });
    // SAFETY: the tasks cover every (image, band of rows), and each wrote all C_out output rows
    // of its band: all `len` elements are written.
    unsafe { out.set_len(len) };
    FloatTensor::<Flex>::from_data(TensorData::new(out, [batch, c_out, height, width]))
}

/// Into `cols` (row `i·9 + u·3 + v` at `i·9 + u·3 + v` times `stride`, `rows.len()·W` floats):
/// channel `i` of `x` (one image, `C_in×H×W`) at `(y + u − 1, x + v − 1)` for the pixels `(y, x)`
/// of `rows`, zero outside the image.
fn tap_rows(
    x: &[f32],
    (c_in, height, width): (usize, usize, usize),
    rows: std::ops::Range<usize>,
    cols: &mut [f32],
    stride: usize,
) {
    let n = rows.len() * width;
    for (i, plane) in x.chunks_exact(height * width).take(c_in).enumerate() {
        for u in 0..3 {
            for v in 0..3 {
                let tap = &mut cols[(i * 9 + u * 3 + v) * stride..][..n];
                for (seg, y) in tap.chunks_exact_mut(width).zip(rows.clone()) {
                    let sy = (y + u).wrapping_sub(1);
                    if sy >= height {
                        seg.fill(0.0);
                        continue;
                    }
                    let src = &plane[sy * width..(sy + 1) * width];
                    match v {
                        0 => {
                            seg[0] = 0.0;
                            seg[1..].copy_from_slice(&src[..width - 1]);
                        }
                        1 => seg.copy_from_slice(src),
                        _ => {
                            seg[..width - 1].copy_from_slice(&src[1..]);
                            seg[width - 1] = 0.0;
                        }
                    }
                }
            }
        }
    }
}

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
