//! `zoo run generate` (a character model writes on from a prompt, each
//! character printed as it is sampled) and `zoo eval lm` (bits per
//! character).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use zoo::catalog::TaskKind;
use zoo::tasks::charlm::{check_sampling, CharLm, Sampling};

use super::{resolve_model, select_device, select_dtype, Inputs, Show};
use crate::Common;

/// `zoo run generate`'s sampling options.
#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Divide the logits by this before sampling: lower is safer, higher
    /// wilder; 0 always takes the likeliest character.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// Sample among the K likeliest characters only (0 = all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Characters to write after each prompt.
    #[arg(long, default_value_t = 400)]
    pub max_chars: usize,
    /// Seed of the sampler: the same seed and prompt give the same text
    /// [default: a new one each run].
    #[arg(long)]
    pub seed: Option<u64>,
}

pub fn run_generate(inputs: &Inputs, args: &GenerateArgs, common: &Common) -> Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let sampling = Sampling {
        temperature: args.temperature,
        top_k: args.top_k,
        max_chars: args.max_chars,
        seed,
    };
    check_sampling(&sampling)?;
    let (mut chunks, show) = inputs.open("continue")?;
    let device = select_device(common)?;
    let dir = resolve_model(
        common.model.as_deref(),
        Some(TaskKind::Generate),
        common.verbose,
    )?;
    let model = select_dtype(common)?.load(&dir, &device, CharLm::load)?;
    let mut out = super::stdout();
    let mut failed = 0;
    if show == Show::Prompt {
        super::prompt();
    }
    while let Some(lines) = chunks.next_chunk(1)? {
        for line in lines {
            let prompt = match line.text {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: line {}: {e}", line.number);
                    failed += 1;
                    if common.json {
                        writeln!(out, "{}", json!({"line": line.number, "error": e}))?;
                    }
                    continue;
                }
            };
            if common.json {
                let text = model.generate(&prompt, &sampling, |_| Ok(()))?;
                writeln!(
                    out,
                    "{}",
                    json!({"line": line.number, "text": prompt, "generated": text, "seed": seed})
                )?;
            } else {
                // Characters as they come: the prompt, then each one sampled.
                write!(out, "{prompt}")?;
                out.flush()?;
                model.generate(&prompt, &sampling, |c| {
                    write!(out, "{c}")?;
                    out.flush()?;
                    Ok(())
                })?;
                writeln!(out)?;
            }
            out.flush()?;
            if failed > 0 && common.strict {
                return Ok(ExitCode::from(1));
            }
        }
        if show == Show::Prompt {
            super::prompt();
        }
    }
    if show == Show::Prompt {
        eprintln!();
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `zoo eval lm`: bits per character of a text file.
pub fn eval_lm(
    data: Option<std::path::PathBuf>,
    model: Option<&str>,
    on: &super::EvalOn,
    streams: usize,
) -> Result<ExitCode> {
    let path = super::data_path(data, "gutenberg/valid.txt");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (give a UTF-8 text file with --data; the held-out books live in ../shared/data/gutenberg/)",
            path.display()
        )
    })?;
    let dir = resolve_model(model, Some(TaskKind::Generate), false)?;
    let model = on.load(&dir, CharLm::load)?;
    let total = text.chars().count() as u64;
    let bar = super::progress(Some(total));
    let t0 = std::time::Instant::now();
    let bpc = model.bits_per_char(&text, streams, 256, |done| bar.set_position(done as u64))?;
    let secs = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut out = super::stdout();
    writeln!(
        out,
        "{}",
        json!({
            "model": model.config.name,
            "data": path.display().to_string(),
            "chars": total,
            "bits_per_char": (bpc * 10_000.0).round() / 10_000.0,
            "chars_per_second": (total as f64 / secs).round(),
        })
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
