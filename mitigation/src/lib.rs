//! The defence side of featleak (to be filled by the mitigation issue): strategies that choose
//! which keypoints and descriptors leave the device, and sweeps that score each on privacy
//! (reconstruction quality of an attacker) and utility (matching accuracy).

/// Re-exported so callers reach the attacker through the crate that measures it.
pub use featleak_attack as attack;
