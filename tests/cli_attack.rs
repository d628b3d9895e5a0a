//! End-to-end tests of `featleak attack train` and `featleak attack reconstruct` (tiny images,
//! a few steps: these check the plumbing, not the quality).

mod common;

use common::{assert_error, attacker_args, featleak, scenes, stderr, train_attacker};
use std::path::Path;

#[test]
fn train_resume_and_reconstruct_with_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let (images, run) = (dir.path().join("images"), dir.path().join("run"));
    scenes(&images, 6, 96, 72);
    let o = train_attacker(&images, &run, &["--steps", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "run.json",
        "metrics.csv",
        "curves.svg",
        "checkpoint/model.bpk",
        "checkpoint/optimizer.bpk",
        "checkpoint/state.json",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 3);

    // A second train into the same folder needs --resume; with it, training continues.
    let o = train_attacker(&images, &run, &["--steps", "3"]);
    assert_error(&o, "already holds a run; pass --resume");
    let o = train_attacker(&images, &run, &["--steps", "5", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A resumed run keeps its recipe: another value is refused, none needs repeating.
    let resume = |extra: &[&str]| {
        featleak()
            .args([
                "attack",
                "train",
                "--resume",
                "--out",
                run.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = resume(&["--steps", "6", "--size", "48", "--lr", "0.01"]);
    assert_error(
        &o,
        "--size 48 (the run's: 32), --lr 0.01 (the run's: 0.003)",
    );
    let o = resume(&["--steps", "6", "--gray", "pil"]);
    assert_error(&o, "--gray pil (the run's: cvtcolor)");
    let other = dir.path().join("other-images");
    scenes(&other, 2, 96, 72);
    let o = resume(&[
        "--steps",
        "6",
        "--descriptor",
        "freak",
        "--threat",
        "pos-only",
        "--width",
        "8",
        "--images",
        other.to_str().unwrap(),
    ]);
    for needle in [
        "--descriptor freak (the run's: sift)",
        "--threat pos-only (the run's: desc+pos)",
        "--width 8 (the run's: 16)",
        "other-images (the run's: ",
    ] {
        assert_error(&o, needle);
    }
    let o = resume(&[
        "--steps",
        "6",
        "--train-share",
        "1",
        "--mse-loss",
        "2",
        "--global-context",
    ]);
    for needle in [
        "--train-share 1 (the run's: 0.05..1)",
        "--mse-loss 2 (the run's: 0)",
        "--global-context (the run has none)",
    ] {
        assert_error(&o, needle);
    }
    // The run's own images, spelled another way, are no conflict.
    let spelled = dir.path().join(".").join("images");
    let o = resume(&["--steps", "5", "--images", spelled.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = resume(&["--steps", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 5);

    let victims = dir.path().join("victims");
    scenes(&victims, 2, 80, 80);
    let out = dir.path().join("rec");
    featleak()
        .args([
            "attack",
            "reconstruct",
            "--run",
            run.to_str().unwrap(),
            "--images",
            victims.to_str().unwrap(),
        ])
        .args(["--out", out.to_str().unwrap()])
        .assert()
        .success();
    let rec = image::open(out.join("s0.png")).unwrap();
    assert_eq!((rec.width(), rec.height()), (32, 32));
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["images"].as_array().unwrap().len(), 2);
    assert!(metrics["mean"]["psnr"].as_f64().unwrap() > 0.0);
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(
        html.matches("src=\"data:image/png;base64,").count(),
        2 * 3,
        "original, keypoints, reconstruction"
    );

    // The trivial baselines, in the same schema.
    let base = dir.path().join("baselines");
    featleak()
        .args([
            "attack",
            "baselines",
            "--run",
            run.to_str().unwrap(),
            "--images",
            victims.to_str().unwrap(),
        ])
        .args(["--out", base.to_str().unwrap()])
        .assert()
        .success();
    for f in ["mean-image.json", "mean-colour.json"] {
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(base.join(f)).unwrap()).unwrap();
        assert_eq!(r["images"].as_array().unwrap().len(), 2, "{f}");
        assert!(r["mean"]["ssim"].as_f64().unwrap().is_finite());
    }

    // From feature files alone (no images): the real attack.

    let feats = dir.path().join("features");
    featleak()
        .args([
            "extract",
            "--images",
            victims.to_str().unwrap(),
            "--out",
            feats.to_str().unwrap(),
        ])
        .assert()
        .success();
    let out2 = dir.path().join("rec2");
    let o2 = featleak()
        .args([
            "attack",
            "reconstruct",
            "--run",
            run.to_str().unwrap(),
            "--features",
            feats.to_str().unwrap(),
        ])
        .args(["--out", out2.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o2.status.success(), "{}", stderr(&o2));
    assert!(out2.join("s1.png").exists() && !out2.join("metrics.json").exists());
    assert!(!stderr(&o2).contains("note:"), "{}", stderr(&o2));

    // Features of images made grey another way are the same kind: attacked, and said so.
    let pil = dir.path().join("pil");
    featleak()
        .args(["extract", "--gray", "pil", "--images"])
        .args([victims.to_str().unwrap(), "--out", pil.to_str().unwrap()])
        .assert()
        .success();
    let o = featleak()
        .args(["attack", "reconstruct", "--run", run.to_str().unwrap()])
        .args(["--features", pil.to_str().unwrap(), "--out"])
        .arg(dir.path().join("rec-pil"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("note: 2 feature files in")
            && stderr(&o).contains("made grey by \"pil\", the attacker's by \"cvtcolor\""),
        "{}",
        stderr(&o)
    );

    // Features of another extractor are refused with a clear error.
    let other = dir.path().join("freak");
    featleak()
        .args([
            "extract",
            "--descriptor",
            "freak",
            "--detector",
            "harris",
            "--images",
            victims.to_str().unwrap(),
        ])
        .args(["--out", other.to_str().unwrap()])
        .assert()
        .success();
    let o = featleak()
        .args([
            "attack",
            "reconstruct",
            "--run",
            run.to_str().unwrap(),
            "--features",
            other.to_str().unwrap(),
        ])
        .args(["--out", dir.path().join("rec3").to_str().unwrap()])
        .output()
        .unwrap();
    assert_error(
        &o,
        "features from freak+harris but the attacker was trained on sift+dog",
    );

    // So are RootSIFT descriptors for a plain-SIFT attacker: same name, other values.
    let root = dir.path().join("rootsift");
    featleak()
        .args([
            "extract",
            "--root-sift",
            "--images",
            victims.to_str().unwrap(),
        ])
        .args(["--out", root.to_str().unwrap()])
        .assert()
        .success();
    let o = featleak()
        .args(["attack", "reconstruct", "--run", run.to_str().unwrap()])
        .args(["--features", root.to_str().unwrap(), "--out"])
        .arg(dir.path().join("rec4"))
        .output()
        .unwrap();
    assert_error(&o, "\"root_sift\":true");
    assert_error(&o, "but the attacker was trained on");
}

#[test]
fn recipe_options_are_recorded_in_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (images, run) = (dir.path().join("images"), dir.path().join("run"));
    scenes(&images, 4, 96, 72);
    let o = train_attacker(&images, &run, &["--train-share", "2", "--steps", "1"]);
    assert_error(&o, "'2' is not a share");
    let recipe = [
        "--steps",
        "2",
        "--train-share",
        "0.5..1",
        "--mse-loss",
        "2.5",
        "--global-context",
    ];
    let o = train_attacker(&images, &run, &recipe);
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(config["threat"]["train_share"]["min"], 0.5);
    assert_eq!(config["threat"]["train_share"]["max"], 1.0);
    assert_eq!(config["training"]["loss"]["mse"], 2.5);
    assert_eq!(config["training"]["network"]["global_context"], true);
    // The same options again resume it.
    let mut again = recipe.to_vec();
    again[1] = "3";
    again.push("--resume");
    let o = train_attacker(&images, &run, &again);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn ctrl_c_ends_training_after_the_current_step_with_its_checkpoint() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let (images, run) = (dir.path().join("images"), dir.path().join("run"));
    scenes(&images, 6, 96, 72);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_featleak"))
        .args(attacker_args(&images, &run))
        .args(["--steps", "1000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The "training …" line comes once the handler is in place; then let some steps run.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("training") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "no training line");
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let kill = std::process::Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_error(&out, "interrupted after step ");

    // The checkpoint holds the step the message names: nothing was lost.
    let err = stderr(&out);
    let said: u64 = err
        .split("interrupted after step ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no step in: {err}"));
    let state = std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert!(said >= 1);
    assert_eq!(state["step"].as_u64(), Some(said));

    // And the run resumes from it.
    let more = (said + 2).to_string();
    let o = train_attacker(&images, &run, &["--steps", &more, "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let state = std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["step"].as_u64(), Some(said + 2));
}

#[test]
fn sigkill_at_any_moment_leaves_a_run_that_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    scenes(&images, 6, 96, 72);
    let (whole, parts) = (dir.path().join("whole"), dir.path().join("parts"));
    let steps = ["--steps", "100"];
    let start = std::time::Instant::now();
    assert!(train_attacker(&images, &whole, &steps).status.success());
    let whole_run = start.elapsed();
    // Killed without warning at moments spread over start-up, steps, validations and
    // checkpoint commits (fractions of the uninterrupted run's time), then resumed each time.
    let mut killed = 0;
    for fraction in [0.05, 0.25, 0.1, 0.35, 0.15, 0.3, 0.08, 0.2, 0.12, 0.28] {
        let mut args = attacker_args(&images, &parts);
        if parts.join("run.json").exists() {
            args.push("--resume".into());
        }
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_featleak"))
            .args(args)
            .args(steps)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole_run.mul_f64(fraction));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    assert!(killed >= 5, "only {killed} kills landed during training");
    let o = train_attacker(&images, &parts, &["--steps", "100", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The same metrics row for row (but the seconds), and the same network.
    let rows = |run: &Path| -> Vec<String> {
        std::fs::read_to_string(run.join("metrics.csv"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(',').collect();
                f.remove(2);
                f.join(",")
            })
            .collect()
    };
    assert_eq!(rows(&whole), rows(&parts));
    assert_same_reconstructions(&images, &whole, &parts);
}

#[test]
fn an_interrupted_and_resumed_run_ends_where_an_uninterrupted_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    scenes(&images, 6, 96, 72);
    let (whole, parts) = (dir.path().join("whole"), dir.path().join("parts"));
    assert!(
        train_attacker(&images, &whole, &["--steps", "4"])
            .status
            .success()
    );
    assert!(
        train_attacker(&images, &parts, &["--steps", "2"])
            .status
            .success()
    );
    assert!(
        train_attacker(&images, &parts, &["--steps", "4", "--resume"])
            .status
            .success()
    );
    // Same validation scores and training loss, and the same reconstructions, pixel for pixel.
    let last_row = |run: &Path| {
        let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let row: Vec<String> = csv
            .lines()
            .last()
            .unwrap()
            .split(',')
            .map(String::from)
            .collect();
        [
            row[0].clone(),
            row[1].clone(),
            row[4].clone(),
            row[5].clone(),
            row[6].clone(),
        ]
    };
    assert_eq!(last_row(&whole), last_row(&parts));
    assert_same_reconstructions(&images, &whole, &parts);
}

/// Runs `whole` and `parts` reconstruct the 6 scenes in `images` identically, pixel for pixel
/// (their weights files differ in burn's parameter ids alone).
fn assert_same_reconstructions(images: &Path, whole: &Path, parts: &Path) {
    for run in [whole, parts] {
        featleak()
            .args([
                "attack",
                "reconstruct",
                "--run",
                run.to_str().unwrap(),
                "--images",
                images.to_str().unwrap(),
            ])
            .args(["--out", run.join("rec").to_str().unwrap()])
            .assert()
            .success();
    }
    for i in 0..6 {
        let png = |run: &Path| std::fs::read(run.join(format!("rec/s{i}.png"))).unwrap();
        assert!(
            png(whole) == png(parts),
            "reconstruction s{i} differs after resuming"
        );
    }
}

#[test]
fn bad_runs_and_images_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    scenes(&images, 3, 96, 72);

    let o = train_attacker(&images, &dir.path().join("r0"), &[]);
    assert_error(&o, "give a training budget");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = train_attacker(&empty, &dir.path().join("r1"), &["--steps", "1"]);
    assert_error(&o, "no images found in");

    // Images smaller than the reconstruction size are skipped one by one; none left is an error.
    let small = dir.path().join("small");
    scenes(&small, 3, 24, 20);
    let o = train_attacker(&small, &dir.path().join("r2"), &["--steps", "1"]);
    let e = stderr(&o);
    assert!(
        e.contains("24×20, smaller than the 32×32") && e.contains("no usable training images"),
        "{e}"
    );
    // Each skipped image is said once.
    assert_eq!(e.matches("s0.png").count(), 1, "{e}");

    // A share that is not a fraction is refused before any work.
    let ok_run = dir.path().join("r4");
    assert!(
        train_attacker(&images, &ok_run, &["--steps", "1"])
            .status
            .success()
    );
    for share in ["NaN", "0", "1.5"] {
        let o = featleak()
            .args(["attack", "reconstruct", "--run", ok_run.to_str().unwrap()])
            .args(["--images", images.to_str().unwrap(), "--share", share])
            .args(["--out", dir.path().join("s").to_str().unwrap()])
            .output()
            .unwrap();
        assert_error(&o, "--share must be in (0, 1]");
    }

    // A run folder from another version.
    let run = dir.path().join("r3");
    assert!(
        train_attacker(&images, &run, &["--steps", "1"])
            .status
            .success()
    );
    let cfg = std::fs::read_to_string(run.join("run.json")).unwrap();
    std::fs::write(
        run.join("run.json"),
        cfg.replace(
            &format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION")),
            "\"version\": \"0.0.1\"",
        ),
    )
    .unwrap();
    let o = featleak()
        .args([
            "attack",
            "reconstruct",
            "--run",
            run.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
        ])
        .args(["--out", dir.path().join("x").to_str().unwrap()])
        .output()
        .unwrap();
    assert_error(&o, "was written by featleak 0.0.1");

    // A folder that is not a run.
    let o = featleak()
        .args([
            "attack",
            "reconstruct",
            "--run",
            images.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
        ])
        .args(["--out", dir.path().join("y").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("run.json") && stderr(&o).contains("featleak attack train"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_users_folder_is_never_trained_into_and_a_damaged_run_is_not_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    scenes(&images, 4, 96, 72);

    // A folder of the user's own files: refused, the files untouched.
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("metrics.csv"), "precious").unwrap();
    let o = train_attacker(&images, &mine, &["--steps", "1"]);
    assert_error(&o, "holds no featleak run");
    assert_eq!(
        std::fs::read_to_string(mine.join("metrics.csv")).unwrap(),
        "precious"
    );

    // A checkpoint whose state was deleted: --resume refuses instead of starting over.
    let run = dir.path().join("run");
    assert!(
        train_attacker(&images, &run, &["--steps", "2"])
            .status
            .success()
    );
    std::fs::remove_file(run.join("checkpoint/state.json")).unwrap();
    let o = train_attacker(&images, &run, &["--steps", "4", "--resume"]);
    assert_error(&o, "the checkpoint has no state.json");
    std::fs::remove_dir_all(run.join("checkpoint")).unwrap();
    let o = train_attacker(&images, &run, &["--steps", "4", "--resume"]);
    assert_error(&o, "the run has metrics but no checkpoint");

    // Numbers that cannot be trained with are refused up front.
    let mut args = attacker_args(&images, &dir.path().join("batch0"));
    let at = args.iter().position(|a| a == "--batch-size").unwrap();
    args[at + 1] = "0".into();
    let o = featleak()
        .args(args)
        .args(["--steps", "1"])
        .output()
        .unwrap();
    assert_error(&o, "batch size must be at least 1");
    for (flag, value, needle) in [
        ("--lr", "NaN", "learning rate must be a positive number"),
        ("--minutes", "-1", "minutes must be a positive number"),
    ] {
        let o = train_attacker(
            &images,
            &dir.path().join(format!("bad{flag}")),
            &["--steps", "1", &format!("{flag}={value}")],
        );
        assert_error(&o, needle);
    }
}

#[test]
fn bundled_attackers_are_listed_used_and_checked() {
    let o = featleak().args(["attack", "zoo"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(
        listing.contains("zoo:sift")
            && listing.contains("zoo:pos-only")
            && listing.contains("BSDS500 test"),
        "{listing}"
    );

    let dir = tempfile::tempdir().unwrap();
    let (victims, out) = (dir.path().join("victims"), dir.path().join("rec"));
    scenes(&victims, 2, 192, 144);
    let o = featleak()
        .args(["attack", "reconstruct", "--run", "zoo:sift", "--images"])
        .args([victims.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rec = image::open(out.join("s0.png")).unwrap();
    assert_eq!((rec.width(), rec.height()), (128, 128));
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("zoo:sift"));
    assert!(
        std::fs::read_dir(&victims).unwrap().count() == 2,
        "nothing is cached beside the victims"
    );

    let o = featleak()
        .args(["attack", "reconstruct", "--run", "zoo:nope", "--images"])
        .args([victims.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_error(&o, "zoo:nope: no such bundled attacker (the zoo has: sift");

    let images = dir.path().join("images");
    scenes(&images, 3, 96, 72);
    let train = |extra: &[&str]| {
        featleak()
            .args([
                "attack", "train", "--steps", "1", "--init", "zoo:sift", "--images",
            ])
            .args([images.to_str().unwrap(), "--out"])
            .arg(dir.path().join("run"))
            .args(extra)
            .output()
            .unwrap()
    };
    assert_error(
        &train(&["--descriptor", "freak"]),
        "--init zoo:sift attacks sift+dog under 'desc+pos'; this run attacks freak+harris",
    );
    assert_error(&train(&["--width", "8"]), "cannot be used with");
    // Another grey conversion of the same extractor starts from it, and is recorded.
    let o = train(&["--gray", "imread-grayscale", "--size", "32"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/run.json")).unwrap()).unwrap();
    assert_eq!(config["threat"]["extractor"]["gray"], "imread-grayscale");
}

/// An attacker exported in f16 is half the size, reconstructs as the run does (within a grey
/// level), and goes only into a new or empty folder.
#[test]
fn an_attacker_exported_in_half_precision_reconstructs_like_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let (images, run, half) = (
        dir.path().join("images"),
        dir.path().join("run"),
        dir.path().join("half"),
    );
    scenes(&images, 3, 96, 72);
    let o = train_attacker(&images, &run, &["--steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let export = |out: &Path| {
        featleak()
            .args(["attack", "export", "--run", run.to_str().unwrap(), "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let o = export(&half);
    assert!(o.status.success(), "{}", stderr(&o));
    let size = |d: &Path| {
        std::fs::metadata(d.join("checkpoint/model.bpk"))
            .unwrap()
            .len()
    };
    let (full, halved) = (size(&run), size(&half));
    assert!(
        halved * 10 < full * 6,
        "f16 {halved} bytes against f32 {full}"
    );
    let reconstruct = |attacker: &Path, out: &str| {
        let o = featleak()
            .args(["attack", "reconstruct", "--run", attacker.to_str().unwrap()])
            .args(["--images", images.to_str().unwrap(), "--out"])
            .arg(dir.path().join(out))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    reconstruct(&run, "rec-run");
    reconstruct(&half, "rec-half");
    for i in 0..3 {
        let open = |d: &str| {
            image::open(dir.path().join(d).join(format!("s{i}.png")))
                .unwrap()
                .to_rgb8()
        };
        let (a, b) = (open("rec-run"), open("rec-half"));
        let most = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .unwrap();
        assert!(
            most <= 1,
            "scene {i}: f16 weights move a pixel by {most} grey levels"
        );
    }
    // Never into a folder of the user's, nor over another export.
    let mine = dir.path().join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    let o = export(&mine);
    assert!(!o.status.success());
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_error(
        &export(&half),
        "already holds an attacker; choose another --out",
    );
}

/// A store of made-up features of a descriptor featleak has never heard of (`dimension`
/// floats, or bits when `binary`), recording no extractor as hloc's files do: one set per
/// `(image name, width, height)`.
fn foreign_store(path: &Path, images: &[(&str, u32, u32)], dimension: usize, binary: bool) {
    use featleak_descriptors::{Descriptors, FeatureSet, Keypoint, store};
    let mut writer = store::create(path).unwrap();
    for (i, &(name, w, h)) in images.iter().enumerate() {
        let n = 40;
        let value = |k: usize, d: usize| ((k * 31 + d * 7 + i * 13) as f32 * 0.37).sin();
        let keypoints = (0..n)
            .map(|k| Keypoint {
                x: (k * 37 % w as usize) as f32 + 0.25,
                y: (k * 53 % h as usize) as f32 + 0.5,
                size: 4.0,
                angle: -1.0,
                response: 1.0 / (1 + k) as f32,
                octave: 0,
            })
            .collect();
        let descriptors = if binary {
            let bytes = dimension / 8;
            Descriptors::Binary(ndarray::Array2::from_shape_fn((n, bytes), |(k, d)| {
                (value(k, d) * 127.0 + 128.0) as u8
            }))
        } else {
            Descriptors::Float(ndarray::Array2::from_shape_fn((n, dimension), |(k, d)| {
                value(k, d)
            }))
        };
        let features = FeatureSet {
            image_size: (h, w),
            keypoints,
            descriptors,
            extractor: store::unknown_extractor(),
        };
        writer.write(name, &features).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn another_pipelines_features_train_an_attacker_that_refuses_features_of_another_kind() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let images = dir.path().join("images");
    scenes(&images, 5, 96, 72);
    common::write_scene(&images.join("odd.png"), 80, 80, 7);
    // s4 has no features; odd.png's were made on an image of another size.
    let listed = [
        ("s0.png", 96, 72),
        ("s1.png", 96, 72),
        ("s2.png", 96, 72),
        ("s3.png", 96, 72),
        ("odd.png", 96, 72),
    ];
    foreign_store(&dir.path().join("f.h5"), &listed, 96, false);
    let train = |store: &str, out: &str, extra: &[&str]| {
        featleak()
            .args(["attack", "train", "--size", "32", "--feature-size", "64"])
            .args(["--batch-size", "2", "--val-images"])
            .args([&p("images"), "--images", &p("images")])
            .args(["--train-features", store, "--out", &p(out)])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = train(&p("f.h5"), "run", &["--steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("s4.png: ") && e.contains("holds no features of it"),
        "{e}"
    );
    assert!(
        e.contains("stored features are of a 96×72 image, the image is 80×80"),
        "{e}"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run/run.json")).unwrap()).unwrap();
    assert_eq!(
        config["threat"]["extractor"]["descriptor"],
        serde_json::json!({"kind": "external", "source": "unknown", "dimension": 96, "binary": false})
    );
    assert_eq!(config["train_features"], p("f.h5"));
    // Both skipped as training and as validation images.
    assert_eq!(config["skipped"].as_array().unwrap().len(), 4);
    let o = train(&p("f.h5"), "run", &["--resume", "--steps", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    foreign_store(&dir.path().join("g.h5"), &listed, 96, false);
    assert_error(
        &train(&p("g.h5"), "run", &["--resume", "--steps", "4"]),
        "--train-features",
    );
    assert_error(
        &train(&p("f.h5"), "r2", &["--steps", "2", "--descriptor", "sift"]),
        "cannot be used with",
    );

    // The victims' features with their images are scored; alone, reconstructed.
    let reconstruct = |extra: &[&str]| {
        featleak()
            .args([
                "attack",
                "reconstruct",
                "--run",
                &p("run"),
                "--out",
                &p("rec"),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = reconstruct(&["--images", &p("images"), "--features", &p("f.h5")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("rec/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["images"].as_array().unwrap().len(), 4, "{metrics}");
    std::fs::remove_dir_all(dir.path().join("rec")).unwrap();
    let o = reconstruct(&["--features", &p("f.h5")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("rec/s0.png").exists());
    std::fs::remove_dir_all(dir.path().join("rec")).unwrap();
    assert_error(
        &reconstruct(&["--images", &p("images")]),
        "trained on features read from a store (external:unknown): give the victims' features",
    );

    // Features of another shape or type are refused, naming the image.
    foreign_store(&dir.path().join("d64.h5"), &listed, 64, false);
    assert_error(
        &reconstruct(&["--features", &p("d64.h5")]),
        "float descriptors of 64 values; the attacker's are float descriptors of 96 values",
    );
    foreign_store(&dir.path().join("bits"), &listed, 96, true);
    assert_error(
        &reconstruct(&["--images", &p("images"), "--features", &p("bits")]),
        "image 'odd.png': binary descriptors of 96 values; the attacker's are float",
    );
    // A featleak attacker reads no store.
    let sift = dir.path().join("sift");
    assert!(
        train_attacker(&images, &sift, &["--steps", "1"])
            .status
            .success()
    );
    let o = featleak()
        .args(["attack", "reconstruct", "--run", sift.to_str().unwrap()])
        .args([
            "--images",
            &p("images"),
            "--features",
            &p("f.h5"),
            "--out",
            &p("r"),
        ])
        .output()
        .unwrap();
    assert_error(
        &o,
        "extracts sift+dog features itself and reads no feature store",
    );

    // Binary descriptors of any length train too.
    let o = train(&p("bits"), "binary", &["--steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
