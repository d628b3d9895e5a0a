//! A sweep's report files: `results.csv`, `results.md`, `frontier.svg` (SSIM of the adaptive
//! attacker against MMA@3, one series per strategy, the Pareto frontier marked) and
//! `gallery.html` (one row per victim, one column per strategy at the gallery's keep fraction;
//! template `mitigation/templates/sweep_gallery.html`).

use crate::sweep::{CellResult, LiftedAttack, NO_DEFENCE, SweepConfig, SweepDir, SweepResults};
use featleak_eval::gallery::{Gallery, GalleryRow};
use featleak_eval::plot::{Axes, Series, scatter_frontier_svg};
use featleak_eval::table::{Table, fmt_num};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::MitigationError;
use featleak_datasets::files::{read_json, write_bytes};

/// Column names of `results.csv` / `results.md`, in order.
pub const COLUMNS: [&str; 30] = [
    "descriptor",
    "strategy",
    "keep",
    "defence",
    "strength",
    "kept_keypoints",
    "query_keypoints",
    "mma@1",
    "mma@3",
    "mma@5",
    "homography_acc@3",
    "ssim_nonadaptive",
    "psnr_nonadaptive",
    "mae_nonadaptive",
    "ssim_adaptive",
    "psnr_adaptive",
    "mae_adaptive",
    "ssim_fine_tuned",
    "psnr_fine_tuned",
    "adaptive_steps",
    "identification_nonadaptive",
    "identification_adaptive",
    "lpips_nonadaptive",
    "lpips_adaptive",
    "ssim_mean_colour",
    "psnr_mean_colour",
    "pareto",
    "seconds",
    "attacker",
    "lifted_attack",
];

/// The results as a table, one row per cell sorted by descriptor, defence (none first),
/// strategy, falling keep and rising strength.
pub fn results_table(cells: &[CellResult]) -> Table {
    let mut t = Table::new(COLUMNS);
    let mut sorted: Vec<&CellResult> = cells.iter().collect();
    sorted.sort_by(|a, b| {
        let rank = |c: &CellResult| (c.defence != NO_DEFENCE, c.defence.clone());
        (&a.descriptor, rank(a), &a.strategy)
            .cmp(&(&b.descriptor, rank(b), &b.strategy))
            .then(b.keep.total_cmp(&a.keep))
            .then(a.strength.total_cmp(&b.strength))
    });
    for c in sorted {
        let n = |v: f64, d: usize| fmt_num(Some(v), d);
        t.push(vec![
            c.descriptor.clone(),
            c.strategy.clone(),
            format!("{}", c.keep),
            c.defence.clone(),
            if c.defence == NO_DEFENCE {
                String::new()
            } else {
                format!("{}", c.strength)
            },
            n(c.kept_keypoints, 1),
            n(c.query_keypoints, 1),
            n(c.mma_1, 4),
            n(c.mma_3, 4),
            n(c.mma_5, 4),
            n(c.homography_acc_3, 4),
            n(c.ssim_nonadaptive, 4),
            n(c.psnr_nonadaptive, 2),
            n(c.mae_nonadaptive, 4),
            n(c.ssim_adaptive, 4),
            n(c.psnr_adaptive, 2),
            n(c.mae_adaptive, 4),
            n(c.ssim_fine_tuned, 4),
            n(c.psnr_fine_tuned, 2),
            c.adaptive_steps.to_string(),
            fmt_num(c.identification_nonadaptive, 3),
            fmt_num(c.identification_adaptive, 3),
            fmt_num(c.lpips_nonadaptive, 4),
            fmt_num(c.lpips_adaptive, 4),
            fmt_num(c.ssim_mean_colour, 4),
            fmt_num(c.psnr_mean_colour, 2),
            on_frontier(c, cells).to_string(),
            n(c.seconds, 1),
            c.attacker.clone(),
            c.lifted_attack.clone().unwrap_or_default(),
        ]);
    }
    t
}

/// Whether no other cell of the same descriptor is at least as good on both sides (MMA@3 at
/// least as high, adaptive SSIM at most as high) and strictly better on one.
pub fn on_frontier(c: &CellResult, cells: &[CellResult]) -> bool {
    !cells.iter().any(|o| {
        o.descriptor == c.descriptor
            && o.mma_3 >= c.mma_3
            && o.ssim_adaptive <= c.ssim_adaptive
            && (o.mma_3 > c.mma_3 || o.ssim_adaptive < c.ssim_adaptive)
    })
}

