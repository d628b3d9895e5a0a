//! Affine subspace lifting (Dusmanu, Schönberger, Sinha & Pollefeys, "Privacy-Preserving Image
//! Features via Adversarial Affine Subspace Embeddings", CVPR 2021): each descriptor `x` is
//! replaced by an m-dimensional affine subspace `x + span(v₁ … vₘ)` that contains it.
//!
//! - Random lifting: the `vᵢ` are random Gaussian directions.
//! - Adversarial lifting: `vᵢ = aᵢ − x` for m real descriptors `aᵢ` drawn from a database of
//!   the defender's descriptors of *other* images (never of the lifted image itself), so the
//!   subspace also passes through real descriptors and `x` cannot be told from them.
//!
//! A subspace is sent as its point nearest the origin `p = x − U·Uᵀ·x` (U an orthonormal basis of
//! the directions) and U; neither depends on where `x` lies in it. The service matches its own
//! descriptors `y` to it by the point-to-subspace distance `‖(I − U·Uᵀ)(y − p)‖`. An attacker
//! given `p` alone (what featleak's attackers read as the descriptor) sees less than one given
//! the basis too: [`Database::recover`] is the paper's database attack, which uses both.

use crate::MitigationError;
use crate::defences::linear::random_orthonormal;
use featleak_eval::{Match, MatchConfig, MatchError};
use nalgebra::DMatrix;
use ndarray::{Array2, Array3, ArrayView2, Axis, s};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::collections::HashSet;

/// Lifted descriptors: one affine subspace per descriptor.
#[derive(Clone, Debug)]
pub struct Subspaces {
    /// N×D: each subspace's point nearest the origin.
    pub points: Array2<f32>,
    /// N×m×D: an orthonormal basis of each subspace's directions (rows).
    pub bases: Array3<f32>,
}

impl Subspaces {
    /// Lifts each row of `rows` (N×D, one image's descriptors) to `dims` dimensions: random
    /// directions, or directions to rows of `database` (adversarial; a drawn row equal to any of
    /// `rows` is drawn again, and a database that gives too few others is an error).
    pub fn lift(
        rows: &Array2<f32>,
        dims: usize,
        database: Option<&Array2<f32>>,
        seed: u64,
    ) -> Result<Self, MitigationError> {
        let (n, d) = rows.dim();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut points = Array2::zeros((n, d));
        let mut bases = Array3::zeros((n, dims, d));
        let own: HashSet<Vec<u32>> = rows
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|v| v.to_bits()).collect())
            .collect();
        for (i, x) in rows.rows().into_iter().enumerate() {
            let basis = match database {
                None => random_orthonormal(d, dims, rng.random()),
                Some(db) => {
                    let mut directions = DMatrix::<f64>::zeros(d, dims);
                    let (mut found, mut draws) = (0, 0);
                    while found < dims {
                        draws += 1;
                        if draws > 100 * dims {
                            return Err(MitigationError::Defence(format!(
                                "lift-adversarial: the database of {} descriptors gave fewer \
                                 than {dims} of other images for descriptor {i} in {} draws",
                                db.nrows(),
                                100 * dims
                            )));
                        }
                        let a = db.row(rng.random_range(0..db.nrows()));
                        if own.contains(&a.iter().map(|v| v.to_bits()).collect::<Vec<_>>()) {
                            continue;
                        }
                        for j in 0..d {
                            directions[(j, found)] = f64::from(a[j] - x[j]);
                        }
                        found += 1;
                    }
                    let q = directions.qr().q();
                    Array2::from_shape_fn((d, dims), |(r, c)| q[(r, c)] as f32)
                }
            };
            // basis: D×m. p = x − U·(Uᵀ·x).
            let along = basis.t().dot(&x);
            let p = &x - &basis.dot(&along);
            points.row_mut(i).assign(&p);
            bases.slice_mut(s![i, .., ..]).assign(&basis.t());
        }
        Ok(Self { points, bases })
    }

    /// N_lifted × N_points matrix of point-to-subspace distances to the rows of `points`.
    pub fn distances(&self, points: ArrayView2<f32>) -> Array2<f32> {
        let mut out = Array2::zeros((self.points.nrows(), points.nrows()));
        for (i, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
            // The residual itself, not ‖offset‖² − ‖along‖², which cancels badly in f32.
            let basis = self.bases.slice(s![i, .., ..]);
            let offset = &points - &self.points.row(i);
            let residual = &offset - &offset.dot(&basis.t()).dot(&basis);
            for (d, r) in row.iter_mut().zip(residual.rows()) {
                *d = r.iter().map(|v| v * v).sum::<f32>().sqrt();
            }
        }
        out
    }
}

