//! End-to-end test of `featleak demo` at a tiny size: every stage runs, the report's links and
//! embedded pictures resolve, the same seed gives the same tables, and a folder holding a demo
//! with other settings is refused. When Debian's `chromium` is installed, the report is also
//! opened headless and screenshotted.

mod common;

use base64::Engine;
use common::{assert_error, featleak, stderr};
use std::path::Path;

const TINY: [&str; 14] = [
    "--scenes",
    "40",
    "--held-out",
    "6",
    "--size",
    "32",
    "--steps",
    "4",
    "--adaptive-steps",
    "2",
    "--descriptors",
    "sift,freak",
    "--seed",
    "5",
];

fn demo(out: &Path) -> std::process::Output {
    featleak()
        .args(["demo", "--out", out.to_str().unwrap()])
        .args(TINY)
        .output()
        .unwrap()
}

/// Values of `attr="…"` in `html`.
fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let key = format!(" {attr}=\"");
    html.match_indices(&key)
        .map(|(i, _)| {
            let rest = &html[i + key.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// Checks every `src` and `href` of the page: data URIs decode to a PNG or an SVG, relative
/// links name existing files. Returns the number of embedded pictures.
fn check_links(index: &Path) -> usize {
    let html = std::fs::read_to_string(index).unwrap();
    let mut pictures = 0;
    for v in attribute_values(&html, "src")
        .into_iter()
        .chain(attribute_values(&html, "href"))
    {
        if let Some(data) = v.strip_prefix("data:image/png;base64,") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            image::load_from_memory(&bytes).expect("embedded PNG decodes");
            pictures += 1;
        } else if let Some(data) = v.strip_prefix("data:image/svg+xml;base64,") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap();
            let svg = String::from_utf8(bytes).unwrap();
            assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
            pictures += 1;
        } else {
            assert!(!v.contains("://"), "external link {v}");
            let target = index.parent().unwrap().join(v);
            assert!(target.is_file(), "broken link {v}");
        }
    }
    pictures
}

#[test]
fn demo_runs_every_stage_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let out = demo(&a);
    assert!(out.status.success(), "{}", stderr(&out));
    for stage in 1..=8 {
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("[{stage}/8]")),
            "stage {stage} missing"
        );
    }
    for f in [
        "demo.json",
        "sweep.toml",
        "matching/mma.svg",
        "runs/sift/run.json",
        "runs/freak/run.json",
        "runs/pos-only/run.json",
        "reconstructions/sift/metrics.json",
        "baselines/mean-colour.json",
        "sweep/results.csv",
        "sweep/frontier.svg",
        "pairs/seq_00/H_1_6",
    ] {
        assert!(a.join(f).is_file(), "{f} missing");
    }
    let index = a.join("report/index.html");
    // 12 gallery rows would need 12 held-out images: 6 rows × (original + 3 attackers),
    // 3 training curves, the MMA plot and the frontier.
    assert_eq!(check_links(&index), 6 * 4 + 3 + 2);
    let tables = std::fs::read_to_string(a.join("report/tables.md")).unwrap();
    for needle in [
        // Each attacker fine-tunes its bundled attacker.
        "| sift | sift+dog desc+pos | zoo:sift (",
        ") + 4 |",
        "| freak | freak+harris desc+pos | zoo:freak (6560) + 4 |",
        "| pos-only | sift+dog pos-only | zoo:pos-only (6560) + 4 |",
        "over each image's mean colour",
        "baseline: mean-colour",
        "| freak+dog | 30 |",
        "| freak | leakage | 0.2 |",
    ] {
        assert!(tables.contains(needle), "{needle} not in\n{tables}");
    }

    // The same seed elsewhere: identical tables.
    let out = demo(&b);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(b.join("report/tables.md")).unwrap(),
        tables
    );

    // Rerunning in place reuses the finished work and rewrites the same tables.
    let out = demo(&a);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("resuming the demo"));
    assert_eq!(
        std::fs::read_to_string(a.join("report/tables.md")).unwrap(),
        tables
    );

    // Other settings in the same folder are refused, naming the folder.
    let out = featleak()
        .args(["demo", "--out", a.to_str().unwrap()])
        .args(&TINY[..12])
        .args(["--seed", "6"])
        .output()
        .unwrap();
    assert_error(&out, "holds a demo with other settings");

    screenshot_if_chromium(&index, &dir.path().join("shot.png"));
}

/// Opens the report in headless Chromium when it is installed and checks the screenshot shows
/// more than a blank page.
fn screenshot_if_chromium(index: &Path, shot: &Path) {
    let Ok(status) = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,2000",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", index.display()),
        ])
        .stderr(std::process::Stdio::null())
        .status()
    else {
        eprintln!("chromium not installed: screenshot skipped");
        return;
    };
    assert!(status.success());
    let img = image::open(shot).unwrap().to_rgb8();
    let non_white = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    assert!(
        non_white > img.len() / 3 / 10,
        "screenshot is mostly blank ({non_white} non-white pixels)"
    );
}
