//! `zoo run classify` and `zoo run tag`: an imported graph model on raw text.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;

use zoo::driver::{Outcome, Record};
use zoo::model::TaskKind;
use zoo::tasks::text_graph::{TextGraph, TextResult, TextTask};

use super::{batching, drive, resolve_model, select_device, usage, Inputs, MOSTLY_UNKNOWN};
use crate::Common;

pub fn run_text(
    task: TextTask,
    inputs: &Inputs,
    batch_size: usize,
    common: &Common,
) -> Result<ExitCode> {
    let Some(spec) = common.model.as_deref() else {
        return Err(usage(
            "name the model: --model DIR (a folder written by `zoo import`)",
        ));
    };
    let batching = batching(batch_size)?;
    let (chunks, show) = inputs.open(match task {
        TextTask::Classify => "classify",
        TextTask::Tag => "tag",
    })?;
    let device = select_device(common)?;
    let dir = resolve_model(Some(spec), Some(TaskKind::Graph), common.verbose)?;
    let model = TextGraph::load(&dir, &device, task)?;
    // classify: label<TAB>score<TAB>text; tag: token/LABEL per token. An
    // empty input is an empty line, a failed one `error` (message on stderr).
    let render = |out: &mut dyn Write, r: &Record<'_, TextResult>| match &r.outcome {
        Outcome::Done(TextResult::Classified(c)) if c.oov > MOSTLY_UNKNOWN => {
            writeln!(out, "unknown\t{:.3}\t{}", c.score, r.text)
        }
        Outcome::Done(TextResult::Classified(c)) => {
            writeln!(out, "{}\t{:.3}\t{}", c.label, c.score, r.text)
        }
        Outcome::Done(TextResult::Tagged(t)) => {
            let parts: Vec<String> = t
                .tokens
                .iter()
                .map(|k| format!("{}/{}", k.token, k.label))
                .collect();
            writeln!(out, "{}", parts.join(" "))
        }
        Outcome::Empty => writeln!(out),
        Outcome::Failed(_) => writeln!(out, "error\t\t{}", r.text),
    };
    drive(&model, chunks, show, 4096, batching, common, &render)
}