/// The frontier plot of every descriptor (one panel each, stacked in one SVG document).
pub fn frontier_svg(cells: &[CellResult]) -> Result<String, MitigationError> {
    let descriptors: BTreeSet<&str> = cells.iter().map(|c| c.descriptor.as_str()).collect();
    let mut panels = Vec::new();
    for d in descriptors {
        let mine: Vec<&CellResult> = cells.iter().filter(|c| c.descriptor == d).collect();
        let names: BTreeSet<String> = mine.iter().map(|c| series_name(c)).collect();
        let series: Vec<Series> = names
            .iter()
            .map(|s| Series {
                name: s.to_string(),
                points: mine
                    .iter()
                    .filter(|c| series_name(c) == *s)
                    .map(|c| (c.mma_3, c.ssim_adaptive))
                    .collect(),
            })
            .collect();
        let mut frontier: Vec<(f64, f64)> = mine
            .iter()
            .filter(|c| on_frontier(c, cells))
            .map(|c| (c.mma_3, c.ssim_adaptive))
            .collect();
        frontier.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (x, y) = bounds(&mine);
        let title = format!("{d}: privacy vs utility (lower-right is better)");
        panels.push(
            scatter_frontier_svg(
                &Axes {
                    title: &title,
                    x_label: "MMA@3 (utility)",
                    y_label: "SSIM of the adaptive attacker (leakage)",
                    x,
                    y,
                },
                &series,
                &frontier,
            )
            .map_err(|problem| MitigationError::Plot {
                what: "frontier.svg",
                problem: problem.to_string(),
            })?,
        );
    }
    Ok(featleak_eval::plot::stack_svgs(&panels))
}

/// One frontier plot (a panel per descriptor) of the cells of several sweeps, each given as its
/// folder or its `results.json`. The sweeps must have measured privacy on the same victims,
/// utility on the same pairs, and adapted their attackers for the same number of steps;
/// otherwise their points would not be comparable, and the error names the sweep that differs.
/// Folders that exist here are compared as canonical paths (relative ones resolved against the
/// current directory), so one folder recorded by a relative and an absolute path is the same.
pub fn combined_frontier_svg(sweeps: &[PathBuf]) -> Result<String, MitigationError> {
    let mut cells = Vec::new();
    let mut first: Option<(PathBuf, SweepConfig)> = None;
    for sweep in sweeps {
        let path = if sweep.is_dir() {
            sweep.join("results.json")
        } else {
            sweep.clone()
        };
        let results: SweepResults = read_json(&path)?;
        if let Some((first_path, a)) = &first {
            let b = &results.config;
            let victims = |p: &crate::sweep::PrivacyConfig| match p.max_images {
                0 => format!("all of {}", resolved(&p.images).display()),
                n => format!("at most {n} of {}", resolved(&p.images).display()),
            };
            let differs = [
                ("victims", victims(&a.privacy), victims(&b.privacy)),
                (
                    "pairs",
                    resolved(&a.utility.pairs).display().to_string(),
                    resolved(&b.utility.pairs).display().to_string(),
                ),
                (
                    "adaptive steps",
                    a.adaptive.steps.to_string(),
                    b.adaptive.steps.to_string(),
                ),
            ]
            .into_iter()
            .find(|(_, x, y)| x != y);
            if let Some((what, x, y)) = differs {
                return Err(MitigationError::Config {
                    file: Some(path),
                    problem: format!(
                        "its {what} are {y}, those of {} are {x}: the sweeps are not comparable",
                        first_path.display()
                    ),
                });
            }
        }
        cells.extend(results.cells);
        first.get_or_insert((path, results.config));
    }
    if cells.is_empty() {
        return Err(MitigationError::Config {
            file: None,
            problem: "the sweeps hold no finished cells".into(),
        });
    }
    frontier_svg(&strongest_cells(cells))
}

