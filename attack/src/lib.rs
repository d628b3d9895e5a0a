//! The adversary of featleak (to be filled by the attack issue): threat models (what the
//! localization service receives), inversion networks (UNet family, burn) that reconstruct images
//! from sparse feature maps, their training and the reconstruction of unseen images.

/// Re-exported so callers reach the scoring layer through the crate that uses it.
pub use featleak_eval as eval;
