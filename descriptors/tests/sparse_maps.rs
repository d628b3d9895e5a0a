//! Sparse feature maps: placement, collisions, channels, and alignment with the resized image.

use featleak_datasets::ResizeCrop;
use featleak_descriptors::{
    Descriptors, ExtractorInfo, FeatureSet, Keypoint, SparseMapConfig, rasterize, rasterize_at,
};
use image::{GrayImage, Luma};
use ndarray::{Array2, array};

fn set(image_size: (u32, u32), keypoints: Vec<Keypoint>, descriptors: Descriptors) -> FeatureSet {
    FeatureSet {
        image_size,
        keypoints,
        descriptors,
        extractor: ExtractorInfo {
            name: "t".into(),
            config: serde_json::Value::Null,
        },
    }
}

fn kp(x: f32, y: f32, response: f32, size: f32, angle: f32) -> Keypoint {
    Keypoint {
        x,
        y,
        size,
        angle,
        response,
        octave: 0,
    }
}

#[test]
fn descriptors_land_at_rounded_pixels_and_stronger_keypoints_win() {
    let fs = set(
        (4, 5),
        vec![
            kp(1.49, 0.5, 0.2, 2.0, -1.0),
            kp(1.2, 0.6, 0.9, 4.0, 90.0),
            kp(4.4, 3.2, 0.1, 1.0, 0.0),
        ],
        Descriptors::Float(array![[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]]),
    );
    let config = SparseMapConfig {
        presence: true,
        log_scale: true,
        orientation: true,
        ..Default::default()
    };
    let map = rasterize(&fs, &config);
    assert_eq!(map.data.dim(), (2 + 1 + 1 + 2, 4, 5));
    assert_eq!(map.collisions, 1);
    // Keypoints 0 and 1 both round to row 1, column 1; keypoint 1 has the higher response.
    let at = |r: usize, c: usize| map.data.slice(ndarray::s![.., r, c]).to_vec();
    let v = at(1, 1);
    assert_eq!(&v[..3], &[0.0, 1.0, 1.0]);
    assert!(
        (v[3] - 4f32.ln()).abs() < 1e-6 && v[4].abs() < 1e-6 && (v[5] - 1.0).abs() < 1e-6,
        "{v:?}"
    );
    assert_eq!(at(3, 4), vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    let nonzero_pixels = (0..4)
        .flat_map(|r| (0..5).map(move |c| (r, c)))
        .filter(|&(r, c)| at(r, c)[2] != 0.0)
        .count();
    assert_eq!(nonzero_pixels, 2);
}

#[test]
fn binary_descriptors_unpack_msb_first_and_unoriented_keypoints_have_zero_angle() {
    let fs = set(
        (2, 2),
        vec![kp(0.0, 1.0, 1.0, 7.0, -1.0)],
        Descriptors::Binary(array![[0b1000_0001, 0b0100_0000]]),
    );
    let config = SparseMapConfig {
        orientation: true,
        ..Default::default()
    };
    let map = rasterize(&fs, &config);
    assert_eq!(map.data.dim(), (18, 2, 2));
    let v = map.data.slice(ndarray::s![.., 1, 0]).to_vec();
    let expected = [
        1., 0., 0., 0., 0., 0., 0., 1., 0., 1., 0., 0., 0., 0., 0., 0., 0., 0.,
    ];
    assert_eq!(v, expected);
    assert_eq!(config.channels(16), 18);
    assert_eq!(
        SparseMapConfig {
            descriptors: false,
            presence: true,
            ..Default::default()
        }
        .channels(128),
        1
    );
}

/// Bright Gaussian blobs at sub-pixel keypoints: after the same resize + crop, each mapped
/// keypoint must sit on its blob's intensity centroid, and its map pixel on the blob's peak.
#[test]
fn resize_and_crop_keep_image_and_features_aligned() {
    let (h, w) = (120u32, 200u32);
    let centres = [
        (37.3f32, 41.7f32),
        (101.6, 60.2),
        (150.25, 88.5),
        (70.0, 25.4),
    ];
    let mut img = GrayImage::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let v: f32 = centres
                .iter()
                .map(|&(cx, cy)| {
                    255.0
                        * (-((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2))
                            / (2.0 * 4.0f32.powi(2)))
                        .exp()
                })
                .sum();
            img.put_pixel(x, y, Luma([v.min(255.0).round() as u8]));
        }
    }
    let keypoints = centres
        .iter()
        .map(|&(x, y)| kp(x, y, 1.0, 8.0, -1.0))
        .collect();
    let fs = set((h, w), keypoints, Descriptors::Float(Array2::ones((4, 1))));
    let t = ResizeCrop::cover((h, w), (48, 48));
    let small = t.apply(&img);
    let moved = fs.transformed(&t);
    // 200×120 → 80×48, crop 16 px from the left: the blob at x = 37.3 (→ 14.6 − 16 < 0) leaves.
    assert_eq!(moved.len(), 3);
    assert_eq!(moved.image_size, (48, 48));
    for k in &moved.keypoints {
        let (mut sx, mut sy, mut s) = (0f64, 0f64, 0f64);
        for y in 0..48u32 {
            for x in 0..48u32 {
                let d2 = (x as f32 - k.x).powi(2) + (y as f32 - k.y).powi(2);
                if d2 < 16.0 {
                    let v = small.get_pixel(x, y)[0] as f64;
                    sx += v * x as f64;
                    sy += v * y as f64;
                    s += v;
                }
            }
        }
        let (cx, cy) = ((sx / s) as f32, (sy / s) as f32);
        assert!(
            (cx - k.x).abs() < 0.15 && (cy - k.y).abs() < 0.15,
            "keypoint ({}, {}) vs blob centroid ({cx}, {cy})",
            k.x,
            k.y
        );
        assert!((k.size - 8.0 * 0.4).abs() < 1e-4);
    }
    let map = rasterize_at(
        &fs,
        &SparseMapConfig {
            presence: true,
            descriptors: false,
            ..Default::default()
        },
        (48, 48),
    );
    for k in &moved.keypoints {
        let (r, c) = featleak_descriptors::sparse_map::keypoint_pixel(k.x, k.y, (48, 48));
        assert_eq!(map.data[[0, r, c]], 1.0);
        let peak = (r.saturating_sub(1)..=r + 1)
            .flat_map(|y| (c.saturating_sub(1)..=c + 1).map(move |x| (y, x)))
            .max_by_key(|&(y, x)| small.get_pixel(x as u32, y as u32)[0])
            .unwrap();
        assert_eq!(
            peak,
            (r, c),
            "map pixel of ({}, {}) is not the blob's peak",
            k.x,
            k.y
        );
    }
}

