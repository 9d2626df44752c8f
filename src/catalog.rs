//! Model names: catalogue names, local folders and Hub repo ids.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::model::ModelDir;

/// Default model per task.
pub fn default_model(task: &str) -> &'static str {
    match task {
        "sentiment" => "sentiment-lstm",
        "ner" => "ner-bilstm-crf",
        "translate" => "translate-en-de",
        _ => "",
    }
}

/// Where the shipped catalogue lives: `$ZOO_MODELS`, else this source
/// tree's `models/`.
pub fn models_root() -> PathBuf {
    match std::env::var_os("ZOO_MODELS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
    }
}

/// Every model folder in the catalogue, sorted by name.
pub fn list() -> Result<Vec<ModelDir>> {
    let root = models_root();
    let mut dirs = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            if e.path().join("config.json").exists() {
                dirs.push(ModelDir::open(&e.path())?);
            }
        }
    }
    dirs.sort_by(|a, b| a.header.name.cmp(&b.header.name));
    Ok(dirs)
}

/// Resolves `--model`: a folder path or a catalogue name.
pub fn resolve_local(spec: &str) -> Result<Option<ModelDir>> {
    let p = Path::new(spec);
    if p.is_dir() {
        return Ok(Some(ModelDir::open(p)?));
    }
    let in_catalogue = models_root().join(spec);
    if !spec.contains('/') && in_catalogue.join("config.json").exists() {
        return Ok(Some(ModelDir::open(&in_catalogue)?));
    }
    Ok(None)
}

pub fn unknown_model(spec: &str) -> anyhow::Error {
    let names: Vec<String> = list()
        .map(|l| l.into_iter().map(|d| d.header.name).collect())
        .unwrap_or_default();
    anyhow::anyhow!(
        "unknown model `{spec}`: give a catalogue name ({}), a model folder, or a Hub repo id owner/name",
        if names.is_empty() { "none installed".to_string() } else { names.join(", ") }
    )
}

/// Files a model folder of `task` needs besides `config.json`.
pub fn task_files(dir: &ModelDir) -> Vec<String> {
    let mut v = vec!["tokenizer.json".to_string()];
    if dir.header.task == "ner" {
        v.push("chars.json".into());
    }
    v.extend(dir.header.weights_files());
    v
}

/// Resolves `--model`: a folder, a catalogue name, or a Hub repo id
/// (downloaded into the Hugging Face cache, or read from it offline).
pub fn resolve(spec: &str, progress: bool) -> Result<ModelDir> {
    if let Some(d) = resolve_local(spec)? {
        return Ok(d);
    }
    let Some(id) = crate::hub::HubId::parse(spec) else {
        bail!(unknown_model(spec));
    };
    let folder = crate::hub::fetch(&id, &["config.json"], &[], progress)?;
    let dir = ModelDir::open(&folder)?;
    let files = task_files(&dir);
    let files: Vec<&str> = files.iter().map(|s| s.as_str()).collect();
    crate::hub::fetch(&id, &files, &["README.md"], progress)?;
    Ok(dir)
}
