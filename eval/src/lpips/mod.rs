//! LPIPS, the learned perceptual image distance (Zhang et al., "The Unreasonable Effectiveness of
//! Deep Features as a Perceptual Metric", CVPR 2018), as the reference `lpips` package (v0.1)
//! computes it: both images, scaled to [−1, 1] and shifted and scaled per channel, go through an
//! ImageNet backbone (torchvision's AlexNet or VGG16); at five activations each pixel's feature
//! vector is made unit length, the squared differences are weighted per channel by a learned 1×1
//! layer and averaged over the pixels; the five averages are summed. 0 for identical images;
//! larger is more different (≈0.1 already looks clearly degraded to people).
//!
//! Where SSIM and PSNR reward a blurry average that gets the large shapes right, LPIPS rewards what
//! people judge similar: textures, edges, objects. The linear layers (v0.1, BSD-2-Clause, 11 kB)
//! are bundled; the backbone is torchvision's ImageNet checkpoint, which the user supplies (e.g.
//! `alexnet-owt-7be5be79.pth`, `vgg16-397923af.pth`, the files PyTorch caches under
//! `~/.cache/torch/hub/checkpoints`).

mod weights;

use std::path::Path;
use std::str::FromStr;

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use featleak_descriptors::layers::conv2d;
use featleak_descriptors::state_dict::{StateDictWeights, WeightsError};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::image_metrics::MetricError;
use weights::{Alex, Backbone, BackboneWeights, Layer, LinearWeights, Vgg};

/// The reference's `ScalingLayer`: inputs in [−1, 1] become `(x − shift) / scale` per channel.
const SHIFT: [f32; 3] = [-0.030, -0.088, -0.188];
const SCALE: [f32; 3] = [0.458, 0.448, 0.450];
/// Added to each feature vector's norm before dividing (the reference's `normalize_tensor`).
const NORM_EPS: f32 = 1e-10;
/// Both image sides must be at least this (AlexNet's relu5 needs 31 pixels).
pub const MIN_SIDE: u32 = 32;

const ALEX_LINEAR: &[u8] = include_bytes!("../../weights/lpips-v0.1-alex.safetensors");
const VGG_LINEAR: &[u8] = include_bytes!("../../weights/lpips-v0.1-vgg.safetensors");

/// The backbone LPIPS compares features of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LpipsNet {
    /// AlexNet (the reference's default; closest to human judgements in its paper).
    Alex,
    /// VGG16 (closer to a perceptual loss; about 20× the computation).
    Vgg,
}

impl LpipsNet {
    /// `alex` or `vgg`, as the reference names them.
    pub fn name(self) -> &'static str {
        match self {
            Self::Alex => "alex",
            Self::Vgg => "vgg",
        }
    }
}

impl FromStr for LpipsNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "alex" => Ok(Self::Alex),
            "vgg" | "vgg16" => Ok(Self::Vgg),
            other => Err(format!("unknown LPIPS network '{other}' (alex or vgg)")),
        }
    }
}

/// One step of the backbone on the device.
#[derive(Debug)]
enum Step {
    Conv(Box<Conv2d>),
    MaxPool(usize, usize),
    Tap,
}

/// An LPIPS network ready to compare images, on the flex CPU backend.
#[derive(Debug)]
pub struct Lpips {
    net: LpipsNet,
    steps: Vec<Step>,
    /// The five linear layers' weights, each 1×C×1×1.
    linear: Vec<Tensor<4>>,
    device: Device,
}

impl Lpips {
    /// Loads `net`'s backbone from torchvision's ImageNet checkpoint at `backbone` (a `.pth`, or
    /// `.safetensors` with the same names), with the bundled v0.1 linear layers.
    pub fn load(net: LpipsNet, backbone: &Path) -> Result<Self, WeightsError> {
        match net {
            LpipsNet::Alex => Self::build::<Alex>(net, backbone, ALEX_LINEAR),
            LpipsNet::Vgg => Self::build::<Vgg>(net, backbone, VGG_LINEAR),
        }
    }

