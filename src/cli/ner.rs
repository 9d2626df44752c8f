//! `zoo run ner`: raw text in, entities with character offsets out.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use zoo::catalog::TaskKind;
use zoo::driver::{run_texts, Outcome, Record};
use zoo::tasks::ner::{mark_entities, to_bio, NerModel, PreTokenized, Tagged};

use super::{batching, drive, resolve_model, select_device, select_dtype, Inputs};
use crate::Common;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NerFormat {
    /// The line with entities marked: [Angela Merkel](PER) met ... (a line
    /// in another language is left unmarked, with a note on stderr)
    Text,
    /// JSON Lines: text, entities (text, label, start, end, score), oov, unseen, language.
    Json,
    /// CoNLL: word<TAB>BIO tag per line, a blank line between inputs.
    Conll,
}

/// How `zoo eval ner` shows the sentences to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Casing {
    AsWritten,
    Lower,
    Upper,
}

impl Casing {
    fn apply(self, word: &str) -> String {
        match self {
            Casing::AsWritten => word.to_string(),
            Casing::Lower => word.to_lowercase(),
            Casing::Upper => word.to_uppercase(),
        }
    }
}

/// One record in the text or CoNLL format; an empty or failed input is an
/// empty line (a blank block in CoNLL), its message on stderr.
fn write_result(
    out: &mut dyn Write,
    format: NerFormat,
    r: &Record<'_, Tagged>,
) -> std::io::Result<()> {
    let Outcome::Done(t) = &r.outcome else {
        return match (format, &r.outcome) {
            (NerFormat::Conll, Outcome::Failed(e)) => writeln!(out, "# error: {e}\n"),
            _ => writeln!(out),
        };
    };
    match format {
        NerFormat::Conll => {
            for (w, tag) in t.words.iter().zip(&t.tags) {
                writeln!(out, "{}\t{}", w.text, to_bio(tag))?;
            }
            writeln!(out)
        }
        // Tags of a text mostly new to the model would be guesses.
        _ if super::not_english(r.line, t.language, "its words are left untagged") => {
            writeln!(out, "{}", r.text)
        }
        _ => writeln!(out, "{}", mark_entities(r.text, &t.entities)),
    }
}

pub fn run_ner(
    inputs: &Inputs,
    format: NerFormat,
    batch_size: usize,
    common: &Common,
) -> Result<ExitCode> {
    let batching = batching(batch_size)?;
    let common = &Common {
        json: common.json || format == NerFormat::Json,
        ..common.clone()
    };
    let (chunks, show) = inputs.open("tag")?;
    let device = select_device(common)?;
    let dir = resolve_model(common.model.as_deref(), Some(TaskKind::Ner), common.verbose)?;
    let model = select_dtype(common)?.load(&dir, &device, NerModel::load)?;
    let render = |out: &mut dyn Write, r: &Record<'_, Tagged>| write_result(out, format, r);
    drive(&model, chunks, show, 256, batching, common, &render)
}

/// A gold tag with WNUT-17's types read as CoNLL's (person → PER,
/// location → LOC, corporation and group → ORG, product and creative-work
/// → MISC), as the tagger's card scores them; other tags as they are.
fn conll_type(tag: &str) -> String {
    let Some((p, ty)) = tag.split_once('-') else {
        return tag.to_string();
    };
    let ty = match ty {
        "person" => "PER",
        "location" => "LOC",
        "corporation" | "group" => "ORG",
        "product" | "creative-work" => "MISC",
        other => other,
    };
    format!("{p}-{ty}")
}

/// `zoo eval ner`: entity F1 on a CoNLL file, and words per second.
pub fn eval_ner(
    data: Option<std::path::PathBuf>,
    model: Option<&str>,
    on: &super::EvalOn,
    batch_size: usize,
    casing: Casing,
    types: &[String],
) -> Result<ExitCode> {
    use anyhow::Context;
    let data = &super::data_path(data, "conll2003/valid.txt");
    let dir = resolve_model(model, Some(TaskKind::Ner), false)?;
    let model = on.load(&dir, NerModel::load)?;
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
        s.1.push(conll_type(cols[cols.len() - 1]));
    }
    sentences.retain(|s| !s.0.is_empty());
    let lines: Vec<String> = sentences
        .iter()
        .map(|(toks, _)| {
            let words: Vec<String> = toks.iter().map(|t| casing.apply(t)).collect();
            words.join(" ")
        })
        .collect();
    let texts: Vec<&str> = lines.iter().map(String::as_str).collect();
    let n_words: usize = sentences.iter().map(|s| s.0.len()).sum();
    let t0 = std::time::Instant::now();
    let tagged = run_texts(&PreTokenized(&model), &texts, batching(batch_size)?);
    let secs = t0.elapsed().as_secs_f64();
    let (mut gold, mut pred) = (Vec::new(), Vec::new());
    for (i, (t, (_, g))) in tagged.into_iter().zip(&sentences).enumerate() {
        let Outcome::Done(t) = t else {
            anyhow::bail!("sentence {} of {}: {t:?}", i + 1, data.display());
        };
        gold.extend(zoo::eval::spans(i, g));
        pred.extend(zoo::eval::spans(i, &t.tags));
    }
    if !types.is_empty() {
        gold.retain(|s| types.contains(&s.3));
        pred.retain(|s| types.contains(&s.3));
    }
    let (all, per) = zoo::eval::entity_f1(&gold, &pred);
    let mut out = super::stdout();
    writeln!(
        out,
        "{}",
        json!({
            "model": model.config.name,
            "data": data.display().to_string(),
            "casing": clap::ValueEnum::to_possible_value(&casing).map(|v| v.get_name().to_string()),
            "types": if types.is_empty() { json!(null) } else { json!(types) },
            "sentences": sentences.len(),
            "words": n_words,
            "f1": all.f1, "precision": all.precision, "recall": all.recall,
            "per_type": per,
            "words_per_second": n_words as f64 / secs,
            "params": model.param_count(),
        })
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