/// One cell per (descriptor, strategy, keep, defence, strength): where several sweeps judged the
/// same cell (another attack on a lifted defence, or the full-features cell of each), the one
/// whose adaptive attacker reconstructed best, so that a defence is plotted at the strongest
/// attack it met. First-seen order is kept.
fn strongest_cells(cells: Vec<CellResult>) -> Vec<CellResult> {
    let mut out: Vec<CellResult> = Vec::with_capacity(cells.len());
    for c in cells {
        match out.iter_mut().find(|o| o.key() == c.key()) {
            Some(o) if c.ssim_adaptive > o.ssim_adaptive => *o = c,
            Some(_) => {}
            None => out.push(c),
        }
    }
    out
}

/// A sweep's data folder as compared between sweeps: its canonical path when it exists here (so
/// one folder named by a relative and an absolute path is one folder), else the path as recorded.
fn resolved(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The frontier plot's series of a cell: its strategy, or its defence (over strengths).
fn series_name(c: &CellResult) -> String {
    match (c.defence.as_str(), c.lifted_attack.as_deref()) {
        (NO_DEFENCE, _) => c.strategy.clone(),
        (defence, Some(attack)) if attack != LiftedAttack::Point.name() => {
            format!("{defence} ({attack} attack)")
        }
        (defence, _) => defence.to_string(),
    }
}

fn bounds(cells: &[&CellResult]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let pad = |lo: f64, hi: f64| {
        let m = ((hi - lo) * 0.1).max(0.01);
        (lo - m)..(hi + m)
    };
    let xs = cells.iter().map(|c| c.mma_3);
    let ys = cells.iter().map(|c| c.ssim_adaptive);
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    (pad(x0, x1), pad(y0, y1))
}

/// One descriptor's cells at a glance: one row per strategy, one column per keep fraction
/// (falling), each cell `MMA@3 / adaptive SSIM`.
pub fn summary_table(cells: &[CellResult], descriptor: &str) -> Table {
    let mine: Vec<&CellResult> = cells
        .iter()
        .filter(|c| c.descriptor == descriptor && c.defence == NO_DEFENCE)
        .collect();
    let mut keeps: Vec<f32> = mine.iter().map(|c| c.keep).collect();
    keeps.sort_by(|a, b| b.total_cmp(a));
    keeps.dedup();
    let mut strategies: Vec<&str> = Vec::new();
    for c in &mine {
        if !strategies.contains(&c.strategy.as_str()) {
            strategies.push(&c.strategy);
        }
    }
    let mut t = Table::new(
        std::iter::once(format!("{descriptor}: MMA@3 / adaptive SSIM"))
            .chain(keeps.iter().map(|k| format!("keep {k}"))),
    );
    for s in strategies {
        let mut row = vec![s.to_string()];
        for k in &keeps {
            row.push(
                mine.iter()
                    .find(|c| c.strategy == s && c.keep == *k)
                    .map_or("—".into(), |c| {
                        format!("{:.3} / {:.3}", c.mma_3, c.ssim_adaptive)
                    }),
            );
        }
        t.push(row);
    }
    t
}

/// MMA@3 tolerance within which two cells count as equally useful.
pub const EQUAL_UTILITY: f64 = 0.02;

/// The privacy-aware strategy against random at equal utility: for every mitigated (keep < 1)
/// `leakage` cell, the `random` cell of the same descriptor (any keep < 1) closest in MMA@3,
/// when within [`EQUAL_UTILITY`]; a negative `Δ ssim_adaptive` means the privacy-aware strategy
/// leaks less at the same matching accuracy.
pub fn equal_utility_table(cells: &[CellResult]) -> Table {
    let mut t = Table::new([
        "descriptor",
        "leakage keep",
        "leakage mma@3",
        "leakage ssim_adaptive",
        "random keep",
        "random mma@3",
        "random ssim_adaptive",
        "Δ ssim_adaptive",
    ]);
    let mitigated = |name: &'static str| {
        cells
            .iter()
            .filter(move |c| c.strategy == name && c.keep < 1.0)
    };
    let mut rows: Vec<&CellResult> = mitigated("leakage").collect();
    rows.sort_by(|a, b| {
        a.descriptor
            .cmp(&b.descriptor)
            .then(b.keep.total_cmp(&a.keep))
    });
    for l in rows {
        let closest = mitigated("random")
            .filter(|r| r.descriptor == l.descriptor)
            .min_by(|a, b| {
                (a.mma_3 - l.mma_3)
                    .abs()
                    .total_cmp(&(b.mma_3 - l.mma_3).abs())
            })
            .filter(|r| (r.mma_3 - l.mma_3).abs() <= EQUAL_UTILITY + 1e-9);
        let n = |v: f64| fmt_num(Some(v), 4);
        let mut row = vec![
            l.descriptor.clone(),
            format!("{}", l.keep),
            n(l.mma_3),
            n(l.ssim_adaptive),
        ];
        match closest {
            Some(r) => row.extend([
                format!("{}", r.keep),
                n(r.mma_3),
                n(r.ssim_adaptive),
                format!("{:+.4}", l.ssim_adaptive - r.ssim_adaptive),
            ]),
            None => row.extend([
                format!("none within ±{EQUAL_UTILITY}"),
                "—".into(),
                "—".into(),
                "—".into(),
            ]),
        }
        t.push(row);
    }
    t
}

