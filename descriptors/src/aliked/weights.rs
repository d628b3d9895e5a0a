//! The ALIKED-N16 state_dict (Shiaoming/ALIKED's `ALIKED`, as LightGlue keeps it): names, shapes,
//! and the BatchNorms folded into their convolutions.

use std::collections::BTreeMap;

use crate::state_dict::{self, CheckedStateDict, StateDictWeights};

/// Output channels of the four encoder blocks (`c1`–`c4` of `aliked-n16`).
pub const WIDTHS: [usize; 4] = [16, 32, 64, 128];
/// Descriptor length (`dim`).
pub const DIM: usize = 128;
/// Side of the patch the descriptor head reads its sampling offsets from (`K`).
pub const PATCH: usize = 3;
/// Sample positions per descriptor (`M`).
pub const SAMPLES: usize = 16;

/// A convolution with its BatchNorm (if any) folded in: weight `c_out × c_in × k × k` and bias.
#[derive(Clone, Debug)]
pub struct Conv {
    /// Weight, row-major as in PyTorch.
    pub weight: Vec<f32>,
    /// Bias (zeros for the bias-free convs without a BatchNorm).
    pub bias: Vec<f32>,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Side of the square kernel.
    pub kernel: usize,
}

/// One 3×3 convolution of an encoder block: plain, or deformable (its offsets from a 3×3 conv
/// with bias, `offset_conv`).
#[derive(Clone, Debug)]
pub struct BlockConv {
    /// The convolution (`regular_conv` of a deformable one), BatchNorm folded in.
    pub conv: Conv,
    /// The offset convolution of a deformable one (18 = 2·3·3 channels).
    pub offsets: Option<Conv>,
}

/// An encoder block: two 3×3 convs (each BatchNorm + SELU), and for blocks 2–4 a residual
/// 1×1 `downsample` conv with bias.
#[derive(Clone, Debug)]
pub struct Block {
    /// `conv1` + `bn1`.
    pub conv1: BlockConv,
    /// `conv2` + `bn2`.
    pub conv2: BlockConv,
    /// The residual's 1×1 conv (blocks 2–4).
    pub downsample: Option<Conv>,
}

/// ALIKED-N16's weights.
#[derive(Clone, Debug)]
pub struct AlikedWeights {
    /// `block1` … `block4`.
    pub blocks: Vec<Block>,
    /// `conv1` … `conv4`: 1×1, bias-free, each to `DIM / 4` channels.
    pub merge: Vec<Conv>,
    /// `score_head`: 1×1 (`DIM` → 8), then 3×3 convs 8 → 4 → 4 → 1, bias-free.
    pub score_head: Vec<Conv>,
    /// `desc_head.offset_conv`: 3×3 (no padding) `DIM` → 2·M, then 1×1 2·M → 2·M, with biases.
    pub offset_head: [Conv; 2],
    /// `desc_head.sf_conv`: 1×1 `DIM` → `DIM`, bias-free.
    pub sample_conv: Conv,
    /// `desc_head.agg_weights`: M × DIM × DIM.
    pub aggregation: Vec<f32>,
}

/// Whether block `i` (0-based) uses deformable convolutions (`conv_types` of ALIKED: conv, conv,
/// dcn, dcn).
pub fn deformable(block: usize) -> bool {
    block >= 2
}

fn block_tensors(out: &mut Vec<(String, Vec<usize>)>, i: usize) {
    let (c_in, c) = (if i == 0 { 3 } else { WIDTHS[i - 1] }, WIDTHS[i]);
    let name = format!("block{}", i + 1);
    for (j, c_in) in [(1, c_in), (2, c)] {
        if deformable(i) {
            let conv = format!("{name}.conv{j}");
            out.push((format!("{conv}.offset_conv.weight"), vec![18, c_in, 3, 3]));
            out.push((format!("{conv}.offset_conv.bias"), vec![18]));
            out.push((format!("{conv}.regular_conv.weight"), vec![c, c_in, 3, 3]));
        } else {
            out.push((format!("{name}.conv{j}.weight"), vec![c, c_in, 3, 3]));
        }
        for t in ["weight", "bias", "running_mean", "running_var"] {
            out.push((format!("{name}.bn{j}.{t}"), vec![c]));
        }
    }
    if i > 0 {
        out.push((format!("{name}.downsample.weight"), vec![c, c_in, 1, 1]));
        out.push((format!("{name}.downsample.bias"), vec![c]));
    }
}