/// The attacker's database of real descriptors of its own images, for the database attack on
/// lifted descriptors (Dusmanu et al. 2021): a lifted subspace passes through its descriptor, so
/// the real descriptors nearest to the subspace are the likely ones.
#[derive(Clone, Debug)]
pub struct Database {
    rows: Array2<f32>,
    squared_norms: Vec<f32>,
    owners: Vec<usize>,
}

/// Subspaces recovered per block of the distance computation (bounds its memory).
const RECOVERY_BLOCK: usize = 64;

impl Database {
    /// At most `size` rows drawn without replacement (seeded) from the descriptors of the
    /// attacker's images, `images[k]` being image `k`'s (N_k×D); `size` 0 keeps every row.
    pub fn sample(images: &[&Array2<f32>], size: usize, seed: u64) -> Self {
        // Every row of every image, as (image, row within it).
        let all: Vec<(usize, usize)> = images
            .iter()
            .enumerate()
            .flat_map(|(k, d)| (0..d.nrows()).map(move |r| (k, r)))
            .collect();
        let mut picked: Vec<usize> = if size == 0 || size >= all.len() {
            (0..all.len()).collect()
        } else {
            sample(&mut ChaCha8Rng::seed_from_u64(seed), all.len(), size).into_vec()
        };
        picked.sort_unstable();
        let dims = images.iter().map(|d| d.ncols()).max().unwrap_or(0);
        let mut rows = Array2::zeros((picked.len(), dims));
        let mut owners = Vec::with_capacity(picked.len());
        for (r, &i) in picked.iter().enumerate() {
            let (k, row) = all[i];
            rows.row_mut(r).assign(&images[k].row(row));
            owners.push(k);
        }
        let squared_norms = rows.rows().into_iter().map(|r| r.dot(&r)).collect();
        Self {
            rows,
            squared_norms,
            owners,
        }
    }

    /// Rows in the database.
    pub fn len(&self) -> usize {
        self.rows.nrows()
    }

    /// Whether the database has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.nrows() == 0
    }

    /// The database attack: each subspace's estimate is the database row nearest to it by
    /// point-to-subspace distance, projected onto the subspace (`p + U·Uᵀ·y`, never farther
    /// from the true descriptor than `y` itself). Rows of the attacker's image `exclude` are
    /// skipped (the image being recovered, when it is one of the attacker's own). An empty
    /// database, or one with no other image's rows, leaves the points as they are; descriptors
    /// of another length than the database's are an error.
    pub fn recover(
        &self,
        subspaces: &Subspaces,
        exclude: Option<usize>,
    ) -> Result<Array2<f32>, MitigationError> {
        let (n, d) = subspaces.points.dim();
        let m = subspaces.bases.shape()[1];
        let mut out = subspaces.points.clone();
        if self.is_empty() || n == 0 {
            return Ok(out);
        }
        if d != self.rows.ncols() {
            return Err(MitigationError::Defence(format!(
                "database attack: the lifted descriptors have {d} values, the database's {}",
                self.rows.ncols()
            )));
        }
        let width = m + 1;
        let firsts: Vec<usize> = (0..n).step_by(RECOVERY_BLOCK).collect();
        let blocks: Vec<Array2<f32>> = firsts
            .par_iter()
            .map(|&first| {
                let count = RECOVERY_BLOCK.min(n - first);
                // Each subspace's point and basis rows, stacked: (count·(m+1))×D.
                let mut stacked = Array2::<f32>::zeros((count * width, d));
                for q in 0..count {
                    stacked
                        .row_mut(q * width)
                        .assign(&subspaces.points.row(first + q));
                    stacked
                        .slice_mut(s![q * width + 1..(q + 1) * width, ..])
                        .assign(&subspaces.bases.slice(s![first + q, .., ..]));
                }
                let products = self.rows.dot(&stacked.t());
                let point_norms: Vec<f32> = (0..count)
                    .map(|q| {
                        let p = subspaces.points.row(first + q);
                        p.dot(&p)
                    })
                    .collect();
                // ‖(I − U·Uᵀ)(y − p)‖² = ‖y‖² − 2·y·p + ‖p‖² − ‖Uᵀ·y‖², as U ⟂ p.
                let mut best = vec![(f32::INFINITY, usize::MAX); count];
                for (j, row) in products.rows().into_iter().enumerate() {
                    if exclude == Some(self.owners[j]) {
                        continue;
                    }
                    let row = row.as_slice().expect("standard layout");
                    for (q, b) in best.iter_mut().enumerate() {
                        let at = &row[q * width..(q + 1) * width];
                        let along: f32 = at[1..].iter().map(|v| v * v).sum();
                        let distance = self.squared_norms[j] - 2.0 * at[0] + point_norms[q] - along;
                        if distance < b.0 {
                            *b = (distance, j);
                        }
                    }
                }
                let mut estimates = subspaces
                    .points
                    .slice(s![first..first + count, ..])
                    .to_owned();
                for (q, &(_, j)) in best.iter().enumerate() {
                    if j == usize::MAX {
                        continue;
                    }
                    let coefficients = products.slice(s![j, q * width + 1..(q + 1) * width]);
                    let basis = subspaces.bases.slice(s![first + q, .., ..]);
                    let mut estimate = estimates.row_mut(q);
                    estimate += &basis.t().dot(&coefficients);
                }
                estimates
            })
            .collect();
        for (first, block) in firsts.into_iter().zip(blocks) {
            out.slice_mut(s![first..first + block.nrows(), ..])
                .assign(&block);
        }
        Ok(out)
    }
}

