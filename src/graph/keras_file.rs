//! Reading a Keras 3 `.keras` file: a zip of `config.json` (the model),
//! `metadata.json` and `model.weights.h5` (the variables, one HDF5 group
//! per layer).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{Device, Tensor};
use serde_json::{json, Value as Json};

use super::import::{default_name, Imported};
use super::keras::{graph_from_config, layer_paths, var_groups, KerasLayer};

/// Largest `config.json` / `metadata.json` read (a corrupt zip may claim any size).
const MAX_JSON: u64 = 64 << 20;
/// Largest weights file read into memory.
const MAX_WEIGHTS: u64 = 8 << 30;

fn entry(
    z: &mut zip::ZipArchive<std::fs::File>,
    name: &str,
    limit: u64,
    file: &Path,
) -> Result<Option<Vec<u8>>> {
    let mut e = match z.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => bail!(
            "{}: cannot read `{name}` from the zip ({e})",
            file.display()
        ),
    };
    if e.size() > limit {
        bail!(
            "{}: `{name}` is {} bytes, more than zoo reads ({limit})",
            file.display(),
            e.size()
        );
    }
    let mut buf = Vec::with_capacity(e.size() as usize);
    e.by_ref()
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|err| anyhow!("{}: `{name}` in the zip is corrupt ({err})", file.display()))?;
    Ok(Some(buf))
}

/// Reads `path` (a `.keras` file) into a model ready to build or write.
pub fn read(path: &Path) -> Result<Imported> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| {
        anyhow!(
            "{} is not a .keras file (not a readable zip: {e}); save the model with model.save(\"m.keras\")",
            path.display()
        )
    })?;
    let config = entry(&mut z, "config.json", MAX_JSON, path)?.ok_or_else(|| {
        anyhow!("{} has no config.json: not a Keras 3 .keras file (a legacy .h5 model? re-save it with Keras 3 as .keras)", path.display())
    })?;
    let config: Json = serde_json::from_slice(&config)
        .map_err(|e| anyhow!("{}: config.json is not valid JSON ({e})", path.display()))?;
    let metadata: Json = match entry(&mut z, "metadata.json", MAX_JSON, path)? {
        Some(b) => serde_json::from_slice(&b).unwrap_or(Json::Null),
        None => Json::Null,
    };
    let weights = entry(&mut z, "model.weights.h5", MAX_WEIGHTS, path)?
        .ok_or_else(|| anyhow!("{} has no model.weights.h5", path.display()))?;
    let (graph, layers) =
        graph_from_config(&config).with_context(|| format!("{}", path.display()))?;
    let tensors = read_weights(weights, &layers).with_context(|| {
        format!(
            "{}: model.weights.h5 does not match the model's config.json",
            path.display()
        )
    })?;
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Imported {
        name: default_name(path),
        graph,
        tensors,
        source: json!({
            "framework": "keras",
            "file": file,
            "keras_version": metadata.get("keras_version").cloned().unwrap_or(Json::Null),
        }),
        labels: Vec::new(),
        files: Vec::new(),
        text: None,
    })
}

/// `layers/<group>` for each layer name: the `vars` group of a layer
/// carries the layer's name as an attribute (group names are numbered by
/// class, in an order that need not be the config's).
fn groups_by_name(root: &hdf5_pure::Group) -> Result<HashMap<String, String>> {
    let mut by_name = HashMap::new();
    let layers = match root.group("layers") {
        Ok(g) => g,
        Err(_) => return Ok(by_name),
    };
    for g in layers.groups().map_err(h5)? {
        let vars = match layers.group(&format!("{g}/vars")) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if let Some(name) = vars.attrs().map_err(h5)?.get("name").and_then(attr_string) {
            by_name.insert(name, format!("layers/{g}"));
        }
    }
    Ok(by_name)
}

fn attr_string(v: &hdf5_pure::AttrValue) -> Option<String> {
    use hdf5_pure::AttrValue as A;
    match v {
        A::String(s) | A::AsciiString(s) | A::VarLenString(s) | A::VarLenAsciiString(s) => {
            Some(s.clone())
        }
        _ => None,
    }
}

fn h5(e: hdf5_pure::Error) -> anyhow::Error {
    anyhow!("HDF5: {e}")
}

fn read_weights(bytes: Vec<u8>, layers: &[KerasLayer]) -> Result<Vec<(String, Tensor)>> {
    let file = hdf5_pure::File::from_bytes(bytes)
        .map_err(|e| anyhow!("not a readable HDF5 file ({e})"))?;
    let root = file.root();
    let by_name = groups_by_name(&root)?;
    let fallback = layer_paths(layers);
    let mut tensors = Vec::new();
    for (layer, guess) in layers.iter().zip(&fallback) {
        let groups = var_groups(&layer.class, &layer.config)?;
        if groups.is_empty() {
            continue;
        }
        let who = format!("layer `{}` ({})", layer.name, layer.class);
        // A layer rewritten from RNN(cell) reads the RNN's group.
        let owner = layer
            .config
            .get(super::keras::WEIGHTS_OF)
            .and_then(|v| v.as_str())
            .unwrap_or(&layer.name);
        let base = by_name
            .get(owner)
            .cloned()
            .unwrap_or_else(|| format!("layers/{guess}"));
        for g in groups {
            let path = format!("{base}/{}", g.sub);
            let group = root
                .group(&path)
                .map_err(|_| anyhow!("{who}: the weights file has no group `{path}`"))?;
            let present = group.datasets().map_err(h5)?.len();
            if present != g.names.len() {
                bail!(
                    "{who}: `{path}` holds {present} variables, the config implies {} ({})",
                    g.names.len(),
                    g.names.join(", ")
                );
            }
            for (i, name) in g.names.iter().enumerate() {
                let ds = group
                    .dataset(&i.to_string())
                    .map_err(|_| anyhow!("{who}: variable `{path}/{i}` is missing"))?;
                let shape: Vec<usize> = ds
                    .shape()
                    .map_err(h5)?
                    .iter()
                    .map(|&d| d as usize)
                    .collect();
                let data = ds
                    .read_f32()
                    .map_err(|e| anyhow!("{who}: cannot read `{path}/{i}` as float32 ({e})"))?;
                let want: usize = shape.iter().product();
                if data.len() != want {
                    bail!(
                        "{who}: `{path}/{i}` holds {} values for shape {shape:?}",
                        data.len()
                    );
                }
                let t = Tensor::from_vec(data, shape, &Device::Cpu)?;
                tensors.push((format!("{}.{}{}", layer.name, g.prefix, name), t));
            }
        }
    }
    Ok(tensors)
}
