//! LPIPS against the reference `lpips` package (fixtures and tolerance:
//! `tests/fixtures/lpips/manifest.json`, made by `tools/make_lpips_fixtures.py`).
//!
//! ImageNet backbones cannot be bundled or downloaded here, so both sides run a synthetic backbone
//! computed from one formula (below and in the script), written here in torchvision's layout and
//! loaded like a user's checkpoint, with the real bundled linear layers.

use std::fs::File;
use std::path::{Path, PathBuf};

use featleak_descriptors::state_dict::{WeightsError, save_safetensors};
use featleak_eval::MetricError;
use featleak_eval::lpips::{Lpips, LpipsNet};
use image::RgbImage;
use ndarray::{Array1, Array3};
use ndarray_npy::NpzReader;

const FIXTURES: &str = "tests/fixtures/lpips";
/// Relative tolerance of the distances (the manifest's `distance_relative`).
const TOLERANCE: f64 = 1e-5;

/// (index in `features`, c_in, c_out, kernel) of each conv of torchvision's backbones.
const ALEX: &[(usize, usize, usize, usize)] = &[
    (0, 3, 64, 11),
    (3, 64, 192, 5),
    (6, 192, 384, 3),
    (8, 384, 256, 3),
    (10, 256, 256, 3),
];
const VGG: &[(usize, usize, usize, usize)] = &[
    (0, 3, 64, 3),
    (2, 64, 64, 3),
    (5, 64, 128, 3),
    (7, 128, 128, 3),
    (10, 128, 256, 3),
    (12, 256, 256, 3),
    (14, 256, 256, 3),
    (17, 256, 512, 3),
    (19, 512, 512, 3),
    (21, 512, 512, 3),
    (24, 512, 512, 3),
    (26, 512, 512, 3),
    (28, 512, 512, 3),
];

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `count` values (2u − 1)·bound, u = (splitmix64(stream·2^40 + i) >> 11) / 2^53.
fn synthetic(stream: u64, count: usize, bound: f64) -> Vec<f32> {
    (0..count as u64)
        .map(|i| {
            let u = (splitmix64((stream << 40) + i) >> 11) as f64 * 2f64.powi(-53);
            ((2.0 * u - 1.0) * bound) as f32
        })
        .collect()
}

/// Writes the synthetic backbone as torchvision names it, plus a classifier tensor (read past)
/// and, when given, one more tensor.
fn write_backbone(
    dir: &Path,
    convs: &[(usize, usize, usize, usize)],
    extra: Option<&str>,
) -> PathBuf {
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (k, &(index, c_in, c_out, kernel)) in convs.iter().enumerate() {
        let fan_in = c_in * kernel * kernel;
        let bound = (6.0 / fan_in as f64).sqrt();
        let stream = 2 * k as u64;
        tensors.push((
            format!("features.{index}.weight"),
            vec![c_out, c_in, kernel, kernel],
            synthetic(stream + 1, c_out * fan_in, bound),
        ));
        tensors.push((
            format!("features.{index}.bias"),
            vec![c_out],
            synthetic(stream + 2, c_out, 0.1),
        ));
    }
    tensors.push(("classifier.1.weight".into(), vec![4, 2], vec![0.5; 8]));
    if let Some(name) = extra {
        tensors.push((name.into(), vec![2], vec![1.0; 2]));
    }
    let suffix = if extra.is_some() { "-extra" } else { "" };
    let path = dir.join(format!("backbone-{}{suffix}.safetensors", convs.len()));
    let named: Vec<(String, Vec<usize>, &[f32])> = tensors
        .iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), v.as_slice()))
        .collect();
    save_safetensors(&path, &named).unwrap();
    path
}

fn image(npz: &mut NpzReader<File>, name: &str) -> RgbImage {
    let a: Array3<u8> = npz.by_name(name).unwrap();
    let (h, w, _) = a.dim();
    RgbImage::from_raw(w as u32, h as u32, a.iter().copied().collect()).unwrap()
}

#[test]
fn lpips_matches_the_reference_package_on_both_backbones() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
    let mut npz = NpzReader::new(File::open(root.join("reference.npz")).unwrap()).unwrap();
    for (net, convs) in [(LpipsNet::Alex, ALEX), (LpipsNet::Vgg, VGG)] {
        let lpips = Lpips::load(net, &write_backbone(dir.path(), convs, None)).unwrap();
        for i in 0..3 {
            let (a, b) = (
                image(&mut npz, &format!("a_{i}")),
                image(&mut npz, &format!("b_{i}")),
            );
            let expected: Array1<f32> = npz.by_name(&format!("{}_{i}", net.name())).unwrap();
            let expected = f64::from(expected[0]);
            let got = lpips.distance(&a, &b).unwrap();
            let rel = (got - expected).abs() / expected;
            eprintln!(
                "{} pair {i}: {got} vs {expected} (relative {rel:.1e})",
                net.name()
            );
            assert!(
                rel <= TOLERANCE,
                "{} pair {i}: {got} vs reference {expected} (relative {rel:e})",
                net.name()
            );
            assert_eq!(lpips.distance(&a, &a).unwrap(), 0.0);
        }
    }
}

#[test]
fn lpips_refuses_other_backbones_small_images_and_other_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let alex = write_backbone(dir.path(), ALEX, None);
    let vgg = write_backbone(dir.path(), VGG, None);
    // Each backbone's file, loaded as the other: the first tensor it lacks is named.
    for (net, file, first_missing) in [
        (LpipsNet::Alex, &vgg, "AlexNet tensor `features.3.weight`"),
        (LpipsNet::Vgg, &alex, "VGG16 tensor `features.2.weight`"),
    ] {
        match Lpips::load(net, file) {
            Err(e @ WeightsError::Missing { .. }) => {
                assert!(e.to_string().contains(first_missing), "{e}")
            }
            other => panic!("{} loaded as {}: {other:?}", file.display(), net.name()),
        }
    }
    let extra = write_backbone(dir.path(), ALEX, Some("features.12.weight"));
    let err = Lpips::load(LpipsNet::Alex, &extra).unwrap_err();
    assert!(
        err.to_string().contains("features.12.weight"),
        "unexpected tensor not named: {err}"
    );
    let missing = dir.path().join("none.pth");
    let err = Lpips::load(LpipsNet::Alex, &missing).unwrap_err();
    assert!(err.to_string().contains("none.pth"), "{err}");

    let lpips = Lpips::load(LpipsNet::Alex, &alex).unwrap();
    let small = RgbImage::new(31, 64);
    assert!(matches!(
        lpips.distance(&small, &small),
        Err(MetricError::TooSmallForLpips { width: 31, .. })
    ));
    assert!(matches!(
        lpips.distance(&RgbImage::new(64, 64), &RgbImage::new(64, 48)),
        Err(MetricError::ShapeMismatch { .. })
    ));
}
