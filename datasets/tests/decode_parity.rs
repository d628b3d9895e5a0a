//! Decoding parity with opencv-python and Pillow (fixtures from tools/make_decode_fixtures.py; see
//! tests/fixtures/decode/manifest.json for versions; tolerance: exact).

use featleak_datasets::{GrayConversion, load_rgb};
use image::{GrayImage, RgbImage};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decode")
}

fn manifest() -> serde_json::Value {
    let path = fixtures().join("manifest.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The cases of the manifest: (input file, its references by kind).
fn cases() -> Vec<(PathBuf, serde_json::Map<String, serde_json::Value>)> {
    let m = manifest();
    let cases = m["cases"].as_object().unwrap();
    assert!(cases.len() >= 4, "expected at least 4 decoding cases");
    cases
        .iter()
        .map(|(name, case)| {
            (
                fixtures().join(name),
                case["references"].as_object().unwrap().clone(),
            )
        })
        .collect()
}

/// A reference image (lossless PNG), read by the `image` crate.
fn reference(refs: &serde_json::Map<String, serde_json::Value>, kind: &str) -> image::DynamicImage {
    image::open(fixtures().join(refs[kind]["file"].as_str().unwrap())).unwrap()
}

/// Panics with the number of differing values and the largest difference unless equal.
fn assert_same(what: &str, ours: (u32, u32, &[u8]), theirs: (u32, u32, &[u8])) {
    assert_eq!(
        (ours.0, ours.1),
        (theirs.0, theirs.1),
        "{what}: size (width, height)"
    );
    let differing = ours.2.iter().zip(theirs.2).filter(|(a, b)| a != b).count();
    let largest = ours
        .2
        .iter()
        .zip(theirs.2)
        .map(|(&a, &b)| a.abs_diff(b))
        .max()
        .unwrap_or(0);
    assert!(
        differing == 0,
        "{what}: {differing} of {} values differ (by up to {largest})",
        ours.2.len()
    );
}

fn rgb(img: &RgbImage) -> (u32, u32, &[u8]) {
    (img.width(), img.height(), img.as_raw())
}

fn gray(img: &GrayImage) -> (u32, u32, &[u8]) {
    (img.width(), img.height(), img.as_raw())
}

#[test]
fn load_rgb_equals_opencv_imdecode() {
    for (input, refs) in cases() {
        let ours = load_rgb(&input).unwrap();
        let theirs = reference(&refs, "rgb").to_rgb8();
        assert_same(
            &format!("{} RGB", input.display()),
            rgb(&ours),
            rgb(&theirs),
        );
    }
}

#[test]
fn each_grey_conversion_equals_its_reference() {
    let mut checked = 0;
    for (input, refs) in cases() {
        for conversion in GrayConversion::ALL {
            if !refs.contains_key(conversion.name()) {
                continue; // e.g. no Pillow reference for an EXIF-rotated JPEG
            }
            let ours = conversion.load(&input).unwrap();
            let theirs = reference(&refs, conversion.name()).to_luma8();
            assert_same(
                &format!("{} {conversion}", input.display()),
                gray(&ours),
                gray(&theirs),
            );
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} references checked");
}

#[test]
fn grey_from_decoded_pixels_equals_the_file_conversion_where_it_can() {
    // cvtcolor and pil convert the decoded RGB; imread-grayscale on a PNG is libpng's conversion
    // of the same RGB, so all three can be had from the pixels alone for the PNG.
    for (input, refs) in cases() {
        let pixels = load_rgb(&input).unwrap();
        let is_png = input.extension().is_some_and(|e| e == "png");
        for conversion in GrayConversion::ALL {
            if !refs.contains_key(conversion.name())
                || (conversion == GrayConversion::ImreadGrayscale && !is_png)
            {
                continue;
            }
            let theirs = reference(&refs, conversion.name()).to_luma8();
            assert_same(
                &format!("{} {conversion} from RGB", input.display()),
                gray(&conversion.from_rgb(&pixels)),
                gray(&theirs),
            );
        }
    }
}

#[test]
fn exif_orientation_is_applied_as_opencv_does() {
    let input = fixtures().join("exif_rotated.jpg");
    // Stored 40×24 with orientation 6; OpenCV (and so featleak) turns it upright: 24×40.
    assert_eq!(load_rgb(&input).unwrap().dimensions(), (24, 40));
    assert_eq!(
        GrayConversion::ImreadGrayscale
            .load(&input)
            .unwrap()
            .dimensions(),
        (24, 40)
    );
}
