//! DISK parity with kornia's `DISK` on the official `depth` weights (fixtures and tolerances from
//! tools/make_disk_fixtures.py, see the manifest beside them).

mod learned_fixtures;

use std::path::PathBuf;

use featleak_descriptors::disk::{Disk, DiskDetector, DiskWeights};
use featleak_descriptors::state_dict::StateDictWeights;
use featleak_descriptors::{Extractor, ExtractorConfig};
use image::GrayImage;
use learned_fixtures::{check_joint_extractor, checks, gray, max_abs_diff, reference};
use ndarray::{Array1, Array2, ArrayD, Axis, s};

/// The `n` of each fixture scene (0: all maxima).
const SCENES: [usize; 3] = [0, 0, 100];
/// Normalised descriptors: absolute.
const TOLERANCE: f32 = 1e-4;
/// Heatmap logits (a few hundred) and dense descriptors: relative to the map's largest magnitude.
const RELATIVE: f32 = 1e-5;

fn largest(values: impl IntoIterator<Item = f32>) -> f32 {
    values.into_iter().fold(0f32, |m, v| m.max(v.abs()))
}

#[test]
fn network_maps_match_kornia() {
    let mut npz = reference("disk");
    let g = gray(&mut npz, 0);
    let (h, w) = (g.height() as usize, g.width() as usize);
    let pixels: Vec<f32> = g.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
    let (maps, hp, wp) = Disk::bundled().maps(&pixels, h, w);
    assert_eq!((hp, wp), (h, w), "scene 0 needs no padding");
    let maps = Array2::from_shape_vec((129, h * w), maps).unwrap();
    let heat: ArrayD<f32> = npz.by_name("heatmap_0").unwrap();
    let dense: ArrayD<f32> = npz.by_name("descriptors_dense_0").unwrap();
    let dh = max_abs_diff(maps.row(128), heat.iter());
    let dd = max_abs_diff(maps.slice(s![..8, ..]).iter(), dense.iter());
    let (sh, sd) = (
        largest(heat.iter().copied()),
        largest(dense.iter().copied()),
    );
    eprintln!(
        "heatmap max |Δ| {dh:e} (largest |value| {sh}), descriptor channels 0–7 max |Δ| {dd:e} (largest {sd})"
    );
    assert!(dh <= RELATIVE * sh && dd <= RELATIVE * sd, "{dh} {dd}");
}

#[test]
fn keypoints_scores_and_descriptors_match_kornia() {
    matches_kornia(&Disk::bundled(), RELATIVE, TOLERANCE);
}

/// The same parity with the network on the machine's wgpu adapter, within wider tolerances: on
/// Mesa's lavapipe the heatmap differs from the CPU's by about 5e-5 of its largest value evenly
/// over the whole map (a whole-map statistic, instance normalisation's, summed in another
/// order), and the descriptors by up to 1.2e-4; the keypoints are the same.
#[cfg(feature = "wgpu")]
#[test]
fn keypoints_scores_and_descriptors_match_kornia_on_wgpu() {
    let weights = featleak_descriptors::disk::bundled_weights();
    let net = Disk::from_weights(&weights, learned_fixtures::wgpu());
    matches_kornia(&net, 10.0 * RELATIVE, 2.0 * TOLERANCE);
}

/// Checks `net` against the fixtures: identical keypoints, scores within `relative` of the
/// largest heatmap value, descriptors within `tolerance`.
fn matches_kornia(net: &Disk, relative: f32, tolerance: f32) {
    let mut npz = reference("disk");
    for (i, &n) in SCENES.iter().enumerate() {
        let g = gray(&mut npz, i);
        let want_kp: Array2<f32> = npz.by_name(&format!("keypoints_{i}")).unwrap();
        let want_scores: Array1<f32> = npz.by_name(&format!("scores_{i}")).unwrap();
        let want_desc: Array2<f32> = npz.by_name(&format!("descriptors_{i}")).unwrap();
        let (kps, desc) = net
            .detect_and_compute(&g, &DiskDetector::default(), n)
            .unwrap();
        let got: Vec<(f32, f32)> = kps.iter().map(|k| (k.x, k.y)).collect();
        let want: Vec<(f32, f32)> = want_kp.axis_iter(Axis(0)).map(|r| (r[0], r[1])).collect();
        assert_eq!(got, want, "scene {i}: keypoints");
        let scores: Vec<f32> = kps.iter().map(|k| k.response).collect();
        let ds = max_abs_diff(&scores, want_scores.iter());
        let dd = max_abs_diff(desc.iter(), want_desc.iter());
        eprintln!(
            "scene {i} ({}×{}, n {n}): {} keypoints identical, scores max |Δ| {ds:e}, descriptors max |Δ| {dd:e}",
            g.width(),
            g.height(),
            kps.len()
        );
        // Scores are heatmap values: relative to the scene's largest |heatmap value|.
        let pixels: Vec<f32> = g.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
        let (maps, hp, wp) = net.maps(&pixels, g.height() as usize, g.width() as usize);
        let scale = largest(maps[128 * hp * wp..].iter().copied());
        assert!(
            ds <= relative * scale && dd <= tolerance,
            "scene {i}: scores {ds} (largest |heatmap value| {scale}), descriptors {dd}"
        );
    }
}

#[test]
fn the_extractor_runs_disk_on_its_own_keypoints() {
    let mut npz = reference("disk");
    let g = gray(&mut npz, 1);
    check_joint_extractor("disk", 128, &g);
    let config = ExtractorConfig::with_default_detector("disk").unwrap();
    let err = config
        .build()
        .unwrap()
        .extract(&GrayImage::new(12, 40))
        .unwrap_err()
        .to_string();
    assert!(err.contains("16"), "{err}");
}

#[test]
fn another_architecture_is_refused() {
    let sosnet =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sosnet/sosnet_random.pth");
    let err = DiskWeights::load(&sosnet).unwrap_err().to_string();
    assert!(err.contains("not a state_dict of DISK"), "{err}");
}

#[test]
fn large_images_are_shrunk_as_hloc_does_and_keypoints_mapped_back() {
    // 1700×400: longer than resize_max 1600, so run at 1600×376 (400·1600/1700 = 376.47).
    let (w, h) = (1700u32, 400u32);
    let img = checks(w, h);
    let net = Disk::bundled();
    let (kps, _) = net
        .detect_and_compute(&img, &DiskDetector::default(), 500)
        .unwrap();
    assert!(!kps.is_empty());
    assert!(
        kps.iter()
            .all(|k| k.x >= 0.0 && k.x < w as f32 && k.y < h as f32)
    );
    assert!(
        kps.iter().any(|k| k.x > 1600.0),
        "keypoints cover the original width"
    );
    // Not on the integer grid any more: (k + 0.5)·s − 0.5 with s = 1700/1600.
    assert!(kps.iter().any(|k| k.x.fract() != 0.0));
    let native = DiskDetector {
        resize_max: 0,
        ..DiskDetector::default()
    };
    let (all, _) = net.detect_and_compute(&img, &native, 500).unwrap();
    assert!(
        all.iter().all(|k| k.x.fract() == 0.0),
        "resize_max 0: native size"
    );
}
