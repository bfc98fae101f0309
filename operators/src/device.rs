//! Choosing the compute device (`--device cpu | cuda[:N]`).

use candle_core::Device;
use ldae_pipeline::{Error, Result};

/// Parse a device name: `cpu`, `cuda` or `cuda:N`. CUDA needs a build with the `cuda` feature.
pub fn parse_device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        n if n == "cuda" || n.starts_with("cuda:") => {
            let ordinal = n
                .strip_prefix("cuda:")
                .map(|i| i.parse::<usize>())
                .transpose()
                .map_err(|_| Error::invalid(format!("--device {n}: expected cuda:N")))?
                .unwrap_or(0);
            Device::new_cuda(ordinal).map_err(|e| {
                Error::external(
                    format!(
                        "--device {n} (is this a build with the 'cuda' feature, on a machine \
                         with a GPU?)"
                    ),
                    e,
                )
            })
        }
        other => Err(Error::invalid(format!(
            "--device '{other}': expected cpu, cuda or cuda:N"
        ))),
    }
}

/// The default device of a spec's compute operators.
pub fn cpu() -> String {
    "cpu".to_string()
}
