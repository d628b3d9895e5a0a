//! Full-reference image metrics: PSNR, MAE and SSIM, with an optional pixel mask.
//!
//! Images are `f32` arrays with values in `[0, 1]`, laid out H×W×C (channel last);
//! grey images are H×W×1 views (see [`gray_view`]). All accumulation is in `f64`.
//!
//! * **PSNR** uses a data range of 1: `10·log10(1 / mse)`, the MSE taken over all
//!   (selected) pixels and channels. To keep result tables free of infinities it is
//!   capped at [`PSNR_CAP_DB`] (identical images give exactly 100 dB).
//! * **MAE** is the mean absolute difference over all (selected) pixels and channels.
//! * **SSIM** reproduces
//!   `skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
//!   use_sample_covariance=False, data_range=1.0, channel_axis=-1)` (without
//!   `channel_axis` for grey) computed on float64 data: an 11-tap Gaussian window
//!   (σ = 1.5, truncate = 3.5, scipy's `reflect` boundary), K1 = 0.01, K2 = 0.03, the
//!   per-channel S map averaged after cropping a border of 5 pixels, then averaged over
//!   channels. Like scikit-image, images with a side shorter than the 11×11 window are
//!   rejected ([`MetricError::ImageTooSmall`]).
//!
//! **Masks** (H×W, `true` = compare) restrict PSNR and MAE to the selected pixels. For
//! SSIM the mask is *our* definition (scikit-image has none): the S map is computed on
//! the whole image as usual, and the mean is taken over the selected pixels inside
//! the same cropped region, then over channels.

use std::ops::Range;

use ndarray::{Array2, ArrayView2, ArrayView3, Axis, Zip};
use rayon::prelude::*;

/// PSNR values are capped at this many dB (reached for identical images).
pub const PSNR_CAP_DB: f64 = 100.0;
/// Standard deviation of the SSIM Gaussian window.
pub const SSIM_SIGMA: f64 = 1.5;
/// Truncation of the SSIM Gaussian window, in standard deviations (scikit-image's value).
pub const SSIM_TRUNCATE: f64 = 3.5;
/// SSIM stabilising constant for the luminance term, relative to the data range.
pub const SSIM_K1: f64 = 0.01;
/// SSIM stabilising constant for the contrast/structure term, relative to the data range.
pub const SSIM_K2: f64 = 0.03;
const DATA_RANGE: f64 = 1.0;
/// Side of the SSIM window: `2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1`.
const SSIM_WIN: usize = 11;

/// Why a metric could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum MetricError {
    /// The two images do not have the same H×W×C shape.
    #[error("image shapes differ: a is {a:?}, b is {b:?}")]
    ShapeMismatch {
        /// Shape of the first image.
        a: Vec<usize>,
        /// Shape of the second image.
        b: Vec<usize>,
    },
    /// The mask is not H×W for H×W×C images.
    #[error("mask shape {mask:?} does not match the image's height×width {image:?}")]
    MaskShapeMismatch {
        /// Shape of the mask.
        mask: [usize; 2],
        /// Height and width of the images.
        image: [usize; 2],
    },
    /// An image side is shorter than LPIPS's backbone needs.
    #[error("image is {height}×{width}; LPIPS needs both sides ≥ {min}")]
    TooSmallForLpips {
        /// Image height.
        height: usize,
        /// Image width.
        width: usize,
        /// The shortest side LPIPS accepts.
        min: usize,
    },
    /// An image side is shorter than the SSIM window (scikit-image raises here too).
    #[error("image is {height}×{width}, smaller than the {window}×{window} SSIM window")]
    ImageTooSmall {
        /// Image height.
        height: usize,
        /// Image width.
        width: usize,
        /// Side of the Gaussian window (11 for σ = 1.5).
        window: usize,
    },
    /// Nothing to average: the image has no pixels or channels, or the mask selects
    /// no pixel (for SSIM: none inside the cropped region).
    #[error("no pixels to compare (empty image, or the mask selects none)")]
    NoPixels,
}

/// PSNR, SSIM and MAE of one image pair.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageScores {
    /// Peak signal-to-noise ratio in dB (data range 1, capped at [`PSNR_CAP_DB`]).
    pub psnr: f64,
    /// Mean structural similarity.
    pub ssim: f64,
    /// Mean absolute error.
    pub mae: f64,
}

