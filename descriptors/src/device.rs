//! Where a network runs (the attacker, the learned extractors): the one place a
//! [`ComputeDevice`] choice becomes a burn [`Device`].
//!
//! `cpu` is burn's `flex` backend (always built). `wgpu` is burn's wgpu backend (Vulkan, Metal or
//! DX12; Mesa's lavapipe counts too), compiled in only with the cargo feature `wgpu`: a binary
//! built without it answers `--device wgpu` with an error that says how to rebuild.
//!
//! The device is an execution choice, not part of a run's identity: a run trained on one device
//! resumes and reconstructs on another, and features extracted on one device match those of
//! another within float tolerance.

/// burn's device handle, re-exported for crates that do not depend on burn themselves.
pub use burn::prelude::Device;
use std::fmt;
use std::str::FromStr;

/// The compute device named on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ComputeDevice {
    /// burn's `flex` CPU backend.
    #[default]
    Cpu,
    /// burn's `wgpu` backend on the adapter wgpu prefers (a discrete GPU first; override with
    /// `CUBECL_WGPU_DEFAULT_DEVICE`, e.g. `Cpu` or `DiscreteGpu(1)`).
    Wgpu,
}

/// Why a device could not be had.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    /// `--device wgpu` in a build without the `wgpu` feature.
    #[error(
        "this featleak was built without GPU support; rebuild with \
         `cargo build --release --features wgpu` to use --device wgpu"
    )]
    NotBuilt,
    /// wgpu found no adapter (no GPU, no Vulkan driver).
    #[error("--device wgpu: no usable wgpu adapter ({0}); is a Vulkan driver installed?")]
    NoAdapter(String),
    /// A device name that is not cpu or wgpu.
    #[error("unknown device '{0}' (cpu or wgpu)")]
    Unknown(String),
}

impl ComputeDevice {
    /// Every device, in `--device`'s order.
    pub const ALL: [ComputeDevice; 2] = [ComputeDevice::Cpu, ComputeDevice::Wgpu];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ComputeDevice::Cpu => "cpu",
            ComputeDevice::Wgpu => "wgpu",
        }
    }

    /// Whether this binary was built with support for the device.
    pub fn is_built(self) -> bool {
        match self {
            ComputeDevice::Cpu => true,
            ComputeDevice::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The burn device for inference, with a line describing it (for wgpu: the adapter).
    ///
    /// The wgpu runtime is brought up here, once per process, so that a missing driver is an
    /// error rather than a panic at the first tensor; call it once and clone the device.
    pub fn open(self) -> Result<(Device, String), DeviceError> {
        match self {
            ComputeDevice::Cpu => Ok((Device::flex(), "cpu (burn flex)".into())),
            ComputeDevice::Wgpu => open_wgpu(),
        }
    }

    /// The burn device for training (autodiff on top of [`Self::open`]'s).
    pub fn open_autodiff(self) -> Result<(Device, String), DeviceError> {
        self.open().map(|(d, info)| (d.autodiff(), info))
    }
}

/// Whether `device` (or the device under its autodiff) is burn's `flex` CPU backend.
pub fn is_flex(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

#[cfg(feature = "wgpu")]
fn open_wgpu() -> Result<(Device, String), DeviceError> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup()
        .map_err(|e| DeviceError::NoAdapter(e.to_string()))?;
    let info = setup.adapter.get_info();
    Ok((
        device,
        format!(
            "wgpu: {} ({:?}, {:?}, driver {} {})",
            info.name, info.backend, info.device_type, info.driver, info.driver_info
        ),
    ))
}

#[cfg(not(feature = "wgpu"))]
fn open_wgpu() -> Result<(Device, String), DeviceError> {
    Err(DeviceError::NotBuilt)
}

impl fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ComputeDevice {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s.to_ascii_lowercase())
            .ok_or_else(|| DeviceError::Unknown(s.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in ComputeDevice::ALL {
            assert_eq!(d.name().parse::<ComputeDevice>(), Ok(d));
        }
        assert_eq!("WGPU".parse::<ComputeDevice>(), Ok(ComputeDevice::Wgpu));
        assert!("cuda".parse::<ComputeDevice>().is_err());
    }

    #[test]
    fn cpu_is_always_there() {
        let (device, info) = ComputeDevice::Cpu.open().unwrap();
        assert_eq!(device, Device::flex());
        assert!(info.contains("cpu"));
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn wgpu_without_the_feature_says_how_to_rebuild() {
        let e = ComputeDevice::Wgpu.open().unwrap_err();
        assert!(!ComputeDevice::Wgpu.is_built());
        assert!(
            e.to_string()
                .contains("cargo build --release --features wgpu"),
            "{e}"
        );
    }
}
