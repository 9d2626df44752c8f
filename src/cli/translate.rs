//! `zoo run translate`: one English line in, one German (or French) line
//! out, flushed line by line so it works in a pipe.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use zoo::catalog::TaskKind;
use zoo::driver::{run_texts, Batching, Outcome, Record};
use zoo::tasks::translate::{Decoding, Translation, Translator};

use super::{drive, resolve_model, select_device, select_dtype, usage, Inputs};
use crate::Common;

/// The translator for `--model` / `--to`: `--to LANG` alone picks the
/// shipped `translate-en-LANG` (the general one, not a caption model), else
/// the first translator into LANG found; with `--model` it must match.
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
                .filter(|d| d.header.task == TaskKind::Translate)
                .filter_map(|d| d.target_lang())
                .collect();
            langs.sort_unstable();
            langs.dedup();
            let into: Vec<_> = dirs
                .iter()
                .filter(|d| d.header.task == TaskKind::Translate && d.target_lang() == Some(lang))
                .collect();
            let preferred = format!("translate-en-{lang}");
            named = into
                .iter()
                .find(|d| d.header.name == preferred)
                .or(into.first())
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
    let dir = resolve_model(spec, Some(TaskKind::Translate), verbose)?;
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

/// The widest beam `--beam` takes: past this, search costs grow with no
/// gain in quality for these models.
const MAX_BEAM: usize = 64;

fn check_beam(beam: Option<usize>) -> Result<()> {
    match beam {
        Some(0) => Err(usage("--beam must be at least 1 (1 = greedy)")),
        Some(b) if b > MAX_BEAM => Err(usage(format!(
            "--beam {b} is too wide: use 1 (greedy) to {MAX_BEAM}"
        ))),
        _ => Ok(()),
    }
}

pub fn run_translate(
    to: Option<&str>,
    inputs: &Inputs,
    beam: Option<usize>,
    max_len: Option<usize>,
    common: &Common,
) -> Result<ExitCode> {
    check_beam(beam)?;
    if max_len == Some(0) {
        return Err(usage("--max-len must be at least 1"));
    }
    let (chunks, show) = inputs.open("translate")?;
    let device = select_device(common)?;
    let dir = resolve_translator(common.model.as_deref(), to, common.verbose)?;
    let mut model = select_dtype(common)?.load(&dir, &device, Translator::load)?;
    if let Some(m) = max_len {
        model.set_max_output(m);
    }
    let task = Decoding {
        beam: beam.unwrap_or(model.config.beam_size),
        model: &model,
    };
    // One output line per input line; empty or failed inputs give an
    // empty line so that lines stay aligned.
    let render = |out: &mut dyn Write, r: &Record<'_, Translation>| match &r.outcome {
        // A text mostly new to the model gets a made-up translation.
        Outcome::Done(t) if super::not_english(r.line, t.language, "its output line is empty") => {
            writeln!(out)
        }
        Outcome::Done(t) => writeln!(out, "{}", t.text),
        _ => writeln!(out),
    };
    // Small chunks: sentences come back as they are translated.
    drive(
        &task,
        chunks,
        show,
        64,
        Batching::items(64),
        common,
        &render,
    )
}

/// `zoo eval translate`: corpus BLEU (sacreBLEU's 13a) and chrF of greedy
/// and beam decoding on aligned source/reference files, and sentences per second.
pub fn eval_translate(
    src: Option<std::path::PathBuf>,
    reference: Option<&std::path::Path>,
    to: Option<&str>,
    model: Option<&str>,
    on: &super::EvalOn,
    beam: Option<usize>,
    limit: Option<usize>,
) -> Result<ExitCode> {
    use anyhow::Context;
    let src = &super::data_path(src, "multi30k/val.en");
    let dir = resolve_translator(model, to, false)?;
    let model = on.load(&dir, Translator::load)?;
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
    check_beam(beam)?;
    let beam = beam.unwrap_or(model.config.beam_size);
    let t0 = std::time::Instant::now();
    let beamed: Vec<String> = run_texts(
        &Decoding {
            model: &model,
            beam,
        },
        &texts,
        Batching::items(64),
    )
    .into_iter()
    .map(|o| match o {
        Outcome::Done(t) => Ok(t.text),
        Outcome::Empty => Ok(String::new()),
        Outcome::Failed(e) => Err(anyhow::anyhow!("{e}")),
    })
    .collect::<Result<_>>()?;
    let beam_secs = t0.elapsed().as_secs_f64();
    let g = zoo::eval::corpus_bleu(&greedy, &refs);
    let b = zoo::eval::corpus_bleu(&beamed, &refs);
    let mut out = super::stdout();
    writeln!(
        out,
        "{}",
        json!({
            "model": model.config.name,
            "sentences": srcs.len(),
            "bleu_greedy": g.score,
            "bleu_beam": b.score,
            "chrf_greedy": zoo::eval::corpus_chrf(&greedy, &refs),
            "chrf_beam": zoo::eval::corpus_chrf(&beamed, &refs),
            "beam": beam,
            "length_penalty": model.config.length_penalty,
            "greedy_sentences_per_second": srcs.len() as f64 / greedy_secs,
            "beam_sentences_per_second": srcs.len() as f64 / beam_secs,
            "params": model.param_count(),
        })
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
