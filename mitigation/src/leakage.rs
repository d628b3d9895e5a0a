//! Attacker-guided leakage scores: how much each keypoint helps a trained inversion network.
//!
//! The device holds the image, so it can run the attacker on its own features and ask which
//! keypoints the reconstruction depends on. The score of keypoint `i` is the first-order
//! estimate of how much the attack loss `L` (L1 + 1 − SSIM against the true image) rises when
//! the keypoint is withheld, i.e. when its feature vector `x_i` (descriptor, presence and
//! geometry channels) is zeroed: `ΔL_i ≈ −∇_{x_i} L · x_i`. One forward and one backward pass
//! per batch of images give every keypoint's score, where leave-one-out would take one forward
//! pass per keypoint. The network runs in inference mode (frozen batch-norm statistics), as the
//! attacker would run it on a victim.
//!
//! Keypoints the attacker cannot see (outside its centre crop, or sharing a map pixel with a
//! stronger keypoint) score 0: withholding them changes nothing it receives.

use crate::MitigationError;
use burn::module::Module;
use burn::prelude::*;
use featleak_attack::ThreatModel;
use featleak_attack::data::make_batch;
use featleak_attack::loss::l1_ssim_loss;
use featleak_attack::model::UNet;
use featleak_attack::training::to_device;
use featleak_datasets::ResizeCrop;
use featleak_descriptors::FeatureSet;
use image::RgbImage;

/// Scores keypoints with a trained attacker.
pub struct LeakageScorer {
    model: UNet,
    threat: ThreatModel,
    device: Device,
}

impl LeakageScorer {
    /// `device` must support autodiff (e.g. `Device::flex().autodiff()`); the model is frozen.
    pub fn new(model: UNet, threat: ThreatModel, device: Device) -> Self {
        Self {
            model: model.freeze(),
            threat,
            device,
        }
    }

