//! Linear defences: projection on a k-dimensional subspace (PCA axes of the defender's own
//! descriptors, or a random orthonormal basis) and SimHash binarisation (signs on random
//! orthonormal directions). The linear algebra (symmetric eigendecomposition, QR) is nalgebra's.

use crate::MitigationError;
use nalgebra::DMatrix;
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// An affine projection `x ↦ mean + B·Bᵀ·(x − mean)` on the span of `basis`'s orthonormal columns:
/// what is sent is `Bᵀ·(x − mean)` (k values); the stored point is the same information in the
/// descriptor's space, and L2 distances between stored points equal those between the sent
/// coefficients.
#[derive(Clone, Debug)]
pub struct Projection {
    mean: Array1<f32>,
    /// D×k, orthonormal columns.
    basis: Array2<f32>,
}

impl Projection {
    /// The top `dims` principal axes of `rows` (N×D): the eigenvectors of their covariance with
    /// the largest eigenvalues, about their mean.
    pub fn pca(rows: &Array2<f32>, dims: usize) -> Result<Self, MitigationError> {
        let (n, d) = rows.dim();
        if n < 2 {
            return Err(MitigationError::Defence(format!(
                "pca: {n} descriptor(s) are too few to fit principal axes"
            )));
        }
        let mean = rows.mean_axis(ndarray::Axis(0)).expect("rows");
        let centred = DMatrix::from_fn(n, d, |i, j| f64::from(rows[[i, j]] - mean[j]));
        let covariance = centred.transpose() * &centred / n as f64;
        let eigen = covariance.symmetric_eigen();
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let basis =
            Array2::from_shape_fn((d, dims), |(i, j)| eigen.eigenvectors[(i, order[j])] as f32);
        Ok(Self { mean, basis })
    }

    /// A random orthonormal basis of `dims` directions in `d` dimensions (Gaussian, then QR),
    /// about the origin.
    pub fn random(d: usize, dims: usize, seed: u64) -> Self {
        Self {
            mean: Array1::zeros(d),
            basis: random_orthonormal(d, dims, seed),
        }
    }

    /// Projected rows, in the descriptor's space.
    pub fn project(&self, rows: &Array2<f32>) -> Array2<f32> {
        let centred = rows - &self.mean;
        centred.dot(&self.basis).dot(&self.basis.t()) + &self.mean
    }
}

/// `dims` random orthonormal directions in `d` dimensions, as the columns of a d×dims matrix.
pub fn random_orthonormal(d: usize, dims: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gaussian = DMatrix::<f64>::from_fn(d, dims, |_, _| StandardNormal.sample(&mut rng));
    let q = gaussian.qr().q();
    Array2::from_shape_fn((d, dims), |(i, j)| q[(i, j)] as f32)
}

/// SimHash (Charikar 2002) with orthonormal directions through the defender's mean descriptor:
/// bit `j` of `x` is the sign of `r_j·(x − mean)`. The stored point is `R·b/√k` (b ∈ {−1, 1}^k),
/// so the squared L2 distance between two stored points is 4/k times the Hamming distance of the
/// codes: L2 matching is Hamming matching.
#[derive(Clone, Debug)]
pub struct Hyperplanes {
    mean: Array1<f32>,
    /// D×k, orthonormal columns.
    normals: Array2<f32>,
}

impl Hyperplanes {
    /// `bits` random directions (seeded) through the mean of the defender's own `rows`.
    pub fn fit(rows: &Array2<f32>, bits: usize, seed: u64) -> Result<Self, MitigationError> {
        let Some(mean) = rows.mean_axis(ndarray::Axis(0)) else {
            return Err(MitigationError::Defence(
                "binarise: no descriptors to take the mean of".into(),
            ));
        };
        let normals = random_orthonormal(rows.ncols(), bits, seed);
        Ok(Self { mean, normals })
    }

    /// The stored points of `rows`' codes.
    pub fn hash(&self, rows: &Array2<f32>) -> Array2<f32> {
        let k = self.normals.ncols() as f32;
        let signs = (rows - &self.mean)
            .dot(&self.normals)
            .mapv(|v| if v >= 0.0 { 1.0 } else { -1.0 });
        signs.dot(&self.normals.t()) / k.sqrt()
    }

    /// The codes of `rows` (true for +1), for checks.
    pub fn codes(&self, rows: &Array2<f32>) -> Array2<bool> {
        (rows - &self.mean).dot(&self.normals).mapv(|v| v >= 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn close(a: &Array2<f32>, b: &Array2<f32>, tol: f32) -> bool {
        a.shape() == b.shape() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
    }

    #[test]
    fn pca_worked_by_hand() {
        // Points on the line y = x (plus one off it): the first axis is (1, 1)/√2 through the
        // mean (1, 1); projecting on it keeps the line's points and moves (2, 0) to (1, 1).
        let rows = array![[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [-1.0, -1.0]];
        let p = Projection::pca(&rows, 1).unwrap();
        assert!(close(&p.project(&rows), &rows, 1e-5));
        assert!(close(
            &p.project(&array![[2.0, 0.0], [0.0, 2.0]]),
            &array![[1.0, 1.0], [1.0, 1.0]],
            1e-5
        ));
        let e = Projection::pca(&array![[1.0, 2.0]], 1).unwrap_err();
        assert!(e.to_string().contains("too few"), "{e}");
    }

    #[test]
    fn random_bases_are_orthonormal_seeded_and_keep_distances_in_their_span() {
        let b = random_orthonormal(8, 3, 7);
        let gram = b.t().dot(&b);
        assert!(close(&gram, &Array2::eye(3), 1e-6));
        assert_eq!(b, random_orthonormal(8, 3, 7));
        assert_ne!(b, random_orthonormal(8, 3, 8));
        // A point in the span is kept; distances between projections equal those between the
        // sent coordinates.
        let p = Projection::random(8, 3, 7);
        let x = b.dot(&array![1.0, -2.0, 0.5]).insert_axis(ndarray::Axis(0));
        assert!(close(&p.project(&x), &x, 1e-5));
        let y = Array2::from_shape_fn((2, 8), |(i, j)| ((i * 8 + j) as f32).sin());
        let projected = p.project(&y);
        let sent = y.dot(&b);
        let d_stored = (&projected.row(0) - &projected.row(1))
            .mapv(|v| v * v)
            .sum();
        let d_sent = (&sent.row(0) - &sent.row(1)).mapv(|v| v * v).sum();
        assert!((d_stored - d_sent).abs() < 1e-4, "{d_stored} {d_sent}");
    }

    #[test]
    fn simhash_l2_is_hamming() {
        let rows = Array2::from_shape_fn((6, 16), |(i, j)| ((i * 16 + j) as f32 * 0.37).cos());
        let h = Hyperplanes::fit(&rows, 10, 3).unwrap();
        let stored = h.hash(&rows);
        let codes = h.codes(&rows);
        for a in 0..6 {
            for b in 0..6 {
                let hamming = codes
                    .row(a)
                    .iter()
                    .zip(codes.row(b))
                    .filter(|(x, y)| x != y)
                    .count() as f32;
                let l2 = (&stored.row(a) - &stored.row(b)).mapv(|v| v * v).sum();
                assert!((l2 - 4.0 * hamming / 10.0).abs() < 1e-4, "{l2} {hamming}");
            }
        }
    }
}
