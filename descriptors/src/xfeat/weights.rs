//! The XFeat state_dict (`XFeatModel` of verlab/accelerated_features): names, shapes, and the
//! BatchNorms folded into their convs.

use std::collections::BTreeMap;

use crate::layers::ConvShape;
use crate::state_dict::{self, CheckedStateDict, StateDictWeights};

/// One convolution of XFeat.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    /// Its module path in the state_dict, e.g. `block1.0` (a `BasicLayer`) or `skip1.1`.
    pub name: &'static str,
    /// Channels, kernel, stride and padding.
    pub shape: ConvShape,
    /// A `BasicLayer`: bias-free conv + `BatchNorm2d(affine=False)` + ReLU (tensors
    /// `NAME.layer.0.weight`, `NAME.layer.1.running_mean/var`); otherwise a plain conv with bias
    /// (`NAME.weight`, `NAME.bias`).
    pub basic: bool,
}

const fn basic(
    name: &'static str,
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
) -> ConvSpec {
    ConvSpec {
        name,
        shape: ConvShape {
            c_in,
            c_out,
            kernel,
            stride,
            padding: kernel / 2,
        },
        basic: true,
    }
}

const fn plain(name: &'static str, c_in: usize, c_out: usize) -> ConvSpec {
    ConvSpec {
        name,
        shape: ConvShape {
            c_in,
            c_out,
            kernel: 1,
            stride: 1,
            padding: 0,
        },
        basic: false,
    }
}

/// `skip1`: AvgPool2d(4) then this 1×1 conv.
pub const SKIP1: [ConvSpec; 1] = [plain("skip1.1", 1, 24)];
/// `block1`, at 1/4 resolution after it.
pub const BLOCK1: [ConvSpec; 4] = [
    basic("block1.0", 1, 4, 3, 1),
    basic("block1.1", 4, 8, 3, 2),
    basic("block1.2", 8, 8, 3, 1),
    basic("block1.3", 8, 24, 3, 2),
];
/// `block2`.
pub const BLOCK2: [ConvSpec; 2] = [
    basic("block2.0", 24, 24, 3, 1),
    basic("block2.1", 24, 24, 3, 1),
];
/// `block3`, 1/8.
pub const BLOCK3: [ConvSpec; 3] = [
    basic("block3.0", 24, 64, 3, 2),
    basic("block3.1", 64, 64, 3, 1),
    basic("block3.2", 64, 64, 1, 1),
];
/// `block4`, 1/16.
pub const BLOCK4: [ConvSpec; 3] = [
    basic("block4.0", 64, 64, 3, 2),
    basic("block4.1", 64, 64, 3, 1),
    basic("block4.2", 64, 64, 3, 1),
];
/// `block5`, 1/32.
pub const BLOCK5: [ConvSpec; 4] = [
    basic("block5.0", 64, 128, 3, 2),
    basic("block5.1", 128, 128, 3, 1),
    basic("block5.2", 128, 128, 3, 1),
    basic("block5.3", 128, 64, 1, 1),
];
/// `block_fusion`: the dense descriptor map.
pub const FUSION: [ConvSpec; 3] = [
    basic("block_fusion.0", 64, 64, 3, 1),
    basic("block_fusion.1", 64, 64, 3, 1),
    plain("block_fusion.2", 64, 64),
];
/// `heatmap_head` (a sigmoid follows): the reliability map.
pub const HEATMAP_HEAD: [ConvSpec; 3] = [
    basic("heatmap_head.0", 64, 64, 1, 1),
    basic("heatmap_head.1", 64, 64, 1, 1),
    plain("heatmap_head.2", 64, 1),
];
/// `keypoint_head`, on the 8×8 cells of the normalised image: 64 positions + "no keypoint".
pub const KEYPOINT_HEAD: [ConvSpec; 4] = [
    basic("keypoint_head.0", 64, 64, 1, 1),
    basic("keypoint_head.1", 64, 64, 1, 1),
    basic("keypoint_head.2", 64, 64, 1, 1),
    plain("keypoint_head.3", 64, 65),
];

/// Every conv of the network, in the order above.
pub fn all_convs() -> impl Iterator<Item = &'static ConvSpec> {
    SKIP1
        .iter()
        .chain(&BLOCK1)
        .chain(&BLOCK2)
        .chain(&BLOCK3)
        .chain(&BLOCK4)
        .chain(&BLOCK5)
        .chain(&FUSION)
        .chain(&HEATMAP_HEAD)
        .chain(&KEYPOINT_HEAD)
}

/// The state_dict keys and shapes XFeat's sparse extraction needs, in a stable order. The
/// `fine_matcher` MLP (used only by XFeat* semi-dense matching) may be present and is ignored.
pub fn expected_tensors() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for c in all_convs() {
        let shape = c.shape.weight_dims().to_vec();
        if c.basic {
            out.push((format!("{}.layer.0.weight", c.name), shape));
            out.push((
                format!("{}.layer.1.running_mean", c.name),
                vec![c.shape.c_out],
            ));
            out.push((
                format!("{}.layer.1.running_var", c.name),
                vec![c.shape.c_out],
            ));
        } else {
            out.push((format!("{}.weight", c.name), shape));
            out.push((format!("{}.bias", c.name), vec![c.shape.c_out]));
        }
    }
    out
}

/// XFeat's weights with every BatchNorm folded into its conv: per conv name, (weight
/// `c_out × c_in × k × k`, bias `c_out`).
#[derive(Clone, Debug)]
pub struct XfeatWeights {
    convs: BTreeMap<&'static str, (Vec<f32>, Vec<f32>)>,
}

impl StateDictWeights for XfeatWeights {
    const MODEL: &'static str = "XFeat";
    const ANCHOR: &'static str = "block1.0.layer.0.weight";
    const IGNORED: &'static [&'static str] = &["fine_matcher."];

    fn expected_tensors() -> Vec<(String, Vec<usize>)> {
        expected_tensors()
    }

    fn from_checked(tensors: &CheckedStateDict) -> Self {
        let convs = all_convs()
            .map(|c| {
                let folded = if c.basic {
                    state_dict::fold_batch_norm(
                        &tensors.values(&format!("{}.layer.0.weight", c.name)),
                        &tensors.values(&format!("{}.layer.1.running_mean", c.name)),
                        &tensors.values(&format!("{}.layer.1.running_var", c.name)),
                        None,
                        state_dict::BN_EPS,
                    )
                } else {
                    (
                        tensors.values(&format!("{}.weight", c.name)),
                        tensors.values(&format!("{}.bias", c.name)),
                    )
                };
                (c.name, folded)
            })
            .collect();
        Self { convs }
    }
}

impl XfeatWeights {
    /// The folded (weight, bias) of `conv`.
    pub fn conv(&self, conv: &ConvSpec) -> &(Vec<f32>, Vec<f32>) {
        &self.convs[conv.name]
    }
}
