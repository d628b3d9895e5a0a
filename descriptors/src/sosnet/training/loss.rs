//! The SOS loss of SOSNet (Tian et al., CVPR 2019, eq. 2–5): a first-order triplet term with the
//! hardest in-batch negative and a squared hinge, plus second-order similarity regularisation
//! over each pair's nearest neighbours.

use burn::prelude::*;
use burn::tensor::activation::relu;

/// SOS loss settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SosLossConfig {
    /// Triplet margin `t` (paper: 1).
    pub margin: f32,
    /// Neighbours per side for the second-order term (paper: 8).
    pub knn: usize,
    /// Weight of the second-order term (paper: 1).
    pub sos_weight: f32,
}

impl Default for SosLossConfig {
    fn default() -> Self {
        Self {
            margin: 1.0,
            knn: 8,
            sos_weight: 1.0,
        }
    }
}

/// Added on the diagonal so that a sample is never its own negative or neighbour.
const SELF_DISTANCE: f32 = 10.0;
const DIST_EPS: f32 = 1e-8;

/// Pairwise L2 distances of two sets of unit vectors (N×N).
fn distances(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    let cos = a.matmul(b.transpose());
    (cos.mul_scalar(-2.0).add_scalar(2.0))
        .clamp_min(DIST_EPS)
        .sqrt()
}

/// The loss terms of one batch.
pub struct SosLoss {
    /// First-order term plus weighted second-order term (what is minimised).
    pub total: Tensor<1>,
    /// Value of the first-order (triplet) term.
    pub first_order: f64,
    /// Value of the second-order term, before weighting by [`SosLossConfig::sos_weight`].
    pub second_order: f64,
}

/// SOS loss of matching descriptors `a[i] ↔ p[i]` (N×D, unit rows).
///
/// - First order: `mean_i max(0, t + d(a_i, p_i) − d_neg,i)²`, `d_neg,i` the smallest of
///   `d(a_i, a_j)`, `d(a_i, p_j)`, `d(p_i, a_j)`, `d(p_i, p_j)` over `j ≠ i`.
/// - Second order: `mean_i sqrt(Σ_{j ∈ c_i} (d(a_i, a_j) − d(p_i, p_j))²)`, `c_i` the union of the
///   `k` nearest neighbours of `a_i` among the `a` and of `p_i` among the `p`.
pub fn sos_loss(a: Tensor<2>, p: Tensor<2>, config: &SosLossConfig) -> SosLoss {
    let [n, _] = a.dims();
    let device = a.device();
    let eye = Tensor::<2>::eye(n, &device).mul_scalar(SELF_DISTANCE);
    let d_ap = distances(a.clone(), p.clone());
    let d_aa = distances(a.clone(), a.clone());
    let d_pp = distances(p.clone(), p.clone());
    let positive = (a.clone() * p.clone())
        .sum_dim(1)
        .mul_scalar(-2.0)
        .add_scalar(2.0)
        .clamp_min(DIST_EPS)
        .sqrt()
        .reshape([n]);
    let d_ap_off = d_ap.clone() + eye.clone();
    let d_aa_off = d_aa.clone() + eye.clone();
    let d_pp_off = d_pp.clone() + eye;
    let hardest = Tensor::cat(
        vec![
            d_ap_off.clone().min_dim(1),
            d_ap_off.transpose().min_dim(1),
            d_aa_off.clone().min_dim(1),
            d_pp_off.clone().min_dim(1),
        ],
        1,
    )
    .min_dim(1)
    .reshape([n]);
    let first = relu(positive - hardest + config.margin).square().mean();

    let mask = neighbour_mask(&d_aa_off, &d_pp_off, config.knn.min(n.saturating_sub(1)));
    let diff = (d_aa - d_pp).square() * mask;
    let second = (diff.sum_dim(1).reshape([n]) + DIST_EPS).sqrt().mean();

    let first_order = first.clone().into_scalar::<f32>() as f64;
    let second_order = second.clone().into_scalar::<f32>() as f64;
    SosLoss {
        total: first + second.mul_scalar(config.sos_weight),
        first_order,
        second_order,
    }
}

/// 0/1 mask (N×N) of `j ∈ kNN_a(i) ∪ kNN_p(i)`, computed on the host from detached distances.
fn neighbour_mask(d_aa: &Tensor<2>, d_pp: &Tensor<2>, k: usize) -> Tensor<2> {
    let [n, _] = d_aa.dims();
    let host = |t: &Tensor<2>| -> Vec<f32> {
        t.clone()
            .inner()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 distances")
    };
    let (aa, pp) = (host(d_aa), host(d_pp));
    let mut mask = vec![0.0f32; n * n];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    for d in [&aa, &pp] {
        for i in 0..n {
            let row = &d[i * n..(i + 1) * n];
            order.clear();
            order.extend(0..n);
            if k < n {
                order.select_nth_unstable_by(k, |&x, &y| row[x].total_cmp(&row[y]));
            }
            for &j in &order[..k] {
                if j != i {
                    mask[i * n + j] = 1.0;
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(mask, [n, n]), &d_aa.device())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_rows(rows: &[[f32; 2]]) -> Tensor<2> {
        let flat: Vec<f32> = rows
            .iter()
            .flat_map(|r| {
                let n = (r[0] * r[0] + r[1] * r[1]).sqrt();
                [r[0] / n, r[1] / n]
            })
            .collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 2]), &Device::flex())
    }

    #[test]
    fn perfect_well_separated_pairs_cost_nothing() {
        // Orthogonal-ish directions far apart (distance ≥ 1.41 > margin) and exact positives.
        let a = unit_rows(&[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]);
        let loss = sos_loss(a.clone(), a, &SosLossConfig::default());
        assert!(loss.first_order < 1e-6, "{}", loss.first_order);
        assert!(loss.second_order < 1e-3, "{}", loss.second_order);
    }

    #[test]
    fn first_order_matches_a_hand_computation() {
        // a0=(1,0), p0=(0,1): d_pos = √2. a1=(1,0)… hardest negative of 0 is d(a0,a1)=0.
        let a = unit_rows(&[[1.0, 0.0], [1.0, 0.0]]);
        let p = unit_rows(&[[0.0, 1.0], [0.0, 1.0]]);
        let config = SosLossConfig {
            sos_weight: 0.0,
            ..Default::default()
        };
        let loss = sos_loss(a, p, &config);
        // Both anchors: max(0, 1 + √2 − 0)² = (1 + √2)².
        let want = (1.0 + 2f64.sqrt()).powi(2);
        assert!(
            (loss.first_order - want).abs() < 1e-3,
            "{}",
            loss.first_order
        );
    }

    #[test]
    fn second_order_sees_a_distorted_neighbourhood() {
        let a = unit_rows(&[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]);
        let p = unit_rows(&[[1.0, 0.0], [-1.0, 0.2], [1.0, 1.0]]);
        let loss = sos_loss(a, p, &SosLossConfig::default());
        assert!(loss.second_order > 0.1, "{}", loss.second_order);
    }
}
