//! End-to-end tests of job-array sharding: `extract` and `attack reconstruct` with
//! `--shard K/N` (or Slurm's variables), and `featleak merge`, whose output must be what one
//! unsharded run writes, byte for byte.

mod common;

use common::{assert_error, featleak, scenes, stderr, train_attacker, write_scene};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SLURM: [&str; 3] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
];

/// `featleak ARGS` outside any job array, with `env` set; returns its output.
fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = featleak();
    for var in SLURM {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied()).args(args).output().unwrap()
}

/// Like [`run`] without environment, asserting success.
fn ok(args: &[&str]) -> std::process::Output {
    let o = run(args, &[]);
    assert!(o.status.success(), "{args:?} failed:\n{}", stderr(&o));
    o
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every file below `dir` but hidden ones (relative path → bytes).
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    featleak_datasets::find_files(dir, |_| true)
        .unwrap()
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// A manifest without the fields documented as differing per process.
fn manifest(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let o = m.as_object_mut().unwrap();
    o.remove("created_unix");
    o.remove("threads");
    m
}

/// Asserts `merged` holds exactly `whole`'s files with the same bytes (`manifest.json` up to
/// its per-process fields).
fn assert_same_folder(whole: &Path, merged: &Path) {
    let (mut a, mut b) = (files(whole), files(merged));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same files"
    );
    if a.remove("manifest.json").is_some() {
        b.remove("manifest.json");
        assert_eq!(manifest(whole), manifest(merged));
    }
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs");
    }
}

/// Runs `args` + `--out DIR --shard K/3` for K in 0..3 into `root/NAME-K`; returns the folders.
fn three_shards(root: &Path, name: &str, args: &[&str]) -> Vec<PathBuf> {
    (0..3)
        .map(|k| {
            let out = root.join(format!("{name}-{k}"));
            let shard = format!("{k}/3");
            let o = run(
                &[args, &["--out", s(&out), "--shard", &shard]].concat(),
                &[],
            );
            assert!(
                o.status.code() == Some(0) || o.status.code() == Some(1),
                "{}",
                stderr(&o)
            );
            out
        })
        .collect()
}

fn merge(out: &Path, shards: &[&Path]) -> std::process::Output {
    let mut args = vec!["merge", "--out", s(out)];
    args.extend(shards.iter().map(|p| s(p)));
    run(&args, &[])
}

/// Images whose names sort differently with and without extension, in subfolders, plus one that
/// fails (its failure must be merged too).
fn victim_images(dir: &Path, size: u32) {
    for (i, name) in [
        "a.png",
        "a.b.png",
        "a-c.png",
        "sub/d.png",
        "sub/e/f.png",
        "z.png",
        "y.png",
    ]
    .iter()
    .enumerate()
    {
        write_scene(&dir.join(name), size, size * 3 / 4, 70 + i as u64);
    }
}

