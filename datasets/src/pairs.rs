//! Image pairs related by a known homography, in the HPatches and Oxford layouts.
//!
//! * HPatches sequence folder: `1.ppm|png … 6.ppm|png` and `H_1_2 … H_1_6`.
//! * Oxford (Mikolajczyk) folder: `img1.ppm|png|pgm … img6.*` and `H1to2p … H1to6p`.
//!
//! Homography files hold a 3×3 matrix, whitespace separated, row by row, mapping pixel
//! coordinates of image 1 to image k (x right, y down, origin at the top-left pixel).
//! [`find_pairs`] accepts one sequence folder or a folder of them (searched recursively).

use std::path::{Path, PathBuf};

/// Image 1 and image k of a sequence, with the homography from 1 to k.
#[derive(Clone, Debug, PartialEq)]
pub struct HomographyPair {
    /// `SEQUENCE/1-k`, where SEQUENCE is the folder relative to the searched root.
    pub name: String,
    /// Image 1 of the sequence.
    pub image_a: PathBuf,
    /// Image k of the sequence.
    pub image_b: PathBuf,
    /// Row-major 3×3 matrix mapping image-1 pixels to image-k pixels.
    pub homography: [[f64; 3]; 3],
}

/// Why a pair folder could not be read; names the file.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// A file or folder could not be read, or the root is not a folder.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A homography file is not 9 finite numbers forming a non-singular matrix.
    #[error("{path}: unreadable homography: {problem}")]
    Homography {
        /// The homography file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The folder layout is wrong: a homography without its image k, or no sequence at all.
    #[error("{path}: {problem}")]
    Layout {
        /// The homography file or searched folder.
        path: PathBuf,
        /// What is missing.
        problem: String,
    },
}

const IMAGE_EXTS: &[&str] = &["ppm", "png", "pgm", "jpg"];

/// The file `stem.EXT` in `dir` for the first known image extension present.
fn image_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    IMAGE_EXTS
        .iter()
        .map(|e| dir.join(format!("{stem}.{e}")))
        .find(|p| p.is_file())
}

/// Parses a 3×3 homography file.
pub fn read_homography(path: &Path) -> Result<[[f64; 3]; 3], PairError> {
    let text = std::fs::read_to_string(path).map_err(|e| PairError::Io {
        path: path.into(),
        message: format!("cannot read homography: {e}"),
    })?;
    let bad = |problem: String| PairError::Homography {
        path: path.into(),
        problem,
    };
    let values = text
        .split_whitespace()
        .map(|t| {
            t.parse::<f64>()
                .map_err(|_| bad(format!("'{t}' is not a number")))
        })
        .collect::<Result<Vec<f64>, _>>()?;
    if values.len() != 9 {
        return Err(bad(format!(
            "expected 9 numbers (3×3), found {}",
            values.len()
        )));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(bad("contains a non-finite value".into()));
    }
    let h = [
        [values[0], values[1], values[2]],
        [values[3], values[4], values[5]],
        [values[6], values[7], values[8]],
    ];
    let det = h[0][0] * (h[1][1] * h[2][2] - h[1][2] * h[2][1])
        - h[0][1] * (h[1][0] * h[2][2] - h[1][2] * h[2][0])
        + h[0][2] * (h[1][0] * h[2][1] - h[1][1] * h[2][0]);
    if det.abs() < 1e-12 {
        return Err(bad("the matrix is singular".into()));
    }
    Ok(h)
}

/// File naming of one sequence layout: image k's stem and the homography file from 1 to k.
struct Layout {
    image_stem: fn(u32) -> String,
    homography: fn(u32) -> String,
}

const LAYOUTS: [Layout; 2] = [
    Layout {
        image_stem: |k| k.to_string(),
        homography: |k| format!("H_1_{k}"),
    },
    Layout {
        image_stem: |k| format!("img{k}"),
        homography: |k| format!("H1to{k}p"),
    },
];

/// The homography pairs found below a folder, and what looked like part of a sequence but makes
/// no pair.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundPairs {
    /// The pairs, sorted by name.
    pub pairs: Vec<HomographyPair>,
    /// Why each image or sequence that makes no pair was left out: an image k without the
    /// homography from image 1, a sequence of image 1 alone.
    pub skipped: Vec<String>,
}

