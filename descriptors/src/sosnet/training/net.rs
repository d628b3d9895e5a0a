//! SOSNet32x32 in training form: the seven bias-free convs with PyTorch's weight layout, batch
//! norm (`affine=False`) on batch statistics with running averages kept beside the module, and
//! Dropout(0.1) before the 8×8 conv — the network of [`super::super::model`] before folding.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::sosnet::model::{DESC_EPS, INSTANCE_NORM_EPS, PATCH_SIZE};
use crate::sosnet::weights::{BN_EPS, LAYERS, LayerWeights, SosnetWeights};

/// PyTorch's BatchNorm momentum for the running statistics.
pub const BN_MOMENTUM: f64 = 0.1;
/// The official model's dropout rate before the last conv.
pub const DROPOUT: f32 = 0.1;

/// The trainable conv weights (`c_out × c_in × k × k` each, as in the state_dict).
#[derive(Module, Debug)]
pub struct SosnetTrainable {
    /// One weight per stage of [`LAYERS`], in order.
    pub convs: Vec<Param<Tensor<4>>>,
}

/// Running mean and (unbiased) variance of each batch norm, as PyTorch keeps them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningStats {
    /// Running mean, one vector per stage of [`LAYERS`], one value per output channel.
    pub mean: Vec<Vec<f32>>,
    /// Running unbiased variance, laid out as `mean`.
    pub var: Vec<Vec<f32>>,
}

impl RunningStats {
    /// PyTorch's initial values: mean 0, variance 1.
    pub fn initial() -> Self {
        Self {
            mean: LAYERS.iter().map(|l| vec![0.0; l.shape.c_out]).collect(),
            var: LAYERS.iter().map(|l| vec![1.0; l.shape.c_out]).collect(),
        }
    }

    /// `running = (1 − m)·running + m·batch`, with the batch variance made unbiased.
    fn update(&mut self, batch: &[BatchStats]) {
        let m = BN_MOMENTUM as f32;
        for (l, b) in batch.iter().enumerate() {
            let correction = b.count as f32 / (b.count as f32 - 1.0).max(1.0);
            for (r, v) in self.mean[l].iter_mut().zip(&b.mean) {
                *r = (1.0 - m) * *r + m * v;
            }
            for (r, v) in self.var[l].iter_mut().zip(&b.var) {
                *r = (1.0 - m) * *r + m * v * correction;
            }
        }
    }
}

/// One batch norm's batch statistics (biased variance) and how many values they cover.
struct BatchStats {
    mean: Vec<f32>,
    var: Vec<f32>,
    count: usize,
}

fn options(layer: usize) -> ConvOptions<2> {
    let l = &LAYERS[layer];
    ConvOptions::new(
        [l.shape.stride, l.shape.stride],
        [l.shape.padding, l.shape.padding],
        [1, 1],
        1,
    )
}

fn instance_norm(x: Tensor<4>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let flat = x.reshape([n, c * h * w]);
    let (var, mean) = flat.clone().var_mean_bias(1);
    ((flat - mean) / (var + INSTANCE_NORM_EPS).sqrt()).reshape([n, c, h, w])
}

fn l2_normalise(d: Tensor<2>) -> Tensor<2> {
    let d = d + DESC_EPS;
    let norm = d.clone().square().sum_dim(1).sqrt();
    d / norm
}

impl SosnetTrainable {
    /// He-uniform initialisation from `rng` (host-side, so the same seed gives the same network
    /// on every backend).
    pub fn init(rng: &mut ChaCha8Rng, device: &Device) -> Self {
        let convs = LAYERS
            .iter()
            .map(|l| {
                let fan_in = l.shape.fan_in();
                let bound = (6.0 / fan_in as f32).sqrt();
                let values: Vec<f32> = (0..l.shape.c_out * fan_in)
                    .map(|_| rng.random_range(-bound..bound))
                    .collect();
                Param::from_tensor(Tensor::from_data(
                    TensorData::new(values, l.shape.weight_dims()),
                    device,
                ))
            })
            .collect();
        Self { convs }
    }

    /// Training forward pass of N×1×32×32 patches: batch statistics in every batch norm (the
    /// running averages in `running` are updated from them) and dropout with `keep_mask`
    /// (N×128·8·8 values of 0 or 1/(1 − p)). Returns N×128 unit descriptors.
    pub fn forward_train(
        &self,
        x: Tensor<4>,
        keep_mask: Tensor<4>,
        running: &mut RunningStats,
    ) -> Tensor<2> {
        let mut x = instance_norm(x);
        let mut stats = Vec::with_capacity(LAYERS.len());
        for (i, w) in self.convs.iter().enumerate() {
            if i == LAYERS.len() - 1 {
                x = x * keep_mask.clone();
            }
            x = conv2d(x, w.val(), None, options(i));
            let [n, c, h, wd] = x.dims();
            let per_channel = x.clone().swap_dims(0, 1).reshape([c, n * h * wd]);
            let (var, mean) = per_channel.var_mean_bias(1);
            let host = |t: Tensor<2>| -> Vec<f32> {
                t.inner()
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 statistics")
            };
            stats.push(BatchStats {
                mean: host(mean.clone()),
                var: host(var.clone()),
                count: n * h * wd,
            });
            let mean = mean.reshape([1, c, 1, 1]);
            let std = (var + BN_EPS as f32).sqrt().reshape([1, c, 1, 1]);
            x = (x - mean) / std;
            if LAYERS[i].relu {
                x = relu(x);
            }
        }
        running.update(&stats);
        let [n, c, _, _] = x.dims();
        l2_normalise(x.reshape([n, c]))
    }

    /// The state_dict this network and `running` make (for saving, and for the fast inference
    /// model, [`crate::sosnet::SosnetModel::from_weights`]).
    pub fn to_weights(&self, running: &RunningStats) -> SosnetWeights {
        let layers = self
            .convs
            .iter()
            .enumerate()
            .map(|(i, w)| LayerWeights {
                weight: w
                    .val()
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 weights"),
                running_mean: running.mean[i].clone(),
                running_var: running.var[i].clone(),
            })
            .collect();
        SosnetWeights { layers }
    }

    /// The network holding the conv weights of `weights` (e.g. to fine-tune official weights).
    pub fn from_weights(weights: &SosnetWeights, device: &Device) -> (Self, RunningStats) {
        let convs = LAYERS
            .iter()
            .zip(&weights.layers)
            .map(|(l, w)| {
                Param::from_tensor(Tensor::from_data(
                    TensorData::new(w.weight.clone(), l.shape.weight_dims()),
                    device,
                ))
            })
            .collect();
        let running = RunningStats {
            mean: weights
                .layers
                .iter()
                .map(|w| w.running_mean.clone())
                .collect(),
            var: weights
                .layers
                .iter()
                .map(|w| w.running_var.clone())
                .collect(),
        };
        (Self { convs }, running)
    }
}

/// A dropout keep-mask for `n` patches (values 0 or 1/(1 − p) on the 128×8×8 map before the
/// last conv), drawn from `rng`.
pub fn dropout_mask(n: usize, rng: &mut ChaCha8Rng, device: &Device) -> Tensor<4> {
    let side = PATCH_SIZE / 4;
    let scale = 1.0 / (1.0 - DROPOUT);
    let values: Vec<f32> = (0..n * 128 * side * side)
        .map(|_| {
            if rng.random::<f32>() < DROPOUT {
                0.0
            } else {
                scale
            }
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [n, 128, side, side]), device)
}