    /// Leakage score of every keypoint of each `(image, features)` pair; the features are in
    /// the image's pixel coordinates (any size: both are seen through the attacker's centre
    /// crop at its resolution). Images are scored in batches of `batch`.
    pub fn scores(
        &self,
        items: &[(&RgbImage, &FeatureSet)],
        batch: usize,
    ) -> Result<Vec<Vec<f32>>, MitigationError> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(batch.max(1)) {
            out.extend(self.score_batch(chunk)?);
        }
        Ok(out)
    }

    fn score_batch(
        &self,
        items: &[(&RgbImage, &FeatureSet)],
    ) -> Result<Vec<Vec<f32>>, MitigationError> {
        let r = self.threat.resolution;
        let mut views = Vec::with_capacity(items.len());
        let mut kept = Vec::with_capacity(items.len());
        for (image, features) in items {
            let size = (image.height(), image.width());
            if features.image_size != size {
                return Err(MitigationError::Leakage(format!(
                    "features are for a {}×{} image, the image is {}×{}",
                    features.image_size.1, features.image_size.0, size.1, size.0
                )));
            }
            let view = ResizeCrop::cover(size, (r, r));
            let (seen, indices) = features.transformed_indexed(&view);
            // The attacker's view of every keypoint (share 1 keeps all, in order).
            let seen = self.threat.reveal(
                &seen,
                featleak_attack::threat::Share::fixed(1.0),
                &mut featleak_datasets::schedule::rng(0, 0),
            );
            views.push((view.apply(image), seen));
            kept.push(indices);
        }
        let batch = make_batch(&views, &self.threat.sparse_map());
        let (mut input, target) = to_device(&batch, &self.device)?;
        input.features = input.features.require_grad();
        let values = input.features.clone();
        let loss = l1_ssim_loss(self.model.forward(&input), target);
        let grads = loss.backward();
        let grad = values.grad(&grads).ok_or_else(|| {
            MitigationError::Leakage("the attacker's loss does not depend on the features".into())
        })?;
        let per_pixel: Vec<f32> = (grad * values.inner())
            .sum_dim(1)
            .mul_scalar(-1.0)
            .into_data()
            .try_into_vec::<f32>()
            .map_err(|e| MitigationError::Leakage(format!("{e:?}")))?;
        let mut scores: Vec<Vec<f32>> = items.iter().map(|(_, f)| vec![0.0; f.len()]).collect();
        let hw = batch.height * batch.width;
        for ((&pixel, &source), score) in
            batch.pixel_index.iter().zip(&batch.sources).zip(per_pixel)
        {
            let b = pixel as usize / hw;
            scores[b][kept[b][source]] = score;
        }
        Ok(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use featleak_attack::data::Prepared;
    use featleak_attack::model::UNetConfig;
    use featleak_attack::training::{FineTuneConfig, fine_tune};
    use featleak_descriptors::Extractor;

    /// The attack loss of `model` on `features` of `image` (inference mode), all revealed.
    fn loss(model: &UNet, threat: &ThreatModel, image: &RgbImage, features: &FeatureSet) -> f64 {
        let r = threat.resolution;
        let view = ResizeCrop::cover((image.height(), image.width()), (r, r));
        let batch = make_batch(
            &[(view.apply(image), features.transformed(&view))],
            &threat.sparse_map(),
        );
        let device = Device::flex();
        let (input, target) = to_device(&batch, &device).unwrap();
        l1_ssim_loss(model.valid().forward(&input), target).into_scalar::<f32>() as f64
    }

    #[test]
    fn scores_track_the_loss_increase_of_withholding_each_keypoint() {
        let mut threat = ThreatModel::preset("desc+pos", "sift").unwrap();
        threat.resolution = 32;
        threat.feature_resolution = 64;
        let image = featleak_datasets::synthetic::scene(64, 64, 11);
        let features = threat
            .extractor
            .build()
            .unwrap()
            .extract(&featleak_datasets::rgb_to_gray(&image))
            .unwrap();
        assert!(features.len() > 10);
        let device = Device::flex().autodiff();
        device.seed(3);
        let channels = threat.sparse_map().channels(128);
        let network = UNetConfig {
            in_channels: channels,
            base_width: 4,
            depth: 2,
            out_channels: 3,
            input: Default::default(),
            global_context: false,
        };
        // A few steps on the image, so that the output depends on the keypoints (a freshly
        // initialised network's loss barely moves when one is withheld).
        let seen = Prepared {
            name: "scene".into(),
            image: image.clone(),
            features: features.clone(),
        };
        let tune = FineTuneConfig {
            steps: 30,
            batch_size: 1,
            learning_rate: 1e-2,
            seed: 3,
        };
        let model = fine_tune(
            &network.init(&device).unwrap(),
            &network,
            &threat,
            &[seen],
            &tune,
            &device,
        )
        .unwrap();
        let scorer = LeakageScorer::new(model.clone(), threat.clone(), device);
        let scores = scorer.scores(&[(&image, &features)], 1).unwrap().remove(0);
        assert_eq!(scores.len(), features.len());

        // Leave-one-out: the true loss change of withholding each keypoint.
        let all = loss(&model, &threat, &image, &features);
        let truth: Vec<f64> = (0..features.len())
            .map(|i| {
                let rest: Vec<usize> = (0..features.len()).filter(|&j| j != i).collect();
                loss(&model, &threat, &image, &features.select(&rest)) - all
            })
            .collect();
        // Keypoints that lose their pixel to a stronger one change nothing and score 0.
        for (s, t) in scores.iter().zip(&truth) {
            if *s == 0.0 {
                assert!(t.abs() < 1e-6, "a hidden keypoint changed the loss by {t}");
            }
        }
        let n = scores.len() as f64;
        let (ms, mt) = (
            scores.iter().map(|&v| v as f64).sum::<f64>() / n,
            truth.iter().sum::<f64>() / n,
        );
        let cov: f64 = scores
            .iter()
            .zip(&truth)
            .map(|(&s, t)| (s as f64 - ms) * (t - mt))
            .sum();
        let vs: f64 = scores.iter().map(|&s| (s as f64 - ms).powi(2)).sum();
        let vt: f64 = truth.iter().map(|t| (t - mt).powi(2)).sum();
        let corr = cov / (vs * vt).sqrt();
        // First order, not exact, but informative: r = 0.75–0.97 over device seeds 1–6.
        assert!(
            corr > 0.5,
            "first-order scores vs leave-one-out: r = {corr:.3}"
        );
    }
}