/// Writes `results.csv`, `results.md`, `frontier.svg` and `gallery.html` into the sweep folder.
pub fn write_report(dir: &SweepDir, results: &SweepResults) -> Result<(), MitigationError> {
    let table = results_table(&results.cells);
    write_bytes(&dir.root.join("results.csv"), table.to_csv().as_bytes())?;
    let descriptors: BTreeSet<&str> = results
        .cells
        .iter()
        .map(|c| c.descriptor.as_str())
        .collect();
    let summaries: String = descriptors
        .iter()
        .map(|d| summary_table(&results.cells, d).to_markdown() + "\n")
        .collect();
    let md = format!(
        "# Mitigation sweep\n\nPrivacy: PSNR/SSIM/MAE of reconstructions of {} by the attacker \
         trained on full features (nonadaptive) and the stronger of it and the same network \
         fine-tuned on mitigated features for {} steps (adaptive; the fine-tuned network alone \
         in `*_fine_tuned`). Utility: MMA and homography accuracy on {} (query features \
         mitigated, map features whole). `pareto`: on the SSIM-vs-MMA@3 frontier of its \
         descriptor.\n\n## At a glance\n\n{summaries}## All columns\n\n{}\n\
         ## Privacy-aware against random at equal utility\n\nEach `leakage` \
         cell next to the `random` cell of its descriptor closest in MMA@3 (within ±{EQUAL_UTILITY}); \
         negative Δ: the privacy-aware strategy leaks less at the same matching accuracy.\n\n{}",
        results.config.privacy.images.display(),
        results.config.adaptive.steps,
        results.config.utility.pairs.display(),
        table.to_markdown(),
        equal_utility_table(&results.cells).to_markdown()
    );
    write_bytes(&dir.root.join("results.md"), md.as_bytes())?;
    if !results.cells.is_empty() {
        write_bytes(
            &dir.root.join("frontier.svg"),
            frontier_svg(&results.cells)?.as_bytes(),
        )?;
    }
    let gallery = gallery(dir, results)?.render(
        "sweep_gallery.html",
        include_str!("../templates/sweep_gallery.html"),
        &GalleryPage {
            percent: format!("{:.0}", results.config.gallery.keep * 100.0),
        },
    )?;
    Ok(write_bytes(
        &dir.root.join("gallery.html"),
        gallery.as_bytes(),
    )?)
}

/// The variables of `templates/sweep_gallery.html` besides the gallery.
#[derive(serde::Serialize)]
struct GalleryPage {
    /// The gallery's keep fraction in percent.
    percent: String,
}

/// One row per victim: original | reconstruction under each (descriptor, strategy) at the
/// gallery's keep fraction (adaptive attacker).
fn gallery(dir: &SweepDir, results: &SweepResults) -> Result<Gallery, MitigationError> {
    let keep = results.config.gallery.keep;
    let descriptors: BTreeSet<&str> = results
        .cells
        .iter()
        .map(|c| c.descriptor.as_str())
        .collect();
    let strategies = &results.config.strategies;
    let mut picture_columns = vec!["original".to_string()];
    let mut rows = Vec::new();
    for d in &descriptors {
        for s in strategies {
            picture_columns.push(format!("{d} {s}"));
        }
    }
    for i in 0..results.config.gallery.images {
        let mut pictures = Vec::new();
        for (k, d) in descriptors.iter().enumerate() {
            let original = dir.gallery_original(d, i);
            if !original.exists() {
                break;
            }
            if k == 0 {
                pictures.push(read_png(&original)?);
            }
            for s in strategies {
                let p = dir.gallery_picture(d, s, i);
                pictures.push(if p.exists() {
                    read_png(&p)?
                } else {
                    image::RgbImage::new(1, 1)
                });
            }
        }
        if pictures.len() == picture_columns.len() {
            rows.push(GalleryRow {
                name: format!("victim {i}"),
                pictures,
                metrics: Vec::new(),
            });
        }
    }
    Ok(Gallery {
        title: format!("Reconstructions at keep {keep}"),
        picture_columns,
        metric_columns: Vec::new(),
        rows,
    })
}

