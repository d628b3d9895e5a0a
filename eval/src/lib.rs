//! Scoring for featleak experiments (to be filled by the eval issue): image metrics (PSNR, SSIM,
//! MAE) between private images and reconstructions, matching metrics (mean matching accuracy and
//! homography accuracy on HPatches/Oxford pairs), and the tables, plots and HTML galleries that
//! report them.

/// Re-exported so callers reach the feature types through the crate that scores them.
pub use featleak_descriptors as descriptors;
