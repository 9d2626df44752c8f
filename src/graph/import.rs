//! `zoo import`: a Keras `.keras` file, or a PyTorch `state_dict` with a
//! graph file, into a zoo model folder (config.json with the graph,
//! model.safetensors, a model card saying where it came from).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::{json, Value as Json};

use super::schema::{GraphFramework, GraphSpec};
use super::{GraphConfig, GraphModel};

/// A model ready to be written as a folder, or run.
pub struct Imported {
    pub name: String,
    pub graph: GraphSpec,
    /// Weights under zoo's names (`layer.param`).
    pub tensors: Vec<(String, Tensor)>,
    /// Where it came from, for the card and config.json.
    pub source: Json,
    pub labels: Vec<String>,
    /// Extra files to copy into the folder (name, bytes): vocabularies.
    pub files: Vec<(String, Vec<u8>)>,
    /// How raw text becomes the input ids (config.json `text`), if it can.
    pub text: Option<Json>,
}

/// Label names from `a,b,c` or a file with one per line.
pub fn parse_labels(spec: &str) -> Result<Vec<String>> {
    let p = Path::new(spec);
    let text = if p.is_file() {
        std::fs::read_to_string(p)
            .with_context(|| format!("cannot read labels from {}", p.display()))?
    } else {
        spec.replace(',', "\n")
    };
    let labels: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if labels.is_empty() {
        bail!("--labels names no labels: pass `neg,pos` or a file with one label per line");
    }
    Ok(labels)
}

impl Imported {
    /// Attaches a tokenizer: a Hugging Face `tokenizer.json`, or a
    /// vocabulary with one token per line in id order.
    /// Records which end the model's training padded (config.json
    /// `text.padding`); needs a tokenizer set first.
    pub fn set_padding(&mut self, padding: super::text::Padding) -> Result<()> {
        match self.text.as_mut().and_then(|t| t.as_object_mut()) {
            Some(t) => {
                t.insert("padding".into(), json!(padding));
                Ok(())
            }
            None => bail!("--padding says how token ids are padded: give --tokenizer too"),
        }
    }

