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
        InputEncoding::NearestFill { .. } => InputEncoding::Sparse,
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
