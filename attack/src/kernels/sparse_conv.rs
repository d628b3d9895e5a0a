//! Sparse-aware first layer of the inversion UNet.
//!
//! The inputs of the inversion network are feature maps that are zero everywhere except at the
//! (few hundred) keypoints. The first k×k convolution (odd k, padding p = k / 2, bias; 3×3 by
//! default) is therefore computed only at the keypoints and scattered:
//!
//! * `Y = F · W` for all keypoints at once (`F`: K×C_in, `W`: C_in×(k²·C_out)), one matmul;
//! * conv2d is a cross-correlation: `out[y', x'] = Σ_{ky,kx} w[ky, kx] · in[y' + ky − p, x' + kx − p]`,
//!   so the tap `(ky, kx)` of a keypoint at `(y, x)` lands on the output pixel
//!   `(y − (ky − p), x − (kx − p))` when that pixel is inside the image (zero padding: the
//!   other taps would only ever touch padding);
//! * every element of `Y` is scatter-added (`select_assign(.., Add)`, which accumulates
//!   duplicates) into the flattened NCHW output `B·C_out·H·W + 1` (indices built on the host
//!   from `pixel_index`); taps falling outside the image go to the extra dummy slot, which is
//!   sliced off; then the bias is added everywhere.
//!
//! Everything is made of burn ops with autodiff support (matmul, reshape/permute,
//! select_assign, slice, add), so gradients flow to the weights, the bias and the features.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;

/// Errors raised when assembling a [`SparseBatch`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SparseError {
    #[error("features have {rows} rows but pixel_index has {indices} entries")]
    /// The feature rows and the pixel indices differ in number.
    LengthMismatch {
        /// Feature rows.
        rows: usize,
        /// Pixel indices.
        indices: usize,
    },
    #[error("features have {got} channels, expected {expected}")]
    /// The features have another number of channels than the layer takes.
    ChannelMismatch {
        /// Channels given.
        got: usize,
        /// Channels the layer takes.
        expected: usize,
    },
    #[error("pixel index {index} out of range for a {batch}×{height}×{width} batch")]
    /// A pixel index outside the batch.
    IndexOutOfRange {
        /// The index.
        index: i64,
        /// Images in the batch.
        batch: usize,
        /// Height of the map.
        height: usize,
        /// Width of the map.
        width: usize,
    },
    #[error("pixel index {0} appears twice (indices must be unique)")]
    /// A pixel given twice.
    DuplicateIndex(i64),
}

/// A batch of sparse feature maps: only the non-zero pixels are stored.
///
/// `pixel_index[k] = b·H·W + y·W + x` is the position of `features[k]` (a `channels`-vector).
/// Indices must be unique; their order is free.
#[derive(Clone, Debug)]
pub struct SparseBatch {
    /// Images in the batch.
    pub batch: usize,
    /// Height of the dense map (pixels).
    pub height: usize,
    /// Width of the dense map (pixels).
    pub width: usize,
    /// Channels of each revealed pixel.
    pub channels: usize,
    /// K×C feature vectors of the non-zero pixels.
    pub features: Tensor<2>,
    /// K flattened pixel indices `b·H·W + y·W + x`.
    pub pixel_index: Tensor<1, Int>,
}

impl SparseBatch {
    /// Build from host data, validating indices (in range, unique) and lengths.
    /// `features` is row-major K×`channels`.
    #[allow(clippy::too_many_arguments)]
    pub fn from_host(
        batch: usize,
        height: usize,
        width: usize,
        channels: usize,
        features: Vec<f32>,
        pixel_index: Vec<i64>,
        device: &Device,
    ) -> Result<Self, SparseError> {
        let k = pixel_index.len();
        if features.len() != k * channels {
            return Err(SparseError::LengthMismatch {
                rows: features.len() / channels.max(1),
                indices: k,
            });
        }
        let total = (batch * height * width) as i64;
        let mut seen = vec![false; total as usize];
        for &i in &pixel_index {
            if i < 0 || i >= total {
                return Err(SparseError::IndexOutOfRange {
                    index: i,
                    batch,
                    height,
                    width,
                });
            }
            if std::mem::replace(&mut seen[i as usize], true) {
                return Err(SparseError::DuplicateIndex(i));
            }
        }
        Ok(Self {
            batch,
            height,
            width,
            channels,
            features: Tensor::from_data(TensorData::new(features, [k, channels]), device),
            pixel_index: Tensor::from_data(TensorData::new(pixel_index, [k]), device),
        })
    }

