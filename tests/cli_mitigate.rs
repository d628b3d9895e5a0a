//! End-to-end tests of `featleak mitigate apply`.

mod common;

use common::{featleak, write_scene};
use featleak_descriptors::read_features;
use std::path::Path;

#[test]
fn apply_writes_revealed_subsets_with_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (images, feats, out) = (
        dir.path().join("images"),
        dir.path().join("features"),
        dir.path().join("mitigated"),
    );
    std::fs::create_dir_all(images.join("sub")).unwrap();
    write_scene(&images.join("a.png"), 200, 150, 1);
    write_scene(&images.join("sub/b.png"), 200, 150, 2);
    featleak()
        .args([
            "extract",
            "--descriptor",
            "freak",
            "--detector",
            "harris",
            "--images",
            images.to_str().unwrap(),
        ])
        .args(["--out", feats.to_str().unwrap()])
        .assert()
        .success();
    for strategy in ["random", "top-response", "lowest-response", "grid", "anms"] {
        featleak()
            .args([
                "mitigate",
                "apply",
                "--strategy",
                strategy,
                "--keep",
                "0.25",
                "--seed",
                "3",
            ])
            .args([
                "--features",
                feats.to_str().unwrap(),
                "--out",
                out.join(strategy).to_str().unwrap(),
            ])
            .assert()
            .success();
        for rel in ["a.npz", "sub/b.npz"] {
            let full = read_features(&feats.join(rel)).unwrap();
            let part = read_features(&out.join(strategy).join(rel)).unwrap();
            assert_eq!(
                part.len(),
                (full.len() as f64 * 0.25).round() as usize,
                "{strategy} {rel}"
            );
            assert_eq!(part.extractor, full.extractor);
            // Every revealed keypoint is one of the originals, with its own descriptor.
            for (i, k) in part.keypoints.iter().enumerate() {
                let j = full
                    .keypoints
                    .iter()
                    .position(|o| o == k)
                    .expect("revealed keypoint exists");
                assert_eq!(part.descriptors.select(&[i]), full.descriptors.select(&[j]));
            }
        }
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join(strategy).join("manifest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["strategy"]["kind"], strategy);
        assert_eq!(manifest["files"].as_array().unwrap().len(), 2);
    }
    // Same seed, same subset.
    let again = dir.path().join("again");
    featleak()
        .args([
            "mitigate",
            "apply",
            "--strategy",
            "random",
            "--keep",
            "0.25",
            "--seed",
            "3",
        ])
        .args([
            "--features",
            feats.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ])
        .assert()
        .success();
    assert_eq!(
        read_features(&again.join("a.npz")).unwrap(),
        read_features(&out.join("random/a.npz")).unwrap()
    );

    // The same features stored in Fortran order (numpy's `.T` of a transposed array, or
    // `np.asfortranarray`): read as numpy means them, the same subset revealed.
    let fortran = dir.path().join("fortran");
    std::fs::create_dir_all(&fortran).unwrap();
    write_fortran_order(&feats.join("a.npz"), &fortran.join("a.npz"));
    let from_fortran = dir.path().join("from-fortran");
    featleak()
        .args([
            "mitigate",
            "apply",
            "--strategy",
            "random",
            "--keep",
            "0.25",
        ])
        .args(["--seed", "3", "--features", fortran.to_str().unwrap()])
        .args(["--out", from_fortran.to_str().unwrap()])
        .assert()
        .success();
    assert_eq!(
        read_features(&from_fortran.join("a.npz")).unwrap(),
        read_features(&out.join("random/a.npz")).unwrap()
    );
}

