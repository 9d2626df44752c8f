//! `zoo run ner`: raw text in, entities with character offsets out.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use zoo::input;
use zoo::tasks::ner::{fill_text, to_bio, NerModel, Tagged};

use super::{one_line, resolve_model, select_device, select_dtype, stream_lines, usage};
use crate::Common;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NerFormat {
    /// The line with entities marked: [Angela Merkel](PER) met ...
    Text,
    /// JSON Lines: text, entities (text, label, start, end, score).
    Json,
    /// CoNLL: word<TAB>BIO tag per line, a blank line between inputs.
    Conll,
}

fn write_result(
    out: &mut dyn Write,
    format: NerFormat,
    number: usize,
    text: &str,
    r: &Result<Tagged, String>,
) -> Result<()> {
    match (format, r) {
        (NerFormat::Json, Ok(t)) => {
            let mut ents = t.entities.clone();
            fill_text(text, &mut ents);
            writeln!(
                out,
                "{}",
                json!({"line": number, "text": text, "entities": ents})
            )?;
        }
        (NerFormat::Json, Err(e)) => {
            writeln!(out, "{}", json!({"line": number, "text": text, "error": e}))?
        }
        (NerFormat::Conll, Ok(t)) => {
            for (w, tag) in t.words.iter().zip(&t.tags) {
                writeln!(out, "{}\t{}", w.text, to_bio(tag))?;
            }
            writeln!(out)?;
        }
        (NerFormat::Conll, Err(e)) => writeln!(out, "# error: {e}\n")?,
        (NerFormat::Text, Ok(t)) => {
            let chars: Vec<char> = text.chars().collect();
            let mut s = String::with_capacity(text.len() + 16 * t.entities.len());
            let mut at = 0;
            for e in &t.entities {
                s.extend(&chars[at..e.start]);
                s.push('[');
                s.extend(&chars[e.start..e.end]);
                s.push_str(&format!("]({})", e.label));
                at = e.end;
            }
            s.extend(&chars[at..]);
            writeln!(out, "{s}")?;
        }
        (NerFormat::Text, Err(e)) => writeln!(out, "error: {e}")?,
    }
    Ok(())
}

pub fn run_ner(
    file: Option<&str>,
    text: Option<&str>,
    format: NerFormat,
    batch_size: usize,
    common: &Common,
) -> Result<ExitCode> {
    if batch_size == 0 {
        return Err(usage("--batch-size must be at least 1"));
    }
    let format = if common.json { NerFormat::Json } else { format };
    let (reader, size): (Box<dyn std::io::BufRead>, Option<u64>) = match (file, text) {
        (Some(_), Some(_)) => return Err(usage("pass a FILE or --text, not both")),
        (None, None) => {
            return Err(usage(
                "nothing to tag: pass a FILE (- for stdin) or --text \"...\"",
            ))
        }
        (None, Some(t)) => (Box::new(std::io::Cursor::new(t.as_bytes().to_vec())), None),
        (Some(f), None) => input::open(f).map_err(|e| usage(one_line(&e)))?,
    };
    let device = select_device(common)?;
    let dir = resolve_model(common.model.as_deref(), "ner", common.verbose)?;
    let model = NerModel::load(&dir, &device, select_dtype(common)?)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // Small chunks: results come out as they are ready, memory stays flat.
    let failed = stream_lines(
        reader,
        size,
        256,
        common.strict,
        &mut out,
        |lines| model.tag_lines(lines, batch_size),
        |out, number, text, r| {
            write_result(out, format, number, text, &r)?;
            match r {
                Ok(_) => Ok(true),
                Err(e) => {
                    eprintln!("error: line {number}: {e}");
                    Ok(false)
                }
            }
        },
    )?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `zoo eval ner`: entity F1 on a CoNLL file, and words per second.
pub fn eval_ner(
    data: &std::path::Path,
    model: Option<&str>,
    device: &str,
    batch_size: usize,
) -> Result<ExitCode> {
    use anyhow::Context;
    let d = zoo::device::select(device).map_err(|e| usage(e.to_string()))?;
    let dir = resolve_model(model, "ner", false)?;
    let model = NerModel::load(&dir, &d, candle_core::DType::F32)?;
    let text = std::fs::read_to_string(data).with_context(|| {
        format!(
            "cannot read {} (CoNLL-2003 lives in ../shared/data/conll2003/)",
            data.display()
        )
    })?;
    let mut sentences: Vec<(Vec<String>, Vec<String>)> = vec![(Vec::new(), Vec::new())];
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.is_empty() || cols[0] == "-DOCSTART-" {
            if !sentences.last().unwrap().0.is_empty() {
                sentences.push((Vec::new(), Vec::new()));
            }
            continue;
        }
        let s = sentences.last_mut().unwrap();
        s.0.push(cols[0].to_string());
        s.1.push(cols[cols.len() - 1].to_string());
    }
    sentences.retain(|s| !s.0.is_empty());
    let words: Vec<Result<Vec<zoo::tasks::ner::Word>>> = sentences
        .iter()
        .map(|(toks, _)| {
            let mut at = 0;
            toks.iter()
                .map(|t| {
                    let w = model.word(t, at);
                    at += t.chars().count() + 1;
                    w
                })
                .collect()
        })
        .collect();
    let n_words: usize = sentences.iter().map(|s| s.0.len()).sum();
    let t0 = std::time::Instant::now();
    let tagged = model.tag_words(words, batch_size);
    let secs = t0.elapsed().as_secs_f64();
    let (mut gold, mut pred) = (Vec::new(), Vec::new());
    for (i, (t, (_, g))) in tagged.into_iter().zip(&sentences).enumerate() {
        let t = t?;
        gold.extend(zoo::eval::spans(i, g));
        pred.extend(zoo::eval::spans(i, &t.tags));
    }
    let (all, per) = zoo::eval::entity_f1(&gold, &pred);
    println!(
        "{}",
        json!({
            "model": model.config.name,
            "data": data.display().to_string(),
            "sentences": sentences.len(),
            "words": n_words,
            "f1": all.f1, "precision": all.precision, "recall": all.recall,
            "per_type": per,
            "words_per_second": n_words as f64 / secs,
            "params": model.param_count(),
        })
    );
    Ok(ExitCode::SUCCESS)
}