    /// Extract the pixels of a dense B×C×H×W map that have at least one non-zero channel
    /// (host-side; for tests and for callers that only have dense maps).
    pub fn from_dense(x: Tensor<4>) -> Self {
        let [b, c, h, w] = x.dims();
        let device = x.device();
        let data: Vec<f32> = x.into_data().try_into_vec_as::<f32>().expect("f32 data");
        let mut features = Vec::new();
        let mut index = Vec::new();
        for bi in 0..b {
            for p in 0..h * w {
                let base = bi * c * h * w + p;
                if (0..c).any(|ci| data[base + ci * h * w] != 0.0) {
                    index.push((bi * h * w + p) as i64);
                    features.extend((0..c).map(|ci| data[base + ci * h * w]));
                }
            }
        }
        Self::from_host(b, h, w, c, features, index, &device).expect("valid by construction")
    }

    /// Number of stored (non-zero) pixels.
    pub fn len(&self) -> usize {
        self.pixel_index.dims()[0]
    }

    /// Whether no pixel is revealed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A random batch for tests and benchmarks: `per_item` distinct pixels per item (at least
    /// 8), among them the four corners and four border midpoints, where zero padding matters;
    /// features uniform in [−1, 1).
    #[allow(clippy::too_many_arguments)]
    pub fn random(
        rng: &mut impl rand::Rng,
        batch: usize,
        height: usize,
        width: usize,
        channels: usize,
        per_item: usize,
        device: &Device,
    ) -> Self {
        let (h, w) = (height, width);
        let mut index = Vec::with_capacity(batch * per_item);
        for b in 0..batch {
            let mut seen = vec![false; h * w];
            let mut pixels = Vec::with_capacity(per_item);
            let borders = [
                0,
                w - 1,
                (h - 1) * w,
                h * w - 1,
                w / 2,
                (h / 2) * w,
                (h / 2) * w + w - 1,
                (h - 1) * w + w / 2,
            ];
            for p in borders {
                if !std::mem::replace(&mut seen[p], true) {
                    pixels.push(p);
                }
            }
            while pixels.len() < per_item.min(h * w) {
                let p = rng.random_range(0..h * w);
                if !std::mem::replace(&mut seen[p], true) {
                    pixels.push(p);
                }
            }
            index.extend(pixels.into_iter().map(|p| (b * h * w + p) as i64));
        }
        let features = (0..index.len() * channels)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        Self::from_host(batch, h, w, channels, features, index, device)
            .expect("valid by construction")
    }

    /// Host copy of `pixel_index`.
    pub fn host_index(&self) -> Vec<i64> {
        self.pixel_index
            .clone()
            .into_data()
            .try_into_vec_as::<i64>()
            .expect("int data")
    }
}

/// Dense B×C×H×W map with the sparse pixels' features and zeros elsewhere (differentiable
/// w.r.t. `features`).
pub fn to_dense(x: &SparseBatch) -> Tensor<4> {
    let device = x.features.device();
    let n = x.batch * x.height * x.width;
    Tensor::<2>::zeros([n, x.channels], &device)
        .select_assign(
            0,
            x.pixel_index.clone(),
            x.features.clone(),
            IndexingUpdateOp::Add,
        )
        .reshape([x.batch, x.height, x.width, x.channels])
        .permute([0, 3, 1, 2])
}

