//! The adversary of featleak: threat models (what the localization service receives), the
//! inversion network (a UNet in burn whose first convolution runs only at keypoints), its
//! training data, training loop and run folders.

pub mod allocator;
pub mod bn_relu;
pub mod conv3x3;
pub mod data;
pub mod device;
pub mod loss;
pub mod model;
pub mod run;
pub mod sparse_conv;
pub mod threat;
pub mod training;

pub use device::{ComputeDevice, DeviceError};
pub use model::{UNet, UNetConfig};
pub use threat::{PRESETS, Position, Reveals, Share, ThreatModel};
