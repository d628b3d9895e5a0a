//! The demo's report: one self-contained `report/index.html` (pictures and plots embedded as
//! data URIs) with the threat model, the attack table and gallery, matching accuracy, the
//! mitigation sweep and the settings, plus `report/tables.md` with every table (the same seed
//! gives the same file).

use crate::attack::load_square;
use crate::demo::{DemoArgs, DemoDir, POS_ONLY};
use anyhow::{Context, anyhow};
use featleak_attack::ThreatModel;
use featleak_attack::run::{RunConfig, RunDir, read_json};
use featleak_attack::threat::Position;
use featleak_datasets::atomic::write_bytes_atomic;
use featleak_eval::gallery::{GALLERY_CSS, Gallery, GalleryRow, SORT_SCRIPT, escape, svg_data_uri};
use featleak_eval::score_report::ScoreReport;
use featleak_eval::table::{Table, fmt_num};
use featleak_mitigation::report::{
    EQUAL_UTILITY, equal_utility_table, frontier_svg, results_table,
};
use featleak_mitigation::sweep::SweepResults;
use std::path::{Path, PathBuf};

/// What the report is made from.
pub struct ReportInputs<'a> {
    pub dir: &'a DemoDir,
    pub settings: &'a DemoArgs,
    /// (run name, descriptor, threat preset), the pos-only baseline last.
    pub attackers: &'a [(String, String, String)],
    /// Matching summary of `featleak match-eval` on the demo's pairs.
    pub matching: &'a Table,
    pub sweep_config: &'a Path,
}

/// Rows of the gallery in the report.
const GALLERY_ROWS: usize = 12;

