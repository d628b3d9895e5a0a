//! Exhaustive nearest neighbours between two sets of float descriptors under L2.
//!
//! Squared distances come from `|a|² + |b|² − 2 a·b` with the dot products computed block by
//! block as a matrix product (`ndarray`'s sgemm), in parallel over blocks of query rows. This is
//! exact search (every pair is compared, like OpenCV's `BFMatcher`); distances carry f32 rounding
//! and ties go to the lowest index. A k-d tree (`kiddo`) was measured slower at 128 dimensions
//! (see BENCHMARKS.md), so it is not used here.

use ndarray::{Array1, ArrayView2, Axis, s};
use rayon::prelude::*;

/// Query rows per block: large enough for an efficient matrix product, small enough to share
/// the work between threads.
const BLOCK: usize = 128;

/// Best and second-best neighbour of one row.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nearest {
    /// Row index of the best neighbour in the other set.
    pub index: usize,
    /// Squared L2 distance to the best neighbour.
    pub d2: f32,
    /// Squared L2 distance to the second best (infinite when there is only one candidate).
    pub second_d2: f32,
}

impl Nearest {
    /// No candidate yet.
    const NONE: Self = Self {
        index: usize::MAX,
        d2: f32::INFINITY,
        second_d2: f32::INFINITY,
    };

    /// Considers candidate `index` at squared distance `d2`; a tie keeps the earlier candidate.
    fn offer(&mut self, index: usize, d2: f32) {
        if d2 < self.d2 {
            *self = Self {
                index,
                d2,
                second_d2: self.d2,
            };
        } else if d2 < self.second_d2 {
            self.second_d2 = d2;
        }
    }

    /// Merges the best two of a later set of candidates (same tie rule).
    fn merge(&mut self, later: Self) {
        self.offer(later.index, later.d2);
        self.second_d2 = self.second_d2.min(later.second_d2);
    }
}

/// For every row of `a`, its nearest row of `b` (with the second best), and for every row of `b`
/// its nearest row of `a`. Both sets must have the same number of columns and at least one row.
pub fn nearest_both_ways(a: ArrayView2<f32>, b: ArrayView2<f32>) -> (Vec<Nearest>, Vec<Nearest>) {
    assert_eq!(a.ncols(), b.ncols(), "descriptor dimensions differ");
    let norms =
        |m: ArrayView2<f32>| -> Array1<f32> { m.rows().into_iter().map(|r| r.dot(&r)).collect() };
    let (na, nb) = (norms(a), norms(b));
    let bt = b.t();
    let blocks: Vec<(Vec<Nearest>, Vec<Nearest>)> = (0..a.nrows().div_ceil(BLOCK))
        .into_par_iter()
        .map(|blk| {
            let start = blk * BLOCK;
            let end = (start + BLOCK).min(a.nrows());
            let dots = a.slice(s![start..end, ..]).dot(&bt);
            let mut rows = Vec::with_capacity(end - start);
            let mut cols = vec![Nearest::NONE; b.nrows()];
            for (r, dot_row) in dots.axis_iter(Axis(0)).enumerate() {
                let i = start + r;
                let mut best = Nearest::NONE;
                for (j, (&dot, &nbj)) in dot_row.iter().zip(nb.iter()).enumerate() {
                    let d2 = (na[i] + nbj - 2.0 * dot).max(0.0);
                    best.offer(j, d2);
                    cols[j].offer(i, d2);
                }
                rows.push(best);
            }
            (rows, cols)
        })
        .collect();
    let mut rows = Vec::with_capacity(a.nrows());
    let mut cols = vec![Nearest::NONE; b.nrows()];
    // Blocks come in row order, so merging keeps the lowest row index on ties.
    for (block_rows, block_cols) in blocks {
        rows.extend(block_rows);
        cols.iter_mut()
            .zip(block_cols)
            .for_each(|(c, later)| c.merge(later));
    }
    (rows, cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};

    fn brute(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Vec<(usize, f32, f32)> {
        a.rows()
            .into_iter()
            .map(|ra| {
                let mut d: Vec<(f32, usize)> = b
                    .rows()
                    .into_iter()
                    .enumerate()
                    .map(|(j, rb)| ((&ra - &rb).mapv(|v| v * v).sum(), j))
                    .collect();
                d.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                (d[0].1, d[0].0, d.get(1).map_or(f32::INFINITY, |x| x.0))
            })
            .collect()
    }

    #[test]
    fn agrees_with_direct_computation_across_blocks() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let a = Array2::from_shape_fn((300, 16), |_| rng.random::<f32>());
        let b = Array2::from_shape_fn((257, 16), |_| rng.random::<f32>());
        let (rows, cols) = nearest_both_ways(a.view(), b.view());
        for (n, (j, d2, second)) in rows.iter().zip(brute(a.view(), b.view())) {
            assert_eq!(n.index, j);
            assert!((n.d2 - d2).abs() < 1e-4 && (n.second_d2 - second).abs() < 1e-4);
        }
        for (n, (i, d2, second)) in cols.iter().zip(brute(b.view(), a.view())) {
            assert_eq!(n.index, i);
            assert!((n.d2 - d2).abs() < 1e-4 && (n.second_d2 - second).abs() < 1e-4);
        }
    }
}
