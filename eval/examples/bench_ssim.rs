//! Times `image_metrics::ssim` on a 512×512 RGB pair (median of several runs).
//!
//! Usage: `cargo run --release --example bench_ssim -- [PAIR.npz] [RUNS]`
//! PAIR.npz (default /tmp/bench_ssim_512.npz) is written by `tools/bench_ssim.py`,
//! so both sides time the same data. Threads: rayon's default (RAYON_NUM_THREADS).

use std::fs::File;
use std::time::Instant;

use featleak_eval::image_metrics;
use ndarray::Array3;
use ndarray_npy::NpzReader;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| "/tmp/bench_ssim_512.npz".into());
    let runs: usize = args
        .next()
        .map_or(11, |r| r.parse().expect("RUNS is a number"));
    let mut npz = NpzReader::new(
        File::open(&path).unwrap_or_else(|e| panic!("{path}: {e} (run tools/bench_ssim.py first)")),
    )
    .expect("npz");
    let a: Array3<f32> = npz.by_name("a").expect("a");
    let b: Array3<f32> = npz.by_name("b").expect("b");
    let (a, b) = (a.view(), b.view());
    let mut val = image_metrics::ssim(a, b, None).expect("ssim"); // warm-up (also starts rayon)
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            val = image_metrics::ssim(a, b, None).expect("ssim");
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "ours SSIM {:?}, {} rayon threads, {runs} runs: median {:.2} ms (min {:.2} ms), ssim = {val:.10}",
        a.dim(),
        rayon::current_num_threads(),
        times[runs / 2],
        times[0]
    );
}
