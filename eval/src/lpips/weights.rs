//! The two weight files of an LPIPS network: torchvision's ImageNet backbone `features` (the
//! user's file) and the v0.1 linear layers (bundled), each checked strictly against the
//! architecture.

use std::marker::PhantomData;

use featleak_descriptors::layers::ConvShape;
use featleak_descriptors::state_dict::{CheckedStateDict, StateDictWeights};

/// One layer of a backbone's `features`, in order. Every conv is followed by an (in-place) ReLU.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Layer {
    /// `features.{index}`: a square conv with bias, then a ReLU.
    Conv { index: usize, shape: ConvShape },
    /// A max pool (no padding, floor mode).
    MaxPool { kernel: usize, stride: usize },
    /// The activation here is one of the five LPIPS compares.
    Tap,
}

const fn conv(
    index: usize,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Layer {
    Layer::Conv {
        index,
        shape: ConvShape {
            c_in,
            c_out,
            kernel,
            stride,
            padding,
        },
    }
}

const fn vgg(index: usize, c_in: usize, c_out: usize) -> Layer {
    conv(index, c_in, c_out, 3, 1, 1)
}

const POOL_3: Layer = Layer::MaxPool {
    kernel: 3,
    stride: 2,
};
const POOL_2: Layer = Layer::MaxPool {
    kernel: 2,
    stride: 2,
};
const TAP: Layer = Layer::Tap;

/// A backbone LPIPS runs on, described for loading and running.
pub(crate) trait Backbone {
    /// The architecture's name in errors.
    const MODEL: &'static str;
    /// The linear layers' name in errors.
    const LINEAR_MODEL: &'static str;
    /// `features` up to the last compared activation (relu1 … relu5).
    const LAYERS: &'static [Layer];
    /// Channels of the five compared activations.
    const CHANNELS: [usize; 5];
}

/// torchvision's `alexnet().features`; LPIPS compares relu1 … relu5.
pub(crate) struct Alex;

impl Backbone for Alex {
    const MODEL: &'static str = "torchvision AlexNet";
    const LINEAR_MODEL: &'static str = "LPIPS v0.1 linear layers (alex)";
    const LAYERS: &'static [Layer] = &[
        conv(0, 3, 64, 11, 4, 2),
        TAP,
        POOL_3,
        conv(3, 64, 192, 5, 1, 2),
        TAP,
        POOL_3,
        conv(6, 192, 384, 3, 1, 1),
        TAP,
        conv(8, 384, 256, 3, 1, 1),
        TAP,
        conv(10, 256, 256, 3, 1, 1),
        TAP,
    ];
    const CHANNELS: [usize; 5] = [64, 192, 384, 256, 256];
}

/// torchvision's `vgg16().features`; LPIPS compares relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
pub(crate) struct Vgg;

impl Backbone for Vgg {
    const MODEL: &'static str = "torchvision VGG16";
    const LINEAR_MODEL: &'static str = "LPIPS v0.1 linear layers (vgg)";
    const LAYERS: &'static [Layer] = &[
        vgg(0, 3, 64),
        vgg(2, 64, 64),
        TAP,
        POOL_2,
        vgg(5, 64, 128),
        vgg(7, 128, 128),
        TAP,
        POOL_2,
        vgg(10, 128, 256),
        vgg(12, 256, 256),
        vgg(14, 256, 256),
        TAP,
        POOL_2,
        vgg(17, 256, 512),
        vgg(19, 512, 512),
        vgg(21, 512, 512),
        TAP,
        POOL_2,
        vgg(24, 512, 512),
        vgg(26, 512, 512),
        vgg(28, 512, 512),
        TAP,
    ];
    const CHANNELS: [usize; 5] = [64, 128, 256, 512, 512];
}

/// The weight (`c_out × c_in × k × k`) and bias of each conv of a backbone, in order.
pub(crate) struct BackboneWeights<B> {
    pub convs: Vec<(Vec<f32>, Vec<f32>)>,
    backbone: PhantomData<B>,
}

fn convs(layers: &[Layer]) -> impl Iterator<Item = (usize, Vec<usize>)> + '_ {
    layers.iter().filter_map(|l| match *l {
        Layer::Conv { index, shape: s } => Some((index, vec![s.c_out, s.c_in, s.kernel, s.kernel])),
        _ => None,
    })
}

impl<B: Backbone> StateDictWeights for BackboneWeights<B> {
    const MODEL: &'static str = B::MODEL;
    const ANCHOR: &'static str = "features.0.weight";
    /// The classifier is not used.
    const IGNORED: &'static [&'static str] = &["classifier."];

    fn expected_tensors() -> Vec<(String, Vec<usize>)> {
        convs(B::LAYERS)
            .flat_map(|(index, shape)| {
                let bias = vec![shape[0]];
                [
                    (format!("features.{index}.weight"), shape),
                    (format!("features.{index}.bias"), bias),
                ]
            })
            .collect()
    }

    fn from_checked(t: &CheckedStateDict) -> Self {
        Self {
            convs: convs(B::LAYERS)
                .map(|(index, _)| {
                    (
                        t.values(&format!("features.{index}.weight")),
                        t.values(&format!("features.{index}.bias")),
                    )
                })
                .collect(),
            backbone: PhantomData,
        }
    }
}

/// The non-negative weights of the five 1×1 linear layers, one per compared activation.
pub(crate) struct LinearWeights<B> {
    pub layers: Vec<Vec<f32>>,
    backbone: PhantomData<B>,
}

impl<B: Backbone> StateDictWeights for LinearWeights<B> {
    const MODEL: &'static str = B::LINEAR_MODEL;
    const ANCHOR: &'static str = "lin0.model.1.weight";

    fn expected_tensors() -> Vec<(String, Vec<usize>)> {
        B::CHANNELS
            .iter()
            .enumerate()
            .map(|(k, &c)| (format!("lin{k}.model.1.weight"), vec![1, c, 1, 1]))
            .collect()
    }

    fn from_checked(t: &CheckedStateDict) -> Self {
        Self {
            layers: (0..5)
                .map(|k| t.values(&format!("lin{k}.model.1.weight")))
                .collect(),
            backbone: PhantomData,
        }
    }
}
