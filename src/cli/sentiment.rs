//! `zoo run sentiment` and `zoo eval sentiment`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;

use zoo::tasks::sentiment::{Prediction, SentimentModel};
use zoo::{device, input};

use super::{one_line, resolve_model, select_device, select_dtype, stream_lines, usage};
use crate::Common;

pub fn run_sentiment(
    texts: &[String],
    file: Option<&str>,
    batch_size: usize,
    common: &Common,
) -> Result<ExitCode> {
    if batch_size == 0 {
        return Err(usage("--batch-size must be at least 1"));
    }
    if texts.is_empty() && file.is_none() {
        return Err(usage(
            "nothing to classify: pass texts in quotes, or --file PATH (- for stdin)",
        ));
    }
    if !texts.is_empty() && file.is_some() {
        return Err(usage("pass texts or --file, not both"));
    }
    let device = select_device(common)?;
    let dir = resolve_model(common.model.as_deref(), "sentiment", common.verbose)?;
    let model = SentimentModel::load(&dir, &device, select_dtype(common)?)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = 0usize;

    let emit = |out: &mut dyn Write,
                number: usize,
                text: &str,
                r: Result<Prediction, String>|
     -> Result<bool> {
        match r {
            Ok(p) => {
                if common.json {
                    let probs: serde_json::Map<String, serde_json::Value> =
                        p.probs.iter().map(|(l, v)| (l.clone(), json!(v))).collect();
                    let mut o = json!({"text": text, "label": p.label, "score": p.score, "probs": probs, "tokens": p.tokens});
                    if p.truncated {
                        o["truncated"] = json!(true);
                    }
                    writeln!(out, "{o}")?;
                } else {
                    writeln!(out, "{}\t{:.3}\t{}", p.label, p.score, text)?;
                }
                Ok(true)
            }
            Err(msg) => {
                let msg = if file.is_some() {
                    format!("line {number}: {msg}")
                } else {
                    msg
                };
                if common.json {
                    writeln!(out, "{}", json!({"text": text, "error": msg}))?;
                } else {
                    writeln!(out, "error\t-\t{msg}")?;
                }
                eprintln!("error: {msg}");
                Ok(false)
            }
        }
    };

    let Some(path) = file else {
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        for (i, (t, r)) in texts
            .iter()
            .zip(model.predict(&refs, batch_size))
            .enumerate()
        {
            if !emit(&mut out, i + 1, t, r.map_err(|e| one_line(&e)))? {
                failed += 1;
                if common.strict {
                    break;
                }
            }
        }
        out.flush()?;
        return Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    };

    let (reader, size) = input::open(path).map_err(|e| usage(one_line(&e)))?;
    // Chunks keep memory flat on huge files while still batching by length.
    let failed = stream_lines(
        reader,
        size,
        4096,
        common.strict,
        &mut out,
        |texts| model.predict(texts, batch_size),
        emit,
    )?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn eval_sentiment(data: &Path, model: Option<&str>, device_spec: &str) -> Result<ExitCode> {
    let device = device::select(device_spec).map_err(|e| usage(e.to_string()))?;
    let dir = resolve_model(model, "sentiment", false)?;
    let model = SentimentModel::load(&dir, &device, candle_core::DType::F32)?;
    let text = std::fs::read_to_string(data).with_context(|| {
        format!(
            "cannot read {} (the SST-2 data lives in ../shared/data/sst2/)",
            data.display()
        )
    })?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let label_col = header.iter().position(|h| *h == "label");
    let text_col = header
        .iter()
        .position(|h| matches!(*h, "sentence" | "content" | "text"));
    let (Some(label_col), Some(text_col)) = (label_col, text_col) else {
        bail!(
            "{}: expected a header line with `label` and `sentence` columns",
            data.display()
        );
    };
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(sentence), Some(label)) = (cols.get(text_col), cols.get(label_col)) else {
            bail!(
                "{}:{}: expected {} tab-separated columns",
                data.display(),
                i + 2,
                header.len()
            );
        };
        let label: usize = label
            .trim()
            .parse()
            .with_context(|| format!("{}:{}: bad label", data.display(), i + 2))?;
        rows.push((sentence.to_string(), label));
    }
    let natural: Vec<String> = rows
        .iter()
        .map(|(s, _)| zoo::tasks::ptb::detokenize(s))
        .collect();
    let accuracy = |texts: Vec<&str>| -> Result<f64> {
        let preds = model.predict(&texts, 64);
        let mut correct = 0;
        for (p, (_, y)) in preds.iter().zip(&rows) {
            let p = p.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let idx = model
                .config
                .labels
                .iter()
                .position(|l| *l == p.label)
                .unwrap_or(usize::MAX);
            correct += (idx == *y) as usize;
        }
        Ok(correct as f64 / rows.len() as f64)
    };
    let t0 = std::time::Instant::now();
    let acc_tok = accuracy(rows.iter().map(|(s, _)| s.as_str()).collect())?;
    let secs = t0.elapsed().as_secs_f64();
    let acc_nat = accuracy(natural.iter().map(|s| s.as_str()).collect())?;
    println!(
        "{}",
        json!({
            "model": model.config.name,
            "data": data.display().to_string(),
            "sentences": rows.len(),
            "accuracy": acc_tok,
            "natural_text_accuracy": acc_nat,
            "sentences_per_second": rows.len() as f64 / secs,
            "params": model.param_count(),
            "file_bytes": std::fs::metadata(dir.weights_path()?)?.len(),
        })
    );
    Ok(ExitCode::SUCCESS)
}
