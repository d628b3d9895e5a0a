//! Homography helpers: projecting points, estimating a homography from matches with OpenCV's
//! RANSAC, and the corner error used for homography accuracy (SuperPoint protocol).

use opencv::core::{Mat, Point2f, Vector};
use opencv::prelude::*;

/// Row-major 3×3 homography.
pub type Homography = [[f64; 3]; 3];

/// Maps (x, y) by `h`; `None` when the point goes to infinity.
pub fn project(h: &Homography, x: f64, y: f64) -> Option<(f64, f64)> {
    let w = h[2][0] * x + h[2][1] * y + h[2][2];
    if w.abs() < 1e-12 {
        return None;
    }
    Some((
        (h[0][0] * x + h[0][1] * y + h[0][2]) / w,
        (h[1][0] * x + h[1][1] * y + h[1][2]) / w,
    ))
}

/// RANSAC parameters for [`estimate`] (OpenCV's `findHomography`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RansacConfig {
    /// Inlier threshold in pixels.
    pub threshold: f64,
    /// Most RANSAC iterations (default 2000).
    pub max_iterations: i32,
    /// Confidence at which RANSAC stops early, in (0, 1) (default 0.995).
    pub confidence: f64,
}

impl Default for RansacConfig {
    fn default() -> Self {
        Self {
            threshold: 3.0,
            max_iterations: 2000,
            confidence: 0.995,
        }
    }
}

/// Estimates the homography taking `from` to `to` (at least 4 correspondences); `None` when
/// RANSAC finds none. OpenCV's RANSAC is seeded internally, so results are repeatable.
pub fn estimate(
    from: &[(f32, f32)],
    to: &[(f32, f32)],
    config: &RansacConfig,
) -> Option<Homography> {
    if from.len() < 4 || from.len() != to.len() {
        return None;
    }
    let pts = |p: &[(f32, f32)]| {
        p.iter()
            .map(|&(x, y)| Point2f::new(x, y))
            .collect::<Vector<Point2f>>()
    };
    let mut mask = Mat::default();
    let h = opencv::calib3d::find_homography_ext(
        &pts(from),
        &pts(to),
        opencv::calib3d::RANSAC,
        config.threshold,
        &mut mask,
        config.max_iterations,
        config.confidence,
    )
    .ok()?;

    if h.empty() || h.rows() != 3 || h.cols() != 3 {
        return None;
    }
    let mut out = [[0.0; 3]; 3];
    for (r, row) in out.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = *h.at_2d::<f64>(r as i32, c as i32).ok()?;
        }
    }
    out.iter().flatten().all(|v| v.is_finite()).then_some(out)
}

/// Mean distance between the four image corners mapped by `estimated` and by `truth`, for an
/// image of `size` (height, width); `None` when a corner goes to infinity.
pub fn corner_error(estimated: &Homography, truth: &Homography, size: (u32, u32)) -> Option<f64> {
    let (h, w) = (size.0 as f64 - 1.0, size.1 as f64 - 1.0);
    let mut total = 0.0;
    for (x, y) in [(0.0, 0.0), (w, 0.0), (0.0, h), (w, h)] {
        let (ex, ey) = project(estimated, x, y)?;
        let (tx, ty) = project(truth, x, y)?;
        total += ((ex - tx).powi(2) + (ey - ty).powi(2)).sqrt();
    }
    Some(total / 4.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ransac_recovers_a_known_homography_despite_outliers() {
        let truth = [[1.1, 0.05, 12.0], [-0.03, 0.95, -7.0], [1e-4, 2e-4, 1.0]];
        let mut from = Vec::new();
        let mut to = Vec::new();
        for i in 0..60 {
            let (x, y) = ((i * 37 % 300) as f64, (i * 53 % 200) as f64);
            let (u, v) = project(&truth, x, y).unwrap();
            from.push((x as f32, y as f32));
            // Every fifth correspondence is an outlier.
            to.push(if i % 5 == 0 {
                (u as f32 + 40.0, v as f32 - 25.0)
            } else {
                (u as f32, v as f32)
            });
        }
        let est = estimate(&from, &to, &RansacConfig::default()).unwrap();
        assert!(corner_error(&est, &truth, (200, 300)).unwrap() < 0.05);
        assert!(estimate(&from[..3], &to[..3], &RansacConfig::default()).is_none());
    }
}
