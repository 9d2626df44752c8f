//! `zoo inspect`: look inside a trained model's memory cells.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use candle_core::{DType, Device};

use zoo::inspect::{self, Inspection};
use zoo::tasks::{ner::NerModel, sentiment::SentimentModel, translate::Translator};

use zoo::catalog::TaskKind;

use super::{resolve_model, stdout, usage};

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Model: catalogue name, folder or Hub repo id.
    pub model: String,
    /// The text to run.
    pub text: String,
    /// Recurrent layer (0 = first).
    #[arg(long, default_value_t = 0)]
    pub layer: usize,
    /// forward or backward (bidirectional layers).
    #[arg(long, default_value = "forward")]
    pub direction: String,
    /// Translator only: encoder or decoder [default: encoder].
    #[arg(long)]
    pub part: Option<String>,
    /// Units to show: a range 0..16 or a list 3,7,9.
    #[arg(long, conflicts_with = "top")]
    pub units: Option<String>,
    /// Show the K top units (default 12). In the last layer of a sentiment or
    /// NER model they are ranked by their signed pull on the output (the
    /// classifier or emission weights times the unit's pooled or mean h; see
    /// the rule printed with them); in other layers and in translators, by how
    /// much the unit's h varies over the text.
    #[arg(long)]
    pub top: Option<usize>,
    /// Write a report: FILE.html (one self-contained page for learners), or
    /// heatmaps as FILE.svg / FILE.png.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Raw values as JSON.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Raw values as CSV (quantity, step, token, unit, value).
    #[arg(long)]
    pub csv: bool,
    /// Only these quantities (comma-separated names as shown, e.g. "hidden h,cell c").
    #[arg(long)]
    pub quantities: Option<String>,
}

pub fn inspect(a: &InspectArgs) -> Result<ExitCode> {
    let dir = match a.direction.as_str() {
        "forward" | "fwd" | "0" => 0,
        "backward" | "bwd" | "1" => 1,
        other => {
            return Err(usage(format!(
                "unknown --direction `{other}`: forward or backward"
            )))
        }
    };
    if super::predict::keras_file(&a.model)?.is_some() {
        return Err(usage(format!(
            "{}: a .keras file holds no tokenizer to read the text with; \
             `zoo import {0} --tokenizer FILE`, then inspect the folder it writes",
            a.model
        )));
    }
    let m = resolve_model(Some(&a.model), None, false)?;
    if m.header.task != TaskKind::Translate && a.part.is_some() {
        return Err(usage(format!(
            "--part is for translators (encoder or decoder); {} is a {} model with one encoder",
            m.header.name, m.header.task
        )));
    }
    let dev = Device::Cpu;
    let ins: Inspection = match m.header.task {
        TaskKind::Sentiment => {
            SentimentModel::load(&m, &dev, DType::F32)?.inspect(&a.text, a.layer, dir)?
        }
        TaskKind::Ner => NerModel::load(&m, &dev, DType::F32)?.inspect(&a.text, a.layer, dir)?,
        TaskKind::Translate => Translator::load(&m, &dev, DType::F32)?.inspect(
            &a.text,
            a.part.as_deref().unwrap_or("encoder"),
            a.layer,
            dir,
        )?,
        TaskKind::Graph => {
            zoo::tasks::text_graph::TextGraph::load_any(&m, &dev)?.inspect(&a.text, a.layer, dir)?
        }
        TaskKind::Generate => {
            zoo::tasks::charlm::CharLm::load(&m, &dev, DType::F32)?.inspect(&a.text, a.layer)?
        }
    };
    let units = match (&a.units, a.top) {
        (Some(spec), _) => {
            inspect::parse_units(spec, ins.trace.units).map_err(|e| usage(e.to_string()))?
        }
        (None, top) => {
            let picture = a
                .out
                .as_ref()
                .is_some_and(|p| p.extension().is_some_and(|e| e != "html"));
            let k = top
                .unwrap_or(if picture { 8 } else { 12 })
                .clamp(1, ins.trace.units);
            let mut v = inspect::ranked_units(&ins);
            v.truncate(k);
            v
        }
    };
    let all = inspect::quantities(&ins);
    let picture = a
        .out
        .as_ref()
        .is_some_and(|p| p.extension().is_some_and(|e| e == "png" || e == "svg"));
    let qs: Vec<&str> = match &a.quantities {
        // A picture is a compact summary: the one most telling quantity, the
        // memory cell of an LSTM, else h (--quantities for more).
        None if picture => vec![if all.contains(&"cell c") {
            "cell c"
        } else {
            "hidden h"
        }],
        None => all.clone(),
        Some(list) => {
            let want: Vec<&str> = list.split(',').map(str::trim).collect();
            if let Some(bad) = want.iter().find(|w| !all.contains(w)) {
                return Err(usage(format!(
                    "unknown quantity `{bad}`: this layer records {}",
                    all.join(", ")
                )));
            }
            want
        }
    };
    let mut out = stdout();
    if a.json {
        writeln!(out, "{}", inspect::to_json(&ins, &units))?;
    } else if a.csv {
        write!(out, "{}", inspect::to_csv(&ins, &units))?;
    } else if let Some(path) = a
        .out
        .as_ref()
        .filter(|p| p.extension().is_some_and(|e| e == "html"))
    {
        let html = super::report::render(&ins, &units);
        std::fs::write(path, html)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!("zoo: wrote {}", path.display());
    } else if let Some(path) = &a.out {
        inspect::render_plot(&ins, &units, &qs, path)?;
        eprintln!("zoo: wrote {}", path.display());
    } else {
        write!(
            out,
            "{}",
            inspect::render_terminal(&ins, &units, &qs, use_colour())
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Colour on a terminal unless `NO_COLOR` is set (no-color.org).
fn use_colour() -> bool {
    colour_wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

fn colour_wanted(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour_wanted;

    #[test]
    fn no_color_turns_the_heatmap_colours_off() {
        assert!(colour_wanted(true, None));
        assert!(!colour_wanted(true, Some("1".as_ref())));
        assert!(colour_wanted(true, Some("".as_ref())), "empty means unset");
        assert!(!colour_wanted(false, None), "never into a pipe");
    }
}
