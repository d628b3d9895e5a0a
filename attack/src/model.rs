//! InvSfM-style UNet that inverts sparse local-feature maps to RGB images
//! (Dangwal et al., BMVC 2021; Pittaluga et al., CVPR 2019).
//!
//! * Encoder: `depth + 1` levels of double conv3×3 (+ BatchNorm + ReLU), widths
//!   `base_width · 2^i`, with a 2×2 max-pool between levels.
//! * Decoder: 2× upsampling by a transposed conv 2×2 / stride 2 (`w_i → w_{i−1}`), concatenation
//!   with the encoder skip (`2·w_{i−1}` channels), double conv back to `w_{i−1}`.
//!   Transposed conv rather than bilinear + conv: each output pixel is one GEMM row of a
//!   non-overlapping 2×2 scatter (≈ ¼ of the FLOPs of a 3×3 conv at the upsampled resolution, no
//!   separate interpolation pass in forward and backward), it halves the channels before the
//!   concatenation (as in Ronneberger et al. and the common PyTorch UNet), and it is the layer
//!   PyTorch's reference UNet used for the measured baseline.
//! * Optionally, at the bottleneck, the whole image's context ([`GlobalContext`]).
//! * Head: 1×1 conv to `out_channels`, then sigmoid (outputs in [0, 1]).
//!
//! The first layer takes the revealed keypoints as a [`SparseBatch`] and depends on the
//! [`InputEncoding`]: a [`SparseConv2d`] (C_in → base_width, 3×3, bias) computed at the
//! keypoints only, the same after a [`KeypointMlp`] that decodes each keypoint's vector on its
//! own (and with a wider kernel), or a [`NearestFill`] that densifies the map (each pixel takes a projection of
//! its nearest keypoint's features and its offset to it) before a dense 3×3 conv. The other 3×3 convs are
//! [`Conv3x3`] (forward and backward hand-written for the CPU) and have no bias (each is followed by
//! BatchNorm, which absorbs it). BatchNorm + ReLU run as one fused op while training on the CPU
//! ([`bn_relu`]).

use std::borrow::Cow;

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use serde::{Deserialize, Serialize};

use crate::device::is_flex;
use crate::kernels::bn_relu::bn_relu;
use crate::kernels::conv3x3::Conv3x3;
use crate::kernels::nearest_fill::NearestFill;
use crate::kernels::pool2x2::max_pool2x2;
use crate::kernels::sparse_conv::{SparseBatch, SparseConv2d, to_dense};
use crate::kernels::up2x2::up2x2;

/// Errors of [`UNetConfig::validate`] / [`UNetConfig::check_input`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UNetError {
    /// The sizes do not make a network.
    #[error("invalid UNet config: {0}")]
    Config(String),
    /// The input's sides are not multiples of `2^depth`.
    #[error("input {height}×{width} is not a multiple of 2^{depth} = {multiple}")]
    InputSize {
        /// Input height.
        height: usize,
        /// Input width.
        width: usize,
        /// Poolings of the network.
        depth: usize,
        /// `2^depth`.
        multiple: usize,
    },
    /// The input has another number of channels than the network takes.
    #[error("input has {got} channels, the network takes {expected}")]
    Channels {
        /// Channels given.
        got: usize,
        /// Channels the network takes.
        expected: usize,
    },
    /// A weights file could not be written or read.
    #[error("weights file: {0}")]
    Record(String),
}

/// How the first layer reads the revealed keypoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum InputEncoding {
    /// A 3×3 convolution of the sparse map (zero away from keypoints), computed at the
    /// keypoints only.
    #[default]
    Sparse,
    /// Every pixel filled with a learned `embed`-channel projection of its nearest keypoint's
    /// features, plus its offset and distance to that keypoint ([`NearestFill`]).
    NearestFill {
        /// Channels of the projection.
        embed: usize,
    },
    /// Each keypoint's vector through a two-layer perceptron ([`KeypointMlp`], `hidden`
    /// channels), then a `kernel`×`kernel` convolution computed at the keypoints only.
    Mlp {
        /// Channels of the perceptron's layers.
        hidden: usize,
        /// Side of the convolution's kernel (odd).
        kernel: usize,
    },
}

impl InputEncoding {
    /// Names accepted by [`Self::parse`].
    pub const NAMES: &[&str] = &["sparse", "nearest-fill", "mlp", "mlp-k7"];

