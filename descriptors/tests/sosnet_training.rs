//! SOSNet training: the safetensors state_dict round trip, the bundled weights, learning on
//! pairs mined from generated scenes, and exact resumption after an interruption.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use featleak_datasets::schedule::rng;
use featleak_datasets::synthetic::scene;
use featleak_descriptors::sosnet::training::{
    DescriptorMetrics, DescriptorTrainConfig, PairConfig, RunningStats, SosLossConfig, SosnetRun,
    SosnetTrainable, train,
};
use featleak_descriptors::sosnet::{
    BUNDLED_WEIGHTS, Sosnet, SosnetWeights, WeightsError, bundled_weights,
};
use featleak_descriptors::state_dict::StateDictWeights;
use featleak_train::trainer::At;
use featleak_train::{Budget, Observer, RunFolder, Schedule};
use ndarray::Array3;

/// Stops training once `stop_at` steps are done (0: never), as an interruption would.
struct Quiet {
    stop_at: u64,
    step: u64,
}

fn quiet() -> Quiet {
    Quiet {
        stop_at: 0,
        step: 0,
    }
}

impl Observer<DescriptorMetrics> for Quiet {
    fn step(&mut self, at: At, _loss: f64) {
        self.step = at.step;
    }
    fn stop_requested(&self) -> bool {
        self.stop_at > 0 && self.step >= self.stop_at
    }
}

fn photos(dir: &Path, n: u64) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let p = dir.join(format!("p{i}.png"));
            scene(200, 150, 300 + i).save(&p).unwrap();
            p
        })
        .collect()
}

fn config(images: Vec<PathBuf>, val_images: Vec<PathBuf>, steps: u64) -> DescriptorTrainConfig {
    DescriptorTrainConfig {
        images,
        val_images,
        pairs: PairConfig {
            views_per_image: 2,
            max_pairs_per_view: 40,
            ..Default::default()
        },
        loss: SosLossConfig::default(),
        batch_size: 8,
        budget: Budget {
            steps: Some(steps),
            minutes: None,
        },
        schedule: Schedule {
            peak: 1e-3,
            warmup_steps: 2,
        },
        validate_every: 5,
        val_pairs: 100,
        checkpoint_seconds: 3600.0,
        seed: 7,
    }
}

fn random_patches(n: usize, seed: u64) -> Array3<f32> {
    let mut state = seed;
    Array3::from_shape_fn((n, 32, 32), |_| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    })
}

#[test]
fn trained_weights_round_trip_through_safetensors() {
    let dev = Device::flex();
    let net = SosnetTrainable::init(&mut rng(1, 1), &dev);
    let mut running = RunningStats::initial();
    running.mean[2][5] = 0.25;
    running.var[6][0] = 3.5;
    let weights = net.to_weights(&running);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    weights.save_safetensors(&path).unwrap();
    let loaded = SosnetWeights::load(&path).unwrap();
    for (a, b) in weights.layers.iter().zip(&loaded.layers) {
        assert_eq!(a.weight, b.weight);
        assert_eq!(a.running_mean, b.running_mean);
        assert_eq!(a.running_var, b.running_var);
    }
    // The file describes exactly as the in-memory weights do.
    let patches = random_patches(5, 3);
    let direct = Sosnet::from_weights(&weights, dev.clone()).describe(patches.view());
    let from_file = Sosnet::load(&path).unwrap().describe(patches.view());
    assert_eq!(direct, from_file);
    // And back into a trainable network unchanged.
    let (again, stats) = SosnetTrainable::from_weights(&loaded, &dev);
    assert_eq!(stats, running);
    let w0 = again.to_weights(&stats);
    assert_eq!(w0.layers[6].weight, weights.layers[6].weight);
}

#[test]
fn a_safetensors_file_of_another_network_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.safetensors");
    // The bundled state_dict with one running variance cut to 63 values.
    bundled_weights().save_safetensors(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let short: Vec<u8> = vec![0; 4 * 63];
    let tensors: Vec<(String, safetensors::tensor::TensorView)> = file
        .tensors()
        .into_iter()
        .map(|(k, v)| {
            if k == "layers.11.running_var" {
                let v =
                    safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![63], &short)
                        .unwrap();
                (k, v)
            } else {
                (k, v)
            }
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(tensors, None).unwrap()).unwrap();
    let err = SosnetWeights::load(&path).unwrap_err();
    assert!(
        matches!(&err, WeightsError::Shape { key, found, .. } if key == "layers.11.running_var" && found == &vec![63]),
        "{err}"
    );
    std::fs::write(&path, b"not safetensors").unwrap();
    let err = SosnetWeights::load(&path).unwrap_err();
    assert!(err.to_string().contains("not a safetensors file"), "{err}");
    // It is not called a PyTorch checkpoint.
    assert!(!err.to_string().contains("PyTorch"), "{err}");
}

#[test]
fn bundled_weights_describe_patches() {
    let net = Sosnet::bundled();
    let d = net.describe(random_patches(4, 9).view());
    assert_eq!(d.dim(), (4, 128));
    for row in d.rows() {
        let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    assert!(!BUNDLED_WEIGHTS.is_empty());
}

#[test]
fn training_learns_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let images = photos(&tmp.path().join("train"), 5);
    let val = photos(&tmp.path().join("val"), 2);
    let dev = Device::flex().autodiff();

    // Uninterrupted: 20 steps.
    let whole = RunFolder::prepare(&tmp.path().join("whole"), false, "a run").unwrap();
    let c = config(images.clone(), val.clone(), 20);
    let state = train(&whole, &c, &dev, &mut quiet(), &()).unwrap();
    assert_eq!(state.step, 20);
    assert_eq!(state.history.len(), 4);
    let first = state.history.first().unwrap();
    let last = state.history.last().unwrap();
    assert!(
        last.loss < first.loss,
        "loss did not fall: {} → {}",
        first.loss,
        last.loss
    );
    let csv = std::fs::read_to_string(whole.metrics()).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");

    // Interrupted after 13 steps (a kill would lose the 3 steps since the checkpoint at 10;
    // a stop request checkpoints first), then resumed.
    let parts = RunFolder::prepare(&tmp.path().join("parts"), false, "a run").unwrap();
    let mut stop = Quiet {
        stop_at: 13,
        step: 0,
    };
    let cut = train(&parts, &c, &dev, &mut stop, &()).unwrap_err();
    assert!(
        cut.to_string().starts_with("interrupted after step 13"),
        "{cut}"
    );
    let resumed = train(&parts, &c, &dev, &mut quiet(), &()).unwrap();
    assert_eq!(resumed.step, 20);
    assert_eq!(resumed.task.running, state.task.running);
    assert_eq!(
        std::fs::read(whole.weights()).unwrap(),
        std::fs::read(parts.weights()).unwrap(),
        "resumed weights differ from the uninterrupted run's"
    );
    let loss = |h: &[DescriptorMetrics]| h.iter().map(|m| m.loss).collect::<Vec<_>>();
    assert_eq!(loss(&resumed.history), loss(&state.history));
}
