//! End-to-end tests of `featleak extract` and `featleak demo` through the built binary.

mod common;

use common::{assert_error, featleak, stderr as stderr_of};
use featleak_descriptors::{Descriptors, read_features};
use std::path::Path;

fn write_scene(path: &Path, seed: u64) {
    common::write_scene(path, 160, 120, seed);
}

#[test]
fn extract_mirrors_the_tree_into_npz_files_with_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (images, out) = (dir.path().join("images"), dir.path().join("out"));
    write_scene(&images.join("a/one.png"), 1);
    write_scene(&images.join("b/c/two.jpg"), 2);
    write_scene(&images.join("three.bmp"), 3);
    std::fs::write(images.join("notes.txt"), "not an image").unwrap();

    let out_arg = out.to_str().unwrap();
    featleak()
        .args([
            "extract",
            "--descriptor",
            "sift",
            "--detector",
            "harris",
            "--max-keypoints",
            "50",
        ])
        .args([
            "--images",
            images.to_str().unwrap(),
            "--out",
            out_arg,
            "--seed",
            "7",
        ])
        .assert()
        .success();
    for rel in ["a/one.npz", "b/c/two.npz", "three.npz"] {
        let fs = read_features(&out.join(rel)).unwrap();
        assert!(
            !fs.is_empty() && fs.len() <= 50,
            "{rel}: {} keypoints",
            fs.len()
        );
        assert_eq!(fs.image_size, (120, 160));
        assert_eq!(fs.extractor.name, "sift+harris");
        assert!(matches!(&fs.descriptors, Descriptors::Float(d) if d.ncols() == 128));
        assert!(
            fs.keypoints
                .iter()
                .all(|k| k.angle == -1.0 && k.x >= 16.0 && k.y >= 16.0)
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 7);
    assert_eq!(manifest["images"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["failures"].as_array().unwrap().len(), 0);
    assert_eq!(manifest["extractor"]["config"]["max_keypoints"], 50);
    assert_eq!(manifest["tool"]["name"], "featleak");
}

#[test]
fn bad_images_are_reported_one_by_one_and_the_rest_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (images, out) = (dir.path().join("images"), dir.path().join("out"));
    write_scene(&images.join("good.png"), 4);
    std::fs::write(images.join("corrupt.jpg"), b"\xff\xd8\xff\xe0 garbage").unwrap();
    std::fs::write(images.join("empty.png"), b"").unwrap();
    image::RgbImage::new(1, 1)
        .save(images.join("tiny.png"))
        .unwrap();
    image::RgbImage::from_pixel(64, 64, image::Rgb([90, 90, 90]))
        .save(images.join("blank.png"))
        .unwrap();

    let out_cmd = featleak()
        .args([
            "extract",
            "--images",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out_cmd.status.code(), Some(1));
    let err = stderr_of(&out_cmd);
    let stdout = String::from_utf8_lossy(&out_cmd.stdout);
    let all = format!("{stdout}{err}");
    assert!(all.contains("corrupt.jpg: not a decodable image"), "{all}");
    assert!(all.contains("empty.png: empty file (0 bytes)"), "{all}");
    assert!(
        all.contains("tiny.png: image is 1×1, smaller than the 16×16"),
        "{all}"
    );
    assert!(all.contains("blank.png: no keypoints detected"), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    assert!(read_features(&out.join("good.npz")).is_ok());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["failures"].as_array().unwrap().len(), 4);
    assert_eq!(manifest["images"].as_array().unwrap().len(), 1);

    // With --allow-empty the blank image yields an empty feature file instead of a failure.
    featleak()
        .args([
            "extract",
            "--allow-empty",
            "--images",
            images.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .assert()
        .code(1);
    assert_eq!(read_features(&out.join("blank.npz")).unwrap().len(), 0);
}

#[test]
fn unusable_folders_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    write_scene(&images.join("x.png"), 5);
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();

    let out = featleak()
        .args([
            "extract",
            "--images",
            images.to_str().unwrap(),
            "--out",
            file.join("sub").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_error(&out, "cannot create output folder");

    // A thread count no machine has is refused, not spawned.
    let out = featleak()
        .args([
            "extract",
            "--images",
            images.to_str().unwrap(),
            "--threads",
            "100000",
        ])
        .args(["--out", dir.path().join("t").to_str().unwrap()])
        .output()
        .unwrap();
    assert_error(&out, "--threads 100000 is more than 256");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = featleak()
        .args([
            "extract",
            "--images",
            empty.to_str().unwrap(),
            "--out",
            "unused",
        ])
        .output()
        .unwrap();
    assert_error(&out, "no images found in");

    let out = featleak()
        .args(["extract", "--images", "/no/such/folder", "--out", "unused"])
        .output()
        .unwrap();
    assert_error(&out, "/no/such/folder is not a folder");

    let out = featleak()
        .args([
            "extract",
            "--descriptor",
            "surf",
            "--images",
            images.to_str().unwrap(),
            "--out",
            "unused",
        ])
        .output()
        .unwrap();
    assert_error(&out, "invalid value 'surf' for '--descriptor <DESCRIPTOR>'");
    assert_error(
        &out,
        "[possible values: sift, freak, sosnet, xfeat, disk, aliked]",
    );
}

#[test]
fn a_second_run_reuses_finished_files_and_refuses_another_extractor() {
    let dir = tempfile::tempdir().unwrap();
    let (images, out) = (dir.path().join("images"), dir.path().join("out"));
    for i in 0..3 {
        write_scene(&images.join(format!("{i}.png")), 10 + i);
    }
    let run = |extra: &[&str]| {
        featleak()
            .args([
                "extract",
                "--images",
                images.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    assert!(run(&[]).status.success());
    let first = std::fs::read(out.join("1.npz")).unwrap();
    std::fs::remove_file(out.join("1.npz")).unwrap();
    let second = run(&[]);
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("(2 reused"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    assert_eq!(
        std::fs::read(out.join("1.npz")).unwrap(),
        first,
        "extraction is deterministic"
    );

    let other = run(&["--detector", "fast"]);
    assert_error(&other, "holds features of another extractor (sift+dog");
    assert!(run(&["--detector", "fast", "--overwrite"]).status.success());
    assert_eq!(
        read_features(&out.join("0.npz")).unwrap().extractor.name,
        "sift+fast"
    );
}

#[test]
fn gray_option_chooses_and_records_the_grey_conversion() {
    use featleak_datasets::GrayConversion;
    use featleak_descriptors::{Extractor, ExtractorConfig};
    let dir = tempfile::tempdir().unwrap();
    let (images, out) = (dir.path().join("images"), dir.path().join("out"));
    write_scene(&images.join("a.jpg"), 20);
    write_scene(&images.join("b.png"), 21);
    let run = |gray: &str| {
        featleak()
            .args(["extract", "--gray", gray, "--images"])
            .args([images.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let done = run("imread-grayscale");
    assert!(done.status.success(), "{}", stderr_of(&done));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["extractor"]["config"]["gray"], "imread-grayscale");
    let mut config = ExtractorConfig::named("sift", "dog").unwrap();
    config.gray = GrayConversion::ImreadGrayscale;
    let extractor = config.build().unwrap();
    for name in ["a.jpg", "b.png"] {
        let gray = GrayConversion::ImreadGrayscale
            .load(&images.join(name))
            .unwrap();
        let expected = extractor.extract(&gray).unwrap();
        let ours = read_features(&out.join(name).with_extension("npz")).unwrap();
        assert_eq!(ours.keypoints, expected.keypoints, "{name}");
        assert_eq!(ours.extractor.config["gray"], "imread-grayscale");
    }
    // Resuming with another conversion is refused, saying which setting differs.
    assert_error(
        &run("pil"),
        r#"this run: sift+dog with gray = "pil", was "imread-grayscale""#,
    );
    assert_error(&run("luma"), "imread-grayscale");
}

#[test]
fn demo_refuses_too_few_scenes() {
    let dir = tempfile::tempdir().unwrap();
    let out = featleak()
        .args(["demo", "--scenes", "3", "--out"])
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out)
            .contains("--scenes 3 leaves fewer than 8 training scenes after --held-out 24"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn extract_xfeat_on_its_own_keypoints_and_refuses_other_detectors_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let (images, out) = (dir.path().join("images"), dir.path().join("out"));
    write_scene(&images.join("one.png"), 4);
    let run = |extra: &[&str], out: &Path| {
        featleak()
            .args(["extract", "--descriptor", "xfeat", "--max-keypoints", "300"])
            .args(extra)
            .args(["--images", images.to_str().unwrap(), "--out"])
            .arg(out)
            .output()
            .unwrap()
    };
    let ok = run(&[], &out);
    assert!(ok.status.success(), "{}", stderr_of(&ok));
    let fs = read_features(&out.join("one.npz")).unwrap();
    assert_eq!(fs.extractor.name, "xfeat+xfeat");
    assert!(!fs.is_empty() && fs.len() <= 300, "{} keypoints", fs.len());
    assert!(matches!(&fs.descriptors, Descriptors::Float(d) if d.ncols() == 64));
    assert!(
        fs.keypoints
            .windows(2)
            .all(|k| k[0].response >= k[1].response),
        "strongest first"
    );

    let other = run(&["--detector", "dog"], &dir.path().join("dog"));
    assert_error(&other, "descriptor xfeat goes with detector xfeat only");
    let weights = dir.path().join("xfeat.pt");
    std::fs::write(&weights, b"not a checkpoint").unwrap();
    let bad = run(
        &["--weights", weights.to_str().unwrap()],
        &dir.path().join("bad"),
    );
    assert_error(&bad, "xfeat.pt");
}