/// Views a grey H×W image as H×W×1, the layout every metric here takes.
pub fn gray_view(a: ArrayView2<'_, f32>) -> ArrayView3<'_, f32> {
    a.insert_axis(Axis(2))
}

/// Normalised 1-D Gaussian window as `scipy.ndimage.gaussian_filter` builds it:
/// radius `int(truncate·sigma + 0.5)`, weights `exp(-x²/(2σ²))` summing to 1.
/// A non-positive or non-finite `sigma` gives the identity window `[1.0]`.
#[must_use]
pub fn gaussian_window(sigma: f64, truncate: f64) -> Vec<f64> {
    if !(sigma > 0.0 && sigma.is_finite() && truncate.is_finite()) {
        return vec![1.0];
    }
    let radius = (truncate * sigma + 0.5).max(0.0) as i64;
    let coef = -0.5 / (sigma * sigma);
    let mut w: Vec<f64> = (-radius..=radius)
        .map(|x| (coef * (x * x) as f64).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    for v in &mut w {
        *v /= sum;
    }
    w
}

/// Peak signal-to-noise ratio in dB, data range 1, capped at [`PSNR_CAP_DB`].
///
/// # Errors
/// [`MetricError::ShapeMismatch`] or [`MetricError::MaskShapeMismatch`] for mismatched
/// shapes; [`MetricError::NoPixels`] if nothing is selected.
pub fn psnr(
    a: ArrayView3<f32>,
    b: ArrayView3<f32>,
    mask: Option<ArrayView2<bool>>,
) -> Result<f64, MetricError> {
    check_pair(&a, &b, mask.as_ref())?;
    Ok(psnr_from_mse(mean_diff(&a, &b, mask.as_ref(), |d| d * d)?))
}

/// Mean absolute error over all (selected) pixels and channels.
///
/// # Errors
/// As [`psnr`].
pub fn mae(
    a: ArrayView3<f32>,
    b: ArrayView3<f32>,
    mask: Option<ArrayView2<bool>>,
) -> Result<f64, MetricError> {
    check_pair(&a, &b, mask.as_ref())?;
    mean_diff(&a, &b, mask.as_ref(), f64::abs)
}

/// Mean SSIM (see the module docs), averaged over channels; with a mask, the mean
/// of the S map over the selected pixels of the cropped region.
///
/// # Errors
/// As [`psnr`], plus [`MetricError::ImageTooSmall`] when a side is shorter than 11.
pub fn ssim(
    a: ArrayView3<f32>,
    b: ArrayView3<f32>,
    mask: Option<ArrayView2<bool>>,
) -> Result<f64, MetricError> {
    check_pair(&a, &b, mask.as_ref())?;
    ssim_mean(&a, &b, mask.as_ref())
}

/// Full H×W SSIM map (scikit-image's `full=True` S), averaged over channels.
/// Not cropped: the border of 5 pixels that [`ssim`] ignores is included.
///
/// # Errors
/// As [`psnr`], plus [`MetricError::ImageTooSmall`] when a side is shorter than 11.
pub fn ssim_map(a: ArrayView3<f32>, b: ArrayView3<f32>) -> Result<Array2<f64>, MetricError> {
    check_pair(&a, &b, None)?;
    let (h, w, c) = a.dim();
    if c == 0 {
        return Err(MetricError::NoPixels);
    }
    let win = SsimWindow::new(h, w)?;
    let bands = win.tasks(h, c);
    let parts: Vec<(usize, Vec<f64>)> = bands
        .into_par_iter()
        .map(|(ch, rows)| {
            let mut out = Vec::with_capacity(rows.len() * w);
            let start = rows.start;
            win.s_rows(&a, &b, ch, rows, |_, s| out.extend_from_slice(s));
            (start, out)
        })
        .collect();
    let mut map = Array2::<f64>::zeros((h, w));
    let flat = map.as_slice_mut().expect("fresh array is contiguous");
    for (start, part) in parts {
        let dst = &mut flat[start * w..start * w + part.len()];
        dst.iter_mut().zip(&part).for_each(|(d, s)| *d += s);
    }
    let inv_c = 1.0 / c as f64;
    map.mapv_inplace(|v| v * inv_c);
    Ok(map)
}

/// PSNR, SSIM and MAE in one call (same conventions as the separate functions).
///
/// # Errors
/// As [`ssim`].
pub fn score(
    a: ArrayView3<f32>,
    b: ArrayView3<f32>,
    mask: Option<ArrayView2<bool>>,
) -> Result<ImageScores, MetricError> {
    check_pair(&a, &b, mask.as_ref())?;
    let mask = mask.as_ref();
    Ok(ImageScores {
        psnr: psnr_from_mse(mean_diff(&a, &b, mask, |d| d * d)?),
        ssim: ssim_mean(&a, &b, mask)?,
        mae: mean_diff(&a, &b, mask, f64::abs)?,
    })
}

fn check_pair(
    a: &ArrayView3<f32>,
    b: &ArrayView3<f32>,
    mask: Option<&ArrayView2<bool>>,
) -> Result<(), MetricError> {
    if a.shape() != b.shape() {
        return Err(MetricError::ShapeMismatch {
            a: a.shape().to_vec(),
            b: b.shape().to_vec(),
        });
    }
    if let Some(m) = mask {
        let (h, w, _) = a.dim();
        if m.dim() != (h, w) {
            let (mh, mw) = m.dim();
            return Err(MetricError::MaskShapeMismatch {
                mask: [mh, mw],
                image: [h, w],
            });
        }
    }
    Ok(())
}

fn psnr_from_mse(mse: f64) -> f64 {
    if mse > 0.0 {
        (10.0 * (DATA_RANGE * DATA_RANGE / mse).log10()).min(PSNR_CAP_DB)
    } else {
        PSNR_CAP_DB
    }
}

/// Mean of `f(a - b)` over all (selected) pixels and channels.
fn mean_diff(
    a: &ArrayView3<f32>,
    b: &ArrayView3<f32>,
    mask: Option<&ArrayView2<bool>>,
    f: impl Fn(f64) -> f64,
) -> Result<f64, MetricError> {
    let (sum, n) = match mask {
        None => {
            let sum = Zip::from(a)
                .and(b)
                .fold(0.0, |acc, &x, &y| acc + f(x as f64 - y as f64));
            (sum, a.len())
        }
        Some(m) => Zip::from(a.lanes(Axis(2)))
            .and(b.lanes(Axis(2)))
            .and(m)
            .fold((0.0, 0usize), |(acc, n), la, lb, &keep| {
                if !keep {
                    return (acc, n);
                }
                let s: f64 = la
                    .iter()
                    .zip(lb)
                    .map(|(&x, &y)| f(x as f64 - y as f64))
                    .sum();
                (acc + s, n + la.len())
            }),
    };
    if n == 0 {
        return Err(MetricError::NoPixels);
    }
    Ok(sum / n as f64)
}

fn ssim_mean(
    a: &ArrayView3<f32>,
    b: &ArrayView3<f32>,
    mask: Option<&ArrayView2<bool>>,
) -> Result<f64, MetricError> {
    let (h, w, c) = a.dim();
    if c == 0 {
        return Err(MetricError::NoPixels);
    }
    let win = SsimWindow::new(h, w)?;
    let pad = win.radius;
    let cols = pad..w - pad;
    // Per task: (channel, sum of S, number of pixels averaged).
    let parts: Vec<(usize, f64, usize)> = win
        .tasks(h, c)
        .into_par_iter()
        .map(|(ch, rows)| {
            let (mut sum, mut n) = (0.0, 0usize);
            win.s_rows(a, b, ch, rows, |i, s| {
                if i < pad || i >= h - pad {
                    return;
                }
                let s = &s[cols.clone()];
                match mask {
                    None => {
                        sum += s.iter().sum::<f64>();
                        n += s.len();
                    }
                    Some(m) => {
                        for (&v, &keep) in s.iter().zip(m.row(i).slice(ndarray::s![cols.clone()])) {
                            if keep {
                                sum += v;
                                n += 1;
                            }
                        }
                    }
                }
            });
            (ch, sum, n)
        })
        .collect();
    let mut per_channel = vec![(0.0f64, 0usize); c];
    for (ch, s, n) in parts {
        per_channel[ch].0 += s;
        per_channel[ch].1 += n;
    }
    // The mask is shared by all channels, so every channel has the same count.
    let n = per_channel[0].1;
    if n == 0 {
        return Err(MetricError::NoPixels);
    }
    Ok(per_channel.iter().map(|&(s, _)| s / n as f64).sum::<f64>() / c as f64)
}

/// The Gaussian SSIM window and the constants of the S formula.
struct SsimWindow {
    /// Normalised weights.
    weights: [f64; SSIM_WIN],
    radius: usize,
    c1: f64,
    c2: f64,
}

impl SsimWindow {
    /// Builds the σ = 1.5 window; errors if an H×W image is smaller than it.
    fn new(h: usize, w: usize) -> Result<Self, MetricError> {
        let weights: [f64; SSIM_WIN] = gaussian_window(SSIM_SIGMA, SSIM_TRUNCATE)
            .try_into()
            .expect("σ = 1.5, truncate = 3.5 give an 11-tap window");
        if h < SSIM_WIN || w < SSIM_WIN {
            return Err(MetricError::ImageTooSmall {
                height: h,
                width: w,
                window: SSIM_WIN,
            });
        }
        Ok(Self {
            radius: SSIM_WIN / 2,
            weights,
            c1: (SSIM_K1 * DATA_RANGE).powi(2),
            c2: (SSIM_K2 * DATA_RANGE).powi(2),
        })
    }

    /// Splits the work into (channel, row band) tasks: a few per thread, bands of at
    /// least 16 rows so that the filter halo stays cheap.
    fn tasks(&self, h: usize, c: usize) -> Vec<(usize, Range<usize>)> {
        let want = (4 * rayon::current_num_threads()).div_ceil(c).max(1);
        let bands = want.min(h.div_ceil(16)).max(1);
        let band_h = h.div_ceil(bands);
        (0..c)
            .flat_map(|ch| {
                (0..h)
                    .step_by(band_h)
                    .map(move |r0| (ch, r0..(r0 + band_h).min(h)))
            })
            .collect()
    }

    /// Computes the S map of channel `ch` for the output rows `rows`, calling
    /// `sink(row, s_row)` for each row in order.
    ///
    /// Separable filtering in f64 with a ring buffer of horizontally filtered rows: for
    /// each input row the five maps x, y, x², y², xy are filtered along the row (scipy's
    /// `reflect` boundary, i.e. numpy's `symmetric`), then each output row sums the
    /// 11 ring rows vertically.
    fn s_rows(
        &self,
        a: &ArrayView3<f32>,
        b: &ArrayView3<f32>,
        ch: usize,
        rows: Range<usize>,
        mut sink: impl FnMut(usize, &[f64]),
    ) {
        let (h, w, _) = a.dim();
        let r = self.radius as isize;
        let n = SSIM_WIN as isize;
        // Padded input rows x, y, x², y², xy, each w + 2r long.
        let mut src = vec![0.0f64; 5 * (w + SSIM_WIN - 1)];
        // Ring of horizontally filtered rows: [slot][map][col].
        let mut ring = vec![0.0f64; SSIM_WIN * 5 * w];
        let mut acc = vec![0.0f64; 5 * w];
        let mut s_row = vec![0.0f64; w];
        let slot_of = |i: isize| (i + r).rem_euclid(n) as usize * 5 * w;
        let start = rows.start as isize;
        for i in start - r..start + r {
            let off = slot_of(i);
            self.filter_row(
                a,
                b,
                ch,
                reflect(i, h),
                &mut src,
                &mut ring[off..off + 5 * w],
            );
        }
        for i in rows {
            let ii = i as isize;
            let off = slot_of(ii + r);
            self.filter_row(
                a,
                b,
                ch,
                reflect(ii + r, h),
                &mut src,
                &mut ring[off..off + 5 * w],
            );
            let taps = std::array::from_fn(|k| {
                let off = slot_of(ii - r + k as isize);
                &ring[off..off + 5 * w]
            });
            conv11(&self.weights, taps, &mut acc);
            self.s_formula(&acc, &mut s_row);
            sink(i, &s_row);
        }
    }

    /// Loads row `ri` of channel `ch` of both images into `src` (padded by reflection),
    /// forms the products and writes the five horizontally filtered maps to `out`.
    #[inline(always)]
    fn filter_row(
        &self,
        a: &ArrayView3<f32>,
        b: &ArrayView3<f32>,
        ch: usize,
        ri: usize,
        src: &mut [f64],
        out: &mut [f64],
    ) {
        let r = self.radius;
        let w = out.len() / 5;
        let wl = w + 2 * r;
        let (xs, rest) = src.split_at_mut(wl);
        let (ys, rest) = rest.split_at_mut(wl);
        let (xx, rest) = rest.split_at_mut(wl);
        let (yy, xy) = rest.split_at_mut(wl);
        let ra = a.slice(ndarray::s![ri, .., ch]);
        let rb = b.slice(ndarray::s![ri, .., ch]);
        for ((x, y), (&va, &vb)) in xs[r..r + w]
            .iter_mut()
            .zip(&mut ys[r..r + w])
            .zip(ra.iter().zip(rb.iter()))
        {
            *x = va as f64;
            *y = vb as f64;
        }
        for k in 0..r {
            xs[r - 1 - k] = xs[r + k];
            ys[r - 1 - k] = ys[r + k];
            xs[r + w + k] = xs[r + w - 1 - k];
            ys[r + w + k] = ys[r + w - 1 - k];
        }
        for ((((&x, &y), pxx), pyy), pxy) in
            xs.iter().zip(ys.iter()).zip(xx).zip(yy).zip(&mut xy[..wl])
        {
            *pxx = x * x;
            *pyy = y * y;
            *pxy = x * y;
        }
        for (m, o) in out.chunks_exact_mut(w).enumerate() {
            let s = &src[m * wl..(m + 1) * wl];
            conv11(&self.weights, std::array::from_fn(|k| &s[k..k + w]), o);
        }
    }

    /// S from the five filtered maps (scikit-image's formula, population covariance).
    #[inline(always)]
    fn s_formula(&self, acc: &[f64], s_row: &mut [f64]) {
        let w = s_row.len();
        let (ux, rest) = acc.split_at(w);
        let (uy, rest) = rest.split_at(w);
        let (uxx, rest) = rest.split_at(w);
        let (uyy, uxy) = rest.split_at(w);
        let (c1, c2) = (self.c1, self.c2);
        for j in 0..w {
            let (mx, my) = (ux[j], uy[j]);
            let vx = uxx[j] - mx * mx;
            let vy = uyy[j] - my * my;
            let vxy = uxy[j] - mx * my;
            let a1 = 2.0 * mx * my + c1;
            let a2 = 2.0 * vxy + c2;
            let b1 = mx * mx + my * my + c1;
            let b2 = vx + vy + c2;
            s_row[j] = (a1 * a2) / (b1 * b2);
        }
    }
}

/// Symmetric reflection (scipy's `reflect`) of an index in `-len..2·len` into `0..len`.
#[inline(always)]
fn reflect(i: isize, len: usize) -> usize {
    if i < 0 {
        (-i - 1) as usize
    } else if i as usize >= len {
        2 * len - 1 - i as usize
    } else {
        i as usize
    }
}

/// `out[j] = Σ_k wt[k]·taps[k][j]` for the symmetric 11-tap window, pairing taps
/// k and 10-k; all slices have `out.len()` elements.
#[inline(always)]
fn conv11(wt: &[f64; SSIM_WIN], taps: [&[f64]; SSIM_WIN], out: &mut [f64]) {
    let n = out.len();
    let t: [&[f64]; SSIM_WIN] = taps.map(|t| &t[..n]);
    for j in 0..n {
        out[j] = wt[5] * t[5][j]
            + wt[0] * (t[0][j] + t[10][j])
            + wt[1] * (t[1][j] + t[9][j])
            + wt[2] * (t[2][j] + t[8][j])
            + wt[3] * (t[3][j] + t[7][j])
            + wt[4] * (t[4][j] + t[6][j]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn window_matches_scipy_layout() {
        let w = gaussian_window(SSIM_SIGMA, SSIM_TRUNCATE);
        assert_eq!(w.len(), 11);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((w[0] - w[10]).abs() < 1e-15 && w[5] > w[4]);
        assert_eq!(gaussian_window(0.0, 3.5), vec![1.0]);
    }

    #[test]
    fn errors_instead_of_panics() {
        let a = Array3::<f32>::zeros((20, 20, 3));
        let b = Array3::<f32>::zeros((20, 21, 3));
        let e = ssim(a.view(), b.view(), None).unwrap_err();
        assert!(e.to_string().contains("[20, 20, 3]") && e.to_string().contains("[20, 21, 3]"));
        let m = Array2::from_elem((20, 19), true);
        assert!(matches!(
            psnr(a.view(), a.view(), Some(m.view())),
            Err(MetricError::MaskShapeMismatch { .. })
        ));
        let none = Array2::from_elem((20, 20), false);
        assert!(matches!(
            mae(a.view(), a.view(), Some(none.view())),
            Err(MetricError::NoPixels)
        ));
        let small = Array3::<f32>::zeros((7, 7, 1));
        assert!(matches!(
            ssim(small.view(), small.view(), None),
            Err(MetricError::ImageTooSmall { window: 11, .. })
        ));
        assert_eq!(psnr(small.view(), small.view(), None).unwrap(), PSNR_CAP_DB);
    }

    #[test]
    fn map_mean_over_crop_equals_ssim() {
        let a = Array3::from_shape_fn((23, 31, 2), |(i, j, c)| {
            ((i * 7 + j * 3 + c) % 11) as f32 / 10.0
        });
        let b = a.mapv(|v| (v * 0.8 + 0.1).min(1.0));
        let map = ssim_map(a.view(), b.view()).unwrap();
        let cropped = map.slice(ndarray::s![5..18, 5..26]);
        let mean = cropped.mean().unwrap();
        assert!((mean - ssim(a.view(), b.view(), None).unwrap()).abs() < 1e-12);
    }
}