    /// `sparse`, `nearest-fill` with a 32-channel projection, or `mlp` with 128 hidden
    /// channels and a 3×3 (`mlp`) or 7×7 (`mlp-k7`) kernel.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sparse" => Some(Self::Sparse),
            "nearest-fill" => Some(Self::NearestFill { embed: 32 }),
            "mlp" => Some(Self::Mlp {
                hidden: 128,
                kernel: 3,
            }),
            "mlp-k7" => Some(Self::Mlp {
                hidden: 128,
                kernel: 7,
            }),
            _ => None,
        }
    }

    /// The name [`Self::parse`] reads back.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sparse => "sparse",
            Self::NearestFill { .. } => "nearest-fill",
            Self::Mlp { kernel: 3, .. } => "mlp",
            Self::Mlp { .. } => "mlp-k7",
        }
    }
}

/// Architecture hyper-parameters (serialisable next to the weights).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UNetConfig {
    /// Channels of the sparse feature map (128 for SIFT, 512 for FREAK bits, +1 presence, ...).
    pub in_channels: usize,
    /// Width of the first level; level `i` has `base_width · 2^i` channels.
    pub base_width: usize,
    /// Number of 2× poolings (input sides must be multiples of `2^depth`).
    pub depth: usize,
    /// Output channels (3 = RGB).
    pub out_channels: usize,
    /// How the first layer reads the keypoints (runs written before this field: sparse).
    #[serde(default)]
    pub input: InputEncoding,
    /// Whether the bottleneck gets the whole image's context ([`GlobalContext`]; runs written
    /// before this field: no).
    #[serde(default)]
    pub global_context: bool,
}

impl UNetConfig {
    /// Right-sized for a 2-core CPU at 128²: widths 16→256, depth 4 (≈ 2.0 M parameters with
    /// 129 input channels). On the photos it learned as much per optimiser step as widths
    /// 32→512 (≈ 7.8 M; validation 12.9 against 12.8 dB after ~240 steps at lr 1e-3) at
    /// 1.2 s instead of 3.2 s per step (batch 8), so it gets ~2.7× more steps in a CPU budget.
    pub fn cpu_default(in_channels: usize) -> Self {
        Self {
            in_channels,
            base_width: 16,

            depth: 4,
            out_channels: 3,
            input: InputEncoding::default(),
            global_context: false,
        }
    }

    /// The paper's widths 64→1024, depth 4 (≈ 31 M parameters).
    pub fn paper(in_channels: usize) -> Self {
        Self {
            in_channels,
            base_width: 64,
            depth: 4,
            out_channels: 3,
            input: InputEncoding::default(),
            global_context: false,
        }
    }

    /// Channel width of every level, `base_width · 2^i` for `i = 0..=depth`.
    pub fn widths(&self) -> Vec<usize> {
        (0..=self.depth).map(|i| self.base_width << i).collect()
    }

    /// Checks that the sizes make a network.
    pub fn validate(&self) -> Result<(), UNetError> {
        let embed = match self.input {
            InputEncoding::Sparse => 1,
            InputEncoding::NearestFill { embed } => embed,
            InputEncoding::Mlp { hidden, kernel } => {
                if kernel % 2 == 0 {
                    return Err(UNetError::Config(format!("kernel {kernel} is not odd")));
                }
                hidden
            }
        };
        if self.in_channels == 0 || self.base_width == 0 || self.out_channels == 0 || embed == 0 {
            return Err(UNetError::Config("channel counts must be positive".into()));
        }
        if self.depth > 8 {
            return Err(UNetError::Config(format!(
                "depth {} is too large",
                self.depth
            )));
        }
        Ok(())
    }

    /// Checks that an `height`×`width` input with `channels` channels fits the network.
    pub fn check_input(
        &self,
        channels: usize,
        height: usize,
        width: usize,
    ) -> Result<(), UNetError> {
        if channels != self.in_channels {
            return Err(UNetError::Channels {
                got: channels,
                expected: self.in_channels,
            });
        }
        let multiple = 1usize << self.depth;
        if height == 0
            || width == 0
            || !height.is_multiple_of(multiple)
            || !width.is_multiple_of(multiple)
        {
            return Err(UNetError::InputSize {
                height,
                width,
                depth: self.depth,
                multiple,
            });
        }
        Ok(())
    }

