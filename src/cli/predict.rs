//! `zoo predict` (a graph model on named tensors from a file) and
//! `zoo import` (a Keras or PyTorch model into a zoo folder).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::{resolve_model, usage};
use zoo::candle::Device;
use zoo::graph::import::{self, Imported};
use zoo::graph::{io, GraphModel};
use zoo::model::TaskKind;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A graph model: a zoo folder, a catalogue name, a Hub repo id, or a
    /// Keras `.keras` file (imported on the fly).
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

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A Keras 3 `.keras` file, or a PyTorch state_dict (`.pt`, `.pth`,
    /// `.bin`, `.safetensors`) with --graph.
    pub source: PathBuf,
    /// PyTorch: the layer graph in zoo's schema (see README, "Bring your own model").
    #[arg(long)]
    pub graph: Option<PathBuf>,
    /// The folder to write [default: the source's name without its extension].
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Label names of the output's last axis, comma-separated or a file with
    /// one per line (for `zoo run classify` / `zoo run tag`).
    #[arg(long)]
    pub labels: Option<String>,
    /// A tokenizer for text input: a Hugging Face `tokenizer.json`, or a
    /// vocabulary file with one token per line in id order (Keras'
    /// `TextVectorization.get_vocabulary()`: padding, then `[UNK]`, then words).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Which end of a short text the model was trained with padding on:
    /// `pre` for Keras' pad_sequences (its default), `post` for
    /// TextVectorization and PyTorch [default: post].
    #[arg(long, value_enum)]
    pub padding: Option<zoo::graph::text::Padding>,
}

/// `Some(path)` when `spec` is a `.keras` file rather than a folder or a
/// catalogue name; an error when it names one that is not there.
pub(crate) fn keras_file(spec: &str) -> Result<Option<&Path>> {
    let path = Path::new(spec);
    match (
        spec.to_ascii_lowercase().ends_with(".keras"),
        path.is_file(),
    ) {
        (true, true) => Ok(Some(path)),
        (true, false) if !path.is_dir() => Err(usage(format!("cannot read {spec}: no such file"))),
        _ => Ok(None),
    }
}

/// The graph model `spec` names, a `.keras` file imported in memory included.
pub(crate) fn open_graph(spec: &str, device: &Device) -> Result<GraphModel> {
    if let Some(path) = keras_file(spec)? {
        return keras(path)?.build(device);
    }
    let dir = resolve_model(Some(spec), Some(TaskKind::Graph), false)?;
    GraphModel::load(&dir, device)
}

/// A `.keras` file built in memory, with what `zoo summary` says of it.
pub(crate) fn keras_for_summary(path: &Path) -> Result<(GraphModel, zoo::summary::About)> {
    let imported = keras(path)?;
    let about = zoo::summary::About {
        name: imported.name.clone(),
        task: format!("graph, read from {}", path.display()),
        networks: 1,
        stored: imported.tensors.iter().map(|(_, t)| t.elem_count()).sum(),
        file_bytes: std::fs::metadata(path)?.len(),
    };
    Ok((imported.build(&Device::Cpu)?, about))
}

#[cfg(feature = "keras")]
fn keras(path: &Path) -> Result<Imported> {
    zoo::graph::keras_file::read(path)
}

#[cfg(not(feature = "keras"))]
fn keras(path: &Path) -> Result<Imported> {
    Err(usage(format!(
        "{}: this build of zoo reads no .keras files (built without the `keras` feature)",
        path.display()
    )))
}

pub fn predict(a: &PredictArgs) -> Result<ExitCode> {
    let device = zoo::device::select(&a.device)?;
    let model = open_graph(&a.model, &device)?;
    let (inputs, extra) =
        io::split_extra(io::read(&a.input, model.inputs(), &device)?, model.inputs());
    if !extra.is_empty() {
        let names: Vec<&str> = model.inputs().iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "warning: {} also holds {} ({}), which the model does not read (its inputs: {}); ignored",
            a.input.display(),
            if extra.len() == 1 { "a tensor" } else { "tensors" },
            extra.join(", "),
            names.join(", ")
        );
    }
    let outputs = model.forward(inputs)?;
    let named: Vec<(String, zoo::candle::Tensor)> =
        model.output_names().into_iter().zip(outputs).collect();
    let mut out = super::stdout();
    io::write(a.output.as_deref(), &named, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn import(a: &ImportArgs) -> Result<ExitCode> {
    let ext = a
        .source
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut imported = match (ext.as_str(), &a.graph) {
        ("keras", None) => keras(&a.source)?,
        ("keras", Some(_)) => return Err(usage("a .keras file carries its own graph: drop --graph")),
        ("h5" | "hdf5", _) => {
            return Err(usage(format!(
                "{}: legacy Keras .h5 models are not read; load it in Keras 3 and model.save(\"m.keras\")",
                a.source.display()
            )))
        }
        (_, Some(g)) => import::pytorch(&a.source, g)?,
        (_, None) => {
            return Err(usage(format!(
                "{}: a PyTorch state_dict needs --graph GRAPH.json naming its modules (see README)",
                a.source.display()
            )))
        }
    };
    if let Some(l) = &a.labels {
        imported.labels = import::parse_labels(l)?;
    }
    if let Some(t) = &a.tokenizer {
        imported.set_tokenizer(t)?;
    }
    if let Some(p) = a.padding {
        imported
            .set_padding(p)
            .map_err(|e| usage(format!("{e:#}")))?;
    }
    let out = import::out_dir(&a.source, a.out.as_deref());
    imported.write(&out)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}