/// Rewrites the binary-descriptor feature file `from` into `to` with its 2-D arrays in Fortran
/// order.
fn write_fortran_order(from: &std::path::Path, to: &std::path::Path) {
    use ndarray::{Array2, ShapeBuilder};
    use ndarray_npy::{NpzReader, NpzWriter};
    fn fortran<T: Clone>(a: Array2<T>) -> Array2<T> {
        // Column after column: the transpose's rows.
        Array2::from_shape_vec(a.raw_dim().f(), a.t().iter().cloned().collect()).unwrap()
    }
    let mut npz = NpzReader::new(std::fs::File::open(from).unwrap()).unwrap();
    let keypoints: Array2<f32> = npz.by_name("keypoints").unwrap();
    let descriptors: Array2<u8> = npz.by_name("descriptors").unwrap();
    let size: ndarray::Array1<i64> = npz.by_name("image_size").unwrap();
    let extractor: ndarray::Array1<u8> = npz.by_name("extractor").unwrap();
    let mut out = NpzWriter::new(std::fs::File::create(to).unwrap());
    out.add_array("keypoints", &fortran(keypoints)).unwrap();
    out.add_array("descriptors", &fortran(descriptors)).unwrap();
    out.add_array("image_size", &size).unwrap();
    out.add_array("extractor", &extractor).unwrap();
    out.finish().unwrap();
}

