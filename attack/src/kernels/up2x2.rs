//! The decoder's 2×2 transposed convolution with stride 2 (each input pixel spreads to its own 2×2
//! block of output pixels, nothing overlaps), forward and backward written for the CPU.
//!
//! burn-flex runs a transposed convolution through a column buffer and a col2im pass, and burn's
//! generic backward adds a convolution for the input gradient and a batch-and-channel-swapped one
//! for the weight gradient. With stride equal to the kernel, all three are plain matrix products
//! per image once the output is seen as its four interleaved sub-images `(u, v)`:
//! - forward: `T ((C_out·4) × HW) = Wᵀ · X (C_in × HW)`, then interleaved into the output with the
//!   bias added;
//! - input gradient: `dX (C_in × HW) = W (C_in × C_out·4) · G`, where `G` is the output gradient
//!   de-interleaved like `T`;
//! - weight gradient: `dW (C_in × C_out·4) = Σ_b X · Gᵀ`; bias gradient: the output gradient's sum
//!   per channel.
//!
//! [`up2x2`] keeps burn's `ConvTranspose2d` module and its weights (`C_in × C_out × 2 × 2`), and
//! calls burn's own transposed convolution on other devices (wgpu).

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::nn::conv::ConvTranspose2d;
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

use crate::device::is_flex;
use crate::kernels::conv3x3::f32_slice;
use crate::kernels::fresh::par_sum;
use crate::kernels::gemm::{Strided, matmul};

/// `up.forward(x)` for a `ConvTranspose2d` with a 2×2 kernel, stride 2, no padding, dilation 1,
/// one group and a bias (the UNet's decoder), `B×C_in×H×W` → `B×C_out×2H×2W`; on the CPU by the
/// matrix products above, elsewhere by burn.
///
/// # Panics
/// If `up` is not such a layer.
pub fn up2x2(up: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    let bias = up.bias.as_ref().expect("up2x2: the layer has a bias");
    let [_, _, kh, kw] = up.weight.dims();
    assert!(
        [kh, kw] == [2, 2] && up.stride == [2, 2] && up.padding == [0, 0],
        "up2x2: a 2×2 kernel with stride 2 and no padding"
    );
    assert!(
        up.dilation == [1, 1] && up.groups == 1 && up.padding_out == [0, 0],
        "up2x2: no dilation, groups or output padding"
    );
    if !is_flex(&x.device()) {
        return up.forward(x);
    }
    Tensor::from_dispatch(<Dispatch as Up2x2Backend>::up2x2(
        x.into_dispatch(),
        up.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
    ))
}

/// The backend operation behind [`up2x2`] on the CPU.
#[backend_extension(Flex, Autodiff)]
pub trait Up2x2Backend: burn::backend::Backend {
    /// 2×2 transposed convolution, stride 2, with bias; `weight` is `C_in × C_out × 2 × 2`.
    fn up2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl Up2x2Backend for Flex {
    fn up2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        forward(
            &x.to_contiguous(),
            &weight.to_contiguous(),
            &bias.to_contiguous(),
        )
    }
}

impl<C: CheckpointStrategy> Up2x2Backend for Autodiff<Flex, C> {
    fn up2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match Up2x2Backward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.into_primitive(), weight.into_primitive());
                let output = Flex::up2x2(x.clone(), weight.clone(), bias.into_primitive());
                prep.finish((x, weight), output)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::up2x2(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }
}

#[derive(Debug)]
struct Up2x2Backward;

impl Backward<Flex, 3> for Up2x2Backward {
    type State = (FloatTensor<Flex>, FloatTensor<Flex>);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, weight) = ops.state;
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let shape = Shape::of(&x, &weight);
        let gathered = gather(&shape, f32_slice(&grad));
        if let Some(node) = node_weight {
            let dw = weight_grad(&shape, f32_slice(&x), &gathered);
            grads.register::<Flex>(node.id, dw);
        }
        if let Some(node) = node_x {
            let dx = input_grad(&shape, f32_slice(&weight), &gathered);
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_bias {
            let db = bias_grad(&shape, f32_slice(&grad));
            grads.register::<Flex>(node.id, db);
        }
    }
}

