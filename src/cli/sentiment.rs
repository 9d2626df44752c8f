//! `zoo run sentiment` and `zoo eval sentiment`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde_json::json;

use zoo::catalog::TaskKind;
use zoo::driver::{Outcome, Record};
use zoo::tasks::sentiment::{Prediction, SentimentModel};

use super::{batching, drive, resolve_model, select_device, select_dtype, Inputs, MOSTLY_UNKNOWN};
use crate::Common;

pub fn run_sentiment(inputs: &Inputs, batch_size: usize, common: &Common) -> Result<ExitCode> {
    let batching = batching(batch_size)?;
    let (chunks, show) = inputs.open("classify")?;
    let device = select_device(common)?;
    let dir = resolve_model(
        common.model.as_deref(),
        Some(TaskKind::Sentiment),
        common.verbose,
    )?;
    let model = select_dtype(common)?.load(&dir, &device, SentimentModel::load)?;
    // label<TAB>score<TAB>text; an empty input is an empty line, a failed
    // one `error` in the label column (its message goes to stderr).
    let render = |out: &mut dyn Write, r: &Record<'_, Prediction>| match &r.outcome {
        // Mostly unknown words (another language, say): the label would be a guess.
        Outcome::Done(p) if f64::from(p.oov) > MOSTLY_UNKNOWN => {
            writeln!(out, "unknown\t{:.3}\t{}", p.score, r.text)
        }
        Outcome::Done(p) => writeln!(out, "{}\t{:.3}\t{}", p.label, p.score, r.text),
        Outcome::Empty => writeln!(out),
        Outcome::Failed(_) => writeln!(out, "error\t\t{}", r.text),
    };
    // Big chunks keep batches full on files; a pipe still gets each line
    // as soon as it arrives.
    drive(&model, chunks, show, 4096, batching, common, &render)
}

pub fn eval_sentiment(
    data: Option<std::path::PathBuf>,
    model: Option<&str>,
    on: &super::EvalOn,
) -> Result<ExitCode> {
    let data = &super::data_path(data, "sst2/dev.tsv");
    let dir = resolve_model(model, Some(TaskKind::Sentiment), false)?;
    let model = on.load(&dir, SentimentModel::load)?;
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
    let mut out = super::stdout();
    writeln!(
        out,
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
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
