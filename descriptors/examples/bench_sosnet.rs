//! Throughput of `Sosnet::describe` on the flex CPU device (which runs `CpuSosnet`): batches of
//! random 32×32 patches, median of runs.
//!
//! cargo run --release --example bench_sosnet -p featleak-descriptors -- [WEIGHTS.pth] [BATCH=1024] [RUNS=7] [INNER_BATCH=64]
//! Threads: rayon's pool; set RAYON_NUM_THREADS=2 to match `torch.set_num_threads(2)`.

use std::time::Instant;

use featleak_descriptors::sosnet::{DEFAULT_BATCH_SIZE, Sosnet};
use ndarray::Array3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let weights = args
        .first()
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/sosnet/sosnet_random.pth"
            )
            .into()
        });
    let batch: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7);
    let inner: usize = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_BATCH_SIZE);

    let net = Sosnet::load(&weights)
        .expect("weights")
        .with_batch_size(inner);
    let mut state = 0x9E3779B97F4A7C15u64;
    let patches = Array3::from_shape_fn((batch, 32, 32), |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    });
    let _ = net.describe(patches.view()); // warm-up
    let mut rates = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let d = net.describe(patches.view());
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(d);
        rates.push(batch as f64 / s);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!(
        "burn flex SOSNet: batch {batch} (forward batches of {inner}), rayon threads {threads}: median {:.0} patches/s (min {:.0}, max {:.0}, {runs} runs)",
        rates[runs / 2],
        rates[0],
        rates[runs - 1]
    );
}
