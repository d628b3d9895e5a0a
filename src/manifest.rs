//! Run manifests: the full configuration and outcome of a command, written beside its outputs.

use anyhow::Context;
use serde::Serialize;
use std::path::Path;

/// Identifies the tool that wrote an output.
#[derive(Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

impl Tool {
    pub fn current() -> Self {
        Self {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// Seconds since the Unix epoch, for manifests.
pub fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes `value` as pretty JSON to `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    featleak_datasets::atomic::write_bytes_atomic(path, &bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}
