//! Seconds per image of `Xfeat::detect_and_compute` (bundled weights, flex CPU device) on grey
//! images given as files, median over rounds of the whole list.
//!
//! cargo build --release --workspace --examples
//! target/release/examples/bench_xfeat TOP_K ROUNDS IMAGE...
//! Threads: rayon's pool; set RAYON_NUM_THREADS=2 to match `torch.set_num_threads(2)`.

use std::time::Instant;

use featleak_datasets::GrayConversion;
use featleak_descriptors::xfeat::{Xfeat, XfeatDetector};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(top_k), Some(rounds)) = (
        args.first().and_then(|s| s.parse::<usize>().ok()),
        args.get(1).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: bench_xfeat TOP_K ROUNDS IMAGE...");
        std::process::exit(2);
    };
    let images: Vec<_> = args[2..]
        .iter()
        .map(|p| {
            GrayConversion::CvtColor
                .load(std::path::Path::new(p))
                .expect("image")
        })
        .collect();
    let net = Xfeat::bundled();
    let detector = XfeatDetector::default();
    net.detect_and_compute(&images[0], &detector, top_k); // warm-up
    let mut per_image = Vec::new();
    let mut keypoints = 0;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        keypoints = 0;
        for img in &images {
            keypoints += net.detect_and_compute(img, &detector, top_k).0.len();
        }
        per_image.push(t.elapsed().as_secs_f64() / images.len() as f64);
    }
    per_image.sort_by(f64::total_cmp);
    println!(
        "featleak xfeat: median {:.4} s/image over {} images ({} keypoints), {} rounds",
        per_image[per_image.len() / 2],
        images.len(),
        keypoints,
        per_image.len()
    );
}
