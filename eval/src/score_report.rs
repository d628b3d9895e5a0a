//! Scoring reconstructions against reference images: the `metrics.json` schema shared by
//! `featleak score` and `featleak attack reconstruct`.

use crate::image_metrics::{ImageScores, MetricError, score};
use crate::table::{Table, fmt_num};
use image::RgbImage;
use ndarray::Array3;
use serde::{Deserialize, Serialize};

/// Scores of one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedScores {
    /// Relative path of the image, without extension.
    pub name: String,
    /// PSNR in dB (data range 1, capped at [`crate::image_metrics::PSNR_CAP_DB`]).
    pub psnr: f64,
    /// Mean SSIM (1 for identical images).
    pub ssim: f64,
    /// Mean absolute error, intensities in [0, 1].
    pub mae: f64,
    /// LPIPS distance ([`crate::lpips`]) where it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lpips: Option<f64>,
}

impl NamedScores {
    /// `name`'s PSNR, SSIM and MAE (no LPIPS).
    pub fn new(name: impl Into<String>, scores: &ImageScores) -> Self {
        Self {
            name: name.into(),
            psnr: scores.psnr,
            ssim: scores.ssim,
            mae: scores.mae,
            lpips: None,
        }
    }
}

/// Mean scores over the images.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanScores {
    /// Mean of the images' PSNR in dB (not the PSNR of the mean error).
    pub psnr: f64,
    /// Mean of the images' SSIM.
    pub ssim: f64,
    /// Mean of the images' MAE.
    pub mae: f64,
}

/// `{"images": [{name, psnr, ssim, mae}, …], "mean": {psnr, ssim, mae}}`, and
/// `identification` where it was measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreReport {
    /// Scores of each image, in the order given.
    pub images: Vec<NamedScores>,
    /// Their means (0 when there are no images).
    pub mean: MeanScores,
    /// How well the images single out their references among all references
    /// ([`crate::identification`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identification: Option<crate::identification::Identification>,
    /// The LPIPS backbone and mean distance, where LPIPS was measured (on every image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lpips: Option<LpipsSummary>,
}

/// What [`ScoreReport::lpips`] records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LpipsSummary {
    /// The backbone (`alex` or `vgg`).
    pub net: crate::lpips::LpipsNet,
    /// Mean of the images' LPIPS distances.
    pub mean: f64,
}

impl ScoreReport {
    /// A report over `images` (means are 0 for an empty list, never NaN).
    pub fn new(images: Vec<NamedScores>) -> Self {
        let n = images.len().max(1) as f64;
        let mean = MeanScores {
            psnr: images.iter().map(|s| s.psnr).sum::<f64>() / n,
            ssim: images.iter().map(|s| s.ssim).sum::<f64>() / n,
            mae: images.iter().map(|s| s.mae).sum::<f64>() / n,
        };
        Self {
            images,
            mean,
            identification: None,
            lpips: None,
        }
    }

    /// Records that every image's `lpips` was measured with `net`, and their mean (no summary
    /// when an image lacks it or there are none).
    pub fn with_lpips(mut self, net: crate::lpips::LpipsNet) -> Self {
        let values: Option<Vec<f64>> = self.images.iter().map(|s| s.lpips).collect();
        self.lpips = values.filter(|v| !v.is_empty()).map(|v| LpipsSummary {
            net,
            mean: v.iter().sum::<f64>() / v.len() as f64,
        });
        self
    }

    /// One row per image and a final mean row (with an LPIPS column where it was measured).
    pub fn table(&self) -> Table {
        let lpips = self.lpips.as_ref();
        let mut header = vec!["image", "PSNR [dB]", "SSIM", "MAE"];
        if lpips.is_some() {
            header.push("LPIPS");
        }
        let mut t = Table::new(header);
        let row = |name: &str, p: f64, s: f64, m: f64, l: Option<f64>| {
            let mut cells = vec![
                name.to_string(),
                fmt_num(Some(p), 2),
                fmt_num(Some(s), 4),
                fmt_num(Some(m), 4),
            ];
            if lpips.is_some() {
                cells.push(fmt_num(l, 4));
            }
            cells
        };
        for s in &self.images {
            t.push(row(&s.name, s.psnr, s.ssim, s.mae, s.lpips));
        }
        t.push(row(
            "**mean**",
            self.mean.psnr,
            self.mean.ssim,
            self.mean.mae,
            lpips.map(|l| l.mean),
        ));
        t
    }
}

/// An 8-bit RGB image as H×W×3 f32 in [0, 1].
pub fn rgb_array(img: &RgbImage) -> Array3<f32> {
    let (w, h) = img.dimensions();
    Array3::from_shape_vec(
        (h as usize, w as usize, 3),
        img.as_raw().iter().map(|&v| v as f32 / 255.0).collect(),
    )
    .expect("buffer size matches dimensions")
}

/// PSNR, SSIM and MAE of `reconstruction` against `reference` (same size).
pub fn score_images(
    reference: &RgbImage,
    reconstruction: &RgbImage,
) -> Result<ImageScores, MetricError> {
    score(
        rgb_array(reference).view(),
        rgb_array(reconstruction).view(),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_means_and_schema() {
        let a = RgbImage::from_fn(16, 12, |x, y| {
            image::Rgb([(x * 10) as u8, (y * 20) as u8, 128])
        });
        let mut b = a.clone();
        b.put_pixel(3, 3, image::Rgb([255, 255, 255]));
        let s = score_images(&a, &b).unwrap();
        assert!(s.psnr > 20.0 && s.psnr < 100.0 && s.ssim < 1.0 && s.mae > 0.0);
        assert_eq!(score_images(&a, &a).unwrap().psnr, 100.0);
        let report = ScoreReport::new(vec![
            NamedScores {
                name: "x".into(),
                psnr: 10.0,
                ssim: 0.5,
                mae: 0.2,
                lpips: Some(0.3),
            },
            NamedScores {
                name: "y".into(),
                psnr: 20.0,
                ssim: 0.7,
                mae: 0.1,
                lpips: Some(0.1),
            },
        ]);
        assert_eq!(
            report.mean,
            MeanScores {
                psnr: 15.0,
                ssim: 0.6,
                mae: 0.15000000000000002
            }
        );
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["images"][1]["name"], "y");
        assert_eq!(json["mean"]["ssim"], 0.6);
        assert_eq!(ScoreReport::new(vec![]).mean.psnr, 0.0);
        assert!(
            report
                .table()
                .to_markdown()
                .contains("| **mean** | 15.00 | 0.6000 | 0.1500 |")
        );
        assert!(json["images"][1].get("lpips").is_some() && json.get("lpips").is_none());
        let with = report.with_lpips(crate::lpips::LpipsNet::Alex);
        assert_eq!(with.lpips.as_ref().unwrap().mean, 0.2);
        let json: serde_json::Value = serde_json::to_value(&with).unwrap();
        assert_eq!(json["lpips"]["net"], "alex");
        assert!(
            with.table()
                .to_markdown()
                .contains("| **mean** | 15.00 | 0.6000 | 0.1500 | 0.2000 |")
        );
    }
}
