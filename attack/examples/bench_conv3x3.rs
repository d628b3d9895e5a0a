//! One 3×3 convolution layer of the default network, forward and backward, on burn's CPU backend:
//! featleak's [`Conv3x3`] (hand-written forward and backward) against burn's `conv2d` (generic
//! backward), side by side in one process.
//!
//! `cargo run --release --example bench_conv3x3 -p featleak-attack -- [--batch 4] [--reps 5]
//!  [--scale 1]`
//!
//! Per layer shape (the convolutions of the UNet widths 16–256 at 128² after its first layer, each
//! side times `--scale`: 2 gives those of a 256² network),
//! best of `--reps` wall times, in ms, of: the forward alone; forward + backward to the weight
//! only (the input does not need a gradient); forward + backward to the input only (the weight is
//! frozen). The backward alone is the difference to the forward.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution::Uniform;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use featleak_attack::kernels::conv3x3::Conv3x3;
use std::time::Instant;

/// What a timed pass differentiates.
#[derive(Clone, Copy, PartialEq)]
enum Pass {
    Forward,
    WeightGrad,
    InputGrad,
}

fn main() {
    featleak_attack::kernels::allocator::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str, default: &str| -> usize {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
            .unwrap_or_else(|| default.to_string())
            .parse()
            .unwrap_or_else(|_| panic!("{name} takes a number"))
    };
    let (batch, reps, scale) = (get("--batch", "4"), get("--reps", "5"), get("--scale", "1"));
    let device = Device::flex().autodiff();
    println!("batch {batch}, best of {reps}, ms: forward | + weight grad | + input grad");
    println!("| layer | featleak Conv3x3 | burn conv2d |");
    println!("|---|---|---|");
    for (c_in, c_out, size) in [
        (16, 16, 128),
        (32, 16, 128),
        (16, 32, 64),
        (32, 32, 64),
        (64, 64, 32),
        (128, 128, 16),
        (256, 256, 8),
    ] {
        let size = size * scale;
        let x = Tensor::<4>::random([batch, c_in, size, size], Uniform(-1.0, 1.0), &device);
        let r = Tensor::<4>::random([batch, c_out, size, size], Uniform(-1.0, 1.0), &device);
        let conv = Conv3x3::new(c_in, c_out, &device);
        let mut cells = Vec::new();
        for ours in [true, false] {
            let times: Vec<String> = [Pass::Forward, Pass::WeightGrad, Pass::InputGrad]
                .into_iter()
                .map(|pass| format!("{:.1}", time_pass(&conv, &x, &r, ours, pass, reps) * 1e3))
                .collect();
            cells.push(times.join(" / "));
        }
        println!("| {c_in}→{c_out} @ {size}² | {} | {} |", cells[0], cells[1]);
    }
}

fn time_pass(
    conv: &Conv3x3,
    x: &Tensor<4>,
    r: &Tensor<4>,
    ours: bool,
    pass: Pass,
    reps: usize,
) -> f64 {
    let mut conv = conv.clone();
    if pass != Pass::WeightGrad {
        conv.weight = Param::from_tensor(conv.weight.val().detach()).set_require_grad(false);
    }
    let x = if pass == Pass::InputGrad {
        x.clone().require_grad()
    } else {
        x.clone()
    };
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            let y = if ours {
                conv.forward(x.clone())
            } else {
                let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
                conv2d(x.clone(), conv.weight.val(), None, options)
            };
            match pass {
                Pass::Forward => drop(y.into_data()),
                Pass::WeightGrad => {
                    let grads = (y * r.clone()).sum().backward();
                    drop(conv.weight.grad(&grads).expect("weight grad").into_data());
                }
                Pass::InputGrad => {
                    let grads = (y * r.clone()).sum().backward();
                    drop(x.grad(&grads).expect("input grad").into_data());
                }
            }
            start.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}
