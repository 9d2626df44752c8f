//! Named tensors in and out of `zoo predict`: `.safetensors`, `.npy` /
//! `.npz` and JSON Lines (one example per line).

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::Value as Json;

use super::InputSpec;

/// A file format, from the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Safetensors,
    Npy,
    Npz,
    JsonLines,
}

impl Format {
    pub fn of(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(match ext.as_str() {
            "safetensors" => Format::Safetensors,
            "npy" => Format::Npy,
            "npz" => Format::Npz,
            "jsonl" | "json" | "ndjson" => Format::JsonLines,
            _ => {
                return Err(crate::error::usage(format!(
                    "{}: unknown tensor file type; use .safetensors, .npy, .npz or .jsonl",
                    path.display()
                )))
            }
        })
    }
}

/// The tensors of `given` that are none of the model's inputs (a single-
/// input model also takes `input`), split off: Keras' `predict` warns about
/// extra keys of a dict and ignores them, and so does `zoo predict`.
pub fn split_extra(
    given: Vec<(String, Tensor)>,
    specs: &[InputSpec],
) -> (Vec<(String, Tensor)>, Vec<String>) {
    let is_input =
        |n: &str| specs.iter().any(|s| s.name == n) || (specs.len() == 1 && n == "input");
    // A single-input model given one tensor takes it, whatever its name.
    if specs.len() == 1 && given.len() == 1 {
        return (given, Vec::new());
    }
    let (keep, extra): (Vec<_>, Vec<_>) = given.into_iter().partition(|(n, _)| is_input(n));
    (keep, extra.into_iter().map(|(n, _)| n).collect())
}

/// Reads named tensors. A `.npy` file holds one tensor, named `input`.
pub fn read(path: &Path, specs: &[InputSpec], device: &Device) -> Result<Vec<(String, Tensor)>> {
    let what = || format!("cannot read {}", path.display());
    match Format::of(path)? {
        Format::Safetensors => {
            let bytes = std::fs::read(path).with_context(what)?;
            let st = safetensors::SafeTensors::deserialize(&bytes)
                .map_err(|e| anyhow!("{} is not a valid safetensors file ({e})", path.display()))?;
            let mut names: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
            names.sort();
            let all = candle_core::safetensors::load_buffer(&bytes, device).with_context(what)?;
            Ok(names
                .into_iter()
                .map(|n| {
                    let t = all[&n].clone();
                    (n, t)
                })
                .collect())
        }
        Format::Npy => {
            let t = Tensor::read_npy(path)
                .map_err(|e| anyhow!("{} is not a readable .npy file ({e})", path.display()))?;
            Ok(vec![("input".into(), t.to_device(device)?)])
        }
        Format::Npz => {
            let all = Tensor::read_npz(path)
                .map_err(|e| anyhow!("{} is not a readable .npz file ({e})", path.display()))?;
            all.into_iter()
                .map(|(n, t)| Ok((n, t.to_device(device)?)))
                .collect()
        }
        Format::JsonLines => {
            let f = std::fs::File::open(path).with_context(what)?;
            read_json_lines(std::io::BufReader::new(f), specs, device)
                .with_context(|| path.display().to_string())
        }
    }
}

/// One example per line: an object of input names to (nested) arrays, or,
/// for a single-input model, the bare array. Rows of different lengths are
/// padded with zeros at the end (what `mask_zero` / `Masking` expect).
pub fn read_json_lines(
    r: impl BufRead,
    specs: &[InputSpec],
    device: &Device,
) -> Result<Vec<(String, Tensor)>> {
    let mut rows: Vec<Vec<(String, Json)>> = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line.with_context(|| format!("line {}: not UTF-8 text", i + 1))?;
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() {
            continue;
        }
        let v: Json = serde_json::from_str(line)
            .map_err(|e| crate::error::usage(format!("line {}: not JSON ({e})", i + 1)))?;
        let named = match v {
            Json::Object(m) => m.into_iter().collect(),
            v @ Json::Array(_) if specs.len() == 1 => vec![("input".to_string(), v)],
            _ => {
                return Err(crate::error::usage(format!(
                    "line {}: expected an object of input names to arrays",
                    i + 1
                )))
            }
        };
        rows.push(named);
    }
    if rows.is_empty() {
        return Err(crate::error::usage("the input holds no examples"));
    }
    examples_to_tensors(rows, specs, device)
}

/// Examples (each input's name and nested arrays) as one batch per input,
/// rows of different lengths padded with zeros at the end.
pub fn examples_to_tensors(
    rows: Vec<Vec<(String, Json)>>,
    specs: &[InputSpec],
    device: &Device,
) -> Result<Vec<(String, Tensor)>> {
    if rows.is_empty() {
        return Err(crate::error::usage("the input holds no examples"));
    }
    let names: Vec<String> = rows[0].iter().map(|(n, _)| n.clone()).collect();
    let mut out = Vec::new();
    for name in names {
        let spec = if specs.len() == 1 && name == "input" {
            specs.first()
        } else {
            specs.iter().find(|s| s.name == name)
        };
        let int = spec.is_some_and(|s| s.dtype.is_int());
        let mut examples = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let v = row
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    crate::error::usage(format!("example {}: input `{name}` is missing", i + 1))
                })?;
            let mut shape = Vec::new();
            let mut flat = Vec::new();
            flatten(v, 0, &mut shape, &mut flat)
                .map_err(|e| crate::error::usage(format!("example {}, `{name}`: {e}", i + 1)))?;
            examples.push((shape, flat));
        }
        out.push((name, stack_padded(examples, int, device)?));
    }
    Ok(out)
}

