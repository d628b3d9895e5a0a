//! The defence side of featleak: strategies that choose which keypoints and descriptors leave
//! the device ([`strategies`]), attacker-guided leakage scores for the privacy-aware strategy
//! ([`leakage`]), and sweeps that score every strategy on privacy (reconstruction quality of a
//! non-adaptive and an adaptive attacker) and utility (matching accuracy) ([`sweep`]).

#![deny(missing_docs)]

pub mod apply;
pub mod defences;
pub mod error;
pub mod leakage;
pub mod report;
pub mod strategies;
pub mod sweep;

pub use defences::{DEFENCE_NAMES, Defence, FittedDefence};
pub use error::MitigationError;
pub use strategies::{DEFAULT_UTILITY_WEIGHT, Hints, STRATEGY_NAMES, Strategy, budget};
