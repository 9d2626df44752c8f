//! A model folder, laid out like a Hugging Face Hub repo: `config.json`,
//! tokenizer file(s), `model.safetensors`, `README.md`.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// What a model does; `task` in config.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Sentiment,
    Ner,
    Translate,
    /// A layer graph described in config.json (imported Keras / PyTorch models).
    Graph,
    /// A character language model that writes text (`zoo run generate`).
    Generate,
}

impl TaskKind {
    pub const ALL: [TaskKind; 3] = [TaskKind::Sentiment, TaskKind::Ner, TaskKind::Translate];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Sentiment => "sentiment",
            TaskKind::Ner => "ner",
            TaskKind::Translate => "translate",
            TaskKind::Graph => "graph",
            TaskKind::Generate => "generate",
        }
    }

    /// The catalogue model `zoo run TASK` uses when `--model` is not given
    /// (graph models are the user's own: there is no default).
    pub fn default_model(self) -> Option<&'static str> {
        match self {
            TaskKind::Sentiment => Some("sentiment-lstm"),
            TaskKind::Ner => Some("ner-bilstm-crf"),
            TaskKind::Translate => Some("translate-en-de"),
            TaskKind::Graph => None,
            TaskKind::Generate => Some("char-lstm"),
        }
    }

    /// Files a model folder of this task needs besides `config.json` and
    /// its weights.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            TaskKind::Ner => &["tokenizer.json", "chars.json"],
            TaskKind::Graph => &[],
            TaskKind::Generate => &["vocab.json"],
            _ => &["tokenizer.json"],
        }
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for TaskKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// The keys every zoo `config.json` has.
#[derive(Debug, Clone, Deserialize)]
pub struct Header {
    pub zoo_format: u32,
    pub task: TaskKind,
    pub name: String,
    #[serde(default)]
    pub weights: Option<Weights>,
}

/// `weights` in config.json: one safetensors file, or several (a translator
/// ensemble: one complete network per file, each file small).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Weights {
    One(String),
    Many(Vec<String>),
}

impl Header {
    /// The weights files, `model.safetensors` when config.json names none.
    pub fn weights_files(&self) -> Vec<String> {
        match &self.weights {
            None => vec!["model.safetensors".into()],
            Some(Weights::One(f)) => vec![f.clone()],
            Some(Weights::Many(v)) => v.clone(),
        }
    }
}

/// A resolved model folder and its parsed header.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub path: PathBuf,
    pub header: Header,
    raw: serde_json::Value,
    /// Weights are rounded through this dtype and loaded as f32 (see
    /// [`ModelDir::rounding_weights_to`]).
    round_to: Option<DType>,
}

impl ModelDir {
    pub fn open(path: &Path) -> Result<Self> {
        let cfg = path.join("config.json");
        let text = std::fs::read_to_string(&cfg).with_context(|| {
            format!("cannot read {}: is this a zoo model folder?", cfg.display())
        })?;
        let raw: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "{} is not valid JSON ({e}): re-download the model",
                cfg.display()
            )
        })?;
        let header: Header = serde_json::from_value(raw.clone())
            .map_err(|e| anyhow!("{} is not a zoo config ({e})", cfg.display()))?;
        if header.zoo_format != 1 {
            bail!(
                "{} has zoo_format {}, this zoo reads format 1: update zoo",
                cfg.display(),
                header.zoo_format
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            header,
            raw,
            round_to: None,
        })
    }

    /// The full config as the task's own type.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.raw.clone()).map_err(|e| {
            anyhow!(
                "{}: bad config.json for task {} ({e})",
                self.path.display(),
                self.header.task
            )
        })
    }

    pub fn raw_config(&self) -> &serde_json::Value {
        &self.raw
    }

    /// A model of another task is a usage error.
    pub fn expect_task(&self, task: TaskKind) -> Result<()> {
        if self.header.task != task {
            return Err(crate::error::usage(format!(
                "model `{}` is a {} model, not a {task} model: pick one with `zoo list`",
                self.header.name, self.header.task
            )));
        }
        Ok(())
    }

    /// A translator's output language (`target_lang` in config.json).
    pub fn target_lang(&self) -> Option<&str> {
        self.raw.get("target_lang").and_then(|v| v.as_str())
    }

    pub fn file(&self, name: &str) -> Result<PathBuf> {
        let p = self.path.join(name);
        if !p.exists() {
            bail!(
                "{} is missing from model `{}`",
                p.display(),
                self.header.name
            );
        }
        Ok(p)
    }

    /// The weights file of a single-network model (the first of an ensemble).
    pub fn weights_path(&self) -> Result<PathBuf> {
        Ok(self.weights_paths()?.remove(0))
    }

    pub fn weights_paths(&self) -> Result<Vec<PathBuf>> {
        let files = self.header.weights_files();
        if files.is_empty() {
            bail!(
                "config.json of model `{}` lists no weights files: re-download the model",
                self.header.name
            );
        }
        files.iter().map(|f| self.file(f)).collect()
    }

    /// Bytes of all weights files together.
    pub fn weights_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for p in self.weights_paths()? {
            total += std::fs::metadata(&p)
                .with_context(|| format!("cannot read {}", p.display()))?
                .len();
        }
        Ok(total)
    }

    /// Reads and checks the weights; candle converts stored f16 to `dtype`.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
        let n = self.header.weights_files().len();
        if n != 1 {
            bail!(
                "model `{}` lists {n} weights files, a {} model reads one: fix `weights` in its config.json",
                self.header.name,
                self.header.task
            );
        }
        Ok(self.var_builders(dtype, device)?.remove(0))
    }

    /// The same folder, whose var builders round every weight to `dtype`
    /// (f16 or bf16) and hand it out as f32: a model then has the
    /// precision of `dtype` weights and runs on the f32 kernels.
    pub fn rounding_weights_to(mut self, dtype: DType) -> Self {
        self.round_to = Some(dtype);
        self
    }

    /// One var builder per weights file (an ensemble has several).
    pub fn var_builders(&self, dtype: DType, device: &Device) -> Result<Vec<VarBuilder<'static>>> {
        self.weights_paths()?
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                // Validate before candle sees it: a truncated file is a clear error.
                safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
                    anyhow!(
                        "{} is not a valid safetensors file ({e}): re-download the model",
                        path.display()
                    )
                })?;
                let Some(half) = self.round_to else {
                    return Ok(VarBuilder::from_buffered_safetensors(bytes, dtype, device)?);
                };
                let tensors = candle_core::safetensors::load_buffer(&bytes, device)?
                    .into_iter()
                    .map(|(name, t)| {
                        let t = if t.dtype().is_float() {
                            t.to_dtype(half)?.to_dtype(DType::F32)?
                        } else {
                            t
                        };
                        Ok((name, t))
                    })
                    .collect::<candle_core::Result<_>>()?;
                Ok(VarBuilder::from_tensors(tensors, DType::F32, device))
            })
            .collect()
    }

    pub fn tokenizer(&self, name: &str) -> Result<tokenizers::Tokenizer> {
        let p = self.file(name)?;
        tokenizers::Tokenizer::from_file(&p).map_err(|e| {
            anyhow!(
                "cannot load tokenizer {} ({e}): re-download the model",
                p.display()
            )
        })
    }
}
