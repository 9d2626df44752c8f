//! `--device`: CPU, CUDA or Metal, chosen at run time.

use anyhow::Result;

use crate::error::usage;
use candle_core::Device;

/// Parses `auto`, `cpu`, `cuda`, `cuda:N` or `metal`. `auto` takes CUDA when
/// the build has it and a GPU answers, else Metal likewise, else the CPU.
pub fn select(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        "auto" => {
            if candle_core::utils::cuda_is_available() {
                if let Ok(d) = Device::new_cuda(0) {
                    return Ok(d);
                }
            }
            if candle_core::utils::metal_is_available() {
                if let Ok(d) = Device::new_metal(0) {
                    return Ok(d);
                }
            }
            Ok(Device::Cpu)
        }
        "metal" => {
            if !candle_core::utils::metal_is_available() {
                return Err(usage("this build has no Metal support: rebuild on macOS with `cargo build --release --features metal`, or use --device cpu"));
            }
            Device::new_metal(0)
                .map_err(|e| usage(format!("no Metal device found ({e}); use --device cpu")))
        }
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                None => 0,
                Some(n) => n.parse::<usize>().map_err(|_| {
                    usage(format!(
                        "bad device `{s}`: write cuda:N with N a GPU number, e.g. cuda:0"
                    ))
                })?,
            };
            if !candle_core::utils::cuda_is_available() {
                return Err(usage("this build has no CUDA support: rebuild with `cargo build --release --features cuda`, or use --device cpu"));
            }
            Device::new_cuda(ordinal).map_err(|e| {
                usage(format!(
                    "no CUDA device {ordinal} found ({e}); use --device cpu"
                ))
            })
        }
        other => Err(usage(format!(
            "unknown device `{other}`: use auto, cpu, cuda, cuda:N or metal"
        ))),
    }
}

/// `cpu`, `cuda:0`, `metal:0`, for messages.
pub fn describe(d: &Device) -> String {
    match d.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// What this build can use, one line each, for `zoo devices`.
pub fn available() -> Vec<String> {
    let mut v = vec!["cpu".to_string()];
    if candle_core::utils::cuda_is_available() {
        for i in 0..16 {
            match Device::new_cuda(i) {
                Ok(_) => v.push(format!("cuda:{i}")),
                Err(_) => break,
            }
        }
    }
    if candle_core::utils::metal_is_available() && Device::new_metal(0).is_ok() {
        v.push("metal:0".into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_device_names_the_choices() {
        let e = select("tpu").unwrap_err().to_string();
        assert!(
            e.contains("unknown device `tpu`") && e.contains("cuda:N"),
            "{e}"
        );
    }

    #[test]
    fn cpu_and_auto_always_work() {
        assert!(select("cpu").unwrap().is_cpu());
        select("auto").unwrap();
    }

    #[test]
    fn cuda_without_the_feature_says_which_feature_to_build() {
        if !candle_core::utils::cuda_is_available() {
            let e = select("cuda:0").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
        assert!(select("cuda:x").unwrap_err().to_string().contains("cuda:N"));
    }
}

/// `--dtype`: how weights are stored and computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    F16,
    BF16,
    /// Recurrent weights in int8 on the CPU (VNNI where present); the
    /// rest f32.
    Int8,
}

impl Precision {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            "bf16" => Ok(Self::BF16),
            "int8" => Ok(Self::Int8),
            other => Err(usage(format!(
                "unknown dtype `{other}`: use f32, f16, bf16 or int8"
            ))),
        }
    }

    /// The dtype to load weights in (int8 loads f32, then quantizes).
    pub fn dtype(self) -> candle_core::DType {
        match self {
            Self::F32 | Self::Int8 => candle_core::DType::F32,
            Self::F16 => candle_core::DType::F16,
            Self::BF16 => candle_core::DType::BF16,
        }
    }

    /// Loads `dir` on `device` in this precision. On the CPU, f16 and
    /// bf16 weights are rounded to that precision and computed in f32 by
    /// the fused kernels (candle's CPU half-precision ops are several times
    /// slower); elsewhere the model runs in that dtype. int8 loads f32,
    /// then quantizes the recurrent layers.
    pub fn load<M: Quantize>(
        self,
        dir: &crate::model::ModelDir,
        device: &Device,
        load: impl FnOnce(&crate::model::ModelDir, &Device, candle_core::DType) -> Result<M>,
    ) -> Result<M> {
        let mut m = match self {
            Self::F16 | Self::BF16 if device.is_cpu() => load(
                &dir.clone().rounding_weights_to(self.dtype()),
                device,
                candle_core::DType::F32,
            )?,
            _ => load(dir, device, self.dtype())?,
        };
        if self == Self::Int8 {
            m.quantize_int8()?;
        }
        Ok(m)
    }
}

/// A model whose recurrent layers can switch to int8 weights.
pub trait Quantize {
    fn quantize_int8(&mut self) -> Result<()>;
}