/// The sizes of one transposed convolution.
#[derive(Clone, Copy, Debug)]
struct Shape {
    batch: usize,
    c_in: usize,
    c_out: usize,
    height: usize,
    width: usize,
}

impl Shape {
    fn of(x: &FloatTensor<Flex>, weight: &FloatTensor<Flex>) -> Self {
        let [batch, c_in, height, width] = x.shape().dims();
        Self {
            batch,
            c_in,
            c_out: weight.shape().dims::<4>()[1],
            height,
            width,
        }
    }

    /// Input pixels per image.
    fn hw(&self) -> usize {
        self.height * self.width
    }

    /// Rows of `T` and `G` per image: `(o, u, v)`.
    fn taps(&self) -> usize {
        self.c_out * 4
    }
}

/// `out[b, o, 2y + u, 2x + v] = bias[o] + Σ_i w[i, o, u, v] · x[b, i, y, x]`: per image, the
/// product `T = Wᵀ · X`, then the output's rows interleaved from it.
fn forward(
    x: &FloatTensor<Flex>,
    weight: &FloatTensor<Flex>,
    bias: &FloatTensor<Flex>,
) -> FloatTensor<Flex> {
    let s = Shape::of(x, weight);
    let (xs, ws, bias) = (f32_slice(x), f32_slice(weight), f32_slice(bias));
    let (hw, taps, width) = (s.hw(), s.taps(), s.width);
    let mut t = vec![0f32; s.batch * taps * hw];
    t.par_chunks_mut(taps * hw)
        .zip(xs.par_chunks(s.c_in * hw))
        .for_each(|(t, image)| {
            // SAFETY: dst (C_out·4 × HW, element (r, p) at r·HW + p) is this image's `t`; lhs
            // (C_out·4 × C_in, element (r, i) = w[i, r] at i·C_out·4 + r) is `ws`, C_in·C_out·4
            // floats; rhs (C_in × HW, element (i, p) at i·HW + p) is `image`.
            unsafe {
                matmul(
                    (taps, hw, s.c_in),
                    Strided::new(t.as_mut_ptr(), 1, hw),
                    false,
                    Strided::new(ws.as_ptr(), taps, 1),
                    Strided::new(image.as_ptr(), 1, hw),
                );
            }
        });
    let plane = 4 * hw;
    let mut out = vec![0f32; s.batch * s.c_out * plane];
    // Per output channel of one image (2H rows of 2W), from its four rows of `T`.
    out.par_chunks_mut(plane)
        .zip(t.par_chunks(plane))
        .enumerate()
        .for_each(|(chunk, (out, t))| {
            let bias = bias[chunk % s.c_out];
            for (y, pair) in out.chunks_exact_mut(4 * width).enumerate() {
                for (u, row) in pair.chunks_exact_mut(2 * width).enumerate() {
                    let even = &t[(2 * u) * hw + y * width..][..width];
                    let odd = &t[(2 * u + 1) * hw + y * width..][..width];
                    for ((two, &e), &d) in row.chunks_exact_mut(2).zip(even).zip(odd) {
                        two[0] = e + bias;
                        two[1] = d + bias;
                    }
                }
            }
        });
    let dims = [s.batch, s.c_out, 2 * s.height, 2 * width];
    FloatTensor::<Flex>::from_data(TensorData::new(out, dims))
}

