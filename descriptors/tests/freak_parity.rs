//! Parity of the FREAK port with OpenCV 4.6 (`cv2.xfeatures2d.FREAK`), on the fixtures made by
//! `tools/make_freak_fixtures.py` (see `tests/fixtures/freak/manifest.json`).

use featleak_descriptors::Keypoint;
use featleak_descriptors::{Freak, FreakConfig};
use image::GrayImage;
use ndarray::{Array1, Array2};
use ndarray_npy::NpzReader;
use std::fs::File;
use std::path::PathBuf;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/freak")
}

fn keypoints(a: &Array2<f32>) -> Vec<Keypoint> {
    a.outer_iter()
        .map(|r| Keypoint {
            x: r[0],
            y: r[1],
            size: r[2],
            angle: r[3],
            response: r[4],
            octave: r[5] as i32,
        })
        .collect()
}

struct Case {
    name: String,
    image: GrayImage,
    kps_in: Vec<Keypoint>,
    kps_out: Vec<Keypoint>,
    descriptors: Array2<u8>,
    config: FreakConfig,
}

fn load(path: &PathBuf) -> Case {
    let mut npz = NpzReader::new(File::open(path).expect("open fixture")).expect("npz");
    let image: Array2<u8> = npz.by_name("image").expect("image");
    let (h, w) = image.dim();
    let image = GrayImage::from_raw(w as u32, h as u32, image.iter().copied().collect())
        .expect("image size");
    let kin: Array2<f32> = npz.by_name("keypoints_in").expect("keypoints_in");
    let kout: Array2<f32> = npz.by_name("keypoints_out").expect("keypoints_out");
    let descriptors: Array2<u8> = npz.by_name("descriptors").expect("descriptors");
    let c: Array1<f32> = npz.by_name("config").expect("config");
    let config = FreakConfig {
        orientation_normalized: c[0] != 0.0,
        scale_normalized: c[1] != 0.0,
        pattern_scale: c[2],
        n_octaves: c[3] as usize,
    };
    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
    Case {
        name,
        image,
        kps_in: keypoints(&kin),
        kps_out: keypoints(&kout),
        descriptors,
        config,
    }
}

#[test]
fn freak_matches_opencv() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures folder (run tools/make_freak_fixtures.py)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "npz"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 5,
        "expected the FREAK fixtures, found {}",
        paths.len()
    );
    let (mut bits_total, mut bits_equal, mut rows_total, mut rows_equal) =
        (0usize, 0usize, 0usize, 0usize);
    for path in &paths {
        let case = load(path);
        let (kps, desc) = Freak::new(case.config).compute(&case.image, &case.kps_in);
        assert_eq!(
            kps.len(),
            case.kps_out.len(),
            "{}: kept keypoint count",
            case.name
        );
        let mut max_angle_err = 0.0f32;
        let mut angle_bits_equal = 0;
        for (k, (a, b)) in kps.iter().zip(&case.kps_out).enumerate() {
            assert_eq!(
                (a.x, a.y, a.size),
                (b.x, b.y, b.size),
                "{}: keypoint {k}",
                case.name
            );
            assert_eq!(
                (a.response, a.octave),
                (b.response, b.octave),
                "{}: keypoint {k}",
                case.name
            );
            let err = (a.angle - b.angle).abs();
            assert!(
                err <= 1e-3,
                "{}: keypoint {k} angle {} vs OpenCV {}",
                case.name,
                a.angle,
                b.angle
            );
            max_angle_err = max_angle_err.max(err);
            angle_bits_equal += usize::from(a.angle.to_bits() == b.angle.to_bits());
        }
        assert_eq!(
            desc.dim(),
            case.descriptors.dim(),
            "{}: descriptor shape",
            case.name
        );
        let mut equal_bits = 0usize;
        let mut equal_rows = 0usize;
        for (k, (r, o)) in desc
            .outer_iter()
            .zip(case.descriptors.outer_iter())
            .enumerate()
        {
            let diff: u32 = r
                .iter()
                .zip(o.iter())
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            equal_bits += 512 - diff as usize;
            equal_rows += usize::from(diff == 0);
            if diff != 0 {
                println!(
                    "{}: descriptor {k} differs in {diff} bits ({:?})",
                    case.name, kps[k]
                );
            }
        }
        let n = desc.nrows();
        let pct = |a: usize, b: usize| {
            if b == 0 {
                100.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        println!(
            "{:<24} kept {:>4}/{:<4} bits equal {:>7.3} %  identical {:>7.3} %  angles bit-equal {}/{} (max err {:.2e})",
            case.name,
            n,
            case.kps_in.len(),
            pct(equal_bits, n * 512),
            pct(equal_rows, n),
            angle_bits_equal,
            n,
            max_angle_err
        );
        bits_total += n * 512;
        bits_equal += equal_bits;
        rows_total += n;
        rows_equal += equal_rows;
    }
    let bits_pct = 100.0 * bits_equal as f64 / bits_total.max(1) as f64;
    let rows_pct = 100.0 * rows_equal as f64 / rows_total.max(1) as f64;
    println!(
        "overall: {rows_total} descriptors, bits equal {bits_pct:.4} %, identical {rows_pct:.3} %"
    );
    assert!(bits_pct >= 99.5, "bits equal {bits_pct} %");
    assert!(rows_pct >= 95.0, "identical descriptors {rows_pct} %");
}
