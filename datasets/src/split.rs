//! Deterministic, seeded train/val/test splits.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Fractions of the items assigned to train, val and test. They must sum to 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    /// Fraction for training, in [0, 1] (default 0.8).
    pub train: f64,
    /// Fraction for validation, in [0, 1] (default 0.1).
    pub val: f64,
    /// Fraction for testing, in [0, 1] (default 0.1).
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        Self {
            train: 0.8,
            val: 0.1,
            test: 0.1,
        }
    }
}

/// Items divided into three disjoint parts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Split<T> {
    /// Items for training: whatever val and test leave.
    pub train: Vec<T>,
    /// Items for validation: `round(n × val)` of the `n` items.
    pub val: Vec<T>,
    /// Items for testing: `round(n × test)`, capped by what val leaves.
    pub test: Vec<T>,
}

/// Shuffles `items` with a ChaCha8 generator seeded by `seed` and cuts it by `fractions`
/// (val and test sizes rounded, train takes the rest). Same items + seed give the same split.
pub fn split_seeded<T: Clone>(
    items: &[T],
    fractions: SplitFractions,
    seed: u64,
) -> Result<Split<T>, String> {
    let sum = fractions.train + fractions.val + fractions.test;
    let valid = [fractions.train, fractions.val, fractions.test]
        .iter()
        .all(|f| (0.0..=1.0).contains(f));
    if !valid || (sum - 1.0).abs() > 1e-9 {
        return Err(format!(
            "split fractions must be in [0, 1] and sum to 1 (got train {}, val {}, test {})",
            fractions.train, fractions.val, fractions.test
        ));
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n = items.len() as f64;
    let n_val = (n * fractions.val).round() as usize;
    let n_test = ((n * fractions.test).round() as usize).min(items.len() - n_val);
    let pick = |idx: &[usize]| idx.iter().map(|&i| items[i].clone()).collect::<Vec<T>>();
    Ok(Split {
        val: pick(&order[..n_val]),
        test: pick(&order[n_val..n_val + n_test]),
        train: pick(&order[n_val + n_test..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_deterministic_disjoint_and_complete() {
        let items: Vec<u32> = (0..100).collect();
        let a = split_seeded(&items, SplitFractions::default(), 7).unwrap();
        let b = split_seeded(&items, SplitFractions::default(), 7).unwrap();
        assert_eq!(a, b);
        assert_eq!((a.train.len(), a.val.len(), a.test.len()), (80, 10, 10));
        let mut all: Vec<u32> = a
            .train
            .iter()
            .chain(&a.val)
            .chain(&a.test)
            .copied()
            .collect();
        all.sort();
        assert_eq!(all, items);
        let c = split_seeded(&items, SplitFractions::default(), 8).unwrap();
        assert_ne!(a.train, c.train);
    }

    #[test]
    fn bad_fractions_are_rejected() {
        let f = SplitFractions {
            train: 0.9,
            val: 0.2,
            test: 0.0,
        };
        assert!(split_seeded(&[1, 2, 3], f, 0).is_err());
    }
}
