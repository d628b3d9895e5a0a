//! featleak's side of `tools/bench_kernels.py` (run that script, not this one): times FREAK,
//! descriptor matching and SSIM on the data the script wrote, and prints one JSON object of
//! median milliseconds. Threads: rayon's pool (the script sets RAYON_NUM_THREADS).
//!
//! Usage: `bench_kernels DATA.npz`

use featleak_descriptors::{Descriptors, Freak, FreakConfig, Keypoint};
use featleak_eval::{MatchConfig, image_metrics, match_descriptors};
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use ndarray::{Array2, Array3};
use ndarray_npy::NpzReader;
use std::hint::black_box;
use std::time::Instant;

/// Median wall time of `runs` calls, in milliseconds (after one warm-up call).
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: bench_kernels DATA.npz (written by tools/bench_kernels.py)");
    let mut npz = NpzReader::new(std::fs::File::open(&path).expect("open data")).expect("npz");
    let image: Array2<u8> = npz.by_name("freak_image").unwrap();
    let (h, w) = image.dim();
    let gray =
        image::GrayImage::from_raw(w as u32, h as u32, image.iter().copied().collect()).unwrap();
    let kps: Array2<f32> = npz.by_name("freak_keypoints").unwrap();
    let kps: Vec<Keypoint> = kps
        .rows()
        .into_iter()
        .map(|r| Keypoint::from_row(r.as_slice().unwrap()))
        .collect();
    let sift_a: Array2<f32> = npz.by_name("sift_a").unwrap();
    let sift_b: Array2<f32> = npz.by_name("sift_b").unwrap();
    let bin_a: Array2<u8> = npz.by_name("binary_a").unwrap();
    let bin_b: Array2<u8> = npz.by_name("binary_b").unwrap();
    let ssim_a: Array3<f32> = npz.by_name("ssim_a").unwrap();
    let ssim_b: Array3<f32> = npz.by_name("ssim_b").unwrap();

    let freak = Freak::new(FreakConfig::default());
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    let freak_1t_ms = median_ms(30, || {
        one_thread.install(|| black_box(freak.compute(&gray, &kps)));
    });
    let freak_ms = median_ms(30, || {
        black_box(freak.compute(&gray, &kps));
    });
    let (fa, fb) = (
        Descriptors::Float(sift_a.clone()),
        Descriptors::Float(sift_b.clone()),
    );
    let mut float_matches = 0;
    let float_ms = median_ms(15, || {
        float_matches = match_descriptors(&fa, &fb, &MatchConfig::default())
            .unwrap()
            .len()
    });
    let (ba, bb) = (Descriptors::Binary(bin_a), Descriptors::Binary(bin_b));
    let mut binary_matches = 0;
    let binary_ms = median_ms(15, || {
        binary_matches = match_descriptors(&ba, &bb, &MatchConfig::default())
            .unwrap()
            .len()
    });

    // kiddo: exact nearest neighbour of every row of A among B (one direction only).
    let points: Vec<[f32; 128]> = sift_b
        .rows()
        .into_iter()
        .map(|r| r.as_slice().unwrap().try_into().unwrap())
        .collect();
    let queries: Vec<[f32; 128]> = sift_a
        .rows()
        .into_iter()
        .map(|r| r.as_slice().unwrap().try_into().unwrap())
        .collect();
    let tree: ImmutableKdTree<f32, 128> = ImmutableKdTree::new_from_slice(&points).unwrap();
    let kiddo_ms = median_ms(3, || {
        for q in &queries {
            black_box(
                tree.query(q)
                    .nearest_one::<SquaredEuclidean<f32>>()
                    .execute(),
            );
        }
    });
    let (rows, _) = featleak_eval::float_nn::nearest_both_ways(sift_a.view(), sift_b.view());
    let kiddo_agree = queries
        .iter()
        .zip(&rows)
        .filter(|(q, n)| {
            tree.query(q)
                .nearest_one::<SquaredEuclidean<f32>>()
                .execute()
                .item as usize
                == n.index
        })
        .count();

    let mut ssim = 0.0;
    let ssim_ms = median_ms(15, || {
        ssim = image_metrics::ssim(ssim_a.view(), ssim_b.view(), None).unwrap()
    });
    println!(
        "{}",
        serde_json::json!({
            "freak_compute_ms": freak_ms, "freak_compute_1t_ms": freak_1t_ms, "freak_kept": freak.compute(&gray, &kps).0.len(),
            "float_mutual_nn_ms": float_ms, "float_matches": float_matches,
            "binary_mutual_nn_ms": binary_ms, "binary_matches": binary_matches,
            "kiddo_one_way_ms": kiddo_ms, "kiddo_agrees_with_brute_force": kiddo_agree, "queries": queries.len(),
            "ssim_ms": ssim_ms, "ssim": ssim,
        })
    );
}
