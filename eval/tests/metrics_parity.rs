//! Parity of the image metrics with scikit-image, on fixtures written by
//! `tools/make_metric_fixtures.py` (see its manifest.json for the exact calls).

use std::fs::File;
use std::path::PathBuf;

use featleak_eval::image_metrics::{self, MetricError, gray_view};
use ndarray::{Array2, Array3, ArrayD, Ix2, Ix3};
use ndarray_npy::NpzReader;
use serde_json::Value;

/// Fixture directory, relative to `CARGO_MANIFEST_DIR`.
const FIXTURE_DIR: &str = "tests/fixtures/metrics";

struct Case {
    name: String,
    a: Array3<f32>,
    b: Array3<f32>,
    mask: Option<Array2<bool>>,
    map: Option<Array2<f64>>,
    spec: Value,
}

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FIXTURE_DIR)
}

fn manifest() -> Value {
    let path = fixture_dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("manifest.json parses")
}

fn to_hwc(x: ArrayD<f32>) -> Array3<f32> {
    match x.ndim() {
        2 => gray_view(x.into_dimensionality::<Ix2>().unwrap().view()).to_owned(),
        3 => x.into_dimensionality::<Ix3>().unwrap(),
        n => panic!("unexpected image rank {n}"),
    }
}

fn cases() -> (Vec<Case>, f64) {
    let m = manifest();
    let tol = m["tolerance_abs"].as_f64().expect("tolerance_abs");
    let cases = m["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|spec| {
            let name = spec["name"].as_str().unwrap().to_string();
            let file = fixture_dir().join(spec["file"].as_str().unwrap());
            let mut npz = NpzReader::new(File::open(&file).unwrap()).unwrap();
            let names = npz.names().unwrap();
            let has = |k: &str| names.iter().any(|n| n == k || n == &format!("{k}.npy"));
            let a = to_hwc(npz.by_name("a").unwrap());
            let b = to_hwc(npz.by_name("b").unwrap());
            let mask = has("mask").then(|| {
                let m: Array2<bool> = npz.by_name("mask").unwrap();
                m
            });
            let map = has("ssim_map").then(|| {
                let m: Array2<f64> = npz.by_name("ssim_map").unwrap();
                m
            });
            Case {
                name,
                a,
                b,
                mask,
                map,
                spec: spec.clone(),
            }
        })
        .collect();
    (cases, tol)
}

fn check(metric: &str, case: &Case, got: f64, tol: f64) -> f64 {
    let want = case.spec[metric].as_f64().unwrap();
    let d = (got - want).abs();
    assert!(got.is_finite(), "{} {metric}: non-finite {got}", case.name);
    assert!(
        d <= tol,
        "{} {metric}: got {got}, skimage {want}, |Δ| = {d:e} > {tol:e}",
        case.name
    );
    d
}

#[test]
fn metrics_match_skimage() {
    let (cases, tol) = cases();
    assert!(cases.len() >= 8, "expected the full fixture set");
    let (mut dp, mut dm, mut ds, mut dmap) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for case in &cases {
        let (a, b) = (case.a.view(), case.b.view());
        let mask = case.mask.as_ref().map(|m| m.view());
        dp = dp.max(check(
            "psnr",
            case,
            image_metrics::psnr(a, b, mask).unwrap(),
            tol,
        ));
        dm = dm.max(check(
            "mae",
            case,
            image_metrics::mae(a, b, mask).unwrap(),
            tol,
        ));
        let ssim = image_metrics::ssim(a, b, mask);
        if case.spec["ssim"].is_null() {
            assert_eq!(case.spec["ssim_error"], "image_too_small", "{}", case.name);
            let err = ssim.expect_err(&case.name);
            assert!(
                matches!(err, MetricError::ImageTooSmall { window: 11, .. }),
                "{}: {err}",
                case.name
            );
            assert!(image_metrics::score(a, b, mask).is_err());
            assert!(image_metrics::ssim_map(a, b).is_err());
            continue;
        }
        let ssim = ssim.unwrap();
        ds = ds.max(check("ssim", case, ssim, tol));
        let scores = image_metrics::score(a, b, mask).unwrap();
        assert_eq!(scores.ssim, ssim);
        if let Some(want) = &case.map {
            let got = image_metrics::ssim_map(a, b).unwrap();
            assert_eq!(got.dim(), want.dim());
            let d = got
                .iter()
                .zip(want)
                .map(|(g, w)| (g - w).abs())
                .fold(0.0, f64::max);
            assert!(d <= tol, "{} ssim_map: max |Δ| = {d:e}", case.name);
            dmap = dmap.max(d);
        }
    }
    println!("max |Δ| over fixtures: psnr {dp:e}, mae {dm:e}, ssim {ds:e}, ssim_map {dmap:e}");
}

#[test]
fn grey_and_single_channel_colour_agree() {
    let (cases, _) = cases();
    let case = cases
        .iter()
        .find(|c| c.name == "grey_37x53")
        .expect("grey fixture");
    let a2 = case.a.index_axis(ndarray::Axis(2), 0);
    let b2 = case.b.index_axis(ndarray::Axis(2), 0);
    let via_gray = image_metrics::ssim(gray_view(a2), gray_view(b2), None).unwrap();
    assert_eq!(
        via_gray,
        image_metrics::ssim(case.a.view(), case.b.view(), None).unwrap()
    );
}