/// Nested arrays into (shape, values); the first row fixes each axis' size
/// except the first (ragged first axes are padded later).
fn flatten(v: &Json, depth: usize, shape: &mut Vec<usize>, flat: &mut Vec<f64>) -> Result<()> {
    match v {
        Json::Array(a) => {
            if shape.len() == depth {
                shape.push(a.len());
            } else if shape[depth] != a.len() {
                bail!("rows of different lengths inside one example");
            }
            for x in a {
                flatten(x, depth + 1, shape, flat)?;
            }
            Ok(())
        }
        Json::Number(n) => {
            if shape.len() != depth {
                bail!("numbers and arrays mixed at one depth");
            }
            flat.push(n.as_f64().unwrap_or(f64::NAN));
            Ok(())
        }
        other => bail!("expected numbers, found {other}"),
    }
}

/// Stacks examples into one batch, padding the first axis with zeros.
fn stack_padded(
    examples: Vec<(Vec<usize>, Vec<f64>)>,
    int: bool,
    device: &Device,
) -> Result<Tensor> {
    let rank = examples[0].0.len();
    if examples
        .iter()
        .any(|(s, _)| s.len() != rank || s[1.min(rank)..] != examples[0].0[1.min(rank)..])
    {
        return Err(crate::error::usage(
            "examples differ in rank or in sizes other than their length",
        ));
    }
    let longest = examples
        .iter()
        .map(|(s, _)| s.first().copied().unwrap_or(1))
        .max()
        .unwrap_or(0);
    let inner: usize = examples[0].0.iter().skip(1).product();
    let per = longest * inner;
    let n = examples.len();
    let mut shape = vec![n];
    if rank > 0 {
        shape.push(longest);
        shape.extend_from_slice(&examples[0].0[1..]);
    }
    let per = if rank == 0 { 1 } else { per };
    let mut data = vec![0f64; n * per];
    for (i, (_, flat)) in examples.iter().enumerate() {
        data[i * per..i * per + flat.len()].copy_from_slice(flat);
    }
    Ok(if int {
        if let Some(bad) = data.iter().find(|v| v.fract() != 0.0 || !v.is_finite()) {
            return Err(crate::error::usage(format!("an integer input holds {bad}")));
        }
        Tensor::from_vec(
            data.into_iter().map(|v| v as i64).collect::<Vec<_>>(),
            shape,
            device,
        )?
    } else {
        Tensor::from_vec(
            data.into_iter().map(|v| v as f32).collect::<Vec<_>>(),
            shape,
            device,
        )?
    })
}

/// Writes named outputs to `path` (its extension picks the format), or JSON
/// Lines to `out` when `path` is `None` or `-`.
pub fn write(path: Option<&Path>, outputs: &[(String, Tensor)], out: &mut dyn Write) -> Result<()> {
    let path = path.filter(|p| p.as_os_str() != "-");
    let Some(path) = path else {
        return write_json_lines(outputs, out);
    };
    let what = || format!("cannot write {}", path.display());
    let f32s: Vec<(String, Tensor)> = outputs
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?)))
        .collect::<Result<_>>()?;
    match Format::of(path)? {
        Format::Safetensors => {
            let map: std::collections::HashMap<String, Tensor> = f32s.into_iter().collect();
            candle_core::safetensors::save(&map, path).with_context(what)?;
        }
        Format::Npy => {
            if f32s.len() != 1 {
                return Err(crate::error::usage(format!(
                    "the model has {} outputs and a .npy file holds one: write .npz or .safetensors",
                    f32s.len()
                )));
            }
            f32s[0].1.write_npy(path).with_context(what)?;
        }
        Format::Npz => {
            let refs: Vec<(&str, &Tensor)> = f32s.iter().map(|(n, t)| (n.as_str(), t)).collect();
            Tensor::write_npz(&refs, path).with_context(what)?;
        }
        Format::JsonLines => {
            let mut f = std::io::BufWriter::new(std::fs::File::create(path).with_context(what)?);
            write_json_lines(outputs, &mut f)?;
            f.flush().with_context(what)?;
        }
    }
    Ok(())
}

/// One line per example: `{"output": [...]}` (or `output_0`, ...).
pub fn write_json_lines(outputs: &[(String, Tensor)], out: &mut dyn Write) -> Result<()> {
    let batch = outputs.first().map_or(0, |(_, t)| t.dim(0).unwrap_or(0));
    let rows: Vec<(String, Vec<Json>)> = outputs
        .iter()
        .map(|(n, t)| Ok((n.clone(), rows_json(t)?)))
        .collect::<Result<_>>()?;
    for i in 0..batch {
        let mut m = serde_json::Map::new();
        for (n, r) in &rows {
            m.insert(n.clone(), r.get(i).cloned().unwrap_or(Json::Null));
        }
        writeln!(out, "{}", Json::Object(m))?;
    }
    Ok(())
}

/// Each batch row as nested JSON arrays.
pub fn rows_json(t: &Tensor) -> Result<Vec<Json>> {
    let t = t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    let dims = t.dims().to_vec();
    let flat = t.flatten_all()?.to_vec1::<f32>()?;
    fn nest(v: &[f32], dims: &[usize]) -> Json {
        match dims {
            [] => Json::from(v[0] as f64),
            [n, rest @ ..] => {
                let step = rest.iter().product::<usize>();
                Json::Array(
                    (0..*n)
                        .map(|i| nest(&v[i * step..(i + 1) * step], rest))
                        .collect(),
                )
            }
        }
    }
    let b = dims.first().copied().unwrap_or(1);
    let step = dims.iter().skip(1).product::<usize>();
    Ok((0..b)
        .map(|i| nest(&flat[i * step..(i + 1) * step], &dims[1..]))
        .collect())
}
