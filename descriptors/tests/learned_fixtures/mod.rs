//! Reading the learned extractors' parity fixtures (`tests/fixtures/MODEL/reference.npz`, written
//! by tools/make_MODEL_fixtures.py), shared by their parity tests.

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

/// Largest absolute difference between two sequences, paired in order.
pub fn max_abs_diff<'a>(
    a: impl IntoIterator<Item = &'a f32>,
    b: impl IntoIterator<Item = &'a f32>,
) -> f32 {
    a.into_iter()
        .zip(b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}
