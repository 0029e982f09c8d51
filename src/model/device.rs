//! The device every network of a command runs on, chosen once (`--device`,
//! else `$DEEPSENT_DEVICE`, else the CPU) and handed down: no module picks
//! its own. The CPU is burn's `flex` backend with deepsent's kernels; `cuda`
//! and `wgpu` are burn's CubeCL runtimes, compiled in with the cargo features
//! of the same names.

use burn::prelude::Device;

/// Where `$DEEPSENT_DEVICE` is read from.
pub const DEVICE_ENV: &str = "DEEPSENT_DEVICE";

/// A device as the command line names it: `cpu`, `cuda`, `cuda:N`, `wgpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda(usize),
    Wgpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "cpu" | "flex" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            "wgpu" => Ok(DeviceChoice::Wgpu),
            _ => match t.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Ok(DeviceChoice::Cuda(n)),
                _ => Err(format!("unknown device {text:?}: expected cpu, cuda, cuda:N or wgpu")),
            },
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceChoice::Wgpu => write!(f, "wgpu"),
        }
    }
}

impl DeviceChoice {
    /// The flag's value, else `$DEEPSENT_DEVICE`, else the CPU.
    pub fn resolve(flag: Option<&str>) -> Result<DeviceChoice, String> {
        match flag.map(str::to_string).or_else(|| std::env::var(DEVICE_ENV).ok().filter(|v| !v.trim().is_empty())) {
            Some(text) => text.parse().map_err(|e| if flag.is_some() { format!("--device: {e}") } else { format!("${DEVICE_ENV}: {e}") }),
            None => Ok(DeviceChoice::Cpu),
        }
    }

    /// The burn device; an error names the cargo feature this build lacks.
    pub fn device(self) -> Result<Device, String> {
        // Unused in a build with every GPU feature.
        #[cfg_attr(all(feature = "cuda", feature = "wgpu"), allow(unused_variables))]
        let missing = |feature: &str| format!("device {self}: this deepsent was built without the `{feature}` feature (cargo build --release --features {feature})");
        match self {
            DeviceChoice::Cpu => Ok(Device::flex()),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda(n) => Ok(Device::cuda(n)),
            #[cfg(not(feature = "cuda"))]
            DeviceChoice::Cuda(_) => Err(missing("cuda")),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(not(feature = "wgpu"))]
            DeviceChoice::Wgpu => Err(missing("wgpu")),
        }
    }
}

/// The CPU device: for work that stays on the host whatever the chosen
/// device (tests, and the probes' Gram matrices, which feed a host solver).
pub fn cpu() -> Device {
    Device::flex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for (text, choice) in [("cpu", DeviceChoice::Cpu), ("CUDA", DeviceChoice::Cuda(0)), ("cuda:3", DeviceChoice::Cuda(3)), ("wgpu", DeviceChoice::Wgpu)] {
            assert_eq!(text.parse::<DeviceChoice>().unwrap(), choice);
            assert_eq!(choice.to_string().parse::<DeviceChoice>().unwrap(), choice);
        }
        assert!("tpu".parse::<DeviceChoice>().unwrap_err().contains("cpu, cuda, cuda:N or wgpu"));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        assert_eq!(DeviceChoice::resolve(Some("cuda:1")).unwrap(), DeviceChoice::Cuda(1));
        assert!(DeviceChoice::resolve(Some("tpu")).unwrap_err().starts_with("--device:"));
    }

    #[test]
    fn a_device_not_compiled_in_says_which_feature_to_build() {
        if cfg!(not(feature = "cuda")) {
            let err = DeviceChoice::Cuda(0).device().unwrap_err();
            assert!(err.contains("--features cuda"), "{err}");
        }
        assert!(DeviceChoice::Cpu.device().is_ok());
    }
}
