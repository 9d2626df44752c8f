//! Command implementations for the `zoo` binary.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use zoo::{catalog, device};

use crate::Common;

mod inspect;
mod ner;
mod sentiment;
mod tools;
mod translate;

pub use inspect::{inspect, InspectArgs};
pub use ner::{eval_ner, run_ner, NerFormat};
pub use sentiment::{eval_sentiment, run_sentiment};
pub use tools::{bench, devices, info, list, parity, summary};
pub use translate::{eval_translate, run_translate};

/// A mistake in how zoo was called (exit status 2).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(msg.into()))
}

pub fn is_usage(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Usage>())
}

/// An error chain on one line: `what failed: why`.
pub fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| c.to_string().replace('\n', " "))
        .collect::<Vec<_>>()
        .join(": ")
}

pub(crate) fn select_device(common: &Common) -> Result<candle_core::Device> {
    let d = device::select(&common.device).map_err(|e| usage(e.to_string()))?;
    if common.verbose {
        eprintln!("zoo: device {}", device::describe(&d));
    }
    Ok(d)
}

pub(crate) fn select_dtype(common: &Common) -> Result<candle_core::DType> {
    match common.dtype.as_str() {
        "f32" => Ok(candle_core::DType::F32),
        "f16" => Ok(candle_core::DType::F16),
        "bf16" => Ok(candle_core::DType::BF16),
        other => Err(usage(format!(
            "unknown dtype `{other}`: use f32, f16 or bf16"
        ))),
    }
}

pub(crate) fn resolve_model(
    spec: Option<&str>,
    task: &str,
    verbose: bool,
) -> Result<zoo::model::ModelDir> {
    let spec = spec.unwrap_or(catalog::default_model(task));
    if spec.is_empty() {
        return Err(usage("name a model: see `zoo list`"));
    }
    if catalog::resolve_local(spec)?.is_none() && zoo::hub::HubId::parse(spec).is_none() {
        return Err(usage(catalog::unknown_model(spec).to_string()));
    }
    let dir = catalog::resolve(spec, std::io::IsTerminal::is_terminal(&std::io::stderr()))?;
    if verbose {
        eprintln!("zoo: model {} from {}", dir.header.name, dir.path.display());
    }
    if !task.is_empty() {
        dir.expect_task(task).map_err(|e| usage(e.to_string()))?;
    }
    Ok(dir)
}

/// A spinner-or-bar on stderr; hidden when stderr is not a terminal.
pub(crate) fn progress(total_bytes: Option<u64>) -> ProgressBar {
    match total_bytes {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}")
                .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {pos} lines").expect("valid template"),
        ),
    }
}
