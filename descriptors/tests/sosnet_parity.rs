//! SOSNet parity with kornia (fixtures from tools/make_sosnet_fixtures.py) and checkpoint errors.

use std::path::PathBuf;

use featleak_descriptors::sosnet::{Sosnet, WeightsError};
use ndarray::{Array2, Array3};
use ndarray_npy::NpzReader;

/// Fixture folder, relative to the crate root (`tests/fixtures/sosnet` inside featleak-descriptors).
const FIXTURE_DIR: &str = "tests/fixtures/sosnet";
const TOLERANCE: f32 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    let dir = PathBuf::from(FIXTURE_DIR);
    let dir = if dir.is_absolute() {
        dir
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir)
    };
    dir.join(name)
}

fn read_npz() -> (Array3<f32>, Array2<f32>, Array2<f32>) {
    let mut npz = NpzReader::new(std::fs::File::open(fixture("patches.npz")).unwrap()).unwrap();
    let patches: Array3<u8> = npz.by_name("patches").unwrap();
    let desc: Array2<f32> = npz.by_name("descriptors").unwrap();
    let cheap: Array2<f32> = npz.by_name("descriptors_cheap").unwrap();
    (patches.mapv(|v| v as f32 / 255.0), desc, cheap)
}

fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn matches_kornia_on_random_weights() {
    let (patches, want, _) = read_npz();
    let net = Sosnet::load(fixture("sosnet_random.pth")).unwrap();
    let got = net.describe(patches.view());
    let d = max_abs_diff(&got, &want);
    eprintln!("parity max |Δ| = {d:e} over {} descriptors", got.nrows());
    assert!(d <= TOLERANCE, "max |Δ| {d} > {TOLERANCE}");
    for row in got.rows() {
        let n: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-5);
    }
    // Batching does not change the result.
    let small = Sosnet::load(fixture("sosnet_random.pth"))
        .unwrap()
        .with_batch_size(7)
        .describe(patches.view());
    assert!(max_abs_diff(&small, &got) <= 1e-6);
}

/// The same parity with the network on the machine's wgpu adapter (burn's layers; the CPU runs
/// featleak's own kernels).
#[cfg(feature = "wgpu")]
#[test]
fn matches_kornia_on_random_weights_on_wgpu() {
    let (device, description) = featleak_descriptors::ComputeDevice::Wgpu.open().unwrap();
    eprintln!("{description}");
    let (patches, want, _) = read_npz();
    let net = Sosnet::load_on(fixture("sosnet_random.pth"), device).unwrap();
    let d = max_abs_diff(&net.describe(patches.view()), &want);
    eprintln!("parity on wgpu max |Δ| = {d:e}");
    assert!(d <= TOLERANCE, "max |Δ| {d} > {TOLERANCE}");
}

#[test]
fn reads_legacy_and_wrapped_checkpoints() {
    let (patches, _, want) = read_npz();
    for name in ["sosnet_cheap_legacy.pth", "sosnet_cheap_wrapped.pth"] {
        let got = Sosnet::load(fixture(name))
            .unwrap()
            .describe(patches.view());
        let d = max_abs_diff(&got, &want);
        eprintln!("{name}: max |Δ| = {d:e}");
        assert!(d <= TOLERANCE, "{name}: max |Δ| {d}");
    }
}

#[test]
fn wrong_shape_is_reported() {
    let err = Sosnet::load(fixture("sosnet_wrong_shape.pth")).unwrap_err();
    eprintln!("{err}");
    match &err {
        WeightsError::Shape {
            key,
            expected,
            found,
            ..
        } => {
            assert_eq!(key, "layers.4.weight");
            assert_eq!(expected, &vec![32, 32, 3, 3]);
            assert_eq!(found, &vec![16, 32, 3, 3]);
        }
        other => panic!("wrong error: {other:?}"),
    }
    assert!(
        err.to_string().contains("layers.4.weight") && err.to_string().contains("[16, 32, 3, 3]")
    );
}

#[test]
fn missing_key_is_reported() {
    let err = Sosnet::load(fixture("sosnet_missing_key.pth")).unwrap_err();
    eprintln!("{err}");
    assert!(
        matches!(&err, WeightsError::Missing { key, expected, .. } if key == "layers.11.running_var" && expected == &vec![64])
    );
}

#[test]
fn other_files_are_rejected() {
    // Not a checkpoint at all.
    let err = Sosnet::load(fixture("manifest.json")).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, WeightsError::Read { .. }));
    let err = Sosnet::load(fixture("does_not_exist.pth")).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, WeightsError::Read { .. }));
}

#[test]
fn another_architecture_is_rejected() {
    let err = Sosnet::load(fixture("hardnet_cheap.pth")).unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, WeightsError::NotModel { .. }));
    assert!(err.to_string().contains("features."));
}
