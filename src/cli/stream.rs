//! `zoo stream MODEL`: JSON Lines of chunks in, each chunk's outputs out,
//! every sequence's recurrent state kept by its id between lines.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Args;
use serde_json::{json, Value};

use super::predict::open_graph;
use zoo::graph::stream::StreamState;
use zoo::graph::{io, GraphModel};

#[derive(Args, Debug)]
pub struct StreamArgs {
    /// A graph model whose layers run step by step (a zoo folder, catalogue
    /// name, Hub repo id or `.keras` file).
    pub model: String,
    /// Sequences kept at most; past it the one idle longest is dropped
    /// (its next chunk starts from zero, with a note on stderr).
    #[arg(long, default_value_t = 10_000)]
    pub max_sequences: usize,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

/// One sequence: its state and when it was last fed (for eviction).
struct Sequence {
    state: StreamState,
    last_used: u64,
}

/// A line's chunk: each input's steps as nested arrays, one step allowed
/// bare (`[f1, f2]` for a model of `[steps, 2]`).
fn chunk_inputs(
    model: &GraphModel,
    rec: &serde_json::Map<String, Value>,
) -> Result<Vec<(String, zoo::candle::Tensor)>> {
    let specs = model.inputs();
    let mut named = Vec::new();
    if let Some(x) = rec.get("x") {
        let [spec] = specs else {
            return Err(anyhow!(
                "the model has {} inputs: give `inputs`, an object of input names to arrays",
                specs.len()
            ));
        };
        named.push((spec.name.clone(), x.clone()));
    } else if let Some(Value::Object(m)) = rec.get("inputs") {
        named.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
    } else {
        return Err(anyhow!(
            "each line needs `x` (the chunk's steps) or `inputs`"
        ));
    }
    for (name, v) in &mut named {
        let Some(spec) = specs.iter().find(|s| &s.name == name) else {
            continue; // the reader names unknown inputs
        };
        let mut depth = 0;
        let mut at = &*v;
        while let Value::Array(a) = at {
            depth += 1;
            match a.first() {
                Some(x) => at = x,
                None => break,
            }
        }
        // One step given bare: the chunk is that step alone.
        if depth + 1 == spec.shape.len() {
            *v = Value::Array(vec![v.clone()]);
        }
    }
    io::examples_to_tensors(vec![named], specs, model.device())
}

pub fn stream(a: &StreamArgs) -> Result<ExitCode> {
    if a.max_sequences == 0 {
        return Err(super::usage("--max-sequences must be at least 1"));
    }
    let device = zoo::device::select(&a.device)?;
    let model = open_graph(&a.model, &device)?;
    // Refuse a model that cannot stream before reading any input.
    model.stream_state()?;
    let names = model.output_names();
    let mut seqs: HashMap<String, Sequence> = HashMap::new();
    let mut out = super::stdout();
    let mut failed = false;
    let stdin = std::io::stdin();
    for (i, line) in stdin.lock().lines().enumerate() {
        let n = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: line {n}: not UTF-8 text ({e})");
                failed = true;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let rec = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => m,
            Ok(_) | Err(_) => {
                eprintln!("error: line {n}: expected a JSON object {{\"id\": ..., \"x\": [...]}}");
                writeln!(out, "{}", json!({"line": n, "error": "not a JSON object"}))?;
                failed = true;
                continue;
            }
        };
        // Ids may be numbers or strings, as Triton's sequence ids.
        let id = match rec.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(x)) => x.to_string(),
            _ => String::new(),
        };
        let start = rec.get("start").and_then(Value::as_bool) == Some(true);
        let end = rec.get("end").and_then(Value::as_bool) == Some(true);
        if start {
            seqs.remove(&id);
        }
        if !seqs.contains_key(&id) && seqs.len() >= a.max_sequences {
            if let Some(idle) = seqs
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
            {
                seqs.remove(&idle);
                eprintln!(
                    "note: line {n}: more than {} sequences; sequence {idle:?} (idle longest) was dropped",
                    a.max_sequences
                );
            }
        }
        let result = (|| -> Result<Value> {
            let inputs = chunk_inputs(&model, &rec)?;
            let seq = match seqs.entry(id.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(Sequence {
                    state: model.stream_state()?,
                    last_used: 0,
                }),
            };
            seq.last_used = n as u64;
            let outs = model.stream(&mut seq.state, inputs)?;
            let mut m = serde_json::Map::new();
            m.insert("id".into(), rec.get("id").cloned().unwrap_or(Value::Null));
            m.insert("step".into(), json!(seq.state.steps()));
            for (name, t) in names.iter().zip(outs) {
                let row = io::rows_json(&t)?.into_iter().next().unwrap_or(Value::Null);
                m.insert(
                    if names.len() == 1 {
                        "y".into()
                    } else {
                        name.clone()
                    },
                    row,
                );
            }
            Ok(Value::Object(m))
        })();
        match result {
            Ok(v) => writeln!(out, "{v}")?,
            Err(e) => {
                let msg = format!("{e:#}");
                eprintln!("error: line {n}: {msg}");
                writeln!(
                    out,
                    "{}",
                    json!({"id": rec.get("id"), "line": n, "error": msg})
                )?;
                failed = true;
            }
        }
        if end {
            seqs.remove(&id);
        }
        out.flush()?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
