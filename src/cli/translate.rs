//! `zoo run translate`: one English line in, one German (or French) line
//! out, flushed line by line so it works in a pipe.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use zoo::input::{self, Line};
use zoo::tasks::translate::{Translation, Translator};

use super::{one_line, progress, resolve_model, select_device, select_dtype, usage};
use crate::Common;

/// Splits after `.`, `!` or `?` followed by whitespace.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    for i in 0..b.len() {
        if matches!(b[i], b'.' | b'!' | b'?')
            && b.get(i + 1).is_some_and(|c| c.is_ascii_whitespace())
        {
            out.push(text[start..=i].trim());
            start = i + 1;
        }
    }
    out.push(text[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// Translates a line, sentence by sentence when it is longer than the
/// model reads at once.
fn translate_line(model: &Translator, text: &str, beam: usize) -> Result<Translation> {
    let too_long = model.encode_text(text)?.len() > model.config.max_source_tokens;
    if !too_long {
        return model.translate(text, beam);
    }
    let mut parts = Vec::new();
    let mut ids = Vec::new();
    let (mut lp, mut score) = (0.0, 0.0);
    for s in sentences(text) {
        let t = model.translate(s, beam)?;
        parts.push(t.text);
        ids.extend(t.ids);
        lp += t.log_prob;
        score += t.score;
    }
    Ok(Translation {
        text: parts.join(" "),
        ids,
        log_prob: lp,
        score,
    })
}

/// The translator for `--model` / `--to`: `--to LANG` alone picks the
/// shipped `translate-en-LANG`; with `--model` it must match the model.
fn resolve_translator(
    model: Option<&str>,
    to: Option<&str>,
    verbose: bool,
) -> Result<zoo::model::ModelDir> {
    let named;
    let spec = match (model, to) {
        (Some(m), _) => Some(m),
        (None, Some(lang)) => {
            // The languages on offer are whatever translators the catalogue holds.
            let dirs = zoo::catalog::list()?;
            let mut langs: Vec<&str> = dirs
                .iter()
                .filter(|d| d.header.task == "translate")
                .filter_map(|d| d.target_lang())
                .collect();
            langs.sort_unstable();
            langs.dedup();
            named = dirs
                .iter()
                .find(|d| d.header.task == "translate" && d.target_lang() == Some(lang))
                .map(|d| d.header.name.clone())
                .ok_or_else(|| {
                    usage(format!(
                        "unknown target language `{lang}`: the catalogue has --to {}",
                        langs.join(", --to ")
                    ))
                })?;
            Some(named.as_str())
        }
        (None, None) => None,
    };
    let dir = resolve_model(spec, "translate", verbose)?;
    if let (Some(lang), Some(_)) = (to, model) {
        let target = dir.target_lang().unwrap_or_default();
        if target != lang {
            return Err(usage(format!(
                "model {} translates into `{target}`, not `{lang}`: drop --to or pick another --model",
                dir.header.name
            )));
        }
    }
    Ok(dir)
}

pub fn run_translate(
    to: Option<&str>,
    file: Option<&str>,
    text: Option<&str>,
    beam: Option<usize>,
    max_len: Option<usize>,
    common: &Common,
) -> Result<ExitCode> {
    if beam == Some(0) {
        return Err(usage("--beam must be at least 1 (1 = greedy)"));
    }
    if max_len == Some(0) {
        return Err(usage("--max-len must be at least 1"));
    }
    let (reader, size): (Box<dyn std::io::BufRead>, Option<u64>) = match (file, text) {
        (Some(_), Some(_)) => return Err(usage("pass --file or --text, not both")),
        (None, Some(t)) => (Box::new(std::io::Cursor::new(t.as_bytes().to_vec())), None),
        (Some(f), None) => input::open(f).map_err(|e| usage(one_line(&e)))?,
        (None, None) => {
            if std::io::stdin().is_terminal() {
                eprintln!(
                    "zoo: reading English sentences from stdin, one per line (Ctrl-D to end)"
                );
            }
            input::open("-")?
        }
    };
    let device = select_device(common)?;
    let dir = resolve_translator(common.model.as_deref(), to, common.verbose)?;
    let mut model = Translator::load(&dir, &device, select_dtype(common)?)?;
    if let Some(m) = max_len {
        model.set_max_output(m);
    }
    let beam = beam.unwrap_or(model.config.beam_size);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let bar = if file.is_some() {
        progress(size)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut lines = input::Lines::new(reader);
    let mut failed = 0usize;
    while let Some(l) = lines.next() {
        let Line { number, text } = l?;
        let r = text
            .clone()
            .and_then(|t| translate_line(&model, &t, beam).map_err(|e| one_line(&e)));
        let src = text.as_deref().unwrap_or("");
        match &r {
            Ok(t) if common.json => writeln!(
                out,
                "{}",
                json!({"line": number, "text": src, "translation": t.text, "score": if t.score.is_nan() { serde_json::Value::Null } else { json!(t.score) }})
            )?,
            Ok(t) => writeln!(out, "{}", t.text)?,
            Err(e) => {
                failed += 1;
                eprintln!("error: line {number}: {e}");
                if common.json {
                    writeln!(out, "{}", json!({"line": number, "text": src, "error": e}))?;
                } else {
                    writeln!(out)?; // keep output lines aligned with input lines
                }
            }
        }
        out.flush()?;
        match size {
            Some(_) => bar.set_position(lines.bytes_read),
            None => bar.inc(1),
        }
        if failed > 0 && common.strict {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `zoo eval translate`: corpus BLEU (sacreBLEU's 13a) of greedy and beam
/// decoding on aligned source/reference files, and sentences per second.
pub fn eval_translate(
    src: &std::path::Path,
    reference: Option<&std::path::Path>,
    to: Option<&str>,
    model: Option<&str>,
    device: &str,
    beam: Option<usize>,
    limit: Option<usize>,
) -> Result<ExitCode> {
    use anyhow::Context;
    let d = zoo::device::select(device).map_err(|e| usage(e.to_string()))?;
    let dir = resolve_translator(model, to, false)?;
    let model = Translator::load(&dir, &d, candle_core::DType::F32)?;
    let default_ref = src.with_file_name(format!("val.{}", model.config.target_lang));
    let reference = reference.unwrap_or(&default_ref);
    let read = |p: &std::path::Path| -> Result<Vec<String>> {
        Ok(std::fs::read_to_string(p)
            .with_context(|| {
                format!(
                    "cannot read {} (Multi30k lives in ../shared/data/multi30k/)",
                    p.display()
                )
            })?
            .lines()
            .map(str::to_string)
            .collect())
    };
    let (mut srcs, mut refs) = (read(src)?, read(reference)?);
    if srcs.len() != refs.len() {
        anyhow::bail!(
            "{} has {} lines but {} has {}",
            src.display(),
            srcs.len(),
            reference.display(),
            refs.len()
        );
    }
    if let Some(n) = limit {
        srcs.truncate(n);
        refs.truncate(n);
    }
    let texts: Vec<&str> = srcs.iter().map(|s| s.as_str()).collect();
    let t0 = std::time::Instant::now();
    let greedy: Vec<String> = model
        .greedy_batch(&texts, 64)
        .into_iter()
        .collect::<Result<_>>()?;
    let greedy_secs = t0.elapsed().as_secs_f64();
    let beam = beam.unwrap_or(model.config.beam_size);
    let t0 = std::time::Instant::now();
    let beamed: Vec<String> = texts
        .iter()
        .map(|t| model.translate(t, beam).map(|t| t.text))
        .collect::<Result<_>>()?;
    let beam_secs = t0.elapsed().as_secs_f64();
    let g = zoo::eval::corpus_bleu(&greedy, &refs);
    let b = zoo::eval::corpus_bleu(&beamed, &refs);
    println!(
        "{}",
        json!({
            "model": model.config.name,
            "sentences": srcs.len(),
            "bleu_greedy": g.score,
            "bleu_beam": b.score,
            "beam": beam,
            "length_penalty": model.config.length_penalty,
            "greedy_sentences_per_second": srcs.len() as f64 / greedy_secs,
            "beam_sentences_per_second": srcs.len() as f64 / beam_secs,
            "params": model.param_count(),
        })
    );
    Ok(ExitCode::SUCCESS)
}
