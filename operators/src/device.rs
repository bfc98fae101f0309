//! Choosing the compute device (`--device cpu | cuda[:N]`, a spec's `device` key).

use std::fmt;
use std::str::FromStr;

use candle_core::Device;
use ldae_pipeline::{Error, Result};

/// A compute device as flags and specs name it: `cpu`, `cuda` (the first GPU) or `cuda:N`.
/// Parsing checks the name only; [`DeviceName::open`] opens the device (CUDA needs a build with
/// the `cuda` feature and a GPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceName {
    /// The CPU.
    #[default]
    Cpu,
    /// CUDA GPU number N.
    Cuda(usize),
}

impl DeviceName {
    /// Open the device.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceName::Cpu => Ok(Device::Cpu),
            DeviceName::Cuda(ordinal) => Device::new_cuda(ordinal).map_err(|e| {
                Error::external(
                    format!(
                        "--device {self} (is this a build with the 'cuda' feature, on a machine \
                         with a GPU?)"
                    ),
                    e,
                )
            }),
        }
    }
}

impl FromStr for DeviceName {
    type Err = Error;
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "cpu" => Ok(DeviceName::Cpu),
            "cuda" => Ok(DeviceName::Cuda(0)),
            n => n
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(DeviceName::Cuda)
                .ok_or_else(|| {
                    Error::invalid(format!("device '{n}': expected cpu, cuda or cuda:N"))
                }),
        }
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceName::Cpu => f.write_str("cpu"),
            DeviceName::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl serde::Serialize for DeviceName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for DeviceName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DeviceName".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^(cpu|cuda(:[0-9]+)?)$" })
    }
}
