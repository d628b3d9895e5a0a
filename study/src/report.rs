//! The study's report: one self-contained `report/index.html` (pictures and plots embedded as
//! data URIs) with the threat model, the attack table and gallery, matching accuracy, the
//! mitigation sweep and the settings, plus `report/tables.md` with every table (the same seed
//! gives the same file). The page is the template `study/templates/demo_report.html`.

use crate::config::{Attacker, PAIR_SEQUENCES, POS_ONLY, WARPS};
use crate::{StudyConfig, StudyDir, StudyError};
use featleak_attack::baselines::{BASELINES, MEAN_COLOUR, load_square};
use featleak_attack::run::{AttackRun, RunConfig};
use featleak_attack::threat::Position;
use featleak_attack::{AttackerSource, ThreatModel};
use featleak_datasets::FileError;
use featleak_datasets::files::{read_json, write_bytes};
use featleak_eval::gallery::{Gallery, GalleryRow, svg_data_uri};
use featleak_eval::html::{Trusted, render};
use featleak_eval::score_report::ScoreReport;
use featleak_eval::table::{Table, fmt_num};
use featleak_mitigation::report::{
    EQUAL_UTILITY, equal_utility_table, frontier_svg, results_table,
};
use featleak_mitigation::sweep::SweepResults;
use featleak_train::RunFolder;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What the report is made from.
pub struct ReportInputs<'a> {
    /// The study's folders.
    pub dir: &'a StudyDir,
    /// Its settings.
    pub settings: &'a StudyConfig,
    /// Its attackers, the pos-only baseline last.
    pub attackers: &'a [Attacker],
    /// Matching summary on the study's pairs.
    pub matching: &'a Table,
}

/// Rows of the gallery in the report.
const GALLERY_ROWS: usize = 12;

/// The variables of `templates/demo_report.html`.
#[derive(Serialize)]
struct Page<'a> {
    /// The images the demo ran on, in words.
    corpus: String,
    seed: u64,
    /// Does the first attacker beat the pos-only baseline (one sentence)?
    verdict: String,
    /// Every attacker, the pos-only baseline last.
    attackers: Vec<AttackerView<'a>>,
    /// Number of held-out images scored.
    held_out: usize,
    /// Side of the reconstructions in pixels.
    size: u32,
    attack: &'a Table,
    gallery: &'a Gallery,
    pair_sequences: usize,
    warps: usize,
    matching: &'a Table,
    /// MMA plot (SVG data URI).
    mma: Trusted,
    sweep: &'a Table,
    /// Privacy/utility frontier (SVG data URI).
    frontier: Trusted,
    equal_utility_tolerance: String,
    equal_utility: &'a Table,
    /// The command that reproduces the demo.
    command: String,
    /// The demo's settings as JSON.
    settings: String,
    /// The sweep's configuration file.
    sweep_toml: String,
}

/// One attacker as the report shows it.
#[derive(Serialize)]
struct AttackerView<'a> {
    name: &'a str,
    /// Its threat model in words.
    threat: String,
    /// Its training curves (SVG data URI).
    curves: Trusted,
    /// Its threat model and training settings as JSON.
    settings: String,
}

/// Writes `report/index.html` and `report/tables.md`; returns the index's path.
pub fn write_report(inputs: &ReportInputs) -> Result<PathBuf, StudyError> {
    let dir = inputs.dir;
    let runs: Vec<(String, RunConfig)> = inputs
        .attackers
        .iter()
        .map(|a| RunConfig::load(&RunFolder::new(dir.run(&a.name))).map(|c| (a.name.clone(), c)))
        .collect::<Result<_, _>>()?;
    let steps: Vec<u64> = inputs
        .attackers
        .iter()
        .map(|a| {
            let run = RunFolder::new(dir.run(&a.name));
            run.steps_done()?.ok_or_else(|| StudyError::Folder {
                folder: run.root().to_path_buf(),
                problem: "holds no checkpoint".into(),
            })
        })
        .collect::<Result<_, StudyError>>()?;
    let scores: Vec<(String, ScoreReport)> = inputs
        .attackers
        .iter()
        .map(|a| {
            read_json(&dir.reconstructions(&a.name).join("metrics.json"))
                .map(|r| (a.name.clone(), r))
        })
        .collect::<Result<_, _>>()?;
    let baselines: Vec<(String, ScoreReport)> = BASELINES
        .iter()
        .map(|b| read_json(&dir.baselines().join(format!("{b}.json"))).map(|r| (b.to_string(), r)))
        .collect::<Result<_, _>>()?;
    let sweep: SweepResults = read_json(&dir.sweep().join("results.json"))?;

    let attack = attack_table(&runs, &steps, &scores, &baselines);
    let sweep_table =
        results_table(&sweep.cells).without_columns(&["seconds", "attacker", "lifted_attack"]);
    let equal_utility = equal_utility_table(&sweep.cells);
    let verdict = verdict(&scores, &baselines);

    let page = Page {
        corpus: inputs.settings.corpus_words(),
        seed: inputs.settings.seed,
        verdict: verdict.clone(),
        attackers: runs
            .iter()
            .map(|(name, run)| {
                Ok(AttackerView {
                    name,
                    threat: describe_threat(&run.threat, run.train_images.len()),
                    curves: svg_uri(&RunFolder::new(dir.run(name)).curves())?,
                    settings: serde_json::to_string_pretty(&(&run.threat, &run.training))?,
                })
            })
            .collect::<Result<_, StudyError>>()?,
        held_out: scores.first().map_or(0, |(_, s)| s.images.len()),
        size: inputs.settings.size,
        attack: &attack,
        gallery: &gallery(inputs, &scores)?,
        pair_sequences: PAIR_SEQUENCES,
        warps: WARPS,
        matching: inputs.matching,
        mma: svg_uri(&dir.matching().join("mma.svg"))?,
        sweep: &sweep_table,
        frontier: Trusted(svg_data_uri(&frontier_svg(&sweep.cells)?)),
        equal_utility_tolerance: EQUAL_UTILITY.to_string(),
        equal_utility: &equal_utility,
        command: inputs.settings.command_line(),
        settings: serde_json::to_string_pretty(inputs.settings)?,
        sweep_toml: std::fs::read_to_string(dir.sweep_config())
            .map_err(FileError::io("read", dir.sweep_config()))?,
    };
    let h = render(
        "demo_report.html",
        include_str!("../templates/demo_report.html"),
        &page,
    )?;

    let report = dir.report();
    let index = report.join("index.html");
    write_bytes(&index, h.as_bytes())?;
    let md = format!(
        "# featleak demo tables\n\n{verdict}\n\n## Attack\n\n{}\n## Matching\n\n{}\n## Mitigation sweep\n\n{}\n\
         ## Privacy-aware against random at equal utility\n\n{}",
        attack.to_markdown(),
        inputs.matching.to_markdown(),
        sweep_table.to_markdown(),
        equal_utility.to_markdown()
    );
    let tables = report.join("tables.md");
    write_bytes(&tables, md.as_bytes())?;
    Ok(index)
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
            training_words(run, *done),
            s,
        ));
    }
    for (name, s) in baselines {
        t.push(row(&format!("baseline: {name}"), "none", "—".into(), s));
    }
    t
}

