//! One Adam training step (lr 1e-3) of the UNet on random sparse inputs; median seconds/step.
//!
//! `cargo run --release --example bench_train_step -p featleak-attack -- [--sizes 128,256] [--steps 3] [--batch 4]
//!  [--base-width 32] [--depth 4] [--in-channels 128] [--per-128 600] [--modes dense,sparse,auto] [--device cpu|wgpu] [--warmup 1]`
//!
//! `--device` (default: `$FEATLEAK_DEVICE`, else `cpu`) picks the backend; `wgpu` needs
//! `--features wgpu`. The device is synchronised after each phase, so the times are those of the
//! work, not of queueing it. The first `--warmup` steps (GPU kernel compilation and autotuning)
//! are not counted.
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use featleak_attack::ComputeDevice;
use featleak_attack::kernels::sparse_conv::{SparseBatch, to_dense};
use featleak_attack::loss::l1_ssim_loss;
use featleak_attack::model::{UNetConfig, uses_sparse_first_layer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    featleak_attack::kernels::allocator::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
            .unwrap_or_else(|| default.to_string())
    };
    let sizes: Vec<usize> = get("--sizes", "128,256")
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let steps: usize = get("--steps", "3").parse().unwrap();
    let warmup: usize = get("--warmup", "1").parse().unwrap();
    let batch: usize = get("--batch", "4").parse().unwrap();
    let base_width: usize = get("--base-width", "32").parse().unwrap();
    let depth: usize = get("--depth", "4").parse().unwrap();
    let in_channels: usize = get("--in-channels", "128").parse().unwrap();
    let per_128: usize = get("--per-128", "600").parse().unwrap();
    let modes = get("--modes", "dense,sparse");
    let device_name = get(
        "--device",
        &std::env::var("FEATLEAK_DEVICE").unwrap_or_else(|_| "cpu".into()),
    );
    let compute: ComputeDevice = device_name.parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let (dev, info) = compute.open_autodiff().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    println!("device: {info}");
    let sync = || dev.sync().expect("device sync");
    let cfg = UNetConfig {
        in_channels,
        base_width,
        depth,
        out_channels: 3,
        input: Default::default(),
        global_context: false,
    };
    println!(
        "config {cfg:?}, params {}",
        cfg.init(&dev).unwrap().num_params()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    sync();
    for &s in &sizes {
        let per_item = per_128 * s * s / (128 * 128);
        let x = SparseBatch::random(&mut rng, batch, s, s, in_channels, per_item, &dev);
        let xd = to_dense(&x).inner().autodiff(); // plain (untracked) dense input
        let target = Tensor::<4>::random(
            [batch, 3, s, s],
            burn::tensor::Distribution::Uniform(0.0, 1.0),
            &dev,
        );
        for mode in modes.split(',') {
            let sparse = mode == "sparse" || (mode == "auto" && uses_sparse_first_layer(&dev));
            let mut net = cfg.init(&dev).unwrap();
            let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
            let (mut tot, mut fwd, mut bwd, mut opt) = (vec![], vec![], vec![], vec![]);
            for i in 0..steps + warmup {
                let t0 = Instant::now();
                let pred = match mode {
                    "sparse" => net.forward_sparse(&x),
                    // What training runs: sparse on the CPU, to_dense + dense conv on a GPU.
                    "auto" => net.forward(&x),
                    _ => net.forward_dense(xd.clone()),
                };
                let loss = l1_ssim_loss(pred, target.clone());
                let l = loss.clone().into_scalar::<f32>(); // waits for the forward pass
                assert!(l.is_finite(), "loss {l}");
                let t1 = Instant::now();
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                sync();
                let t2 = Instant::now();
                net = optim.step(1e-3, net, grads);
                sync();
                let t3 = Instant::now();
                if i >= warmup {
                    tot.push((t3 - t0).as_secs_f64());
                    fwd.push((t1 - t0).as_secs_f64());
                    bwd.push((t2 - t1).as_secs_f64());
                    opt.push((t3 - t2).as_secs_f64());
                }
            }
            println!(
                "{s}² batch {batch} K/img {per_item} {mode:>6}: {:.3} s/step (fwd {:.3}, bwd {:.3}, adam {:.3})",
                median(tot),
                median(fwd),
                median(bwd),
                median(opt)
            );
            // First layer alone, forward + backward.
            let layer = net.first.clone().expect("a sparse first layer");
            let r = Tensor::<4>::random(
                [batch, base_width, s, s],
                burn::tensor::Distribution::Uniform(-1.0, 1.0),
                &dev,
            );
            let mut t = vec![];
            for i in 0..steps + warmup {
                let t0 = Instant::now();
                let y = if sparse {
                    layer.forward(&x)
                } else {
                    layer.forward_dense(xd.clone())
                };
                let g = (y * r.clone()).sum().backward();
                let _ = layer.conv.weight.grad(&g).unwrap();
                sync();
                if i >= warmup {
                    t.push(t0.elapsed().as_secs_f64());
                }
            }
            println!("{s}² {mode:>6} first layer fwd+bwd: {:.4} s", median(t));
        }
    }
}