    /// Builds the network with freshly initialised weights (burn defaults: Kaiming-uniform
    /// convs, BatchNorm γ = 1, β = 0).
    pub fn init(&self, device: &Device) -> Result<UNet, UNetError> {
        self.validate()?;
        let widths = self.widths();
        let w0 = widths[0];
        let (first, fill, mlp) = match self.input {
            InputEncoding::Sparse => (
                Some(SparseConv2d::new(self.in_channels, w0, device)),
                None,
                None,
            ),
            InputEncoding::NearestFill { embed } => (
                None,
                Some(NearestFill::new(self.in_channels, embed, w0, device)),
                None,
            ),
            InputEncoding::Mlp { hidden, kernel } => (
                Some(SparseConv2d::with_kernel(hidden, w0, kernel, device)),
                None,
                Some(KeypointMlp::new(self.in_channels, hidden, device)),
            ),
        };
        let first_bn = BatchNormConfig::new(w0).init(device);
        let first_b = ConvBnRelu::new(w0, w0, device);
        let downs = (1..=self.depth)
            .map(|i| DoubleConv::new(widths[i - 1], widths[i], device))
            .collect();
        let ups = (1..=self.depth)
            .rev()
            .map(|i| UpBlock::new(widths[i], widths[i - 1], device))
            .collect();
        let head = Conv2dConfig::new([w0, self.out_channels], [1, 1])
            .with_bias(true)
            .init(device);
        let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        let global = self
            .global_context
            .then(|| GlobalContext::new(widths[self.depth], device));
        Ok(UNet {
            mlp,
            first,
            fill,
            first_bn,
            first_b,
            downs,
            ups,
            global,
            head,
            pool,
            config: self.clone(),
        })
    }
}

/// conv3×3 (padding 1, no bias) → BatchNorm → ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    /// The 3×3 convolution (no bias: the batch norm follows).
    pub conv: Conv3x3,
    /// Its batch norm.
    pub bn: BatchNorm,
}

impl ConvBnRelu {
    /// A block from `c_in` to `c_out` channels.
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            conv: Conv3x3::new(c_in, c_out, device),
            bn: BatchNormConfig::new(c_out).init(device),
        }
    }

    /// Conv, batch norm, ReLU.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        bn_relu(&self.bn, self.conv.forward(x))
    }
}

/// Two fully connected layers with ReLU applied to each revealed pixel's vector on its own:
/// a non-linear decoding of the descriptor before the first convolution spreads it.
#[derive(Module, Debug)]
pub struct KeypointMlp {
    /// C_in → hidden, with bias.
    pub a: Linear,
    /// hidden → hidden, with bias.
    pub b: Linear,
}

impl KeypointMlp {
    /// A perceptron from `in_channels` to `hidden` channels.
    pub fn new(in_channels: usize, hidden: usize, device: &Device) -> Self {
        Self {
            a: LinearConfig::new(in_channels, hidden).init(device),
            b: LinearConfig::new(hidden, hidden).init(device),
        }
    }

    /// The same keypoints, each holding `relu(b(relu(a(features))))`.
    pub fn forward(&self, x: &SparseBatch) -> SparseBatch {
        let features = relu(self.b.forward(relu(self.a.forward(x.features.clone()))));
        SparseBatch {
            channels: features.dims()[1],
            features,
            ..x.clone()
        }
    }
}

/// The whole image's context added to every position of the bottleneck: the channels' means
/// over the image through a fully connected layer with ReLU, broadcast back (a global-features
/// branch as in Iizuka et al., SIGGRAPH 2016). The bottleneck's convolutions see only part of the
/// image from most positions; a scene's colour and brightness depend on all of it.
#[derive(Module, Debug)]
pub struct GlobalContext {
    /// C → C, with bias.
    pub fc: Linear,
}

impl GlobalContext {
    /// Context for a bottleneck of `channels` channels.
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            fc: LinearConfig::new(channels, channels).init(device),
        }
    }

    /// `x + relu(fc(mean of x over the image))`, the context broadcast to every position.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let means = x.clone().mean_dim(3).mean_dim(2).reshape([b, c]);
        let context = relu(self.fc.forward(means)).reshape([b, c, 1, 1]);
        x + context.expand([b, c, h, w])
    }
}

/// Two [`ConvBnRelu`].
#[derive(Module, Debug)]
pub struct DoubleConv {
    /// The first block.
    pub a: ConvBnRelu,
    /// The second block.
    pub b: ConvBnRelu,
}

impl DoubleConv {
    /// Two blocks from `c_in` to `c_out` channels.
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        Self {
            a: ConvBnRelu::new(c_in, c_out, device),
            b: ConvBnRelu::new(c_out, c_out, device),
        }
    }

    /// Both blocks.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.b.forward(self.a.forward(x))
    }
}

