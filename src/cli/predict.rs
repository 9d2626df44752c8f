//! `zoo predict`: a graph model on named tensors from a file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::resolve_model;
use zoo::graph::{io, GraphModel};
use zoo::model::TaskKind;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A graph model: a zoo folder, a catalogue name or a Hub repo id.
    pub model: String,
    /// Inputs: .safetensors or .npz (tensors named as the model's inputs; a
    /// single-input model also takes `input`), .npy (the single input), or
    /// .jsonl (one example per line).
    #[arg(long, short)]
    pub input: PathBuf,
    /// Outputs (`output`, or `output_0`, `output_1`, ...): .safetensors,
    /// .npy, .npz or .jsonl; JSON Lines on stdout when absent or `-`.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

pub fn predict(a: &PredictArgs) -> Result<ExitCode> {
    let device = zoo::device::select(&a.device)?;
    let dir = resolve_model(Some(&a.model), Some(TaskKind::Graph), false)?;
    let model = GraphModel::load(&dir, &device)?;
    let inputs = io::read(&a.input, model.inputs(), &device)?;
    let outputs = model.forward(inputs)?;
    let named: Vec<(String, zoo::candle::Tensor)> =
        model.output_names().into_iter().zip(outputs).collect();
    let mut out = super::stdout();
    io::write(a.output.as_deref(), &named, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
