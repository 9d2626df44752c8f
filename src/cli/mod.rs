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

/// Streams one text per line from `reader` in chunks of `chunk` lines, so
/// memory stays flat and results come out as they are ready: `run` maps a
/// chunk's readable texts to results (same order), `emit` writes one line's
/// result and says whether it succeeded. Returns the number of failures.
pub(crate) fn stream_lines<T>(
    reader: Box<dyn std::io::BufRead>,
    size: Option<u64>,
    chunk: usize,
    strict: bool,
    out: &mut dyn std::io::Write,
    mut run: impl FnMut(&[&str]) -> Vec<Result<T>>,
    mut emit: impl FnMut(
        &mut dyn std::io::Write,
        usize,
        &str,
        std::result::Result<T, String>,
    ) -> Result<bool>,
) -> Result<usize> {
    let bar = progress(size);
    let mut lines = zoo::input::Lines::new(reader);
    let mut failed = 0;
    'outer: loop {
        let lines_in: Vec<zoo::input::Line> = lines.by_ref().take(chunk).collect::<Result<_>>()?;
        if lines_in.is_empty() {
            break;
        }
        let ok: Vec<&str> = lines_in
            .iter()
            .filter_map(|l| l.text.as_deref().ok())
            .collect();
        let mut results = run(&ok).into_iter();
        for l in &lines_in {
            let (text, r) = match &l.text {
                Ok(t) => (
                    t.as_str(),
                    results
                        .next()
                        .expect("one result per text")
                        .map_err(|e| one_line(&e)),
                ),
                Err(e) => ("", Err(e.clone())),
            };
            if !emit(out, l.number, text, r)? {
                failed += 1;
                if strict {
                    break 'outer;
                }
            }
        }
        out.flush()?;
        match size {
            Some(_) => bar.set_position(lines.bytes_read),
            None => bar.inc(lines_in.len() as u64),
        }
    }
    bar.finish_and_clear();
    out.flush()?;
    Ok(failed)
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