    pub fn set_tokenizer(&mut self, path: &Path) -> Result<()> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let is_json = path.extension().and_then(|e| e.to_str()) == Some("json");
        if is_json {
            tokenizers::Tokenizer::from_bytes(&bytes)
                .map_err(|e| anyhow!("{} is not a tokenizer.json ({e})", path.display()))?;
            self.files.push(("tokenizer.json".into(), bytes));
            self.text = Some(json!({"tokenizer": "tokenizer.json"}));
        } else {
            let vocab = super::text::Vocab::parse(&bytes)
                .with_context(|| format!("{} is not a vocabulary", path.display()))?;
            let _ = vocab;
            self.files.push(("vocab.txt".into(), bytes));
            self.text = Some(json!({"vocab": "vocab.txt"}));
        }
        Ok(())
    }

    /// Builds the graph on the weights: every mismatch between the graph
    /// and its weights is found here, not at the first prediction.
    pub fn build(&self, device: &Device) -> Result<GraphModel> {
        let map: HashMap<String, Tensor> = self.tensors.iter().cloned().collect();
        let vb = candle_nn::VarBuilder::from_tensors(map, DType::F32, device);
        GraphModel::build(
            GraphConfig {
                name: self.name.clone(),
                graph: self.graph.clone(),
                labels: self.labels.clone(),
            },
            vb,
            device,
        )
    }

    /// Writes `dir` (created if missing; existing files of the same names replaced).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let model = self.build(&Device::Cpu)?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut config = json!({
            "zoo_format": 1,
            "task": "graph",
            "name": self.name,
            "source": self.source,
            "graph": self.graph,
            "params": model.param_count(),
        });
        if !self.labels.is_empty() {
            config["labels"] = json!(self.labels);
        }
        if let Some(t) = &self.text {
            config["text"] = t.clone();
        }
        let text = serde_json::to_string_pretty(&config)? + "\n";
        write_file(&dir.join("config.json"), text.as_bytes())?;
        let map: HashMap<String, Tensor> = self
            .tensors
            .iter()
            .map(|(n, t)| Ok((n.clone(), t.to_dtype(DType::F32)?.contiguous()?)))
            .collect::<Result<_>>()?;
        let st = dir.join("model.safetensors");
        candle_core::safetensors::save(&map, &st)
            .with_context(|| format!("cannot write {}", st.display()))?;
        for (name, bytes) in &self.files {
            write_file(&dir.join(name), bytes)?;
        }
        write_file(&dir.join("README.md"), self.card(&model).as_bytes())?;
        Ok(())
    }

    fn card(&self, model: &GraphModel) -> String {
        let from = self
            .source
            .get("file")
            .and_then(|v| v.as_str())
            .unwrap_or("?");
        let fw = match self.graph.framework {
            GraphFramework::Keras => "Keras",
            GraphFramework::Pytorch => "PyTorch",
        };
        let rows: Vec<String> = model
            .layers()
            .iter()
            .map(|l| {
                format!(
                    "| `{}` | {} | {} |",
                    l.name,
                    l.class,
                    crate::summary::thousands(l.params)
                )
            })
            .collect();
        let inputs: Vec<String> = model
            .inputs()
            .iter()
            .map(|s| {
                let dims: Vec<String> = std::iter::once("batch".to_string())
                    .chain(
                        s.shape
                            .iter()
                            .map(|d| d.map_or("any".into(), |d| d.to_string())),
                    )
                    .collect();
                format!("`{}` [{}] {:?}", s.name, dims.join(", "), s.dtype).to_lowercase()
            })
            .collect();
        format!(
            "# {name}\n\nA {fw} model imported by `zoo import` from `{from}`.\n\n\
             ## Intended use\n\nWhatever the model was trained for: zoo only runs it \
             (`zoo predict {name} --input IN`). The numbers it gives are the {fw} model's own, \
             to 1e-5 in f32.\n\n## Inputs and outputs\n\nInputs: {}.\nOutputs: {}.\n\n\
             ## Layers\n\n| layer | class | params |\n|---|---|---|\n{}\n\nTotal params: {}\n\n\
             ## Limitations\n\nTraining data, metrics and limits are those of the original model; \
             this card knows only its structure.\n",
            inputs.join(", "),
            model.output_names().join(", "),
            rows.join("\n"),
            crate::summary::thousands(model.param_count()),
            name = self.name,
        )
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// The folder name of an import: the file's stem.
pub fn default_name(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string()
}

/// Reads a `state_dict`: a `torch.save` file (`.pt`, `.pth`, `.bin`) or
/// `.safetensors`.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let tensors = if ext == "safetensors" {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| anyhow!("{} is not a valid safetensors file ({e})", path.display()))?;
        let mut v: Vec<(String, Tensor)> =
            candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?
                .into_iter()
                .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    } else {
        if !path.exists() {
            bail!("cannot read {}: no such file", path.display());
        }
        // torch.save's zip of pickles; a full pickled module is refused.
        candle_core::pickle::read_all(path).map_err(|e| {
            anyhow!(
                "{} is not a readable PyTorch state_dict ({e}); save one with \
                 torch.save(model.state_dict(), path), or export .safetensors",
                path.display()
            )
        })?
    };
    if tensors.is_empty() {
        bail!(
            "{} holds no tensors: save the state_dict (torch.save(model.state_dict(), path)), not the module",
            path.display()
        );
    }
    tensors
        .into_iter()
        .map(|(n, t)| {
            let t = if t.dtype().is_float() {
                t.to_dtype(DType::F32)?
            } else {
                t
            };
            Ok((n, t))
        })
        .collect()
}

/// A PyTorch `state_dict` and a graph file in zoo's schema (`framework`
/// may be left out: it is `pytorch`).
pub fn pytorch(state_dict: &Path, graph: &Path) -> Result<Imported> {
    let text = std::fs::read_to_string(graph)
        .with_context(|| format!("cannot read the graph file {}", graph.display()))?;
    let mut v: Json = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{} is not valid JSON ({e})", graph.display()))?;
    if let Some(o) = v.as_object_mut() {
        o.entry("framework").or_insert(json!("pytorch"));
    }
    let labels: Vec<String> = v
        .get("labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    let spec: GraphSpec = serde_json::from_value(v)
        .map_err(|e| anyhow!("{} is not a zoo graph ({e})", graph.display()))?;
    let tensors = read_state_dict(state_dict)?;
    let used = used_prefixes(&spec);
    let unused: Vec<&str> = tensors
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !used.iter().any(|p| n.starts_with(&format!("{p}."))))
        .collect();
    if !unused.is_empty() {
        bail!(
            "the state_dict has weights no layer of the graph names: {} (each layer's name must be its module's state_dict prefix)",
            unused.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(Imported {
        name: default_name(state_dict),
        graph: spec,
        tensors,
        source: json!({"framework": "pytorch", "file": file_name(state_dict), "graph": file_name(graph)}),
        labels,
        files: Vec::new(),
        text: None,
    })
}

fn used_prefixes(spec: &GraphSpec) -> Vec<String> {
    spec.layers.iter().map(|l| l.name.clone()).collect()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `--out` or, by default, a folder named after the file next to it.
pub fn out_dir(src: &Path, out: Option<&Path>) -> PathBuf {
    out.map(Path::to_path_buf)
        .unwrap_or_else(|| src.with_extension(""))
}
