//! Scoring for featleak experiments: image metrics (PSNR, SSIM, MAE) between private images and
//! reconstructions; matching metrics (mean matching accuracy and homography accuracy on
//! HPatches/Oxford pairs), tables, plots and HTML galleries are to come with the eval issue.

pub mod image_metrics;

pub use image_metrics::{ImageScores, MetricError, score};
