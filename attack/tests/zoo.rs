//! The bundled attackers: every card reads, every weights file loads into its network and runs,
//! and weights or threat models that do not match are refused with a clear error.

use burn::prelude::*;
use featleak_attack::kernels::sparse_conv::SparseBatch;
use featleak_attack::model::InputEncoding;
use featleak_attack::run::{NewRun, RunConfig};
use featleak_attack::training::load_model_bytes;
use featleak_attack::{AttackerSource, ZOO};
use featleak_train::Budget;
use rand::SeedableRng;

#[test]
fn every_bundled_attacker_loads_and_reconstructs() {
    assert!(ZOO.iter().any(|e| e.name == "sift"));
    let device = Device::flex();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    for entry in ZOO {
        let card = entry.card().unwrap();
        assert!(
            card.held_out.count > 0 && card.training.steps > 0,
            "{}",
            entry.name
        );
        let source = AttackerSource::parse(&format!("zoo:{}", entry.name)).unwrap();
        let attacker = source.load(&device).unwrap();
        assert_eq!(attacker.network, card.network);
        let r = card.threat.resolution as usize;
        let x = SparseBatch::random(&mut rng, 1, r, r, card.network.in_channels, 200, &device);
        let y = attacker.model.forward(&x);
        assert_eq!(y.dims(), [1, 3, r, r], "{}", entry.name);
    }
}

#[test]
fn weights_of_another_network_are_refused() {
    let device = Device::flex();
    let card = ZOO[0].card().unwrap();
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/zoo/sift.bpk")).unwrap();
    let mut other = card.network.clone();
    other.base_width *= 2;
    let e = load_model_bytes(bytes.clone(), &other, &device).unwrap_err();
    assert!(e.contains("weights for another network"), "{e}");
    other = card.network.clone();
    other.input = match card.network.input {
        InputEncoding::Sparse => InputEncoding::NearestFill { embed: 32 },
        InputEncoding::NearestFill { .. } | InputEncoding::Mlp { .. } => InputEncoding::Sparse,
    };
    let e = load_model_bytes(bytes, &other, &device).unwrap_err();
    assert!(e.contains("weights for another network"), "{e}");
    let e = load_model_bytes(b"not a model".to_vec(), &card.network, &device).unwrap_err();
    assert!(e.contains("not a featleak model"), "{e}");
}

#[test]
fn unknown_names_and_mismatched_threat_models_are_refused() {
    let e = AttackerSource::parse("zoo:nope").unwrap_err().to_string();
    assert!(e.contains("zoo:nope") && e.contains("sift"), "{e}");
    assert_eq!(
        AttackerSource::parse("runs/a").unwrap(),
        AttackerSource::Run("runs/a".into())
    );

    let dir = tempfile::tempdir().unwrap();
    for i in 0..2 {
        featleak_datasets::synthetic::scene(64, 64, i)
            .save(dir.path().join(format!("s{i}.png")))
            .unwrap();
    }
    let recipe = |descriptor: &str, threat: &str| NewRun {
        descriptor: descriptor.into(),
        threat: threat.into(),
        size: 32,
        init: Some(AttackerSource::parse("zoo:sift").unwrap()),
        batch_size: 2,
        learning_rate: 1e-3,
        ..NewRun::defaults(
            dir.path().to_path_buf(),
            Budget {
                steps: Some(1),
                minutes: None,
            },
        )
    };
    // Same extractor and threat model: the run takes the zoo network whatever --input said.
    let config = RunConfig::new(&recipe("sift", "desc+pos")).unwrap();
    assert_eq!(config.training.network, ZOO[0].card().unwrap().network);
    assert_eq!(config.training.init.as_deref(), Some("zoo:sift"));
    for (descriptor, threat) in [("freak", "desc+pos"), ("sift", "pos-only")] {
        let e = RunConfig::new(&recipe(descriptor, threat))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--init zoo:sift") && e.contains("cannot start from those weights"),
            "{e}"
        );
    }
}

/// The f16 export stores kernels in f16 but keeps vectors (biases, BatchNorm scales, shifts and
/// running statistics) exact: 1000.1, which f16 rounds to 1000, comes back as it was.
#[test]
fn half_precision_export_keeps_vectors_exact() {
    use burn::module::{ModuleMapper, ModuleVisitor, Param};
    use featleak_attack::model::UNetConfig;
    use featleak_attack::training::half_precision_bytes;
    struct Fill;
    impl ModuleMapper for Fill {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let value = if D == 1 { 1000.1 } else { 0.1 };
            p.map(|t| t.zeros_like().add_scalar(value))
        }
    }
    #[derive(Default)]
    struct Collect(Vec<(usize, Vec<f32>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0
                .push((D, p.val().into_data().try_to_vec::<f32>().unwrap()));
        }
    }
    let device = Device::flex();
    let config = UNetConfig {
        in_channels: 9,
        base_width: 4,
        depth: 2,
        out_channels: 3,
        input: InputEncoding::Sparse,
        global_context: false,
    };
    let model = config.init(&device).unwrap().map(&mut Fill);
    let bytes = half_precision_bytes(&model).unwrap();
    let back = load_model_bytes(bytes.to_vec(), &config, &device).unwrap();
    let (mut before, mut after) = (Collect::default(), Collect::default());
    model.visit(&mut before);
    back.visit(&mut after);
    assert_eq!(before.0.len(), after.0.len());
    let (mut vectors, mut kernels) = (0, 0);
    for ((rank, x), (_, y)) in before.0.iter().zip(&after.0) {
        assert_eq!(x.len(), y.len());
        if *rank == 1 {
            vectors += 1;
            assert_eq!(x, y, "a vector lost precision");
        } else {
            kernels += 1;
            // 0.1 is not an f16 value: the kernel was stored in half precision.
            assert!(
                y.iter().all(|v| *v != 0.1 && (v - 0.1).abs() < 1e-4),
                "{:?}",
                &y[..2]
            );
        }
    }
    assert!(vectors > 0 && kernels > 0);
}
