//! Reading the learned extractors' parity fixtures (`tests/fixtures/MODEL/reference.npz`, written
//! by tools/make_MODEL_fixtures.py) and the checks their parity tests share.
#![allow(dead_code)] // each test binary uses a different subset

use featleak_descriptors::{Descriptors, Extractor, ExtractorConfig, FeatureSet};
use image::GrayImage;
use ndarray::Array2;
use ndarray_npy::NpzReader;

/// The reference outputs of `model` (`xfeat`, `disk`, `aliked`).
pub fn reference(model: &str) -> NpzReader<std::fs::File> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(model)
        .join("reference.npz");
    NpzReader::new(std::fs::File::open(path).unwrap()).unwrap()
}

/// Fixture scene `i`'s grey image (`gray_I`).
pub fn gray(npz: &mut NpzReader<std::fs::File>, i: usize) -> GrayImage {
    let g: Array2<u8> = npz.by_name(&format!("gray_{i}")).unwrap();
    let (h, w) = g.dim();
    GrayImage::from_raw(w as u32, h as u32, g.iter().copied().collect()).unwrap()
}

/// The machine's wgpu adapter (Mesa's lavapipe in CI), for the parity tests run on it.
#[cfg(feature = "wgpu")]
pub fn wgpu() -> featleak_descriptors::device::Device {
    let (device, description) = featleak_descriptors::ComputeDevice::Wgpu.open().unwrap();
    eprintln!("{description}");
    device
}

/// Largest absolute difference between two sequences, paired in order.
pub fn max_abs_diff<'a>(
    a: impl IntoIterator<Item = &'a f32>,
    b: impl IntoIterator<Item = &'a f32>,
) -> f32 {
    a.into_iter()
        .zip(b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// Checks the learned extractor `name`, whose detector and descriptor are one network, on `g`:
/// it is `name+name` by default and refused on another detector; it gives `dim` float values per
/// keypoint; and SIFT computed on its detector's keypoints describes exactly the same ones, in
/// the same order.
/// Returns its features.
pub fn check_joint_extractor(name: &str, dim: usize, g: &GrayImage) -> FeatureSet {
    let config = ExtractorConfig::with_default_detector(name).unwrap();
    assert_eq!(config.name(), format!("{name}+{name}"));
    assert!(ExtractorConfig::named(name, "dog").is_err());
    let set = config.build().unwrap().extract(g).unwrap();
    assert!(!set.is_empty());
    assert!(
        matches!(&set.descriptors, Descriptors::Float(d) if d.ncols() == dim && d.nrows() == set.len())
    );
    let sift = ExtractorConfig::named("sift", name).unwrap();
    let on_its_keypoints = sift.build().unwrap().extract(g).unwrap();
    assert!(matches!(&on_its_keypoints.descriptors, Descriptors::Float(d) if d.ncols() == 128));
    let positions =
        |f: &FeatureSet| -> Vec<(f32, f32)> { f.keypoints.iter().map(|k| (k.x, k.y)).collect() };
    assert_eq!(positions(&on_its_keypoints), positions(&set));
    set
}

/// A `w`×`h` image of slanted stripes and checks: corners everywhere, for the tests of large
/// images.
pub fn checks(w: u32, h: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        image::Luma([((x / 13 + y / 17) % 2 * 160 + (x * 7 + y * 3) % 40) as u8])
    })
}