#[test]
fn sparse_pixels_are_exactly_the_occupied_pixels_of_the_dense_map() {
    let kps: Vec<Keypoint> = (0..40)
        .map(|i| {
            kp(
                (i % 6) as f32 * 3.7,
                (i % 4) as f32 * 4.2,
                (i % 7) as f32,
                2.0,
                -1.0,
            )
        })
        .collect();
    let n = kps.len();
    let fs = set(
        (20, 24),
        kps,
        Descriptors::Float(Array2::from_shape_fn((n, 3), |(i, j)| {
            (i * 3 + j + 1) as f32
        })),
    );
    let config = SparseMapConfig {
        presence: true,
        l2_normalize: false,
        ..Default::default()
    };
    let sparse = featleak_descriptors::rasterize_sparse(&fs, &config);
    let dense = rasterize(&fs, &config);
    assert_eq!(sparse.collisions, dense.collisions);
    assert!(sparse.collisions > 0, "the test should exercise collisions");
    assert!(sparse.pixels.windows(2).all(|p| p[0] < p[1]));
    let occupied = (0..20 * 24)
        .filter(|&p| dense.data[[3, p / 24, p % 24]] == 1.0)
        .collect::<Vec<_>>();
    assert_eq!(sparse.pixels, occupied);
    for (&p, row) in sparse.pixels.iter().zip(sparse.values.rows()) {
        assert_eq!(
            row.to_vec(),
            dense.data.slice(ndarray::s![.., p / 24, p % 24]).to_vec()
        );
    }
}