#[test]
fn extract_shards_merge_into_the_unsharded_folder_and_bad_sets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let images = root.join("images");
    victim_images(&images, 96);
    std::fs::write(images.join("sub/broken.png"), b"not a png").unwrap();
    let extract = ["extract", "--images", s(&images), "--threads", "1"];

    let whole = root.join("whole");
    let o = run(&[&extract[..], &["--out", s(&whole)]].concat(), &[]);
    assert_eq!(o.status.code(), Some(1), "the broken image fails");
    let shards = three_shards(root, "part", &extract);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shards[1].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["shard"], serde_json::json!({"index": 1, "count": 3}));
    assert!(
        manifest(&whole).get("shard").is_none(),
        "a whole run records no shard"
    );

    let merged = root.join("merged");
    let o = merge(&merged, &[&shards[2], &shards[0], &shards[1]]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("7 image(s) with features, 1 failed"));
    assert_same_folder(&whole, &merged);

    // Refusals: into a folder that holds files, incomplete or duplicate sets, a whole run,
    // shards of another run.
    assert_error(
        &merge(&merged, &[&shards[0], &shards[1], &shards[2]]),
        "is not empty",
    );
    let out = root.join("refused");
    assert_error(
        &merge(&out, &[&shards[0], &shards[2]]),
        "shard(s) 1/3 missing",
    );
    assert_error(
        &merge(&out, &[&shards[0], &shards[1], &shards[1], &shards[2]]),
        "are both shard 1/3",
    );
    assert_error(&merge(&out, &[&whole]), "is not a shard");
    let other = root.join("other-0");
    let args = [
        "--max-keypoints",
        "50",
        "--shard",
        "0/3",
        "--out",
        s(&other),
    ];
    run(&[&extract[..], &args].concat(), &[]);
    assert_error(
        &merge(&out, &[&other, &shards[1], &shards[2]]),
        "are shards of different runs (extractor differ)",
    );
    assert_error(&merge(&out, &[&images]), "holds neither");
    assert!(!out.exists(), "a refused merge writes nothing");

    // A shard folder does not resume another shard or a whole run.
    let o = run(
        &[&extract[..], &["--out", s(&shards[0]), "--shard", "1/3"]].concat(),
        &[],
    );
    assert_error(&o, "holds features of shard 0/3 (this run: shard 1/3)");

    // Slurm's variables give the default shard; --shard overrides them.
    let from_env = root.join("env");
    let array = [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
    ];
    let o = run(&[&extract[..], &["--out", s(&from_env)]].concat(), &array);
    assert!(
        stderr(&o).contains("note: shard 2/3 (from SLURM_ARRAY_TASK_ID"),
        "{}",
        stderr(&o)
    );
    assert_same_folder(&shards[2], &from_env);
    let o = run(
        &[
            &extract[..],
            &["--out", s(&root.join("e1")), "--shard", "0/1"],
        ]
        .concat(),
        &array,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(
        manifest(&root.join("e1")),
        manifest(&whole),
        "0/1 is a whole run"
    );
    let bad = [
        ("SLURM_ARRAY_TASK_ID", "3"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    let o = run(
        &[&extract[..], &["--out", s(&root.join("e2"))]].concat(),
        &bad,
    );
    assert_error(&o, "SLURM_ARRAY_TASK_ID=3");
    assert_error(&o, "--array=0-2");
    let o = run(
        &[
            &extract[..],
            &["--out", s(&root.join("e3")), "--shard", "3/3"],
        ]
        .concat(),
        &[],
    );
    assert_error(&o, "--shard 3/3: K must be less than N");
}

#[test]
fn reconstruct_shards_merge_into_the_unsharded_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (train, run_dir) = (root.join("train"), root.join("run"));
    scenes(&train, 6, 96, 72);
    let o = train_attacker(&train, &run_dir, &["--steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let images = root.join("victims");
    victim_images(&images, 80);
    let features = root.join("features");
    ok(&["extract", "--images", s(&images), "--out", s(&features)]);

    for (kind, victims) in [("--features", &features), ("--images", &images)] {
        let reconstruct = [
            "attack",
            "reconstruct",
            "--run",
            s(&run_dir),
            kind,
            s(victims),
            "--share",
            "0.5",
            "--seed",
            "3",
        ];
        let whole = root.join(format!("whole{kind}"));
        ok(&[&reconstruct[..], &["--out", s(&whole)]].concat());
        let shards = three_shards(root, &format!("rec{kind}"), &reconstruct);
        assert!(shards.iter().all(|s| s.join("shard.json").is_file()));
        let merged = root.join(format!("merged{kind}"));
        let o = merge(&merged, &[&shards[1], &shards[2], &shards[0]]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("7 victim(s)"));
        assert!(whole.join("index.html").is_file() && !whole.join("shard.json").exists());
        assert_eq!(whole.join("metrics.json").is_file(), kind == "--images");
        assert_same_folder(&whole, &merged);

        if kind == "--features" {
            let other = root.join("seed-0");
            let mut args = reconstruct.to_vec();
            args[9] = "4";
            ok(&[&args[..], &["--out", s(&other), "--shard", "0/3"]].concat());
            let out = root.join("refused");
            assert_error(
                &merge(&out, &[&other, &shards[1], &shards[2]]),
                "different runs (seed differ)",
            );
            let extracted = root.join("feature-shard");
            ok(&[
                "extract",
                "--images",
                s(&images),
                "--shard",
                "1/3",
                "--out",
                s(&extracted),
            ]);
            assert_error(&merge(&out, &[&shards[0], &extracted]), "mixed kinds");
            assert_error(&merge(&out, &[&shards[0], &whole]), "holds neither");
        }
    }
}