/// Matches lifted query descriptors to the service's `points` by point-to-subspace distance,
/// with the same selection as [`featleak_eval::match_descriptors`] (mutual nearest neighbours
/// and/or the ratio test, first set to second). Empty sets give no matches.
pub fn match_lifted(
    query: &Subspaces,
    points: &Array2<f32>,
    config: &MatchConfig,
) -> Result<Vec<Match>, MatchError> {
    if query.points.ncols() != points.ncols() && !points.is_empty() && !query.points.is_empty() {
        return Err(MatchError::DimensionMismatch {
            a: query.points.ncols(),
            b: points.ncols(),
        });
    }
    if query.points.is_empty() || points.is_empty() {
        return Ok(Vec::new());
    }
    Ok(matches_from_distances(
        &query.distances(points.view()),
        config,
    ))
}

/// Nearest neighbours both ways in a distance matrix (rows: the first set), selected as
/// `config` says. Ties go to the lower index.
pub fn matches_from_distances(distances: &Array2<f32>, config: &MatchConfig) -> Vec<Match> {
    let best_in = |values: &mut dyn Iterator<Item = f32>| {
        let (mut best, mut second) = ((usize::MAX, f32::INFINITY), f32::INFINITY);
        for (j, v) in values.enumerate() {
            if v < best.1 {
                second = best.1;
                best = (j, v);
            } else if v < second {
                second = v;
            }
        }
        (best, second)
    };
    let column_best: Vec<usize> = distances
        .axis_iter(Axis(1))
        .map(|c| best_in(&mut c.iter().copied()).0.0)
        .collect();
    distances
        .axis_iter(Axis(0))
        .enumerate()
        .filter_map(|(i, row)| {
            let ((j, d), second) = best_in(&mut row.iter().copied());
            let mutual = !config.mutual || column_best.get(j) == Some(&i);
            let ratio = config.ratio.is_none_or(|r| d < r * second);
            (j != usize::MAX && mutual && ratio).then_some(Match {
                a: i,
                b: j,
                distance: d,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn close(a: &Array2<f32>, b: &Array2<f32>, tol: f32) -> bool {
        a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn lifting_worked_by_hand() {
        // In 3-D, x = (1, 2, 3) lifted towards the database row (1, 2, 5): the line through both
        // runs along z, its point nearest the origin is (1, 2, 0), and it contains x.
        let x = array![[1.0, 2.0, 3.0]];
        let db = array![[1.0, 2.0, 3.0], [1.0, 2.0, 5.0]];
        let s = Subspaces::lift(&x, 1, Some(&db), 0).unwrap();
        assert!(
            close(&s.points, &array![[1.0, 2.0, 0.0]], 1e-6),
            "{}",
            s.points
        );
        assert!((s.bases[[0, 0, 2]].abs() - 1.0).abs() < 1e-6);
        // Distances: x itself and the database row are on it; (4, 6, 9) is 5 away.
        let y = array![[1.0, 2.0, 3.0], [1.0, 2.0, 5.0], [4.0, 6.0, 9.0]];
        let d = s.distances(y.view());
        assert!(close(&d, &array![[0.0, 0.0, 5.0]], 1e-5), "{d}");
    }

    #[test]
    fn random_lifting_contains_the_descriptor_and_hides_it() {
        let rows = Array2::from_shape_fn((5, 12), |(i, j)| ((i * 12 + j) as f32).sin() + 1.0);
        let s = Subspaces::lift(&rows, 3, None, 9).unwrap();
        // A database of copies of the descriptor cannot lift it.
        let copies = Array2::from_shape_fn((8, 12), |(_, j)| rows[[0, j]]);
        let e = Subspaces::lift(&rows.slice(s![..1, ..]).to_owned(), 2, Some(&copies), 0);
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("fewer than 2 of other images")
        );
        let d = s.distances(rows.view());
        for i in 0..5 {
            assert!(
                d[[i, i]] < 1e-4,
                "descriptor {i} is {} off its subspace",
                d[[i, i]]
            );
            // The point sent is orthogonal to the subspace's directions.
            let along = s.bases.slice(s![i, .., ..]).dot(&s.points.row(i));
            assert!(along.iter().all(|v| v.abs() < 1e-4));
            assert!(
                (&s.points.row(i) - &rows.row(i))
                    .iter()
                    .any(|v| v.abs() > 1e-3)
            );
        }
    }

    #[test]
    fn matching_from_distances_worked_by_hand() {
        // Row 0's nearest is column 1 and column 1's nearest is row 0: a mutual match. Row 1's
        // nearest is column 1 too, but not mutual. Row 2's nearest, column 0 (0.5 against 0.6),
        // is mutual but fails a ratio of 0.8 (0.5 ≥ 0.8 × 0.6).
        let d = array![[3.0, 0.1, 2.0], [2.0, 0.2, 5.0], [0.5, 4.0, 0.6]];
        let plain = MatchConfig {
            mutual: true,
            ratio: None,
        };
        let found: Vec<_> = matches_from_distances(&d, &plain)
            .iter()
            .map(|m| (m.a, m.b, m.distance))
            .collect();
        assert_eq!(found, [(0, 1, 0.1), (2, 0, 0.5)]);
        let ratio = MatchConfig {
            mutual: true,
            ratio: Some(0.8),
        };
        let found: Vec<_> = matches_from_distances(&d, &ratio)
            .iter()
            .map(|m| (m.a, m.b))
            .collect();
        assert_eq!(found, [(0, 1)]);
        let one_way = MatchConfig {
            mutual: false,
            ratio: None,
        };
        assert_eq!(matches_from_distances(&d, &one_way).len(), 3);
    }

    #[test]
    fn database_attack_worked_by_hand() {
        // In 3-D, the line through x = (1, 2, 3) along z is sent as p = (1, 2, 0) and z. The
        // database row (1.1, 2, 7) is 0.1 from the line, (5, 5, 3) is 5 away: the estimate is
        // the nearer one projected onto the line, (1, 2, 7).
        let s = Subspaces {
            points: array![[1.0, 2.0, 0.0]],
            bases: Array3::from_shape_vec((1, 1, 3), vec![0.0, 0.0, 1.0]).unwrap(),
        };
        let mine = array![[5.0, 5.0, 3.0]];
        let other = array![[1.1, 2.0, 7.0]];
        let db = Database::sample(&[&mine, &other], 0, 0);
        assert_eq!(db.len(), 2);
        let r = db.recover(&s, None).unwrap();
        assert!(close(&r, &array![[1.0, 2.0, 7.0]], 1e-5), "{r}");
        // Excluding image 1 (the nearer row's) leaves (5, 5, 3), projected: (1, 2, 3).
        let r = db.recover(&s, Some(1)).unwrap();
        assert!(close(&r, &array![[1.0, 2.0, 3.0]], 1e-5), "{r}");
        // Nothing but the excluded image: the point is kept.
        let alone = Database::sample(&[&other], 0, 0);
        assert!(close(&alone.recover(&s, Some(0)).unwrap(), &s.points, 0.0));
        // A database of another descriptor length is refused, not ignored.
        let longer = Database::sample(&[&array![[1.0, 2.0, 3.0, 4.0]]], 0, 0);
        let e = longer.recover(&s, None).unwrap_err().to_string();
        assert!(e.contains("3 values, the database's 4"), "{e}");
    }

    #[test]
    fn database_attack_finds_a_randomly_lifted_descriptor_among_many() {
        // 300 descriptors in 32-D, 70 of them lifted by random 4-D subspaces; with every
        // descriptor in the database, each lifted one is recovered exactly (it lies on its
        // subspace; the others, almost surely, do not), and a sample of the database is a
        // sample (seeded, without repeats).
        let all = Array2::from_shape_fn((300, 32), |(i, j)| {
            ((i * 31 + j * 17) as f32 * 0.37).sin() + ((i + 3 * j) as f32).cos()
        });
        let lifted = all.slice(s![..70, ..]).to_owned();
        let s = Subspaces::lift(&lifted, 4, None, 5).unwrap();
        let db = Database::sample(&[&all], 0, 0);
        let r = db.recover(&s, None).unwrap();
        assert!(close(&r, &lifted, 1e-3));
        let part = Database::sample(&[&all], 120, 7);
        assert_eq!(part.len(), 120);
        assert_eq!(Database::sample(&[&all], 120, 7).rows, part.rows);
    }
}