/// Transposed conv 2×2/2 (`c_in → c_out`, bias), concat with the skip, double conv `2·c_out → c_out`.
#[derive(Module, Debug)]
pub struct UpBlock {
    /// 2× transposed convolution from `c_in` to `c_out` channels.
    pub up: ConvTranspose2d,
    /// The two blocks after concatenating the skip connection.
    pub conv: DoubleConv,
}

impl UpBlock {
    /// A decoder level from `c_in` to `c_out` channels.
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        let up = ConvTranspose2dConfig::new([c_in, c_out], [2, 2])
            .with_stride([2, 2])
            .init(device);
        Self {
            up,
            conv: DoubleConv::new(2 * c_out, c_out, device),
        }
    }

    /// Upsamples `x`, concatenates `skip`, two blocks.
    pub fn forward(&self, x: Tensor<4>, skip: Tensor<4>) -> Tensor<4> {
        let up = up2x2(&self.up, x);
        self.conv.forward(Tensor::cat(vec![skip, up], 1))
    }
}

/// Whether [`UNet::forward`] runs its first layer sparse on `device`: on burn's CPU backend
/// (`flex`), where it is what makes training affordable, and not on GPUs, where the dense
/// convolution is faster (measured in BENCHMARKS.md).
pub fn uses_sparse_first_layer(device: &Device) -> bool {
    is_flex(device)
}

/// The inversion UNet. Build it with [`UNetConfig::init`].
#[derive(Module, Debug)]
pub struct UNet {
    /// Per-keypoint perceptron before the first conv ([`InputEncoding::Mlp`]).
    pub mlp: Option<KeypointMlp>,
    /// First conv (C_in → w0, 3×3, bias), sparse-aware ([`InputEncoding::Sparse`]).
    pub first: Option<SparseConv2d>,
    /// Densifying first layer ([`InputEncoding::NearestFill`]).
    pub fill: Option<NearestFill>,
    /// Batch norm of the first conv.
    pub first_bn: BatchNorm,
    /// Second conv of the first level.
    pub first_b: ConvBnRelu,
    /// Encoder levels 1..=depth (each after a max-pool).
    pub downs: Vec<DoubleConv>,
    /// Decoder levels depth..=1.
    pub ups: Vec<UpBlock>,
    /// Whole-image context at the bottleneck ([`UNetConfig::global_context`]).
    pub global: Option<GlobalContext>,
    /// 1×1 conv to RGB (followed by sigmoid).
    pub head: Conv2d,
    /// 2× max-pool between encoder levels.
    pub pool: MaxPool2d,
    /// The architecture it was built from.
    #[module(skip)]
    pub config: UNetConfig,
}

impl UNet {
    /// The architecture it was built from.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// Saves the weights (and BatchNorm running statistics) to a burnpack file.
    ///
    /// Goes through [`Module::valid`], which folds the pending running-statistics update of the
    /// last training forward into the module: a plain `save_file` on a module fresh out of a
    /// training step would store running stats one update stale.
    pub fn save_weights<P: AsRef<std::path::Path>>(&self, path: P) -> Result<(), UNetError> {
        self.valid()
            .save_file(path)
            .map_err(|e| UNetError::Record(e.to_string()))
    }

    /// Builds a network for `config` on `device` and loads weights saved by [`Self::save_weights`].
    pub fn load_weights<P: AsRef<std::path::Path>>(
        config: &UNetConfig,
        path: P,
        device: &Device,
    ) -> Result<Self, UNetError> {
        config
            .init(device)?
            .try_load_file(path)
            .map_err(|e| UNetError::Record(e.to_string()))
    }

    /// Sparse input. Output B×3×H×W in [0, 1]. Panics if the input does not fit (see
    /// [`UNetConfig::check_input`]).
    ///
    /// With [`InputEncoding::Sparse`], on the CPU the first layer runs at the keypoints only
    /// ([`Self::forward_sparse`]); on a GPU the input is scattered into a dense map first
    /// ([`to_dense`]) and the first layer is the plain convolution, which a GPU runs several
    /// times faster than the sparse layer's host-side index building and scatter-add (see
    /// [`uses_sparse_first_layer`]). Both compute the same function.
    pub fn forward(&self, x: &SparseBatch) -> Tensor<4> {
        self.check(x.channels, x.height, x.width);
        match (&self.first, &self.fill) {
            (Some(first), _) if !uses_sparse_first_layer(&x.features.device()) => {
                let x = self.decoded(x);
                self.forward_after_first(first.forward_dense(to_dense(&x)))
            }
            _ => self.forward_sparse(x),
        }
    }