/// The pairs of one sequence folder (noting in `skipped` what makes no pair), or `None` when
/// `dir` is not one.
fn sequence_pairs(
    dir: &Path,
    name: &str,
    skipped: &mut Vec<String>,
) -> Result<Option<Vec<HomographyPair>>, PairError> {
    for Layout {
        image_stem,
        homography: h_name,
    } in LAYOUTS
    {
        let Some(image_a) = image_file(dir, &image_stem(1)) else {
            continue;
        };
        let mut pairs = Vec::new();
        let mut unpaired = Vec::new();
        for k in 2..=99 {
            let h_path = dir.join(h_name(k));
            if !h_path.is_file() {
                if image_file(dir, &image_stem(k)).is_some() {
                    unpaired.push(format!(
                        "{name}: image {} has no homography {}",
                        image_stem(k),
                        h_name(k)
                    ));
                }
                continue;
            }
            let image_b = image_file(dir, &image_stem(k)).ok_or_else(|| PairError::Layout {
                path: h_path.clone(),
                problem: format!("homography present but image {} is missing", image_stem(k)),
            })?;
            pairs.push(HomographyPair {
                name: format!("{name}/1-{k}"),
                image_a: image_a.clone(),
                image_b,
                homography: read_homography(&h_path)?,
            });
        }
        if pairs.is_empty() && unpaired.is_empty() {
            skipped.push(format!("{name}: image {} alone, no pair", image_stem(1)));
        }
        skipped.extend(unpaired);
        if !pairs.is_empty() {
            return Ok(Some(pairs));
        }
    }
    Ok(None)
}

/// All homography pairs in `root` (a sequence folder, or folders of sequences), sorted by name,
/// and what was left out.
pub fn find_pairs(root: &Path) -> Result<FoundPairs, PairError> {
    if !root.is_dir() {
        return Err(PairError::Io {
            path: root.into(),
            message: "not a folder".into(),
        });
    }
    let seq_name = root
        .file_name()
        .map_or_else(|| ".".into(), |n| n.to_string_lossy().into_owned());
    let mut skipped = Vec::new();
    if let Some(pairs) = sequence_pairs(root, &seq_name, &mut skipped)? {
        return Ok(FoundPairs { pairs, skipped });
    }
    skipped.clear();
    let mut pairs = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| PairError::Io {
            path: root.into(),
            message: e.to_string(),
        })?;
        if entry.file_type().is_dir() {
            let name = entry
                .path()
                .strip_prefix(root)
                .expect("below root")
                .to_string_lossy()
                .into_owned();
            pairs.extend(sequence_pairs(entry.path(), &name, &mut skipped)?.unwrap_or_default());
        }
    }
    if pairs.is_empty() {
        return Err(PairError::Layout {
            path: root.into(),
            problem: "no HPatches (1.ppm + H_1_k) or Oxford (img1.ppm + H1tokp) sequences found"
                .into(),
        });
    }
    pairs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(FoundPairs { pairs, skipped })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    const ID: &str = "1 0 0\n0 1 0\n0 0 1\n";

    #[test]
    fn finds_both_layouts_below_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for k in 1..=3 {
            write(&r.join(format!("hp/v_a/{k}.ppm")), "");
            write(&r.join(format!("ox/graf/img{k}.png")), "");
        }
        write(&r.join("hp/v_a/H_1_2"), ID);
        write(&r.join("hp/v_a/H_1_3"), "2 0 1\n0 2 1\n0 0 1");
        write(&r.join("ox/graf/H1to2p"), ID);
        write(&r.join("hp/v_a/4.ppm"), "");
        write(&r.join("hp/v_lone/1.ppm"), "");
        let found = find_pairs(r).unwrap();
        assert_eq!(
            found.skipped,
            [
                "hp/v_a: image 4 has no homography H_1_4",
                "hp/v_lone: image 1 alone, no pair",
                "ox/graf: image img3 has no homography H1to3p"
            ]
        );
        let pairs = found.pairs;
        let names: Vec<_> = pairs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["hp/v_a/1-2", "hp/v_a/1-3", "ox/graf/1-2"]);
        assert_eq!(pairs[1].homography[0], [2.0, 0.0, 1.0]);
        assert!(pairs[2].image_b.ends_with("img2.png"));
        // A sequence folder itself works too.
        assert_eq!(
            find_pairs(&r.join("ox/graf")).unwrap().pairs[0].name,
            "graf/1-2"
        );
    }

    #[test]
    fn malformed_homographies_and_layouts_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let cases = [
            ("1 2 3", "expected 9 numbers"),
            ("1 0 0 0 1 0 0 0 x", "'x' is not a number"),
            ("0 0 0 0 0 0 0 0 0", "singular"),
        ];
        for (i, (text, expected)) in cases.iter().enumerate() {
            let p = r.join(format!("h{i}"));
            write(&p, text);
            let e = read_homography(&p).unwrap_err().to_string();
            assert!(e.contains(&format!("h{i}")) && e.contains(expected), "{e}");
        }
        write(&r.join("seq/1.png"), "");
        write(&r.join("seq/H_1_2"), ID);
        let e = find_pairs(&r.join("seq")).unwrap_err().to_string();
        assert!(
            e.contains("H_1_2") && e.contains("image 2 is missing"),
            "{e}"
        );
        let empty = r.join("empty");
        std::fs::create_dir(&empty).unwrap();
        assert!(
            find_pairs(&empty)
                .unwrap_err()
                .to_string()
                .contains("no HPatches")
        );
    }
}