/// A run's training steps; for one started from a bundled attacker, its steps first
/// (`zoo:sift (6560) + 60`).
fn training_words(run: &RunConfig, done: u64) -> String {
    let Some(init) = &run.training.init else {
        return done.to_string();
    };
    match AttackerSource::parse(init).map(|s| match s {
        AttackerSource::Zoo(entry) => entry.card().ok().map(|c| c.training.steps),
        AttackerSource::Run(_) => None,
    }) {
        Ok(Some(before)) => format!("{init} ({before}) + {done}"),
        _ => format!("{init} + {done}"),
    }
}

/// Two sentences: how far the first attacker beats each image's mean colour, and whether it
/// beats the pos-only baseline.
fn verdict(scores: &[(String, ScoreReport)], baselines: &[(String, ScoreReport)]) -> String {
    let (Some((name, main)), Some((_, pos))) =
        (scores.first(), scores.iter().find(|(n, _)| n == POS_ONLY))
    else {
        return String::new();
    };
    let colour =
        baselines
            .iter()
            .find(|(n, _)| n == MEAN_COLOUR)
            .map_or(String::new(), |(_, c)| {
                format!(
                    "The {name} attacker's reconstructions score {:+.2} dB PSNR and {:+.4} SSIM \
                 over each image's mean colour. ",
                    main.mean.psnr - c.mean.psnr,
                    main.mean.ssim - c.mean.ssim
                )
            });
    let (ds, dp) = (
        main.mean.ssim - pos.mean.ssim,
        main.mean.psnr - pos.mean.psnr,
    );
    let beats = ds > 0.0;
    format!(
        "{colour}The {name} attacker {} its pos-only baseline (keypoint positions alone): SSIM {:.4} against \
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
fn gallery(inputs: &ReportInputs, scores: &[(String, ScoreReport)]) -> Result<Gallery, StudyError> {
    let dir = inputs.dir;
    let r = inputs.settings.size;
    let Some((_, first)) = scores.first() else {
        return Err(StudyError::Settings("no attacker scores".into()));
    };
    let mut rows = Vec::new();
    for s in first.images.iter().take(GALLERY_ROWS) {
        let original = find_held_out(dir, &s.name)?;
        let mut pictures = vec![load_square(&original, r)?];
        let mut metrics = Vec::new();
        for (name, report) in scores {
            let path = dir.reconstructions(name).join(format!("{}.png", s.name));
            pictures.push(featleak_datasets::load_rgb(&path)?);
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
        picture_columns: std::iter::once("original".to_string())
            .chain(scores.iter().map(|(n, _)| n.clone()))
            .collect(),
        metric_columns: scores.iter().map(|(n, _)| format!("SSIM {n}")).collect(),
        rows,
    })
}

fn find_held_out(dir: &StudyDir, name: &str) -> Result<PathBuf, StudyError> {
    let path = dir.held_out().join(format!("{name}.png"));
    if path.exists() {
        Ok(path)
    } else {
        Err(StudyError::Folder {
            folder: dir.held_out(),
            problem: format!("held-out image {} is missing", path.display()),
        })
    }
}

/// The SVG file at `path` as a data URI.
fn svg_uri(path: &Path) -> Result<Trusted, StudyError> {
    let svg = std::fs::read_to_string(path).map_err(FileError::io("read", path))?;
    Ok(Trusted(svg_data_uri(&svg)))
}
