//! `featleak merge`: joins the shards of one run (folders written with `--shard K/N`, see
//! [`featleak_datasets::shard`]) into what one unsharded run writes. The kind is read from the
//! folders: feature folders of `extract` (merged by [`featleak_descriptors::merge`]) or
//! reconstruction folders of `attack reconstruct` (merged here).
//!
//! A sharded reconstruction writes `shard.json` ([`ShardManifest`]) beside its pictures,
//! `metrics.json` and `index.html`: the shard, the job's identity, and each victim's gallery row
//! (its pictures as PNG data URIs, its scores). The merge copies every `NAME.png`, and rewrites
//! `metrics.json` (scores in the order of the sorted victim list, means recomputed by
//! [`ScoreReport::new`] over all of them, as the unsharded run computes them) and `index.html`
//! from the rows. Nothing in `shard.json` differs per process: the merged folder has no
//! `shard.json`, as an unsharded run's has none. Shards of different runs (attacker, threat
//! model, share, seed, device, victims folder or featleak version) are refused.

use crate::AttackError;
use crate::reconstruct::{GalleryPage, write_pages};
use featleak_datasets::FileError;
use featleak_datasets::files::{read_json, write_bytes};
use featleak_datasets::manifest::Tool;
use featleak_datasets::shard::{Shard, ShardError, check_complete, prepare_out};
use featleak_descriptors::folder::{FolderManifest, MANIFEST};
use featleak_descriptors::merge::merge_feature_shards;
use featleak_eval::gallery::{GalleryRow, png_from_data_uri};
use featleak_eval::score_report::{NamedScores, ScoreReport};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The command recorded in a reconstruction shard's manifest.
pub const COMMAND: &str = "attack reconstruct";

/// A reconstruction shard's manifest file name.
pub const SHARD_MANIFEST: &str = "shard.json";

/// `shard.json` of a sharded reconstruction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardManifest {
    /// The tool that wrote it.
    pub tool: Tool,
    /// `"attack reconstruct"`.
    pub command: String,
    /// Which part of the sorted victim list this folder holds.
    pub shard: Shard,
    /// `"images"` or `"features"`.
    pub victims: String,
    /// The victims folder, as given.
    pub victims_root: String,
    /// The seed of the revealed subsets.
    pub seed: u64,
    /// Where the network ran.
    pub device: String,
    /// The gallery page's title and variables.
    pub page: GalleryPage,
    /// One row per victim reconstructed, in the order of the sorted victim list.
    pub rows: Vec<ShardRow>,
}

/// One victim of a reconstruction shard.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardRow {
    /// Its position in the sorted victim list.
    pub index: usize,
    /// Its name (`NAME.png` is its reconstruction).
    pub name: String,
    /// Its gallery row's label.
    pub label: String,
    /// Its gallery row's pictures, PNG data URIs.
    pub pictures: Vec<String>,
    /// Its scores, when the victims were images.
    pub scores: Option<NamedScores>,
}

/// What a merge joined.
#[derive(Clone, Debug)]
pub enum Merged {
    /// Feature folders: the merged manifest.
    Features(FolderManifest),
    /// Reconstruction folders: how many victims, and their scores when they were images.
    Reconstructions {
        /// Victims reconstructed.
        victims: usize,
        /// Their scores (victims given as images).
        report: Option<ScoreReport>,
    },
}

