//! Seconds per image of a learned extractor's detection and description (XFeat, DISK or ALIKED, bundled
//! weights, flex CPU device) on grey images given as files, median over rounds of the whole list.
//!
//! cargo build --release --workspace --examples
//! target/release/examples/bench_learned xfeat|disk|aliked TOP_K ROUNDS IMAGE...
//! Threads: rayon's pool; set RAYON_NUM_THREADS=2 to match `torch.set_num_threads(2)`.

use std::time::Instant;

use featleak_datasets::GrayConversion;
use featleak_descriptors::aliked::{Aliked, AlikedDetector};
use featleak_descriptors::disk::{Disk, DiskDetector};
use featleak_descriptors::xfeat::{Xfeat, XfeatDetector};
use image::GrayImage;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(model), Some(top_k), Some(rounds)) = (
        args.first()
            .filter(|m| ["xfeat", "disk", "aliked"].contains(&m.as_str())),
        args.get(1).and_then(|s| s.parse::<usize>().ok()),
        args.get(2).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: bench_learned xfeat|disk|aliked TOP_K ROUNDS IMAGE...");
        std::process::exit(2);
    };
    let images: Vec<GrayImage> = args[3..]
        .iter()
        .map(|p| {
            GrayConversion::CvtColor
                .load(std::path::Path::new(p))
                .expect("image")
        })
        .collect();
    let run: Box<dyn Fn(&GrayImage) -> usize> = match model.as_str() {
        "xfeat" => {
            let net = Xfeat::bundled();
            Box::new(move |img| {
                net.detect_and_compute(img, &XfeatDetector::default(), top_k)
                    .0
                    .len()
            })
        }
        "disk" => {
            let net = Disk::bundled();
            Box::new(move |img| {
                net.detect_and_compute(img, &DiskDetector::default(), top_k)
                    .expect("DISK")
                    .0
                    .len()
            })
        }
        _ => {
            let net = Aliked::bundled();
            Box::new(move |img| {
                net.detect_and_compute(img, &AlikedDetector::default(), top_k)
                    .expect("ALIKED")
                    .0
                    .len()
            })
        }
    };
    run(&images[0]); // warm-up
    let mut per_image = Vec::new();
    let mut keypoints = 0;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        keypoints = images.iter().map(&run).sum::<usize>();
        per_image.push(t.elapsed().as_secs_f64() / images.len() as f64);
    }
    per_image.sort_by(f64::total_cmp);
    println!(
        "featleak {model}: median {:.4} s/image over {} images ({} keypoints), {} rounds",
        per_image[per_image.len() / 2],
        images.len(),
        keypoints,
        per_image.len()
    );
}
