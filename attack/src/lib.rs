//! The adversary of featleak: threat models (what the localization service receives), inversion
//! networks (UNet family, burn) that reconstruct images from sparse feature maps, their training
//! and the reconstruction of unseen images. The network and training are in progress.

pub mod data;
pub mod run;
pub mod threat;

pub use threat::{PRESETS, Position, Reveals, Share, ThreatModel};
