//! The DISK state_dict (kornia's `DISK` U-Net, as in cvlab-epfl/disk): names and shapes.

use crate::state_dict::{CheckedStateDict, StateDictWeights};

/// Side of every convolution kernel.
pub const KERNEL: usize = 5;
/// Output channels of the encoder's blocks (full resolution, then 1/2 … 1/16).
pub const DOWN: [usize; 5] = [16, 32, 64, 64, 64];
/// Output channels of the decoder's blocks (1/8 … full resolution); the last is 128 descriptor
/// channels and the heatmap.
pub const UP: [usize; 4] = [64, 64, 64, 129];
/// Input channels (RGB).
pub const IN_CHANNELS: usize = 3;

/// One block: an optional InstanceNorm + PReLU (the gate's weights `prelu`, one per input
/// channel) before a 5×5 convolution with bias.
#[derive(Clone, Debug)]
pub struct BlockWeights {
    /// PReLU slopes, one per input channel (`None` for the first block, which has no gate).
    pub prelu: Option<Vec<f32>>,
    /// Convolution weight, `c_out × c_in × 5 × 5`.
    pub weight: Vec<f32>,
    /// Convolution bias.
    pub bias: Vec<f32>,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
}

/// (module path, input channels, output channels, gated) of every block, encoder then decoder.
pub fn blocks() -> Vec<(String, usize, usize, bool)> {
    let mut out = Vec::new();
    let mut c_in = IN_CHANNELS;
    for (i, &c) in DOWN.iter().enumerate() {
        out.push((format!("unet.path_down.{i}.1"), c_in, c, i > 0));
        c_in = c;
    }
    let horizontal = [DOWN[3], DOWN[2], DOWN[1], DOWN[0]];
    for (j, (&c, &h)) in UP.iter().zip(&horizontal).enumerate() {
        out.push((format!("unet.path_up.{j}.conv"), c_in + h, c, true));
        c_in = c;
    }
    out
}

/// The state_dict keys and shapes DISK needs, in a stable order.
pub fn expected_tensors() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for (name, c_in, c_out, gated) in blocks() {
        if gated {
            out.push((format!("{name}.1.weight"), vec![c_in]));
        }
        out.push((
            format!("{name}.3.weight"),
            vec![c_out, c_in, KERNEL, KERNEL],
        ));
        out.push((format!("{name}.3.bias"), vec![c_out]));
    }
    out
}

/// DISK's weights, block by block (encoder, then decoder).
#[derive(Clone, Debug)]
pub struct DiskWeights {
    /// The nine blocks, in [`blocks`] order.
    pub blocks: Vec<BlockWeights>,
}

impl StateDictWeights for DiskWeights {
    const MODEL: &'static str = "DISK";
    const ANCHOR: &'static str = "unet.path_down.0.1.3.weight";

    fn expected_tensors() -> Vec<(String, Vec<usize>)> {
        expected_tensors()
    }

    fn from_checked(tensors: &CheckedStateDict) -> Self {
        let blocks = blocks()
            .into_iter()
            .map(|(name, c_in, c_out, gated)| BlockWeights {
                prelu: gated.then(|| tensors.values(&format!("{name}.1.weight"))),
                weight: tensors.values(&format!("{name}.3.weight")),
                bias: tensors.values(&format!("{name}.3.bias")),
                c_in,
                c_out,
            })
            .collect();
        Self { blocks }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unet_has_the_published_shape() {
        let b = blocks();
        assert_eq!(b.len(), 9);
        assert_eq!(b[5].1, 128, "64 from below + 64 from the 1/8 encoder level");
        assert_eq!(b[8], ("unet.path_up.3.conv".into(), 80, 129, true));
        let params: usize = expected_tensors()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        assert_eq!(
            params, 1_092_369,
            "the official checkpoint's parameter count"
        );
    }
}