/// k×k convolution (odd k, padding k / 2, bias; 3×3 unless built [`Self::with_kernel`]) that can
/// run on a [`SparseBatch`] or on a dense map. The parameters are those of the wrapped burn
/// [`Conv2d`] (weight `[C_out, C_in, k, k]`).
#[derive(Module, Debug)]
pub struct SparseConv2d {
    /// The dense convolution whose weights the sparse path uses.
    pub conv: Conv2d,
}

impl SparseConv2d {
    /// Kaiming-uniform initialised 3×3 layer (burn's `Conv2d` default).
    pub fn new(in_channels: usize, out_channels: usize, device: &Device) -> Self {
        Self::with_kernel(in_channels, out_channels, 3, device)
    }

    /// Kaiming-uniform initialised `kernel`×`kernel` layer; `kernel` must be odd.
    pub fn with_kernel(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        device: &Device,
    ) -> Self {
        assert!(kernel % 2 == 1, "SparseConv2d: kernel {kernel} is not odd");
        let pad = kernel / 2;
        let conv = Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_bias(true)
            .init(device);
        Self { conv }
    }

    /// Side of the square kernel.
    pub fn kernel(&self) -> usize {
        self.conv.weight.dims()[2]
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.conv.weight.dims()[1]
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv.weight.dims()[0]
    }

    /// Dense path: the plain conv on a B×C_in×H×W map.
    pub fn forward_dense(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }

    /// Sparse path: equals `forward_dense(to_dense(x))`. Output B×C_out×H×W.
    pub fn forward(&self, x: &SparseBatch) -> Tensor<4> {
        let c_out = self.out_channels();
        let c_in = self.in_channels();
        assert_eq!(
            x.channels, c_in,
            "SparseConv2d: input has {} channels, layer takes {c_in}",
            x.channels
        );
        let (b, h, w) = (x.batch, x.height, x.width);
        let k = x.len();
        let (side, taps) = (self.kernel(), self.kernel() * self.kernel());
        let pad = (side / 2) as isize;
        let device = x.features.device();

        // Flat NCHW target of every (keypoint k, tap ky·side+kx, output channel o), in the row-major
        // order of Y = F·W (K × taps × C_out); taps falling outside the image go to the dummy slot
        // `total`. Scattering straight into NCHW order keeps the output contiguous (a permuted
        // NHWC result made every later layer slower than the dense conv it replaces).
        let hw = h * w;
        let total = b * c_out * hw;
        let idx = x.host_index();
        let mut target = Vec::with_capacity(k * taps * c_out);
        for &p in &idx {
            let p = p as usize;
            let (bi, rem) = (p / hw, p % hw);
            let (y, xx) = ((rem / w) as isize, (rem % w) as isize);
            for ky in 0..side as isize {
                for kx in 0..side as isize {
                    let (oy, ox) = (y - (ky - pad), xx - (kx - pad));
                    if oy >= 0 && oy < h as isize && ox >= 0 && ox < w as isize {
                        let base = bi * c_out * hw + oy as usize * w + ox as usize;
                        target.extend((0..c_out).map(|o| (base + o * hw) as i64));
                    } else {
                        target.extend(std::iter::repeat_n(total as i64, c_out));
                    }
                }
            }
        }
        let target =
            Tensor::<1, Int>::from_data(TensorData::new(target, [k * taps * c_out]), &device);

        // W: [C_out, C_in, k, k] -> [C_in, k, k, C_out] -> [C_in, k²·C_out].
        let wm = self
            .conv
            .weight
            .val()
            .permute([1, 2, 3, 0])
            .reshape([c_in, taps * c_out]);
        let y = x.features.clone().matmul(wm).reshape([k * taps * c_out]);
        let out = Tensor::<1>::zeros([total + 1], &device)
            .select_assign(0, target, y, IndexingUpdateOp::Add)
            .narrow(0, 0, total)
            .reshape([b, c_out, h, w]);
        match &self.conv.bias {
            Some(bias) => out + bias.val().reshape([1, c_out, 1, 1]),
            None => out,
        }
    }
}