/// Merges the shard folders `shards` into `out` (new or empty).
pub fn merge_shards(shards: &[PathBuf], out: &Path) -> Result<Merged, AttackError> {
    let kind = |dir: &PathBuf| match (
        dir.join(MANIFEST).is_file(),
        dir.join(SHARD_MANIFEST).is_file(),
    ) {
        (true, false) => Ok("features"),
        (false, true) => Ok("reconstructions"),
        _ => Err(ShardError::Merge(format!(
            "{} holds neither an extract's {MANIFEST} nor a sharded reconstruction's {SHARD_MANIFEST}",
            dir.display()
        ))),
    };
    let Some(first) = shards.first() else {
        return Err(ShardError::Merge("no shard folders given".into()).into());
    };
    let first_kind = kind(first)?;
    for dir in &shards[1..] {
        let k = kind(dir)?;
        if k != first_kind {
            return Err(ShardError::Merge(format!(
                "{} holds {first_kind} but {} holds {k}: mixed kinds",
                first.display(),
                dir.display()
            ))
            .into());
        }
    }
    if first_kind == "features" {
        return Ok(Merged::Features(merge_feature_shards(shards, out)?));
    }
    merge_reconstructions(shards, out)
}

/// Merges reconstruction shards.
fn merge_reconstructions(shards: &[PathBuf], out: &Path) -> Result<Merged, AttackError> {
    let manifests = shards
        .iter()
        .map(|dir| {
            let m: ShardManifest = read_json(&dir.join(SHARD_MANIFEST))?;
            if m.command != COMMAND {
                return Err(ShardError::Merge(format!(
                    "{} was written by `{}`, not by `{COMMAND}`",
                    dir.display(),
                    m.command
                ))
                .into());
            }
            Ok((dir.as_path(), m))
        })
        .collect::<Result<Vec<_>, AttackError>>()?;
    check_complete(manifests.iter().map(|(dir, m)| (Some(m.shard), *dir)))?;
    let (first_dir, first) = &manifests[0];
    for (dir, m) in &manifests[1..] {
        let differs: Vec<&str> = [
            ("featleak version", m.tool != first.tool),
            ("victims", m.victims != first.victims),
            ("victims folder", m.victims_root != first.victims_root),
            ("seed", m.seed != first.seed),
            ("device", m.device != first.device),
            ("attacker, threat model or share", m.page != first.page),
        ]
        .into_iter()
        .filter_map(|(what, differs)| differs.then_some(what))
        .collect();
        if !differs.is_empty() {
            return Err(ShardError::Merge(format!(
                "{} and {} are shards of different runs ({} differ)",
                first_dir.display(),
                dir.display(),
                differs.join(", ")
            ))
            .into());
        }
    }
    prepare_out(out)?;
    let mut rows: Vec<(&Path, &ShardRow)> = manifests
        .iter()
        .flat_map(|(dir, m)| m.rows.iter().map(move |row| (*dir, row)))
        .collect();
    rows.sort_by_key(|(_, row)| row.index);
    if let Some(pair) = rows.windows(2).find(|w| w[0].1.index == w[1].1.index) {
        return Err(ShardError::Merge(format!(
            "victim {} is in {} and in {}",
            pair[1].1.name,
            pair[0].0.display(),
            pair[1].0.display()
        ))
        .into());
    }
    let mut gallery = Vec::with_capacity(rows.len());
    let mut scores = Vec::new();
    for (dir, row) in &rows {
        let png = format!("{}.png", row.name);
        let from = dir.join(&png);
        let bytes = std::fs::read(&from).map_err(FileError::io("read", &from))?;
        write_bytes(&out.join(&png), &bytes)?;
        let pictures = row
            .pictures
            .iter()
            .map(|uri| {
                png_from_data_uri(uri).ok_or_else(|| {
                    ShardError::Merge(format!(
                        "{}: a picture of {} is not a PNG data URI",
                        dir.join(SHARD_MANIFEST).display(),
                        row.name
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metrics = row
            .scores
            .as_ref()
            .map_or_else(Vec::new, |s| vec![Some(s.psnr), Some(s.ssim), Some(s.mae)]);
        scores.extend(row.scores.clone());
        gallery.push(GalleryRow {
            name: row.label.clone(),
            pictures,
            metrics,
        });
    }
    let report = write_pages(out, &first.page, gallery, scores)?;
    Ok(Merged::Reconstructions {
        victims: rows.len(),
        report,
    })
}