fn read_png(path: &std::path::Path) -> Result<image::RgbImage, MitigationError> {
    Ok(featleak_datasets::load_rgb(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(strategy: &str, keep: f32, mma_3: f64, ssim_adaptive: f64) -> CellResult {
        CellResult {
            descriptor: "sift".into(),
            attacker: "run".into(),
            strategy: strategy.into(),
            keep,
            defence: NO_DEFENCE.into(),
            strength: 0.0,
            adaptive_steps: 30,
            identification_nonadaptive: None,
            identification_adaptive: None,
            lpips_nonadaptive: None,
            lpips_adaptive: None,
            ssim_mean_colour: None,
            psnr_mean_colour: None,
            kept_keypoints: 0.0,
            query_keypoints: 0.0,
            mma_1: 0.0,
            mma_3,
            mma_5: 0.0,
            homography_acc_3: 0.0,
            psnr_nonadaptive: 0.0,
            ssim_nonadaptive: ssim_adaptive,
            mae_nonadaptive: 0.0,
            psnr_adaptive: 0.0,
            ssim_adaptive,
            mae_adaptive: 0.0,
            psnr_fine_tuned: 0.0,
            ssim_fine_tuned: 0.0,
            seconds: 0.0,
            lifted_attack: None,
        }
    }

    #[test]
    fn a_cell_judged_by_several_sweeps_is_plotted_at_its_strongest_attack() {
        let lifted = |attack: &str, ssim: f64| CellResult {
            defence: "lift-adversarial".into(),
            strength: 4.0,
            lifted_attack: Some(attack.into()),
            ..cell("all", 1.0, 0.49, ssim)
        };
        let cells = vec![
            cell("random", 1.0, 0.50, 0.60),
            lifted("point", 0.40),
            cell("random", 1.0, 0.50, 0.60),
            lifted("database", 0.45),
        ];
        let kept = strongest_cells(cells);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1].lifted_attack.as_deref(), Some("database"));
        assert_eq!(series_name(&kept[1]), "lift-adversarial (database attack)");
        assert_eq!(series_name(&lifted("point", 0.4)), "lift-adversarial");
        assert_eq!(series_name(&kept[0]), "random");
        // A weaker attack seen later leaves the stronger one in place.
        let kept = strongest_cells(vec![lifted("database", 0.45), lifted("point", 0.40)]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].ssim_adaptive, 0.45);
    }

    #[test]
    fn leakage_cells_meet_the_random_cell_closest_in_utility() {
        let cells = [
            cell("random", 1.0, 0.50, 0.60),
            cell("leakage", 1.0, 0.50, 0.60),
            cell("random", 0.5, 0.42, 0.50),
            cell("random", 0.25, 0.35, 0.45),
            cell("leakage", 0.5, 0.44, 0.46),
            cell("leakage", 0.25, 0.30, 0.40),
        ];
        let t = equal_utility_table(&cells);
        assert_eq!(t.rows.len(), 2, "keep 1 is not a mitigation");
        // keep 0.5: random at 0.5 is 0.02 away in MMA@3 → compared.
        assert_eq!(t.rows[0][4..], ["0.5", "0.4200", "0.5000", "-0.0400"]);
        // keep 0.25: the closest random cell is 0.05 away → no comparison.
        assert_eq!(t.rows[1][4], "none within ±0.02");

        let s = summary_table(&cells, "sift");
        assert_eq!(
            s.headers,
            [
                "sift: MMA@3 / adaptive SSIM",
                "keep 1",
                "keep 0.5",
                "keep 0.25"
            ]
        );
        assert_eq!(
            s.rows[0],
            ["random", "0.500 / 0.600", "0.420 / 0.500", "0.350 / 0.450"]
        );
        assert_eq!(s.rows[1][0], "leakage");
    }
}