/// The output gradient de-interleaved: per image, `G ((C_out·4) × HW)` with
/// `G[(o, u, v), (y, x)] = grad[o, 2y + u, 2x + v]`.
fn gather(s: &Shape, grad: &[f32]) -> Vec<f32> {
    let (hw, width) = (s.hw(), s.width);
    let mut g = vec![0f32; s.batch * s.taps() * hw];
    g.par_chunks_mut(4 * hw)
        .zip(grad.par_chunks(4 * hw))
        .for_each(|(g, plane)| {
            for (r, g) in g.chunks_exact_mut(hw).enumerate() {
                let (u, v) = (r / 2, r % 2);
                for (y, g) in g.chunks_exact_mut(width).enumerate() {
                    let src = &plane[(2 * y + u) * 2 * width..][..2 * width];
                    for (g, two) in g.iter_mut().zip(src.chunks_exact(2)) {
                        *g = two[v];
                    }
                }
            }
        });
    g
}

/// `dX = W · G` per image: `W` as stored is `C_in × (C_out·4)`.
fn input_grad(s: &Shape, ws: &[f32], gathered: &[f32]) -> FloatTensor<Flex> {
    let (hw, taps) = (s.hw(), s.taps());
    let mut dx = vec![0f32; s.batch * s.c_in * hw];
    dx.par_chunks_mut(s.c_in * hw)
        .zip(gathered.par_chunks(taps * hw))
        .for_each(|(dx, g)| {
            // SAFETY: dst (C_in × HW, element (i, p) at i·HW + p) is this image's `dx`; lhs
            // (C_in × C_out·4, element (i, r) at i·C_out·4 + r) is `ws`; rhs (C_out·4 × HW,
            // element (r, p) at r·HW + p) is this image's `g`.
            unsafe {
                matmul(
                    (s.c_in, hw, taps),
                    Strided::new(dx.as_mut_ptr(), 1, hw),
                    false,
                    Strided::new(ws.as_ptr(), 1, taps),
                    Strided::new(g.as_ptr(), 1, hw),
                );
            }
        });
    FloatTensor::<Flex>::from_data(TensorData::new(dx, [s.batch, s.c_in, s.height, s.width]))
}

/// `dW = Σ_b X · Gᵀ`, `C_in × (C_out·4)`: burn's `C_in × C_out × 2 × 2` layout.
fn weight_grad(s: &Shape, xs: &[f32], gathered: &[f32]) -> FloatTensor<Flex> {
    let (hw, taps) = (s.hw(), s.taps());
    let partial = |b: usize| {
        let mut dw = vec![0f32; s.c_in * taps];
        // SAFETY: dst (C_in × C_out·4, element (i, r) at i·C_out·4 + r) is `dw`; lhs (C_in × HW,
        // element (i, p) at i·HW + p) is image b of `xs`; rhs (HW × C_out·4, element (p, r) at
        // r·HW + p) is image b of `gathered`.
        unsafe {
            matmul(
                (s.c_in, taps, hw),
                Strided::new(dw.as_mut_ptr(), 1, taps),
                false,
                Strided::new(xs[b * s.c_in * hw..].as_ptr(), 1, hw),
                Strided::new(gathered[b * taps * hw..].as_ptr(), hw, 1),
            );
        }
        dw
    };
    let dw = par_sum(s.batch, s.c_in * taps, partial);
    FloatTensor::<Flex>::from_data(TensorData::new(dw, [s.c_in, s.c_out, 2, 2]))
}

/// The output gradient summed per channel.
fn bias_grad(s: &Shape, grad: &[f32]) -> FloatTensor<Flex> {
    let plane = 4 * s.hw();
    let sums: Vec<f32> = (0..s.c_out)
        .into_par_iter()
        .map(|o| {
            (0..s.batch)
                .map(|b| {
                    let start = (b * s.c_out + o) * plane;
                    grad[start..start + plane]
                        .iter()
                        .map(|&g| g as f64)
                        .sum::<f64>()
                })
                .sum::<f64>() as f32
        })
        .collect();
    FloatTensor::<Flex>::from_data(TensorData::new(sums, [s.c_out]))
}
