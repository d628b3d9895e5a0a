//! The adversary of featleak: threat models (what the localization service receives), the
//! inversion network (a UNet in burn whose first convolution runs only at keypoints) and its CPU
//! kernels, its training data, trainer and run recipe, and the jobs the command line runs:
//! training sessions ([`session`]), reconstructions ([`reconstruct`]) and the baselines every
//! score is held against ([`baselines`]), and the pretrained attackers bundled with it ([`zoo`]).

#![deny(missing_docs)]

pub mod baselines;
pub mod data;
pub mod error;
pub mod export;
pub mod kernels;
pub mod loss;
pub mod merge;
pub mod model;
pub mod reconstruct;
pub mod run;
pub mod session;
pub mod threat;
pub mod training;
pub mod zoo;

pub use error::AttackError;
pub use featleak_descriptors::device::{self, ComputeDevice, DeviceError};
pub use model::{UNet, UNetConfig};
pub use threat::{PRESETS, Position, Reveals, Share, ThreatModel};
pub use zoo::{Attacker, AttackerSource, ZOO};
