//! Where a model runs: the CPU (the default build) or one CUDA GPU (the opt-in `cuda` feature).

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::{Error, Result};

/// A compute device named on the command line (`--device`) or in a config file (`device`).
///
/// Spelled `cpu`, `cuda` (GPU 0) or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// The CPU, with gpo's own f32 kernels.
    #[default]
    Cpu,
    /// The CUDA GPU of this ordinal (needs a build with `--features cuda`).
    Cuda(usize),
}

impl DeviceSpec {
    /// Opens the device. A CUDA device in a build without the `cuda` feature, or one that the
    /// driver cannot open, is an error that says how to fix it.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(ordinal) => {
                if !cfg!(feature = "cuda") {
                    return Err(Error::InvalidArgument(format!(
                        "device {self}: this gpo was built without CUDA support; rebuild it with \
                         `cargo build --release -p gpo --features cuda` (README, \"GPU\") or use \
                         --device cpu"
                    )));
                }
                Device::new_cuda(ordinal).map_err(|e| {
                    Error::InvalidArgument(format!(
                        "device {self}: cannot open CUDA GPU {ordinal} ({e}); check nvidia-smi, \
                         LD_LIBRARY_PATH (libcuda, libcublas, libcurand, libnvrtc) and the ordinal"
                    ))
                })
            }
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "unknown device {s:?}: expected cpu, cuda or cuda:N (N = the GPU's ordinal)"
            ))
        };
        match s.trim() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            other => {
                let n = other.strip_prefix("cuda:").ok_or_else(bad)?;
                n.parse::<usize>()
                    .ok()
                    .filter(|n| *n < 1024)
                    .map(DeviceSpec::Cuda)
                    .ok_or_else(bad)
            }
        }
    }
}

crate::text_serde::serde_as_text!(DeviceSpec);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling_and_prints_it_back() {
        for (text, spec) in [
            ("cpu", DeviceSpec::Cpu),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:0", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
        ] {
            assert_eq!(text.parse::<DeviceSpec>().unwrap(), spec, "{text}");
        }
        assert_eq!(DeviceSpec::Cuda(3).to_string(), "cuda:3");
        assert_eq!(
            "cuda:3".parse::<DeviceSpec>().unwrap().to_string(),
            "cuda:3"
        );
    }

    #[test]
    fn rejects_other_names_with_the_accepted_spellings() {
        for text in [
            "gpu",
            "cuda:",
            "cuda:-1",
            "cuda:x",
            "cuda:99999",
            "metal",
            "",
        ] {
            let err = text.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(
                err.contains("expected cpu, cuda or cuda:N"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn cpu_opens_everywhere() {
        assert!(DeviceSpec::Cpu.open().unwrap().is_cpu());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_in_a_cpu_build_says_how_to_rebuild() {
        let err = DeviceSpec::Cuda(0).open().unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }

    #[test]
    fn round_trips_through_serde() {
        let json = serde_json::to_string(&DeviceSpec::Cuda(1)).unwrap();
        assert_eq!(json, "\"cuda:1\"");
        assert_eq!(
            serde_json::from_str::<DeviceSpec>(&json).unwrap(),
            DeviceSpec::Cuda(1)
        );
        let err = serde_json::from_str::<DeviceSpec>("\"tpu\"").unwrap_err();
        assert!(err.to_string().contains("expected cpu, cuda"), "{err}");
    }
}