/// Writes `report/index.html` and `report/tables.md`; returns the index's path.
pub fn write_report(inputs: &ReportInputs) -> anyhow::Result<PathBuf> {
    let dir = inputs.dir;
    let runs: Vec<(String, RunConfig)> = inputs
        .attackers
        .iter()
        .map(|(name, ..)| {
            RunConfig::load(&RunDir::new(dir.run(name)))
                .map(|c| (name.clone(), c))
                .map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<_>>()?;
    let steps: Vec<u64> = inputs
        .attackers
        .iter()
        .map(|(name, ..)| {
            let run = RunDir::new(dir.run(name));
            match run.load_state() {
                Ok(Some(state)) => Ok(state.step),
                Ok(None) => Err(anyhow!("{} holds no checkpoint", run.root.display())),
                Err(e) => Err(anyhow!(e)),
            }
        })
        .collect::<anyhow::Result<_>>()?;
    let scores: Vec<(String, ScoreReport)> = inputs
        .attackers
        .iter()
        .map(|(name, ..)| {
            read_json(&dir.reconstructions(name).join("metrics.json"))
                .map(|r| (name.clone(), r))
                .map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<_>>()?;
    let baselines: Vec<(String, ScoreReport)> = ["mean-image", "mean-colour"]
        .iter()
        .map(|b| {
            read_json(&dir.baselines().join(format!("{b}.json")))
                .map(|r| (b.to_string(), r))
                .map_err(anyhow::Error::msg)
        })
        .collect::<anyhow::Result<_>>()?;
    let sweep: SweepResults =
        read_json(&dir.sweep().join("results.json")).map_err(anyhow::Error::msg)?;

    let attack = attack_table(&runs, &steps, &scores, &baselines);
    let sweep_table = results_table(&sweep.cells).without_columns(&["seconds", "attacker"]);
    let equal_utility = equal_utility_table(&sweep.cells);
    let verdict = verdict(&scores);

    let mut h = String::new();
    h.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>featleak demo report</title><style>body{{font-family:sans-serif;margin:1.5em;max-width:1200px}}\
         {GALLERY_CSS} pre{{background:#f6f6f6;padding:8px;overflow:auto}} img.plot{{max-width:720px;width:100%}}\
         .verdict{{font-size:1.1em;background:#eef6ee;padding:8px}}\
         .row{{display:flex;flex-wrap:wrap}} .row figure{{width:380px;margin:4px}} .row img.plot{{width:100%}}\
         img.pic{{width:128px}}</style>\
         <script>{SORT_SCRIPT}</script></head><body>\n"
    ));
    h.push_str("<h1>featleak demo report</h1>\n");
    h.push_str(&format!(
        "<p>Localisation services receive sparse local features (keypoints and descriptors) from a \
         user's photos. This report measures how much of the photo an attacker recovers from them, \
         and what revealing fewer features costs in matching accuracy. Images: {}. Seed {}.</p>\n",
        escape(&corpus_words(inputs.settings)),
        inputs.settings.seed
    ));
    h.push_str(&format!("<p class=\"verdict\">{}</p>\n", escape(&verdict)));

    h.push_str("<h2>1. Threat model</h2>\n<ul>\n");
    for (name, run) in &runs {
        h.push_str(&format!(
            "<li><b>{}</b>: {}</li>\n",
            escape(name),
            escape(&describe_threat(&run.threat, run.train_images.len()))
        ));
    }
    h.push_str("</ul>\n");

    h.push_str("<h2>2. What the attacker recovers</h2>\n");
    h.push_str(&format!(
        "<p>Mean scores over the {} held-out images (never trained on), reconstructed at {}×{} \
         pixels. The two baselines learn nothing from features: the mean training image, and each \
         image's own mean colour (which an attacker cannot even know).</p>\n",
        scores.first().map_or(0, |(_, s)| s.images.len()),
        inputs.settings.size,
        inputs.settings.size
    ));
    h.push_str(&attack.to_html());
    h.push_str(&gallery(inputs, &scores)?.table_html());
    h.push_str("<p>Per-attacker galleries with the revealed keypoints: ");
    for (name, ..) in inputs.attackers {
        h.push_str(&format!(
            "<a href=\"../reconstructions/{name}/index.html\">{name}</a> "
        ));
    }
    h.push_str("</p>\n<h3>Training curves</h3>\n<div class=\"row\">");
    for (name, ..) in inputs.attackers {
        h.push_str(&format!(
            "<figure>{}<figcaption>{}</figcaption></figure>",
            svg_img(
                &RunDir::new(dir.run(name)).curves(),
                &format!("training curves of {name}"),
            )?,
            escape(name)
        ));
    }
    h.push_str("</div>\n");

    h.push_str("<h2>3. Matching accuracy (utility)</h2>\n");
    h.push_str(&format!(
        "<p>The first {} held-out images (full size), each warped by {} random homographies \
         (HPatches layout in <code>../pairs/</code>); every descriptor on the same DoG keypoints; \
         mutual nearest neighbours; MMA@k is the share of matches within k pixels of the true \
         position, H-acc@k the share of pairs whose estimated homography moves the corners by at \
         most k pixels.</p>\n",
        crate::demo::PAIR_SEQUENCES,
        crate::demo::WARPS
    ));
    h.push_str(&inputs.matching.to_html());
    h.push_str(&svg_img(
        &dir.matching().join("mma.svg"),
        "mean matching accuracy",
    )?);

    h.push_str("<h2>4. Mitigation: privacy against utility</h2>\n");
    h.push_str(
        "<p>Each strategy reveals a share (keep) of each image's keypoints. Utility: matching on the \
         pairs with the query mitigated. Privacy: the attacker's SSIM on the mitigated held-out \
         images, non-adaptive (trained on full features) and adaptive (the stronger of that and a \
         copy fine-tuned on features mitigated the same way). Lower SSIM at the same MMA@3 is \
         better; the frontier plot marks the Pareto-optimal cells.</p>\n",
    );
    h.push_str(&sweep_table.to_html());
    let frontier = frontier_svg(&sweep.cells).map_err(|e| anyhow!("frontier plot: {e}"))?;
    h.push_str(&format!(
        "<img class=\"plot\" alt=\"privacy/utility frontier\" src=\"{}\">\n",
        svg_data_uri(&frontier)
    ));
    h.push_str(&format!(
        "<h3>Privacy-aware against random at equal utility</h3>\n<p>Each <code>leakage</code> cell \
         next to the <code>random</code> cell closest in MMA@3 (within ±{EQUAL_UTILITY}); a negative \
         Δ means the privacy-aware strategy leaks less at the same matching accuracy.</p>\n{}",
        equal_utility.to_html()
    ));
    h.push_str(
        "<p>Reconstructions per strategy: <a href=\"../sweep/gallery.html\">sweep gallery</a>.</p>\n",
    );

    h.push_str("<h2>5. Settings</h2>\n");
    h.push_str(&format!(
        "<p>Command: <code>{}</code></p>\n<pre>{}</pre>\n<p>Sweep configuration \
         (<code>sweep.toml</code>):</p>\n<pre>{}</pre>\n",
        escape(&command_line(inputs.settings)),
        escape(&serde_json::to_string_pretty(inputs.settings)?),
        escape(
            &std::fs::read_to_string(inputs.sweep_config)
                .with_context(|| format!("cannot read {}", inputs.sweep_config.display()))?
        )
    ));
    for (name, run) in &runs {
        h.push_str(&format!(
            "<details><summary>Threat model and training of {}</summary><pre>{}</pre></details>\n",
            escape(name),
            escape(&serde_json::to_string_pretty(&(
                &run.threat,
                &run.training
            ))?)
        ));
    }
    h.push_str("</body></html>\n");

    let report = dir.report();
    std::fs::create_dir_all(&report)
        .with_context(|| format!("cannot create {}", report.display()))?;
    let index = report.join("index.html");
    write_bytes_atomic(&index, h.as_bytes())
        .with_context(|| format!("cannot write {}", index.display()))?;
    let md = format!(
        "# featleak demo tables\n\n{verdict}\n\n## Attack\n\n{}\n## Matching\n\n{}\n## Mitigation sweep\n\n{}\n\
         ## Privacy-aware against random at equal utility\n\n{}",
        attack.to_markdown(),
        inputs.matching.to_markdown(),
        sweep_table.to_markdown(),
        equal_utility.to_markdown()
    );
    let tables = report.join("tables.md");
    write_bytes_atomic(&tables, md.as_bytes())
        .with_context(|| format!("cannot write {}", tables.display()))?;
    Ok(index)
}

fn corpus_words(settings: &DemoArgs) -> String {
    match &settings.images {
        None => format!(
            "{} generated scenes (procedural, seeded; nothing downloaded)",
            settings.scenes
        ),
        Some(dir) => format!("photos from {}", dir.display()),
    }
}

/// The command that reproduces the demo.
fn command_line(s: &DemoArgs) -> String {
    let mut c = format!(
        "featleak demo --out {} --seed {} --descriptors {} --size {} --width {} --held-out {}",
        s.out.display(),
        s.seed,
        s.descriptors.join(","),
        s.size,
        s.width,
        s.held_out
    );
    match &s.images {
        Some(dir) => c.push_str(&format!(
            " --images {} --max-images {}",
            dir.display(),
            s.max_images
        )),
        None => c.push_str(&format!(" --scenes {}", s.scenes)),
    }
    match s.minutes {
        Some(m) => c.push_str(&format!(" --minutes {m}")),
        None => c.push_str(&format!(" --steps {}", s.steps)),
    }
    c.push_str(&format!(" --adaptive-steps {}", s.adaptive_steps));
    c
}

/// The threat model in plain words.
pub fn describe_threat(t: &ThreatModel, train_images: usize) -> String {
    let mut what = Vec::new();
    if t.reveals.descriptors {
        what.push(format!("its {} descriptor", t.extractor.descriptor.name()));
    }
    what.push(match t.reveals.position {
        Position::Exact => "its exact position".to_string(),
        Position::Grid { cell } => format!("its position rounded to a {cell}-pixel grid"),
    });
    if t.reveals.scale {
        what.push("its scale".into());
    }
    if t.reveals.orientation {
        what.push("its orientation".into());
    }
    let share = |s: featleak_attack::threat::Share| {
        if s.min == s.max {
            format!("{:.0} %", 100.0 * s.min)
        } else {
            format!("{:.0}–{:.0} %", 100.0 * s.min, 100.0 * s.max)
        }
    };
    format!(
        "for each revealed keypoint ({} extractor on a {r2}×{r2} image) the attacker receives {}. \
         It sees {} of each victim's keypoints, trained on {} images of its own (seeing {} of \
         their keypoints), and reconstructs a {r}×{r} picture.",
        t.extractor.name(),
        what.join(", "),
        share(t.attack_share),
        train_images,
        share(t.train_share),
        r2 = t.feature_resolution,
        r = t.resolution,
    )
}

fn attack_table(
    runs: &[(String, RunConfig)],
    steps: &[u64],
    scores: &[(String, ScoreReport)],
    baselines: &[(String, ScoreReport)],
) -> Table {
    let mut t = Table::new([
        "attacker",
        "threat model",
        "training steps",
        "PSNR [dB]",
        "SSIM",
        "MAE",
    ]);
    let row = |name: &str, threat: &str, steps: String, s: &ScoreReport| {
        vec![
            name.to_string(),
            threat.to_string(),
            steps,
            fmt_num(Some(s.mean.psnr), 2),
            fmt_num(Some(s.mean.ssim), 4),
            fmt_num(Some(s.mean.mae), 4),
        ]
    };
    for (((name, run), (_, s)), done) in runs.iter().zip(scores).zip(steps) {
        t.push(row(
            name,
            &format!("{} {}", run.threat.extractor.name(), run.threat.name),
            done.to_string(),
            s,
        ));
    }
    for (name, s) in baselines {
        t.push(row(&format!("baseline: {name}"), "none", "—".into(), s));
    }
    t
}

/// One sentence: does the first attacker beat the pos-only baseline?
fn verdict(scores: &[(String, ScoreReport)]) -> String {
    let (Some((name, main)), Some((_, pos))) =
        (scores.first(), scores.iter().find(|(n, _)| n == POS_ONLY))
    else {
        return String::new();
    };
    let (ds, dp) = (
        main.mean.ssim - pos.mean.ssim,
        main.mean.psnr - pos.mean.psnr,
    );
    let beats = ds > 0.0;
    format!(
        "The {name} attacker {} its pos-only baseline (keypoint positions alone): SSIM {:.4} against \
         {:.4} ({ds:+.4}), PSNR {:.2} dB against {:.2} dB ({dp:+.2} dB). {}",
        if beats { "beats" } else { "does not beat" },
        main.mean.ssim,
        pos.mean.ssim,
        main.mean.psnr,
        pos.mean.psnr,
        if beats {
            "The descriptors themselves leak image content."
        } else {
            "Train longer (--steps) for the descriptors' leak to show."
        }
    )
}

/// Originals next to every attacker's reconstruction, sortable by each attacker's SSIM.
fn gallery(inputs: &ReportInputs, scores: &[(String, ScoreReport)]) -> anyhow::Result<Gallery> {
    let dir = inputs.dir;
    let r = inputs.settings.size;
    let Some((_, first)) = scores.first() else {
        return Err(anyhow!("no attacker scores"));
    };
    let mut rows = Vec::new();
    for s in first.images.iter().take(GALLERY_ROWS) {
        let original = find_held_out(dir, &s.name)?;
        let mut pictures = vec![load_square(&original, r)?];
        let mut metrics = Vec::new();
        for (name, report) in scores {
            let path = dir.reconstructions(name).join(format!("{}.png", s.name));
            pictures.push(
                image::open(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .to_rgb8(),
            );
            metrics.push(
                report
                    .images
                    .iter()
                    .find(|x| x.name == s.name)
                    .map(|x| x.ssim),
            );
        }
        rows.push(GalleryRow {
            name: s.name.clone(),
            pictures,
            metrics,
        });
    }
    Ok(Gallery {
        title: String::new(),
        intro_html: String::new(),
        picture_columns: std::iter::once("original".to_string())
            .chain(scores.iter().map(|(n, _)| n.clone()))
            .collect(),
        metric_columns: scores.iter().map(|(n, _)| format!("SSIM {n}")).collect(),
        rows,
    })
}

fn find_held_out(dir: &DemoDir, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.held_out().join(format!("{name}.png"));
    if path.exists() {
        Ok(path)
    } else {
        Err(anyhow!("held-out image {} is missing", path.display()))
    }
}

/// An `<img>` embedding the SVG file at `path`.
fn svg_img(path: &Path, alt: &str) -> anyhow::Result<String> {
    let svg =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!(
        "<img class=\"plot\" alt=\"{}\" src=\"{}\">\n",
        escape(alt),
        svg_data_uri(&svg)
    ))
}
