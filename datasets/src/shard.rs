//! Job-array sharding: `--shard K/N` runs part K of N of a command's inputs, and
//! `featleak merge` joins the N parts into what one unsharded run writes.
//!
//! - K is **0-based**, `0 ≤ K < N`: shard `K/N` matches Slurm's `SLURM_ARRAY_TASK_ID` under
//!   `--array=0-(N-1)`.
//! - Shard K takes the items whose position `i` in the **sorted** input list satisfies
//!   `i % N == K` (round robin), so every shard gets the same mix of the list and the N shards
//!   together take each item exactly once.
//! - Without `--shard`, the shard comes from the environment when `SLURM_ARRAY_TASK_ID` and
//!   `SLURM_ARRAY_TASK_COUNT` are both set: K = `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN`
//!   (`SLURM_ARRAY_TASK_MIN` is 0 when unset), N = `SLURM_ARRAY_TASK_COUNT`; so `--array=1-N`
//!   works too. `--shard 0/1` (one shard) is a whole run, also inside an array.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Part `index` of `count` of a job's inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// K, 0-based: `index < count`.
    pub index: usize,
    /// N ≥ 1.
    pub count: usize,
}

/// Why a shard could not be worked out, or shards not merged; names the option, variable or
/// folder.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// `--shard` is malformed or out of range.
    #[error("--shard {given}: {problem} (expected K/N with 0 ≤ K < N, K 0-based)")]
    Option {
        /// What was given.
        given: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A Slurm variable is malformed or out of range.
    #[error("{variable}={value}: {problem} (or give --shard K/N)")]
    Environment {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The shards given to a merge are not one complete set.
    #[error("cannot merge: {0}")]
    Merge(String),
    /// A merge's output folder holds files.
    #[error(
        "{} is not empty; merge writes only into a new or empty folder (featleak never overwrites files it did not write)",
        .0.display()
    )]
    OutNotEmpty(std::path::PathBuf),
    /// The output folder could not be read or created.
    #[error(transparent)]
    File(#[from] crate::FileError),
}

/// The environment variables the default shard is read from.
pub const TASK_ID: &str = "SLURM_ARRAY_TASK_ID";
/// The number of tasks of the array.
pub const TASK_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
/// The array's lowest task id.
pub const TASK_MIN: &str = "SLURM_ARRAY_TASK_MIN";