    /// `x` through the per-keypoint perceptron, when the network has one.
    fn decoded<'a>(&self, x: &'a SparseBatch) -> Cow<'a, SparseBatch> {
        match &self.mlp {
            Some(mlp) => Cow::Owned(mlp.forward(x)),
            None => Cow::Borrowed(x),
        }
    }

    /// Sparse input, first layer sparse (rest dense) whatever the device. Output B×3×H×W in
    /// [0, 1]. Panics if the input does not fit (see [`UNetConfig::check_input`]).
    pub fn forward_sparse(&self, x: &SparseBatch) -> Tensor<4> {
        self.check(x.channels, x.height, x.width);
        let y0 = match (&self.first, &self.fill) {
            (Some(first), _) => first.forward(&self.decoded(x)),
            (None, Some(fill)) => fill.forward(x),
            (None, None) => unreachable!("UNetConfig::init builds one first layer"),
        };
        self.forward_after_first(y0)
    }

    /// Dense input B×C_in×H×W (the reference path; pixels whose channels are all zero hold no
    /// keypoint). Output B×3×H×W in [0, 1].
    pub fn forward_dense(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, c, h, w] = x.dims();
        self.check(c, h, w);
        match (&self.first, &self.mlp) {
            (Some(first), None) => self.forward_after_first(first.forward_dense(x)),
            _ => self.forward_sparse(&SparseBatch::from_dense(x)),
        }
    }

    fn check(&self, channels: usize, height: usize, width: usize) {
        if let Err(e) = self.config.check_input(channels, height, width) {
            panic!("UNet: {e}");
        }
    }

    fn forward_after_first(&self, y0: Tensor<4>) -> Tensor<4> {
        let x = self.first_b.forward(bn_relu(&self.first_bn, y0));
        let mut skips = Vec::with_capacity(self.downs.len());
        let mut x = x;
        for down in &self.downs {
            let pooled = if is_flex(&x.device()) {
                max_pool2x2(x.clone())
            } else {
                self.pool.forward(x.clone())
            };
            skips.push(x);
            x = down.forward(pooled);
        }
        if let Some(global) = &self.global {
            x = global.forward(x);
        }
        for up in &self.ups {
            let skip = skips.pop().expect("one skip per level");
            x = up.forward(x, skip);
        }
        sigmoid(pointwise(&self.head, x))
    }
}

/// A 1×1 convolution with bias (`conv`), as the matrix product `W (C_out × C_in) · X (C_in × H·W)`
/// per image plus the bias: the same function as `conv.forward`, whose CPU path (flex) converts
/// layouts around an im2col and whose generic backward computes the weight gradient in slow
/// direct loops, where a matrix product's backward is two more matrix products.
fn pointwise(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [batch, c_in, height, width] = x.dims();
    let [c_out, ..] = conv.weight.dims();
    let weight = conv.weight.val().reshape([1, c_out, c_in]);
    let y = weight.matmul(x.reshape([batch, c_in, height * width]));
    let y = match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, c_out, 1]),
        None => y,
    };
    y.reshape([batch, c_out, height, width])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution::Uniform;

    /// [`pointwise`] computes `Conv2d::forward` of a 1×1 convolution, and the same gradients.
    #[test]
    fn pointwise_matches_the_1x1_convolution() {
        let device = Device::flex().autodiff();
        let conv = Conv2dConfig::new([5, 3], [1, 1]).init(&device);
        let x = Tensor::<4>::random([2, 5, 7, 6], Uniform(-1.0, 1.0), &device).require_grad();
        let r = Tensor::<4>::random([2, 3, 7, 6], Uniform(-1.0, 1.0), &device);
        let (ours, reference) = (pointwise(&conv, x.clone()), conv.forward(x.clone()));
        let diff = |a: Tensor<4>, b: Tensor<4>| (a - b).abs().max().into_scalar::<f32>();
        assert!(diff(ours.clone(), reference.clone()) < 1e-5);
        let g_ours = (ours * r.clone()).sum().backward();
        let g_ref = (reference * r).sum().backward();
        let grad = |g| conv.weight.grad(g).unwrap();
        assert!(diff(grad(&g_ours), grad(&g_ref)) < 1e-5);
        assert!(diff(x.grad(&g_ours).unwrap(), x.grad(&g_ref).unwrap()) < 1e-5);
        let bias = conv.bias.as_ref().unwrap();
        let d = (bias.grad(&g_ours).unwrap() - bias.grad(&g_ref).unwrap())
            .abs()
            .max();
        assert!(d.into_scalar::<f32>() < 1e-5);
    }
}
