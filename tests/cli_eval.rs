//! End-to-end tests of `featleak match-eval` and `featleak score`.

mod common;

use common::featleak;
use featleak_datasets::synthetic::scene;
use featleak_datasets::warp::warp_perspective;
use std::path::{Path, PathBuf};

/// An HPatches-style sequence: image 1 and two warps of it with their homographies.
fn make_sequence(dir: &Path, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let img = scene(320, 240, seed);
    img.save(dir.join("1.png")).unwrap();
    let hs = [
        [[0.95, 0.05, 8.0], [-0.04, 0.97, 5.0], [0.0, 0.0, 1.0]],
        [[1.05, -0.08, -6.0], [0.06, 1.02, -4.0], [1e-4, 0.0, 1.0]],
    ];
    for (k, h) in hs.iter().enumerate() {
        warp_perspective(&img, h, 320, 240)
            .unwrap()
            .save(dir.join(format!("{}.png", k + 2)))
            .unwrap();
        let text: String = h
            .iter()
            .map(|r| format!("{} {} {}\n", r[0], r[1], r[2]))
            .collect();
        std::fs::write(dir.join(format!("H_1_{}", k + 2)), text).unwrap();
    }
}

#[test]
fn match_eval_writes_tables_plot_and_sane_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs");
    make_sequence(&pairs.join("s_a"), 1);
    make_sequence(&pairs.join("s_b"), 2);
    let out = dir.path().join("out");
    featleak()
        .args([
            "match-eval",
            "--descriptor",
            "sift,freak",
            "--pairs",
            pairs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let list = results["results"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for r in list {
        assert_eq!(r["pairs"].as_array().unwrap().len(), 4);
        let mma3 = r["summary"]["mma"][2].as_f64().unwrap();
        assert!(
            mma3 > 0.6,
            "{}: MMA@3 {mma3} on easy synthetic warps",
            r["descriptor"]
        );
        assert!(r["summary"]["homography_accuracy"][2].as_f64().unwrap() >= 0.5);
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8);
    assert!(csv.starts_with("descriptor,pair,keypoints_a,keypoints_b,matches,mma@1,"));
    assert!(
        std::fs::read_to_string(out.join("results.md"))
            .unwrap()
            .contains("| sift+dog | 4 |")
    );
    assert!(
        std::fs::read_to_string(out.join("mma.svg"))
            .unwrap()
            .contains("\nfreak+dog\n")
    );
}

#[test]
fn match_eval_bad_pairs_are_clear_and_empty_pairs_score_zero() {
    let dir = tempfile::tempdir().unwrap();
    let seq = dir.path().join("bad");
    make_sequence(&seq, 3);
    std::fs::write(seq.join("H_1_3"), "1 0 0\n0 1\n").unwrap();
    let out = featleak()
        .args([
            "match-eval",
            "--pairs",
            seq.to_str().unwrap(),
            "--out",
            "unused",
        ])
        .output()
        .unwrap();
    let err = common::stderr(&out);
    assert!(
        !out.status.success() && err.contains("H_1_3: unreadable homography: expected 9 numbers"),
        "{err}"
    );

    // A blank second image: no keypoints, so no matches, accuracy 0 and no homography.
    let seq = dir.path().join("blank");
    make_sequence(&seq, 4);
    std::fs::remove_file(seq.join("H_1_3")).unwrap();
    image::RgbImage::from_pixel(320, 240, image::Rgb([80, 80, 80]))
        .save(seq.join("2.png"))
        .unwrap();
    let out_dir = dir.path().join("out");
    let out = featleak()
        .args([
            "match-eval",
            "--pairs",
            seq.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    // Image 3 lost its homography: said, not silently dropped.
    assert!(
        common::stderr(&out).contains("warning: left out blank: image 3 has no homography H_1_3"),
        "{}",
        common::stderr(&out)
    );
    let csv = std::fs::read_to_string(out_dir.join("results.csv")).unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(
        row.starts_with("sift+dog,blank/1-2,") && row.contains(",0,0.0000,") && row.ends_with(",—"),
        "{row}"
    );
    assert!(
        !csv.contains("NaN")
            && !std::fs::read_to_string(out_dir.join("results.md"))
                .unwrap()
                .contains("NaN")
    );

    // A sequence of image 1 alone, beside a good one: said, and listed in results.json.
    let root = dir.path().join("root");
    make_sequence(&root.join("good"), 5);
    std::fs::create_dir_all(root.join("lone")).unwrap();
    scene(320, 240, 6).save(root.join("lone/1.png")).unwrap();
    let out_dir = dir.path().join("out-root");
    let match_eval = |extra: &[&str]| {
        featleak()
            .args(["match-eval", "--pairs", root.to_str().unwrap(), "--out"])
            .arg(&out_dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = match_eval(&[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("warning: left out lone: image 1 alone, no pair"),
        "{}",
        common::stderr(&out)
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["skipped"][0], "lone: image 1 alone, no pair");

    // A ratio that is not in (0, 1] is refused with its name.
    for ratio in ["NaN", "0", "2"] {
        let out = match_eval(&["--ratio", ratio]);
        assert!(!out.status.success());
        assert!(
            common::stderr(&out).contains("ratio") && common::stderr(&out).contains("(0, 1]"),
            "{}",
            common::stderr(&out)
        );
    }
}

#[test]
fn score_pairs_by_relative_path_and_reports_means() {
    let dir = tempfile::tempdir().unwrap();
    let (refs, recs) = (dir.path().join("ref"), dir.path().join("rec"));
    std::fs::create_dir_all(refs.join("sub")).unwrap();
    std::fs::create_dir_all(recs.join("sub")).unwrap();
    let a = scene(64, 48, 5);
    a.save(refs.join("sub/a.jpg")).unwrap();
    a.save(recs.join("sub/a.png")).unwrap();
    scene(64, 48, 6).save(refs.join("b.png")).unwrap();
    scene(64, 48, 7).save(recs.join("b.png")).unwrap();
    let out = dir.path().join("scores/metrics.json");
    featleak()
        .args([
            "score",
            "--reference",
            refs.to_str().unwrap(),
            "--reconstructed",
            recs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0]["name"], "b");
    assert_eq!(images[1]["name"], "sub/a");
    // JPEG reference against a lossless copy: close but not identical.
    assert!(
        images[1]["psnr"].as_f64().unwrap() > 25.0 && images[1]["ssim"].as_f64().unwrap() > 0.8
    );
    assert!(images[0]["ssim"].as_f64().unwrap() < 0.6);
    let mean = report["mean"]["psnr"].as_f64().unwrap();
    assert!(
        (mean - (images[0]["psnr"].as_f64().unwrap() + images[1]["psnr"].as_f64().unwrap()) / 2.0)
            .abs()
            < 1e-9
    );
    assert!(
        std::fs::read_to_string(out.with_extension("md"))
            .unwrap()
            .contains("| sub/a |")
    );

    // Different sizes: a clear error unless --fit.
    scene(32, 32, 8).save(recs.join("b.png")).unwrap();
    let o = featleak()
        .args([
            "score",
            "--reference",
            refs.to_str().unwrap(),
            "--reconstructed",
            recs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        common::stderr(&o).contains("32×32 but its reference"),
        "{}",
        common::stderr(&o)
    );
    // A reference without a reconstruction is left out of the means, with a warning.
    scene(64, 48, 9).save(refs.join("c.png")).unwrap();
    let o = featleak()
        .args(["score", "--fit", "--reference", refs.to_str().unwrap()])
        .args([
            "--reconstructed",
            recs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(
        common::stderr(&o).contains("warning: reference 'c' has no reconstruction"),
        "{}",
        common::stderr(&o)
    );
    std::fs::remove_file(refs.join("c.png")).unwrap();
    featleak()
        .args([
            "score",
            "--fit",
            "--reference",
            refs.to_str().unwrap(),
            "--reconstructed",
            recs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .success();
}

/// `n` scenes `width`×64 in `ref/`, and as reconstructions the attack would make of them (square,
/// 64×64): their centre crops in `copies/` and one flat grey in `grey/`.
fn references_copies_grey(
    dir: &Path,
    n: u64,
    width: u32,
    seed: u64,
) -> (PathBuf, PathBuf, PathBuf) {
    let (refs, copies, grey) = (dir.join("ref"), dir.join("copies"), dir.join("grey"));
    for d in [&refs, &copies, &grey] {
        std::fs::create_dir_all(d).unwrap();
    }
    for i in 0..n {
        let img = scene(width, 64, seed + i);
        img.save(refs.join(format!("r{i}.png"))).unwrap();
        image::imageops::crop_imm(&img, (width - 64) / 2, 0, 64, 64)
            .to_image()
            .save(copies.join(format!("r{i}.png")))
            .unwrap();
        image::RgbImage::from_pixel(64, 64, image::Rgb([120, 110, 100]))
            .save(grey.join(format!("r{i}.png")))
            .unwrap();
    }
    (refs, copies, grey)
}

/// Identification: copies single out their references among all of them; flat grey images,
/// which tie with every candidate, rank last.
#[test]
fn score_ranks_each_reconstruction_among_all_references() {
    let dir = tempfile::tempdir().unwrap();
    let (refs, copies, grey) = references_copies_grey(dir.path(), 6, 96, 40);
    let score = |recs: &Path| -> serde_json::Value {
        let out = recs.with_extension("json");
        let o = featleak()
            .args(["score", "--fit", "--reference", refs.to_str().unwrap()])
            .args(["--reconstructed", recs.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", common::stderr(&o));
        assert!(
            common::stderr(&o).contains("only 6 candidate references"),
            "{}",
            common::stderr(&o)
        );
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap()
    };
    let id = &score(&copies)["identification"];
    assert_eq!(id["candidates"], 6);
    assert_eq!(
        (id["rank_1"].as_f64(), id["mean_rank"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    let id = &score(&grey)["identification"];
    assert_eq!(
        (id["rank_1"].as_f64(), id["mean_rank"].as_f64()),
        (Some(0.0), Some(6.0))
    );
    assert!((id["chance"].as_f64().unwrap() - 1.0 / 6.0).abs() < 1e-12);
}

#[test]
fn truncated_jpegs_are_named_and_left_out_by_extract_and_score() {
    let dir = tempfile::tempdir().unwrap();
    let (refs, recs) = (dir.path().join("ref"), dir.path().join("rec"));
    std::fs::create_dir_all(&refs).unwrap();
    std::fs::create_dir_all(&recs).unwrap();
    for (name, seed) in [("a", 1), ("b", 2)] {
        scene(128, 96, seed)
            .save(refs.join(format!("{name}.jpg")))
            .unwrap();
        scene(128, 96, seed + 10)
            .save(recs.join(format!("{name}.png")))
            .unwrap();
    }
    // b.jpg cut in half: a decoder would fill the missing rows with grey.
    let bytes = std::fs::read(refs.join("b.jpg")).unwrap();
    std::fs::write(refs.join("b.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    // Exit status 1 (something was left out), the file and the reason named.
    let fails_naming_truncated = |out: &std::process::Output| {
        let truncated = "b.jpg: truncated JPEG (the data ends before the end-of-image marker)";
        assert_eq!(out.status.code(), Some(1));
        assert!(
            common::stderr(out).contains(truncated),
            "{}",
            common::stderr(out)
        );
    };

    let feats = dir.path().join("features");
    let out = featleak()
        .args(["extract", "--images", refs.to_str().unwrap(), "--out"])
        .arg(&feats)
        .output()
        .unwrap();
    fails_naming_truncated(&out);
    assert!(feats.join("a.npz").is_file() && !feats.join("b.npz").exists());

    let scores = dir.path().join("scores.json");
    let out = featleak()
        .args(["score", "--reference", refs.to_str().unwrap()])
        .args(["--reconstructed", recs.to_str().unwrap(), "--out"])
        .arg(&scores)
        .output()
        .unwrap();
    fails_naming_truncated(&out);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&scores).unwrap()).unwrap();
    assert_eq!(report["images"].as_array().unwrap().len(), 1);
}

#[test]
fn score_measures_lpips_with_the_users_backbone_and_names_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let (refs, copies, grey) = references_copies_grey(dir.path(), 3, 64, 60);
    let backbone = dir.path().join("alexnet.safetensors");
    common::write_alexnet(&backbone);
    let score = |recs: &Path, backbone: &Path| {
        let out = recs.with_extension("json");
        let o = featleak()
            .args(["score", "--reference", refs.to_str().unwrap()])
            .args(["--reconstructed", recs.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()])
            .args(["--lpips-backbone", backbone.to_str().unwrap()])
            .output()
            .unwrap();
        (o, out)
    };
    let (o, out) = score(&copies, &backbone);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(json["lpips"]["net"], "alex");
    assert_eq!(json["lpips"]["mean"], 0.0);
    assert_eq!(json["images"][2]["lpips"], 0.0);
    let (o, out) = score(&grey, &backbone);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert!(json["lpips"]["mean"].as_f64().unwrap() > 1e-3, "{json}");
    let md = std::fs::read_to_string(out.with_extension("md")).unwrap();
    assert!(md.contains("| LPIPS |"), "{md}");

    // A VGG16 asked for, an AlexNet given: refused before anything is scored, naming the file.
    let o = featleak()
        .args(["score", "--reference", refs.to_str().unwrap()])
        .args(["--reconstructed", grey.to_str().unwrap()])
        .args(["--out", dir.path().join("vgg.json").to_str().unwrap()])
        .args([
            "--lpips-backbone",
            backbone.to_str().unwrap(),
            "--lpips-net",
            "vgg",
        ])
        .output()
        .unwrap();
    let err = common::stderr(&o);
    assert!(
        !o.status.success() && err.contains("alexnet.safetensors") && err.contains("VGG16"),
        "{err}"
    );
    assert!(!dir.path().join("vgg.json").exists());
    // The network alone means nothing.
    let o = featleak()
        .args(["score", "--reference", refs.to_str().unwrap()])
        .args(["--reconstructed", grey.to_str().unwrap()])
        .args([
            "--out",
            dir.path().join("x.json").to_str().unwrap(),
            "--lpips-net",
            "vgg",
        ])
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "--lpips-net without a backbone was accepted"
    );
}
