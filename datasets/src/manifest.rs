//! What every manifest featleak writes beside its outputs starts with: the tool that wrote it
//! and when.

use serde::{Deserialize, Serialize};

/// Identifies the tool that wrote an output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// "featleak".
    pub name: String,
    /// Its version.
    pub version: String,
}

impl Tool {
    /// This featleak.
    pub fn current() -> Self {
        Self {
            name: "featleak".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