#[test]
fn apply_rejects_bad_arguments_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let feats = dir.path().join("features");
    std::fs::create_dir_all(&feats).unwrap();
    std::fs::write(feats.join("broken.npz"), b"not a zip").unwrap();
    let run = |strategy: &str, keep: &str| {
        let o = featleak()
            .args([
                "mitigate",
                "apply",
                "--strategy",
                strategy,
                "--keep",
                keep,
                "--features",
                feats.to_str().unwrap(),
            ])
            .args(["--out", dir.path().join("out").to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!o.status.success());
        common::stderr(&o)
    };
    let e = run("oracle", "0.5");
    assert!(
        e.contains("invalid value 'oracle'") && e.contains("possible values: random, top-response"),
        "{e}"
    );
    assert!(run("random", "1.5").contains("--keep must be between 0 and 1"));
    let e = run("random", "0.5");
    assert!(
        e.contains("broken.npz") && e.contains("not a readable .npz"),
        "{e}"
    );

    // The input folder as --out: refused, the features untouched.
    let o = featleak()
        .args(["mitigate", "apply", "--strategy", "random", "--keep", "0.5"])
        .args(["--features", feats.to_str().unwrap()])
        .args(["--out", feats.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = common::stderr(&o);
    assert!(e.contains("is the input folder"), "{e}");
    assert_eq!(
        std::fs::read(feats.join("broken.npz")).unwrap(),
        b"not a zip"
    );
}

/// A tiny attacker run, victims and two warped pair sequences for sweeps.
fn sweep_fixture(root: &std::path::Path) -> std::path::PathBuf {
    use featleak_datasets::synthetic::scene;
    use featleak_datasets::warp::{random_homography, write_sequence};
    use rand::SeedableRng;
    for i in 0..8 {
        write_scene(&root.join(format!("train/s{i}.png")), 96, 72, 100 + i);
    }
    for i in 0..3 {
        write_scene(&root.join(format!("victims/v{i}.png")), 96, 72, 200 + i);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for i in 0..2 {
        let img = scene(160, 120, 300 + i);
        let hs: Vec<_> = (0..2)
            .map(|_| random_homography(160, 120, 0.08, &mut rng))
            .collect();
        write_sequence(&root.join(format!("pairs/seq{i}")), &img, &hs).unwrap();
    }
    let run = root.join("run");
    featleak()
        .args(["attack", "train", "--descriptor", "sift", "--size", "32"])
        .args(["--feature-size", "64", "--width", "8", "--depth", "2"])
        .args(["--batch-size", "2", "--steps", "6", "--images"])
        .arg(root.join("train"))
        .arg("--out")
        .arg(&run)
        .assert()
        .success();
    let config = root.join("sweep.toml");
    std::fs::write(
        &config,
        format!(
            "seed = 1\nstrategies = [\"random\", \"top-response\", \"leakage\"]\n\
             keeps = [1.0, 0.5, 0.25]\nattackers = [{run:?}]\n\
             [privacy]\nimages = {victims:?}\n[utility]\npairs = {pairs:?}\n\
             [adaptive]\nsteps = 4\nbatch_size = 2\nlearning_rate = 1e-3\n\
             [gallery]\nkeep = 0.5\nimages = 2\n",
            victims = root.join("victims"),
            pairs = root.join("pairs"),
        ),
    )
    .unwrap();
    config
}

fn sweep(config: &std::path::Path, out: &std::path::Path) -> std::process::Output {
    featleak()
        .args(["mitigate", "sweep", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn sweep_scores_every_cell_resumes_and_reports_the_fine_tuned_and_adaptive_attackers() {
    let dir = tempfile::tempdir().unwrap();
    let config = sweep_fixture(dir.path());
    let out = dir.path().join("sweep");
    let o = sweep(&config, &out);
    assert!(o.status.success(), "{}", common::stderr(&o));
    for f in [
        "results.json",
        "results.csv",
        "results.md",
        "frontier.svg",
        "gallery.html",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let cells = results["cells"].as_array().unwrap().clone();
    assert_eq!(cells.len(), 9, "3 strategies × 3 keeps");
    let mut fine_tune_helped = 0;
    for c in &cells {
        let f = |k: &str| c[k].as_f64().unwrap();
        // The fine-tune really trains a second network on the mitigated features: its scores
        // are its own, not a copy of the attacker it started from.
        assert!(
            f("ssim_fine_tuned") != f("ssim_nonadaptive")
                && f("psnr_fine_tuned") != f("psnr_nonadaptive"),
            "the fine-tuned attacker scores exactly as the non-adaptive one: {c}"
        );
        // The adaptive columns are one network's scores, the one with the higher SSIM: all
        // three metrics come from it, none mixed in from the other.
        if f("ssim_fine_tuned") >= f("ssim_nonadaptive") {
            assert_eq!(f("ssim_adaptive"), f("ssim_fine_tuned"), "{c}");
            assert_eq!(f("psnr_adaptive"), f("psnr_fine_tuned"), "{c}");
            fine_tune_helped += 1;
        } else {
            for m in ["ssim", "psnr", "mae"] {
                assert_eq!(
                    f(&format!("{m}_adaptive")),
                    f(&format!("{m}_nonadaptive")),
                    "{c}"
                );
            }
        }

        assert!((0.0..=1.0).contains(&f("mma_3")));
        if f("keep") == 1.0 {
            assert_eq!(c["ssim_nonadaptive"], cells[0]["ssim_nonadaptive"]);
        }
    }
    assert!(
        fine_tune_helped > 0,
        "the fine-tune never helped the attacker"
    );
    // Fewer keypoints revealed at lower keeps.

    let kept = |keep: f64| {
        cells
            .iter()
            .find(|c| c["keep"].as_f64() == Some(keep) && c["strategy"] == "random")
            .unwrap()["kept_keypoints"]
            .as_f64()
            .unwrap()
    };
    assert!(kept(1.0) > kept(0.5) && kept(0.5) > kept(0.25));
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    for col in [
        "descriptor",
        "strategy",
        "keep",
        "kept_keypoints",
        "mma@1",
        "mma@3",
        "mma@5",
        "homography_acc@3",
        "ssim_nonadaptive",
        "psnr_nonadaptive",
        "ssim_adaptive",
        "psnr_adaptive",
        "mae_adaptive",
        "ssim_fine_tuned",
        "psnr_fine_tuned",
    ] {
        assert!(
            header.split(',').any(|h| h == col),
            "{col} missing in {header}"
        );
    }
    assert_eq!(csv.lines().count(), 10);
    // results.csv carries the fine-tuned attacker's own columns, and row by row the adaptive
    // columns are those of whichever network has the higher SSIM (4 decimals there).
    let columns: Vec<&str> = header.split(',').collect();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let at = |row: &[&str], col: &str| -> f64 {
        let i = columns.iter().position(|h| *h == col).expect(col);
        row[i]
            .parse()
            .unwrap_or_else(|e| panic!("{col} = {:?}: {e}", row[i]))
    };
    for row in &rows {
        assert_eq!(row.len(), columns.len(), "{row:?}");
        let (non, tuned) = (at(row, "ssim_nonadaptive"), at(row, "ssim_fine_tuned"));
        assert_eq!(at(row, "ssim_adaptive"), non.max(tuned), "{row:?}");
        let psnr = at(row, "psnr_adaptive");
        if tuned > non {
            assert_eq!(psnr, at(row, "psnr_fine_tuned"), "{row:?}");
        } else if tuned < non {
            assert_eq!(psnr, at(row, "psnr_nonadaptive"), "{row:?}");
            assert_eq!(
                at(row, "mae_adaptive"),
                at(row, "mae_nonadaptive"),
                "{row:?}"
            );
        } else {
            assert!(
                psnr == at(row, "psnr_fine_tuned") || psnr == at(row, "psnr_nonadaptive"),
                "{row:?}"
            );
        }
    }
    // The rows are the cells of results.json.
    let mut from_json: Vec<(String, String, String)> = cells
        .iter()
        .map(|c| {
            (
                c["strategy"].as_str().unwrap().to_string(),
                format!("{}", c["keep"].as_f64().unwrap()),
                format!("{:.4}", c["ssim_fine_tuned"].as_f64().unwrap()),
            )
        })
        .collect();
    let mut from_csv: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            let i = |col: &str| columns.iter().position(|h| *h == col).unwrap();
            (
                r[i("strategy")].to_string(),
                r[i("keep")].to_string(),
                r[i("ssim_fine_tuned")].to_string(),
            )
        })
        .collect();
    from_json.sort();
    from_csv.sort();
    assert_eq!(from_json, from_csv);
    let gallery = std::fs::read_to_string(out.join("gallery.html")).unwrap();
    assert_eq!(gallery.matches("<tr><td>victim").count(), 2);

    // A sweep killed after its fourth cell left exactly this results.json behind (cells are
    // saved one at a time): the rerun keeps those cells and recomputes the rest identically.
    let mut partial = results.clone();
    partial["cells"] = serde_json::Value::Array(cells[..4].to_vec());
    let resumed = dir.path().join("resumed");
    std::fs::create_dir_all(&resumed).unwrap();
    std::fs::write(
        resumed.join("results.json"),
        serde_json::to_vec_pretty(&partial).unwrap(),
    )
    .unwrap();
    let o = sweep(&config, &resumed);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(resumed.join("results.json")).unwrap()).unwrap();
    let again = again["cells"].as_array().unwrap();
    assert_eq!(again.len(), 9);
    for (a, b) in cells.iter().zip(again) {
        let strip = |v: &serde_json::Value| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("seconds");
            v
        };
        assert_eq!(strip(a), strip(b));
    }
    assert_eq!(again[..4], cells[..4], "finished cells are not recomputed");

    // Another configuration in the same folder is refused.
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("seed = 1", "seed = 2"),
    )
    .unwrap();
    let o = sweep(&other, &out);
    assert!(!o.status.success());
    assert!(common::stderr(&o).contains("another configuration"));

    // So is the same configuration once its attacker has trained further: its cells are stale.
    featleak()
        .args(["attack", "train", "--resume", "--steps", "7", "--out"])
        .arg(dir.path().join("run"))
        .assert()
        .success();
    let o = sweep(&config, &out);
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("as it was before its model changed"),
        "{}",
        common::stderr(&o)
    );
}

#[test]
fn sweep_scores_defence_cells_beside_subsets_with_the_mean_colour_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let config = sweep_fixture(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace("keeps = [1.0, 0.5, 0.25]", "keeps = [1.0, 0.5]");
    text.push_str(
        "[[defences]]\nname = \"quantise\"\nstrengths = [2.0, 6.0]\n\
         [[defences]]\nname = \"lift-random\"\nstrengths = [4.0]\n",
    );
    let backbone = dir.path().join("alexnet.safetensors");
    common::write_alexnet(&backbone);
    text.push_str(&format!("[privacy.lpips]\nbackbone = {backbone:?}\n"));
    std::fs::write(&config, text).unwrap();
    let out = dir.path().join("sweep");
    let o = sweep(&config, &out);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let cells = results["cells"].as_array().unwrap();
    assert_eq!(
        cells.len(),
        3 * 2 + 3,
        "3 strategies × 2 keeps + 3 defence cells"
    );
    let full = cells
        .iter()
        .find(|c| c["strategy"] == "random" && c["keep"] == 1.0)
        .unwrap();
    let mean_colour = full["ssim_mean_colour"].as_f64().unwrap();
    assert!(mean_colour > 0.0 && mean_colour < 1.0, "{full}");
    for c in cells {
        // The baseline is the victims' own, the same in every cell; each cell records the
        // adaptive attacker's steps.
        assert_eq!(c["ssim_mean_colour"].as_f64(), Some(mean_colour), "{c}");
        assert_eq!(c["adaptive_steps"], 4, "{c}");
        // LPIPS on the user's backbone, a distance above 0 for these tiny attackers.
        for column in ["lpips_nonadaptive", "lpips_adaptive"] {
            assert!(c[column].as_f64().unwrap() > 0.0, "{c}");
        }
        // Rank-1 identification among the 3 victims: a share of them.
        for column in ["identification_nonadaptive", "identification_adaptive"] {
            let v = c[column].as_f64().unwrap();
            assert!(
                [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]
                    .iter()
                    .any(|s| (v - s).abs() < 1e-9),
                "{c}"
            );
        }
    }
    let defended: Vec<_> = cells.iter().filter(|c| c["defence"] != "none").collect();
    let found: Vec<(String, f64)> = defended
        .iter()
        .map(|c| {
            assert_eq!(
                (&c["strategy"], &c["keep"]),
                (&"all".into(), &1.0.into()),
                "{c}"
            );
            // Every keypoint is sent, defended: the attacker sees other descriptors than in
            // the undefended keep-1 cell, and matching still finds some.
            assert_ne!(c["ssim_nonadaptive"], full["ssim_nonadaptive"], "{c}");
            assert_eq!(c["kept_keypoints"], full["kept_keypoints"], "{c}");
            assert!(c["mma_3"].as_f64().unwrap() > 0.0, "{c}");
            (
                c["defence"].as_str().unwrap().to_string(),
                c["strength"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("quantise".to_string(), 2.0),
            ("quantise".to_string(), 6.0),
            ("lift-random".to_string(), 4.0)
        ]
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    for column in [
        "defence",
        "strength",
        "adaptive_steps",
        "ssim_mean_colour",
        "identification_adaptive",
        "lpips_adaptive",
    ] {
        assert!(
            header.split(',').any(|h| h == column),
            "{column} not in {header}"
        );
    }
    assert!(csv.contains(",lift-random,4,"), "{csv}");
    // A rerun resumes: every cell is found, none is recomputed.
    let o = sweep(&config, &out);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(again["cells"], results["cells"]);
}

#[test]
fn lifted_cells_are_read_by_the_database_attack_when_the_sweep_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = sweep_fixture(dir.path());
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "strategies = [\"random\", \"top-response\", \"leakage\"]",
            "strategies = [\"random\"]",
        )
        .replace("keeps = [1.0, 0.5, 0.25]", "keeps = [1.0]")
        + "[[defences]]\nname = \"lift-random\"\nstrengths = [4.0]\n";
    let lifted_cell = |attack: &str| {
        let config = dir.path().join(format!("{attack}.toml"));
        std::fs::write(
            &config,
            format!("{text}[lifted]\nattack = \"{attack}\"\ndatabase_size = 500\n"),
        )
        .unwrap();
        let out = dir.path().join(attack);
        let o = sweep(&config, &out);
        assert!(o.status.success(), "{}", common::stderr(&o));
        let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
        assert!(
            csv.lines().next().unwrap().ends_with(",lifted_attack"),
            "{csv}"
        );
        let results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
        let cells = results["cells"].as_array().unwrap().clone();
        let full = cells.iter().find(|c| c["defence"] == "none").unwrap();
        assert!(full.get("lifted_attack").is_none(), "{full}");
        let lifted = cells
            .iter()
            .find(|c| c["defence"] == "lift-random")
            .unwrap()
            .clone();
        assert_eq!(lifted["lifted_attack"], attack, "{lifted}");
        assert!(csv.contains(&format!(",{attack}\n")), "{csv}");
        lifted
    };
    let point = lifted_cell("point");
    let database = lifted_cell("database");
    // Same defence, same victims, same utility; the attackers read other descriptors.
    assert_eq!(point["mma_3"], database["mma_3"]);
    assert_ne!(point["ssim_nonadaptive"], database["ssim_nonadaptive"]);
}

#[test]
fn sweeps_with_the_same_victims_share_one_frontier_plot() {
    let dir = tempfile::tempdir().unwrap();
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    let out = dir.path().join("all.svg");
    let frontier = |out: &Path, sweeps: &[std::path::PathBuf]| {
        featleak()
            .args(["mitigate", "frontier", "--out", out.to_str().unwrap()])
            .args(sweeps)
            .output()
            .unwrap()
    };
    let sift = reports.join("defences-sift");
    let freak = reports.join("defences-freak/results.json");
    let o = frontier(&out, &[sift.clone(), freak.clone()]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let svg = std::fs::read_to_string(&out).unwrap();
    for panel in ["sift: privacy vs utility", "freak: privacy vs utility"] {
        assert!(svg.contains(panel), "{panel} missing");
    }
    common::assert_error(
        &frontier(&out, std::slice::from_ref(&sift)),
        "already exists",
    );
    // 50 victims against 200: not comparable.
    let o = frontier(
        &dir.path().join("mixed.svg"),
        &[sift, reports.join("bsds500-sweep")],
    );
    common::assert_error(&o, "its victims are at most 50 of");
    assert!(!dir.path().join("mixed.svg").exists());
}

#[test]
fn one_folder_named_two_ways_is_the_same_victims_for_the_frontier() {
    let dir = tempfile::tempdir().unwrap();
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
    for folder in ["victims", "pairs", "sub", "others"] {
        std::fs::create_dir(dir.path().join(folder)).unwrap();
    }
    // Two real sweeps' results with their data folders rewritten to folders of this test.
    let rewrite = |report: &str, victims: &Path, name: &str| {
        let mut results: serde_json::Value =
            serde_json::from_slice(&std::fs::read(reports.join(report)).unwrap()).unwrap();
        results["config"]["privacy"]["images"] = victims.to_str().unwrap().into();
        results["config"]["utility"]["pairs"] = dir.path().join("pairs").to_str().unwrap().into();
        let path = dir.path().join(name);
        std::fs::write(&path, serde_json::to_vec(&results).unwrap()).unwrap();
        path
    };
    let sift = rewrite(
        "defences-sift/results.json",
        &dir.path().join("victims"),
        "sift.json",
    );
    let freak = rewrite(
        "defences-freak/results.json",
        &dir.path().join("sub/../victims"),
        "freak.json",
    );
    let others = rewrite(
        "defences-freak/results.json",
        &dir.path().join("others"),
        "others.json",
    );
    let frontier = |out: &str, sweeps: &[&Path]| {
        featleak()
            .args(["mitigate", "frontier", "--out"])
            .arg(dir.path().join(out))
            .args(sweeps)
            .output()
            .unwrap()
    };
    let o = frontier("same.svg", &[&sift, &freak]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    common::assert_error(
        &frontier("different.svg", &[&sift, &others]),
        "its victims are all of",
    );
}