    fn build<B: Backbone>(
        net: LpipsNet,
        backbone: &Path,
        linear: &[u8],
    ) -> Result<Self, WeightsError> {
        let device = Device::flex();
        let backbone = BackboneWeights::<B>::load(backbone)?;
        let name = format!("lpips-v0.1-{}", net.name());
        let linear = LinearWeights::<B>::from_safetensors_bytes(linear, Path::new(&name))?;
        let mut convs = backbone.convs.into_iter();
        let steps = B::LAYERS
            .iter()
            .map(|layer| match *layer {
                Layer::Conv { shape, .. } => {
                    let (w, b) = convs.next().expect("one weight per conv");
                    Step::Conv(Box::new(conv2d(shape, w, b, &device)))
                }
                Layer::MaxPool { kernel, stride } => Step::MaxPool(kernel, stride),
                Layer::Tap => Step::Tap,
            })
            .collect();
        let linear = linear
            .layers
            .into_iter()
            .zip(B::CHANNELS)
            .map(|(w, c)| Tensor::from_data(TensorData::new(w, [1, c, 1, 1]), &device))
            .collect();
        Ok(Self {
            net,
            steps,
            linear,
            device,
        })
    }

    /// The backbone.
    pub fn net(&self) -> LpipsNet {
        self.net
    }

    /// The LPIPS distance between two images of the same size (each side ≥ [`MIN_SIDE`]).
    pub fn distance(&self, a: &RgbImage, b: &RgbImage) -> Result<f64, MetricError> {
        let (w, h) = a.dimensions();
        if b.dimensions() != (w, h) {
            return Err(MetricError::ShapeMismatch {
                a: vec![h as usize, w as usize, 3],
                b: vec![b.height() as usize, b.width() as usize, 3],
            });
        }
        if w < MIN_SIDE || h < MIN_SIDE {
            return Err(MetricError::TooSmallForLpips {
                height: h as usize,
                width: w as usize,
                min: MIN_SIDE as usize,
            });
        }
        let mut x = Tensor::cat(vec![self.input(a), self.input(b)], 0);
        let mut total = 0.0;
        let mut taps = self.linear.iter();
        for step in &self.steps {
            match step {
                Step::Conv(conv) => x = relu(conv.forward(x)),
                Step::MaxPool(k, s) => {
                    x = max_pool2d(x, MaxPoolOptions::new([*k, *k]).with_stride([*s, *s]))
                }
                Step::Tap => {
                    let linear = taps.next().expect("one linear layer per tap");
                    total += layer_distance(x.clone(), linear.clone());
                }
            }
        }
        Ok(total)
    }

    /// `image` as a 1×3×H×W tensor in [−1, 1] after the reference's scaling layer.
    fn input(&self, image: &RgbImage) -> Tensor<4> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let mut planes = vec![0f32; 3 * h * w];
        for (i, p) in image.pixels().enumerate() {
            for c in 0..3 {
                let v = f32::from(p[c]) / 255.0 * 2.0 - 1.0;
                planes[c * h * w + i] = (v - SHIFT[c]) / SCALE[c];
            }
        }
        Tensor::from_data(TensorData::new(planes, [1, 3, h, w]), &self.device)
    }
}

/// One activation's contribution: features of the two images (2×C×h×w) made unit length per
/// pixel, squared differences weighted by `linear` (1×C×1×1) and summed over channels, averaged
/// over pixels.
fn layer_distance(features: Tensor<4>, linear: Tensor<4>) -> f64 {
    let norm = (features.clone() * features.clone()).sum_dim(1).sqrt() + NORM_EPS;
    let unit = features / norm;
    let diff = unit.clone().narrow(0, 0, 1) - unit.narrow(0, 1, 1);
    let value = (diff.clone() * diff * linear).sum_dim(1).mean();
    value
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 scalar")[0] as f64
}