/// The score head's convs: (state_dict index, c_in, c_out, kernel).
const SCORE_HEAD: [(usize, usize, usize, usize); 4] =
    [(0, DIM, 8, 1), (2, 8, 4, 3), (4, 4, 4, 3), (6, 4, 1, 3)];

/// The state_dict keys and shapes ALIKED-N16 needs, in a stable order.
pub fn expected_tensors() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for i in 0..4 {
        block_tensors(&mut out, i);
    }
    for (i, &c) in WIDTHS.iter().enumerate() {
        out.push((format!("conv{}.weight", i + 1), vec![DIM / 4, c, 1, 1]));
    }
    for (i, c_in, c_out, k) in SCORE_HEAD {
        out.push((format!("score_head.{i}.weight"), vec![c_out, c_in, k, k]));
    }
    out.push(("desc_head.agg_weights".into(), vec![SAMPLES, DIM, DIM]));
    let offsets = 2 * SAMPLES;
    out.push((
        "desc_head.offset_conv.0.weight".into(),
        vec![offsets, DIM, PATCH, PATCH],
    ));
    out.push(("desc_head.offset_conv.0.bias".into(), vec![offsets]));
    out.push((
        "desc_head.offset_conv.2.weight".into(),
        vec![offsets, offsets, 1, 1],
    ));
    out.push(("desc_head.offset_conv.2.bias".into(), vec![offsets]));
    out.push(("desc_head.sf_conv.weight".into(), vec![DIM, DIM, 1, 1]));
    out
}

impl StateDictWeights for AlikedWeights {
    const MODEL: &'static str = "ALIKED-N16";
    const ANCHOR: &'static str = "desc_head.agg_weights";

    fn expected_tensors() -> Vec<(String, Vec<usize>)> {
        expected_tensors()
    }

    fn from_checked(t: &CheckedStateDict) -> Self {
        let shapes: BTreeMap<String, Vec<usize>> = expected_tensors().into_iter().collect();
        let conv = |name: &str, bias: Option<&str>| {
            let key = format!("{name}.weight");
            let s = &shapes[&key];
            Conv {
                weight: t.values(&key),
                bias: bias.map_or_else(|| vec![0.0; s[0]], |b| t.values(b)),
                c_in: s[1],
                c_out: s[0],
                kernel: s[2],
            }
        };
        let folded = |mut c: Conv, bn: &str| {
            let v = |x: &str| t.values(&format!("{bn}.{x}"));
            let (weight, bias) = state_dict::fold_batch_norm(
                &c.weight,
                &v("running_mean"),
                &v("running_var"),
                Some((&v("weight"), &v("bias"))),
                state_dict::BN_EPS,
            );
            (c.weight, c.bias) = (weight, bias);
            c
        };
        let blocks = (0..4)
            .map(|i| {
                let name = format!("block{}", i + 1);
                let block_conv = |j: usize| {
                    let bn = format!("{name}.bn{j}");
                    if deformable(i) {
                        let c = format!("{name}.conv{j}");
                        BlockConv {
                            conv: folded(conv(&format!("{c}.regular_conv"), None), &bn),
                            offsets: Some(conv(
                                &format!("{c}.offset_conv"),
                                Some(&format!("{c}.offset_conv.bias")),
                            )),
                        }
                    } else {
                        BlockConv {
                            conv: folded(conv(&format!("{name}.conv{j}"), None), &bn),
                            offsets: None,
                        }
                    }
                };
                Block {
                    conv1: block_conv(1),
                    conv2: block_conv(2),
                    downsample: (i > 0).then(|| {
                        conv(
                            &format!("{name}.downsample"),
                            Some(&format!("{name}.downsample.bias")),
                        )
                    }),
                }
            })
            .collect();
        Self {
            blocks,
            merge: (1..=4).map(|i| conv(&format!("conv{i}"), None)).collect(),
            score_head: SCORE_HEAD
                .iter()
                .map(|&(i, ..)| conv(&format!("score_head.{i}"), None))
                .collect(),
            offset_head: [0, 2].map(|i| {
                let name = format!("desc_head.offset_conv.{i}");
                conv(&name, Some(&format!("{name}.bias")))
            }),
            sample_conv: conv("desc_head.sf_conv", None),
            aggregation: t.values("desc_head.agg_weights"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_network_has_the_published_size() {
        let params: usize = expected_tensors()
            .iter()
            .filter(|(k, _)| !k.contains("running_"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(params, 677_356, "the official checkpoint's parameter count");
    }
}