impl Shard {
    /// Parses `K/N` (as given to `--shard`).
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let bad = |problem: &str| ShardError::Option {
            given: text.to_string(),
            problem: problem.to_string(),
        };
        let (k, n) = text.split_once('/').ok_or_else(|| bad("no '/'"))?;
        let k: usize = k.trim().parse().map_err(|_| bad("K is not a number"))?;
        let n: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if n == 0 {
            return Err(bad("N must be at least 1"));
        }
        if k >= n {
            return Err(bad("K must be less than N"));
        }
        Ok(Self { index: k, count: n })
    }

    /// The shard Slurm's job-array variables give, read through `var` (`std::env::var` in a
    /// command): `None` unless both `SLURM_ARRAY_TASK_ID` and `SLURM_ARRAY_TASK_COUNT` are set.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ShardError> {
        let (Some(id), Some(count)) = (var(TASK_ID), var(TASK_COUNT)) else {
            return Ok(None);
        };
        let number = |variable: &'static str, value: &str| {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| ShardError::Environment {
                    variable,
                    value: value.to_string(),
                    problem: "not a whole number".into(),
                })
        };
        let n = number(TASK_COUNT, &count)?;
        let id_value = number(TASK_ID, &id)?;
        let min = var(TASK_MIN)
            .map(|m| number(TASK_MIN, &m))
            .transpose()?
            .unwrap_or(0);
        let out_of_range = |problem: String| ShardError::Environment {
            variable: TASK_ID,
            value: id.clone(),
            problem,
        };
        if n == 0 {
            return Err(ShardError::Environment {
                variable: TASK_COUNT,
                value: count,
                problem: "must be at least 1".into(),
            });
        }
        let k = id_value
            .checked_sub(min)
            .ok_or_else(|| out_of_range(format!("below {TASK_MIN}={min}")))?;
        if k >= n {
            return Err(out_of_range(format!(
                "shard {k} (task id − {TASK_MIN}={min}) is not below {TASK_COUNT}={n}; use a contiguous --array=0-{}",
                n - 1
            )));
        }
        Ok(Some(Self { index: k, count: n }))
    }

    /// `--shard` when given (`option`), else the Slurm default read through `var`; `None` runs
    /// everything, as does a split into one shard (`0/1`: a whole run, written as one).
    pub fn resolve(
        option: Option<&str>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ShardError> {
        let shard = match option {
            Some(text) => Some(Self::parse(text)?),
            None => Self::from_slurm(var)?,
        };
        Ok(shard.filter(|s| s.count > 1))
    }

    /// Whether the item at position `i` of the sorted input list belongs to this shard.
    pub fn holds(&self, i: usize) -> bool {
        i % self.count == self.index
    }

    /// The items of `items` (the sorted input list) this shard takes, with their positions in
    /// the whole list.
    pub fn select<T>(&self, items: impl IntoIterator<Item = T>) -> Vec<(usize, T)> {
        items
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.holds(*i))
            .collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The items of `items` that `shard` takes (all of them without one), with their positions in
/// the whole list.
pub fn select<T>(shard: Option<Shard>, items: impl IntoIterator<Item = T>) -> Vec<(usize, T)> {
    match shard {
        Some(s) => s.select(items),
        None => items.into_iter().enumerate().collect(),
    }
}

/// Checks that `shards` (each with the folder it came from) are one complete set: one count N,
/// and every K of `0..N` exactly once. Missing, duplicate or unsharded outputs are named.
pub fn check_complete<'a>(
    shards: impl IntoIterator<Item = (Option<Shard>, &'a Path)>,
) -> Result<(), ShardError> {
    let mut seen: Vec<(Shard, &Path)> = Vec::new();
    for (shard, folder) in shards {
        let Some(shard) = shard else {
            return Err(ShardError::Merge(format!(
                "{} is not a shard (written without --shard)",
                folder.display()
            )));
        };
        if let Some((first, first_folder)) = seen.first()
            && first.count != shard.count
        {
            return Err(ShardError::Merge(format!(
                "{} is shard {shard} but {} is shard {first}: shards of different splits",
                folder.display(),
                first_folder.display()
            )));
        }
        if let Some((_, other)) = seen.iter().find(|(s, _)| *s == shard) {
            return Err(ShardError::Merge(format!(
                "{} and {} are both shard {shard}",
                other.display(),
                folder.display()
            )));
        }
        seen.push((shard, folder));
    }
    let Some((first, _)) = seen.first() else {
        return Err(ShardError::Merge("no shard folders given".into()));
    };
    let missing: Vec<String> = (0..first.count)
        .filter(|k| !seen.iter().any(|(s, _)| s.index == *k))
        .map(|k| format!("{k}/{}", first.count))
        .collect();
    if !missing.is_empty() {
        return Err(ShardError::Merge(format!(
            "shard(s) {} missing",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Prepares a merge's output folder: it must be new or empty, and is created.
pub fn prepare_out(out: &Path) -> Result<(), ShardError> {
    if out.is_dir() {
        let mut entries = std::fs::read_dir(out).map_err(crate::FileError::io("read", out))?;
        if entries.next().is_some() {
            return Err(ShardError::OutNotEmpty(out.to_path_buf()));
        }
    }
    std::fs::create_dir_all(out).map_err(crate::FileError::io("create", out))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn parses_and_refuses_shards() {
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, count: 3 });
        assert_eq!(Shard::parse("0/1").unwrap().to_string(), "0/1");
        for (bad, problem) in [
            ("3/3", "K must be less than N"),
            ("0/0", "N must be at least 1"),
            ("1", "no '/'"),
            ("a/2", "K is not a number"),
            ("1/-2", "N is not a number"),
        ] {
            let e = Shard::parse(bad).unwrap_err().to_string();
            assert!(e.contains(problem) && e.contains("--shard"), "{e}");
        }
    }

    #[test]
    fn round_robin_covers_every_item_once() {
        let items: Vec<usize> = (0..10).collect();
        let mut all: Vec<usize> = (0..3)
            .flat_map(|k| Shard { index: k, count: 3 }.select(items.clone()))
            .map(|(i, v)| {
                assert_eq!(i, v);
                v
            })
            .collect();
        assert_eq!(
            Shard { index: 1, count: 3 }
                .select(items.clone())
                .into_iter()
                .map(|(_, v)| v)
                .collect::<Vec<_>>(),
            [1, 4, 7]
        );
        all.sort();
        assert_eq!(all, items);
        assert_eq!(select(None, "ab".chars()), [(0, 'a'), (1, 'b')]);
    }

    #[test]
    fn slurm_defaults() {
        assert_eq!(Shard::from_slurm(env(&[])).unwrap(), None);
        // Only one of the two: not a sharded run.
        assert_eq!(Shard::from_slurm(env(&[(TASK_ID, "2")])).unwrap(), None);
        let s = Shard::from_slurm(env(&[(TASK_ID, "2"), (TASK_COUNT, "4")])).unwrap();
        assert_eq!(s, Some(Shard { index: 2, count: 4 }));
        // --array=1-4: ids 1..=4 become 0..4.
        let s = Shard::from_slurm(env(&[(TASK_ID, "4"), (TASK_COUNT, "4"), (TASK_MIN, "1")]));
        assert_eq!(s.unwrap(), Some(Shard { index: 3, count: 4 }));
        let e = Shard::from_slurm(env(&[(TASK_ID, "4"), (TASK_COUNT, "4")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("SLURM_ARRAY_TASK_ID=4") && e.contains("--array=0-3"),
            "{e}"
        );
        let e = Shard::from_slurm(env(&[(TASK_ID, "x"), (TASK_COUNT, "4")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SLURM_ARRAY_TASK_ID=x"), "{e}");
        let e = Shard::from_slurm(env(&[(TASK_ID, "0"), (TASK_COUNT, "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SLURM_ARRAY_TASK_COUNT=0"), "{e}");
        // --shard wins over the environment; one shard is the whole run.
        let array = [(TASK_ID, "2"), (TASK_COUNT, "4")];
        let s = Shard::resolve(Some("1/2"), env(&array));
        assert_eq!(s.unwrap(), Some(Shard { index: 1, count: 2 }));
        assert_eq!(Shard::resolve(Some("0/1"), env(&array)).unwrap(), None);
        let s = Shard::resolve(None, env(&array)).unwrap();
        assert_eq!(s, Some(Shard { index: 2, count: 4 }));
    }

    #[test]
    fn merges_need_one_complete_set() {
        let (a, b, c) = (Path::new("a"), Path::new("b"), Path::new("c"));
        let s = |index, count| Some(Shard { index, count });
        assert!(check_complete([(s(1, 2), a), (s(0, 2), b)]).is_ok());
        let e = |set: Vec<(Option<Shard>, &Path)>| check_complete(set).unwrap_err().to_string();
        assert!(e(vec![(s(0, 3), a), (s(2, 3), b)]).contains("shard(s) 1/3 missing"));
        assert!(
            e(vec![(s(0, 2), a), (s(0, 2), b), (s(1, 2), c)])
                .contains("a and b are both shard 0/2")
        );
        assert!(e(vec![(s(0, 2), a), (s(1, 3), b)]).contains("different splits"));
        assert!(e(vec![(None, a)]).contains("a is not a shard"));
        assert!(e(vec![]).contains("no shard folders"));
    }

    #[test]
    fn merge_output_must_be_new_or_empty() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new");
        prepare_out(&out).unwrap();
        prepare_out(&out).unwrap();
        std::fs::write(out.join("mine.txt"), b"x").unwrap();
        let e = prepare_out(&out).unwrap_err().to_string();
        assert!(e.contains("is not empty") && e.contains("new"), "{e}");
    }
}
