use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use featleak_attack::kernels::sparse_conv::*;
use featleak_attack::loss::*;
use featleak_attack::model::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn device() -> Device {
    Device::flex().autodiff()
}

fn max_abs(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// A tensor of `dims` uniform in [0, 1) drawn from `rng` (the device's own generator is shared by
/// the tests running alongside, so its draws depend on their order).
fn uniform(rng: &mut ChaCha8Rng, dims: [usize; 4], dev: &Device) -> Tensor<4> {
    use rand::Rng;
    let values: Vec<f32> = (0..dims.iter().product())
        .map(|_| rng.random::<f32>())
        .collect();
    Tensor::from_data(TensorData::new(values, dims), dev)
}

fn max_abs_n<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// A UNet small enough for tests: 9 input channels, widths 4–16 (depth 2), RGB out.
fn small_unet(input: InputEncoding) -> UNetConfig {
    UNetConfig {
        in_channels: 9,
        base_width: 4,
        depth: 2,
        out_channels: 3,
        input,
        global_context: false,
    }
}

#[test]
fn sparse_conv_matches_dense_forward_and_grads() {
    let dev = device();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for &(b, h, w, c_in, c_out, per_item, kernel) in &[
        (3, 9, 7, 5, 6, 20, 3),
        (2, 16, 12, 128, 32, 60, 3),
        (2, 64, 48, 129, 16, 300, 3),
        (3, 9, 7, 5, 6, 20, 5),
        (2, 16, 12, 40, 8, 60, 7),
    ] {
        let layer = SparseConv2d::with_kernel(c_in, c_out, kernel, &dev);
        // A non-zero random bias so that "bias everywhere" is exercised.
        let mut layer = layer;
        layer.conv.bias = Some(burn::module::Param::from_tensor(Tensor::<1>::random(
            [c_out],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &dev,
        )));
        let x = SparseBatch::random(&mut rng, b, h, w, c_in, per_item, &dev);
        let r = Tensor::<4>::random(
            [b, c_out, h, w],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &dev,
        );

        let ys = layer.forward(&x);
        let yd = layer.forward_dense(to_dense(&x));
        let fwd = max_abs(ys.clone(), yd.clone());

        let gs = (ys * r.clone()).sum().backward();
        let gd = (yd * r).sum().backward();
        let gw = max_abs_n(
            layer.conv.weight.grad(&gs).unwrap(),
            layer.conv.weight.grad(&gd).unwrap(),
        );
        let gb = max_abs_n(
            layer.conv.bias.as_ref().unwrap().grad(&gs).unwrap(),
            layer.conv.bias.as_ref().unwrap().grad(&gd).unwrap(),
        );
        let wmag = layer
            .conv
            .weight
            .grad(&gd)
            .unwrap()
            .abs()
            .max()
            .into_scalar::<f32>();
        println!(
            "sparse vs dense b={b} {h}x{w} C_in={c_in} C_out={c_out} {kernel}×{kernel} K={}: fwd {fwd:.2e}, dW {gw:.2e} (|dW|max {wmag:.1}), db {gb:.2e}",
            x.len()
        );
        assert!(fwd <= 1e-5, "forward diff {fwd}");
        assert!(gw <= 1e-5 * wmag.max(1.0), "weight grad diff {gw}");
        assert!(gb <= 1e-5 * (b * h * w) as f32, "bias grad diff {gb}");
    }
}

#[test]
fn sparse_conv_feature_grads_match_dense_input_grads() {
    let dev = device();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let layer = SparseConv2d::new(4, 3, &dev);
    let x = SparseBatch::random(&mut rng, 2, 8, 10, 4, 15, &dev);
    let feats = x.features.clone().require_grad();
    let x = SparseBatch {
        features: feats.clone(),
        ..x
    };
    let r = Tensor::<4>::random(
        [2, 3, 8, 10],
        burn::tensor::Distribution::Uniform(-1.0, 1.0),
        &dev,
    );
    let gs = (layer.forward(&x) * r.clone()).sum().backward();
    let dense = to_dense(&x);
    let gd = (layer.forward_dense(dense) * r).sum().backward();
    let d = max_abs_n(feats.grad(&gs).unwrap(), feats.grad(&gd).unwrap());
    println!("feature grads diff {d:.2e}");
    assert!(d < 1e-5);
}

#[test]
fn unet_sparse_equals_dense_and_shapes() {
    let dev = device();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let cfg = small_unet(InputEncoding::default());
    let net = cfg.init(&dev).unwrap();
    let x = SparseBatch::random(&mut rng, 2, 16, 20, 9, 30, &dev);
    let ys = net.forward_sparse(&x);
    let yd = net.forward_dense(to_dense(&x));
    // On the CPU, `forward` is the sparse path, bit for bit.
    assert!(uses_sparse_first_layer(&dev) && uses_sparse_first_layer(&dev.clone().inner()));
    assert_eq!(max_abs(net.forward(&x), ys.clone()), 0.0);
    assert_eq!(ys.dims(), [2, 3, 16, 20]);
    let d = max_abs(ys.clone(), yd);
    println!("UNet sparse vs dense forward diff {d:.2e}");
    assert!(d < 1e-5);
    let lo = ys.clone().min().into_scalar::<f32>();
    let hi = ys.max().into_scalar::<f32>();
    assert!(lo >= 0.0 && hi <= 1.0);
    assert!(cfg.check_input(9, 18, 20).is_err());
    assert!(cfg.check_input(8, 16, 20).is_err());
    assert_eq!(net.num_params(), unet_params(&cfg));
    let p = UNetConfig::cpu_default(128)
        .init(&dev)
        .unwrap()
        .num_params();
    let pp = UNetConfig::paper(128).init(&dev).unwrap().num_params();
    println!("params: cpu_default(128) {p}, paper(128) {pp}");
    assert_eq!(p, unet_params(&UNetConfig::cpu_default(128)));
    assert_eq!(pp, unet_params(&UNetConfig::paper(128)));
    // The model docs' round figures: ≈ 2.0 M (widths 16–256, 129 inputs) and ≈ 31 M (64–1024).
    let millions = |n: usize, decimals: i32| {
        let scale = 10f64.powi(decimals);
        (n as f64 / 1e6 * scale).round() / scale
    };
    assert_eq!(millions(unet_params(&UNetConfig::cpu_default(129)), 1), 2.0);
    assert_eq!(millions(pp, 0), 31.0);
}

#[test]
fn unet_nearest_fill_densifies_and_learns_its_projection() {
    let dev = device();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let cfg = small_unet(InputEncoding::NearestFill { embed: 5 });
    let net = cfg.init(&dev).unwrap();
    assert_eq!(net.num_params(), unet_params(&cfg));
    for name in InputEncoding::NAMES {
        assert_eq!(InputEncoding::parse(name).unwrap().name(), *name);
    }
    let x = SparseBatch::random(&mut rng, 2, 16, 20, 9, 30, &dev);
    let y = net.forward(&x);
    assert_eq!(y.dims(), [2, 3, 16, 20]);
    assert_eq!(max_abs(net.forward_dense(to_dense(&x)), y.clone()), 0.0);

    // The filled map: every pixel holds the projection of its nearest keypoint.
    let fill = net.fill.as_ref().unwrap();
    let filled = fill.fill(&x);
    assert_eq!(filled.dims(), [2, 8, 16, 20]);
    let projected = fill.embed.forward(x.features.clone());
    let host = |t: Tensor<2>| t.into_data().try_into_vec::<f32>().unwrap();
    let (projected, filled) = (
        host(projected),
        filled.into_data().try_into_vec::<f32>().unwrap(),
    );
    let index = x.host_index();
    let (hw, w) = (16 * 20, 20usize);
    for (b, p) in [(0usize, 0usize), (0, 77), (1, 141), (1, 319)] {
        let nearest = (0..index.len())
            .filter(|&k| index[k] as usize / hw == b)
            .map(|k| {
                let q = index[k] as usize % hw;
                let d = (q % w).abs_diff(p % w).pow(2) + (q / w).abs_diff(p / w).pow(2);
                (d, k)
            })
            .min()
            .unwrap();
        let at = |c: usize| filled[((b * 8 + c) * 16 + p / w) * 20 + p % w];
        let k = (0..index.len())
            .find(|&k| (0..5).all(|c| (projected[k * 5 + c] - at(c)).abs() < 1e-6))
            .expect("a keypoint's projection");
        let q = index[k] as usize % hw;
        let d = (q % w).abs_diff(p % w).pow(2) + (q / w).abs_diff(p / w).pow(2);
        assert_eq!(d, nearest.0, "item {b} pixel {p}: a nearest keypoint");
        let distance = (d as f32).sqrt() / 8.0;
        assert!((at(7) - distance.min(4.0)).abs() < 1e-6);
    }

    // The loss reaches the projection and the features through the gather.
    let feats = x.features.clone().require_grad();
    let x = SparseBatch {
        features: feats.clone(),
        ..x
    };
    let grads = net.forward(&x).sum().backward();
    let fill = net.fill.as_ref().unwrap();
    let g = fill.embed.weight.grad(&grads).expect("projection gradient");
    assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
    assert!(feats.grad(&grads).unwrap().abs().sum().into_scalar::<f32>() > 0.0);
}

#[test]
fn unet_mlp_decodes_each_keypoint_before_a_wide_sparse_conv() {
    let dev = device();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let cfg = small_unet(InputEncoding::Mlp {
        hidden: 6,
        kernel: 5,
    });
    let net = cfg.init(&dev).unwrap();
    assert_eq!(net.num_params(), unet_params(&cfg));
    assert_eq!(net.first.as_ref().unwrap().kernel(), 5);
    let x = SparseBatch::random(&mut rng, 2, 16, 20, 9, 30, &dev);
    let feats = x.features.clone().require_grad();
    let x = SparseBatch {
        features: feats.clone(),
        ..x
    };
    let y = net.forward(&x);
    assert_eq!(y.dims(), [2, 3, 16, 20]);
    // The dense reference path: the same function.
    let d = max_abs(net.forward_dense(to_dense(&x)), y.clone());
    assert!(d < 1e-5, "sparse vs dense {d}");
    // The perceptron acts on each keypoint alone: its output rows are those of the rows alone.
    let mlp = net.mlp.as_ref().unwrap();
    let all = mlp.forward(&x).features;
    let row: Vec<f32> = x
        .features
        .clone()
        .slice([3..4, 0..9])
        .into_data()
        .try_to_vec()
        .unwrap();
    let alone = SparseBatch::from_host(1, 1, 1, 9, row, vec![0], &dev).unwrap();
    let one = mlp.forward(&alone);
    assert!(max_abs_n(all.slice([3..4, 0..6]), one.features) < 1e-6);
    // The loss reaches the perceptron and the features.
    let grads = y.sum().backward();
    let g = mlp.a.weight.grad(&grads).expect("perceptron gradient");
    assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
    assert!(feats.grad(&grads).unwrap().abs().sum().into_scalar::<f32>() > 0.0);
    let even = UNetConfig {
        input: InputEncoding::Mlp {
            hidden: 6,
            kernel: 4,
        },
        ..cfg
    };
    assert!(matches!(even.validate(), Err(UNetError::Config(_))));
}

/// What `num_params` must count for `cfg`, layer by layer from attack/src/model.rs, with
/// widths `w_i = base_width · 2^i`. burn's `num_params` visits BatchNorm's running mean and
/// variance as well as γ and β, so a BatchNorm of `c` channels counts `4c`.
fn unet_params(cfg: &UNetConfig) -> usize {
    let w: Vec<usize> = (0..=cfg.depth).map(|i| cfg.base_width << i).collect();
    let conv3x3 = |c_in: usize, c_out: usize| 9 * c_in * c_out; // Conv3x3: no bias
    let bn = |c: usize| 4 * c;
    let conv_bn_relu = |c_in: usize, c_out: usize| conv3x3(c_in, c_out) + bn(c_out);
    let double_conv =
        |c_in: usize, c_out: usize| conv_bn_relu(c_in, c_out) + conv_bn_relu(c_out, c_out);
    // Level 0: sparse 3×3 conv with bias (or projection with bias and a 3×3 conv of the filled
    // map and its 3 geometry channels; or a perceptron and a k×k sparse conv), BatchNorm, then
    // one ConvBnRelu.
    let input = match cfg.input {
        InputEncoding::Sparse => conv3x3(cfg.in_channels, w[0]) + w[0],
        InputEncoding::NearestFill { embed } => {
            cfg.in_channels * embed + embed + conv3x3(embed + 3, w[0])
        }
        // Two linear layers with bias, then a k×k sparse conv with bias.
        InputEncoding::Mlp { hidden, kernel } => {
            cfg.in_channels * hidden
                + hidden
                + hidden * hidden
                + hidden
                + kernel * kernel * hidden * w[0]
                + w[0]
        }
    };
    let first = input + bn(w[0]) + conv_bn_relu(w[0], w[0]);
    // Encoder levels 1..=depth.
    let downs: usize = (1..=cfg.depth).map(|i| double_conv(w[i - 1], w[i])).sum();
    // Decoder: transposed conv 2×2 with bias w_i → w_{i−1}, then double conv on the concatenation.
    let ups: usize = (1..=cfg.depth)
        .map(|i| 4 * w[i] * w[i - 1] + w[i - 1] + double_conv(2 * w[i - 1], w[i - 1]))
        .sum();
    // Global context: a fully connected layer with bias at the bottleneck's width.
    let global = if cfg.global_context {
        w[cfg.depth] * w[cfg.depth] + w[cfg.depth]
    } else {
        0
    };
    // Head: 1×1 conv with bias.
    let head = w[0] * cfg.out_channels + cfg.out_channels;
    first + downs + ups + global + head
}

#[test]
fn global_context_adds_the_image_means_to_every_position() {
    let dev = device();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let cfg = UNetConfig {
        global_context: true,
        ..small_unet(InputEncoding::Sparse)
    };
    let net = cfg.init(&dev).unwrap();
    assert_eq!(net.num_params(), unet_params(&cfg));
    let global = net.global.as_ref().expect("global context");
    // By hand: x + relu(W · mean + b) at every position.
    let x = uniform(&mut rng, [2, 16, 3, 4], &dev).require_grad();
    let y = global.forward(x.clone());
    let means = x.clone().mean_dim(3).mean_dim(2).reshape([2, 16]);
    let weight = global.fc.weight.val(); // 16 in × 16 out
    let bias = global.fc.bias.as_ref().unwrap().val().unsqueeze_dim::<2>(0);
    let context = (means.matmul(weight) + bias).clamp_min(0.0);
    let expected = x.clone() + context.reshape([2, 16, 1, 1]).expand([2, 16, 3, 4]);
    assert!(max_abs(y.clone(), expected) < 1e-6);
    // One position's change reaches every other position, through the means only.
    let grads = y.slice([0..1, 0..16, 2..3, 3..4]).sum().backward();
    let g = x.grad(&grads).unwrap();
    let far = g
        .clone()
        .slice([0..1, 0..16, 0..1, 0..1])
        .abs()
        .sum()
        .into_scalar::<f32>();
    assert!(far > 0.0, "the context does not reach other positions");
    let other_image = g
        .slice([1..2, 0..16, 0..3, 0..4])
        .abs()
        .sum()
        .into_scalar::<f32>();
    assert_eq!(other_image, 0.0, "the context mixes images of a batch");
    assert!(global.fc.weight.grad(&grads).is_some());
    // The whole network: sparse and dense paths still agree, and a network without the
    // option has no context.
    let x = SparseBatch::random(&mut rng, 2, 16, 20, 9, 30, &dev);
    let d = max_abs(net.forward_dense(to_dense(&x)), net.forward(&x));
    assert!(d < 1e-5, "sparse vs dense {d}");
    assert!(
        small_unet(InputEncoding::Sparse)
            .init(&dev)
            .unwrap()
            .global
            .is_none()
    );
}

#[test]
fn ssim_matches_skimage() {
    // Reference values printed by tools/ssim_loss_reference.py (scikit-image 0.26.0, numpy
    // 1.26.4), which builds the same f32 image pairs: structural_similarity(gaussian_weights=True,
    // sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1) and
    // peak_signal_noise_ratio(data_range=1) on float64 copies of them.
    let dev = Device::flex();
    let pair = |h: usize, w: usize, s: f64| {
        let mut a = vec![0f32; 3 * h * w];
        let mut b = vec![0f32; 3 * h * w];
        for ch in 0..3 {
            for y in 0..h {
                for x in 0..w {
                    let (xf, yf, cf) = (x as f64, y as f64, ch as f64);
                    let av = (0.5 + 0.4 * (0.37 * xf + 0.23 * yf + 1.1 * cf + s).sin()) as f32;
                    let bv = ((av as f64)
                        + 0.15 * (0.91 * xf * (yf + 1.0) + 0.5 * cf + 2.0 * s).cos())
                    .clamp(0.0, 1.0) as f32;
                    a[ch * h * w + y * w + x] = av;
                    b[ch * h * w + y * w + x] = bv;
                }
            }
        }
        (
            Tensor::<4>::from_data(TensorData::new(a, [1, 3, h, w]), &dev),
            Tensor::<4>::from_data(TensorData::new(b, [1, 3, h, w]), &dev),
        )
    };
    let (a1, b1) = pair(32, 24, 0.0);
    let (a2, b2) = pair(20, 27, 1.0);
    let s1 = ssim(b1.clone(), a1.clone());
    let s2 = ssim(b2.clone(), a2.clone());
    let p1 = psnr(b1.clone(), a1.clone());
    let p2 = psnr(b2.clone(), a2.clone());
    println!(
        "ssim {s1:.7} vs 0.8151999774 (d {:.1e}), {s2:.7} vs 0.8097813018 (d {:.1e})",
        (s1 as f64 - 0.8151999773795233).abs(),
        (s2 as f64 - 0.8097813018481914).abs()
    );
    println!("psnr {p1:.5} vs 19.62922847, {p2:.5} vs 19.58778371");
    assert!((s1 as f64 - 0.8151999773795233).abs() < 2e-5);
    assert!((s2 as f64 - 0.8097813018481914).abs() < 2e-5);
    assert!((p1 as f64 - 19.629228466705683).abs() < 1e-3);
    assert!((p2 as f64 - 19.5877837145914).abs() < 1e-3);
    // Batch averaging of equal-size images.
    let (a3, b3) = pair(32, 24, 1.0);
    let sb = ssim(
        Tensor::cat(vec![b1.clone(), b3.clone()], 0),
        Tensor::cat(vec![a1.clone(), a3.clone()], 0),
    );
    let s3 = ssim(b3, a3);
    assert!((sb - (s1 + s3) / 2.0).abs() < 1e-6);
    // Identical images: SSIM 1, loss 0.
    assert!((ssim(a1.clone(), a1.clone()) - 1.0).abs() < 1e-6);
    let l = l1_ssim_loss(a1.clone(), a1.clone()).into_scalar::<f32>();
    assert!(l.abs() < 1e-6, "{l}");
}

#[test]
fn loss_is_differentiable() {
    let dev = device();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let t = uniform(&mut rng, [2, 3, 16, 16], &dev);
    let p = uniform(&mut rng, [2, 3, 16, 16], &dev).require_grad();
    let loss = l1_ssim_loss(p.clone(), t.clone());
    let g = p.grad(&loss.backward()).unwrap();
    // Finite-difference check on one pixel.
    let eps = 1e-2f32;
    let base: Vec<f32> = p.into_data().try_into_vec_as::<f32>().unwrap();
    // Batch item 1, channel 1, row 7, column 8 of 2×3×16×16.
    let (item, channel, row, col) = (1, 1, 7, 8);
    let idx = ((item * 3 + channel) * 16 + row) * 16 + col;
    // Away from L1's kink, where a central difference would straddle it.
    let target: Vec<f32> = t.clone().into_data().try_into_vec_as::<f32>().unwrap();
    assert!((base[idx] - target[idx]).abs() > 2.0 * eps);
    let eval = |delta: f32| {
        let mut v = base.clone();
        v[idx] += delta;
        let pp = Tensor::<4>::from_data(TensorData::new(v, [2, 3, 16, 16]), &Device::flex());
        l1_ssim_loss(pp, t.clone().inner()).into_scalar::<f64>()
    };
    let fd = ((eval(eps) - eval(-eps)) / (2.0 * eps as f64)) as f32;
    let an: Vec<f32> = g.into_data().try_into_vec_as::<f32>().unwrap();
    println!("loss grad analytic {:.6e} vs finite diff {fd:.6e}", an[idx]);
    assert!((an[idx] - fd).abs() < 1e-3 * fd.abs().max(1e-3) + 2e-5);
}

#[test]
fn adam_step_and_save_load_round_trip() {
    let dev = device();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let cfg = UNetConfig {
        in_channels: 6,
        base_width: 4,
        depth: 2,
        out_channels: 3,
        input: Default::default(),
        global_context: false,
    };
    let mut net = cfg.init(&dev).unwrap();
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let x = SparseBatch::random(&mut rng, 2, 16, 16, 6, 25, &dev);
    let target = Tensor::<4>::random(
        [2, 3, 16, 16],
        burn::tensor::Distribution::Uniform(0.0, 1.0),
        &dev,
    );
    let mut losses = vec![];
    for _ in 0..5 {
        let loss = l1_ssim_loss(net.forward(&x), target.clone());
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-2, net, grads);
    }
    println!("losses {losses:?}");
    assert!(losses[4] < losses[0]);

    let dir = std::env::temp_dir().join(format!("unet_scratch_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("unet.bpk");
    std::fs::write(
        dir.join("unet.json"),
        serde_json::to_string(net.config()).unwrap(),
    )
    .unwrap();
    net.save_weights(&path).unwrap();
    let cfg2: UNetConfig =
        serde_json::from_str(&std::fs::read_to_string(dir.join("unet.json")).unwrap()).unwrap();
    let loaded = UNet::load_weights(&cfg2, &path, &Device::flex()).unwrap();
    // The plain Module API, from a validation snapshot (which syncs the BN running stats).
    let path2 = dir.join("unet2.bpk");
    net.valid().save_file(&path2).unwrap();
    let loaded2 = cfg2.init(&dev).unwrap().load_file(&path2);
    let xin = SparseBatch {
        features: x.features.clone().inner(),
        pixel_index: x.pixel_index.clone().inner(),
        ..x.clone()
    };
    let a = net.valid().forward(&xin);
    let b = loaded.valid().forward(&xin);
    let c = loaded2.valid().forward(&xin);
    assert_eq!(max_abs(a.clone(), c), 0.0);
    let d = max_abs(a, b);
    println!(
        "save/load: max abs diff {d:e}, file {} bytes",
        std::fs::metadata(&path).unwrap().len()
    );
    assert_eq!(d, 0.0);
    std::fs::remove_dir_all(&dir).ok();
}

/// The hand-written CPU forward and backward of [`featleak_attack::kernels::conv3x3::Conv3x3`]
/// against burn's own `conv2d` and its generic autodiff backward: forward, input gradient and
/// weight gradient, with and without a tracked input, on odd sizes (1×1 images, widths not a
/// multiple of anything, images computed in bands of rows).
#[test]
fn conv3x3_matches_burn_conv2d_forward_and_grads() {
    use burn::tensor::Distribution::Uniform;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use featleak_attack::kernels::conv3x3::Conv3x3;

    let dev = device();
    for &(b, h, w, c_in, c_out, track_x) in &[
        (1, 1, 1, 2, 3, true),
        (3, 9, 7, 5, 6, true),
        (2, 16, 12, 32, 16, false),
        (4, 5, 33, 3, 8, true),
        (2, 32, 32, 16, 32, true),
        // 64 channels of 64-pixel rows: the im2cols run in bands of 7 rows (the last one short).
        (2, 20, 64, 64, 8, true),
        // Width 1: every tap but the centre column is padding.
        (2, 6, 1, 4, 3, true),
        // More than 128 input channels: the weight gradient's pixel-major im2col.
        (2, 5, 6, 130, 4, true),
    ] {
        let conv = Conv3x3::new(c_in, c_out, &dev);
        let mut x = Tensor::<4>::random([b, c_in, h, w], Uniform(-1.0, 1.0), &dev);
        if track_x {
            x = x.require_grad();
        }
        let r = Tensor::<4>::random([b, c_out, h, w], Uniform(-1.0, 1.0), &dev);
        let ours = conv.forward(x.clone());
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let reference = conv2d(x.clone(), conv.weight.val(), None, options.clone());
        let scale = reference.clone().abs().max().into_scalar::<f32>().max(1.0);
        let fwd = max_abs(ours.clone(), reference.clone());
        assert!(
            fwd <= 1e-5 * scale,
            "{b}x{c_in}x{h}x{w}: forward diff {fwd}"
        );

        let g_ours = (ours * r.clone()).sum().backward();
        let g_ref = (reference * r).sum().backward();
        let gw_ref = conv.weight.grad(&g_ref).unwrap();
        let w_scale = gw_ref.clone().abs().max().into_scalar::<f32>().max(1.0);
        let gw = max_abs(conv.weight.grad(&g_ours).unwrap(), gw_ref);
        assert!(
            gw <= 1e-5 * w_scale,
            "{b}x{c_in}x{h}x{w}: weight grad diff {gw}"
        );
        match (x.grad(&g_ours), x.grad(&g_ref)) {
            (Some(a), Some(e)) => {
                let x_scale = e.clone().abs().max().into_scalar::<f32>().max(1.0);
                let gx = max_abs(a, e);
                assert!(
                    gx <= 1e-5 * x_scale,
                    "{b}x{c_in}x{h}x{w}: input grad diff {gx}"
                );
            }
            (None, None) => assert!(!track_x),
            (a, e) => panic!(
                "input grad present: ours {}, burn {}",
                a.is_some(),
                e.is_some()
            ),
        }

        // Inference (no autodiff) takes the same forward.
        let plain = Device::flex();
        let x = Tensor::<4>::random([b, c_in, h, w], Uniform(-1.0, 1.0), &plain);
        let conv = Conv3x3::new(c_in, c_out, &plain);
        let reference = conv2d(x.clone(), conv.weight.val(), None, options);
        let scale = reference.clone().abs().max().into_scalar::<f32>().max(1.0);
        let d = max_abs(conv.forward(x), reference);
        assert!(d <= 1e-5 * scale, "{b}x{c_in}x{h}x{w}: inference diff {d}");
    }
}

/// The hand-written CPU 2×2 transposed convolution of [`featleak_attack::kernels::up2x2::up2x2`]
/// against burn's `ConvTranspose2d` and its generic autodiff backward: output and the gradients of
/// input, weight and bias, with and without a tracked input, on odd sizes, and in inference.
#[test]
fn up2x2_matches_burn_conv_transpose2d_forward_and_grads() {
    use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
    use burn::tensor::Distribution::Uniform;
    use featleak_attack::kernels::up2x2::up2x2;

    let dev = device();
    for &(b, h, w, c_in, c_out, track_x) in &[
        (1, 1, 1, 2, 3, true),
        (3, 5, 7, 6, 5, true),
        (2, 8, 8, 32, 16, false),
        (4, 3, 11, 64, 32, true),
    ] {
        let up = ConvTranspose2dConfig::new([c_in, c_out], [2, 2])
            .with_stride([2, 2])
            .init(&dev);
        // A non-zero bias, so that its gradient and its addition are both exercised.
        let up = ConvTranspose2d {
            bias: up
                .bias
                .map(|bias| bias.map(|v| v.random_like(Uniform(-1.0, 1.0)).require_grad())),
            ..up
        };
        let mut x = Tensor::<4>::random([b, c_in, h, w], Uniform(-1.0, 1.0), &dev);
        if track_x {
            x = x.require_grad();
        }
        let r = Tensor::<4>::random([b, c_out, 2 * h, 2 * w], Uniform(-1.0, 1.0), &dev);
        let ours = up2x2(&up, x.clone());
        let reference = up.forward(x.clone());
        let scale = reference.clone().abs().max().into_scalar::<f32>().max(1.0);
        let fwd = max_abs(ours.clone(), reference.clone());
        assert!(
            fwd <= 1e-5 * scale,
            "{b}x{c_in}x{h}x{w}: forward diff {fwd}"
        );

        let g_ours = (ours * r.clone()).sum().backward();
        let g_ref = (reference * r).sum().backward();
        let close = |name: &str, a: Option<Tensor<4>>, e: Option<Tensor<4>>| match (a, e) {
            (Some(a), Some(e)) => {
                let s = e.clone().abs().max().into_scalar::<f32>().max(1.0);
                let d = max_abs(a, e);
                assert!(d <= 1e-5 * s, "{b}x{c_in}x{h}x{w}: {name} grad diff {d}");
            }
            (None, None) => assert!(name == "input" && !track_x),
            (a, e) => panic!(
                "{name} grad present: ours {}, burn {}",
                a.is_some(),
                e.is_some()
            ),
        };
        close("weight", up.weight.grad(&g_ours), up.weight.grad(&g_ref));
        close("input", x.grad(&g_ours), x.grad(&g_ref));
        let bias = up.bias.as_ref().unwrap();
        let (db, db_ref) = (bias.grad(&g_ours).unwrap(), bias.grad(&g_ref).unwrap());
        let s = db_ref.clone().abs().max().into_scalar::<f32>().max(1.0);
        let d = (db - db_ref).abs().max().into_scalar::<f32>();
        assert!(d <= 1e-5 * s, "{b}x{c_in}x{h}x{w}: bias grad diff {d}");

        // Inference (no autodiff) takes the same forward.
        let plain = Device::flex();
        let up = up.valid();
        let x = Tensor::<4>::random([b, c_in, h, w], Uniform(-1.0, 1.0), &plain);
        let reference = up.forward(x.clone());
        let scale = reference.clone().abs().max().into_scalar::<f32>().max(1.0);
        let d = max_abs(up2x2(&up, x), reference);
        assert!(d <= 1e-5 * scale, "{b}x{c_in}x{h}x{w}: inference diff {d}");
    }
}

/// The CPU SSIM map ([`featleak_attack::kernels::ssim::ssim_map`]) against the same map as burn
/// tensor operations ([`ssim_map_generic`]): values and the gradients of both inputs, on the
/// smallest image and on odd sizes.
#[test]
fn ssim_kernel_matches_burn_tensor_ops() {
    use burn::tensor::Distribution::Uniform;
    use featleak_attack::kernels::ssim;

    let dev = device();
    for &(b, c, h, w) in &[(1, 1, 11, 11), (2, 3, 17, 23), (1, 2, 40, 12)] {
        let x = Tensor::<4>::random([b, c, h, w], Uniform(0.0, 1.0), &dev).require_grad();
        let y = Tensor::<4>::random([b, c, h, w], Uniform(0.0, 1.0), &dev).require_grad();
        let r = Tensor::<4>::random([b, c, h - 10, w - 10], Uniform(-1.0, 1.0), &dev);
        let ours = ssim::ssim_map(x.clone(), y.clone());
        let reference = ssim_map_generic(x.clone(), y.clone());
        let fwd = max_abs(ours.clone(), reference.clone());
        assert!(fwd <= 1e-5, "{b}x{c}x{h}x{w}: map diff {fwd}");
        let g_ours = (ours * r.clone()).sum().backward();
        let g_ref = (reference * r).sum().backward();
        for (name, t) in [("pred", &x), ("target", &y)] {
            let e = t.grad(&g_ref).unwrap();
            let s = e.clone().abs().max().into_scalar::<f32>().max(1.0);
            let d = max_abs(t.grad(&g_ours).unwrap(), e);
            assert!(d <= 1e-4 * s, "{b}x{c}x{h}x{w}: {name} grad diff {d}");
        }
    }
}

/// The CPU 2×2 max-pool ([`featleak_attack::kernels::pool2x2::max_pool2x2`]) against burn's
/// `MaxPool2d` and its backward, on odd sizes (a 1×1 output, odd rows and columns dropped), and in
/// inference.
#[test]
fn max_pool2x2_matches_burn_max_pool2d() {
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::Distribution::Uniform;
    use featleak_attack::kernels::pool2x2::max_pool2x2;

    let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();

    let dev = device();
    for &(b, c, h, w) in &[(1, 1, 2, 2), (2, 3, 7, 9), (4, 16, 32, 32), (1, 5, 3, 6)] {
        let x = Tensor::<4>::random([b, c, h, w], Uniform(-1.0, 1.0), &dev).require_grad();
        let ours = max_pool2x2(x.clone());
        let reference = pool.forward(x.clone());
        assert_eq!(ours.dims(), reference.dims(), "{b}x{c}x{h}x{w}");
        assert_eq!(
            max_abs(ours.clone(), reference.clone()),
            0.0,
            "{b}x{c}x{h}x{w}"
        );
        let r = Tensor::<4>::random(reference.dims(), Uniform(-1.0, 1.0), &dev);
        let g_ours = x.grad(&(ours * r.clone()).sum().backward()).unwrap();
        let g_ref = x.grad(&(reference * r).sum().backward()).unwrap();
        assert_eq!(max_abs(g_ours, g_ref), 0.0, "{b}x{c}x{h}x{w}: input grad");

        let plain = Device::flex();
        let x = Tensor::<4>::random([b, c, h, w], Uniform(-1.0, 1.0), &plain);
        let reference = pool.forward(x.clone());
        assert_eq!(
            max_abs(max_pool2x2(x), reference),
            0.0,
            "{b}x{c}x{h}x{w}: inference"
        );
    }
}

/// The fused CPU BatchNorm + ReLU of [`featleak_attack::kernels::bn_relu::bn_relu`] against burn's
/// `relu(BatchNorm::forward(x))`: output, gradients of input, γ and β, and the running
/// statistics it leaves, on odd sizes (a 1×1 image, a single-item batch, widths of 1).
#[test]
fn bn_relu_matches_burn_batch_norm_then_relu() {
    use burn::nn::BatchNormConfig;
    use burn::tensor::Distribution::Uniform;
    use burn::tensor::activation::relu;
    use featleak_attack::kernels::bn_relu::bn_relu;

    let dev = device();
    for &(b, c, h, w) in &[(1, 3, 1, 1), (2, 5, 7, 9), (4, 16, 32, 32), (1, 1, 8, 1)] {
        let mut bn = BatchNormConfig::new(c).init(&dev);
        // Non-trivial affine parameters so the ReLU cuts some values and passes others.
        bn.gamma = bn
            .gamma
            .map(|g| Tensor::random([c], Uniform(0.5, 1.5), &g.device()).require_grad());
        bn.beta = bn
            .beta
            .map(|g| Tensor::random([c], Uniform(-0.5, 0.5), &g.device()).require_grad());
        let x = Tensor::<4>::random([b, c, h, w], Uniform(-2.0, 3.0), &dev).require_grad();
        let r = Tensor::<4>::random([b, c, h, w], Uniform(-1.0, 1.0), &dev);
        let reference_bn = bn.clone();
        let ours = bn_relu(&bn, x.clone());
        let reference = relu(reference_bn.forward(x.clone()));
        let fwd = max_abs(ours.clone(), reference.clone());
        assert!(fwd <= 1e-5, "{b}x{c}x{h}x{w}: forward diff {fwd}");

        let g_ours = (ours * r.clone()).sum().backward();
        let g_ref = (reference * r).sum().backward();
        let scale = |t: &Tensor<1>| t.clone().abs().max().into_scalar::<f32>().max(1.0);
        for (name, a, e) in [
            (
                "gamma",
                bn.gamma.grad(&g_ours),
                reference_bn.gamma.grad(&g_ref),
            ),
            (
                "beta",
                bn.beta.grad(&g_ours),
                reference_bn.beta.grad(&g_ref),
            ),
        ] {
            let (a, e) = (a.unwrap(), e.unwrap());
            let s = scale(&e);
            let d = max_abs_n(a, e);
            assert!(d <= 1e-5 * s, "{b}x{c}x{h}x{w}: {name} grad diff {d}");
        }
        let (a, e) = (x.grad(&g_ours).unwrap(), x.grad(&g_ref).unwrap());
        let s = e.clone().abs().max().into_scalar::<f32>().max(1.0);
        let d = max_abs(a, e);
        assert!(d <= 1e-4 * s, "{b}x{c}x{h}x{w}: input grad diff {d}");

        let (ours, reference) = (bn.valid(), reference_bn.valid());
        for (name, a, e) in [
            (
                "mean",
                ours.running_mean.value(),
                reference.running_mean.value(),
            ),
            (
                "var",
                ours.running_var.value(),
                reference.running_var.value(),
            ),
        ] {
            let d = max_abs_n(a, e);
            assert!(d <= 1e-6, "{b}x{c}x{h}x{w}: running {name} diff {d}");
        }
    }
}
