//! The defence side of featleak: strategies that choose which keypoints and descriptors leave
//! the device. Sweeps that score each strategy on privacy (reconstruction quality of an attacker,
//! adaptive or not) and utility (matching accuracy) are in progress.

pub mod strategies;

pub use strategies::{STRATEGY_NAMES, Strategy, budget};
