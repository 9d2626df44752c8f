//! `zoo run ner`: raw text in, entities with character offsets out.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use zoo::input::{self, Line};
use zoo::tasks::ner::{fill_text, to_bio, NerModel, Tagged};

use super::{one_line, progress, resolve_model, select_device, select_dtype, usage};
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
    let bar = progress(size);
    let mut lines = input::Lines::new(reader);
    let mut failed = 0usize;
    // Small chunks: results come out as they are ready, memory stays flat.
    const CHUNK: usize = 256;
    'outer: loop {
        let chunk: Vec<Line> = lines.by_ref().take(CHUNK).collect::<Result<_>>()?;
        if chunk.is_empty() {
            break;
        }
        let ok: Vec<&str> = chunk
            .iter()
            .filter_map(|l| l.text.as_deref().ok())
            .collect();
        let mut tagged = model.tag_lines(&ok, batch_size).into_iter();
        for l in &chunk {
            let (text, r) = match &l.text {
                Ok(t) => (
                    t.as_str(),
                    tagged
                        .next()
                        .expect("one per line")
                        .map_err(|e| one_line(&e)),
                ),
                Err(e) => ("", Err(e.clone())),
            };
            write_result(&mut out, format, l.number, text, &r)?;
            if let Err(e) = &r {
                failed += 1;
                eprintln!("error: line {}: {e}", l.number);
                if common.strict {
                    break 'outer;
                }
            }
        }
        out.flush()?;
        match size {
            Some(_) => bar.set_position(lines.bytes_read),
            None => bar.inc(chunk.len() as u64),
        }
    }
    bar.finish_and_clear();
    out.flush()?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
