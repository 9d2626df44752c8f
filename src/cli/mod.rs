//! Command implementations for the `zoo` binary.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use zoo::driver::{self, Batching, Flow, Outcome, Record, Task};
use zoo::input::Chunks;
use zoo::{catalog, device};

use crate::Common;

mod inspect;
mod ner;
mod predict;
mod report;
mod sentiment;
mod serve;
mod text;
mod tools;
mod translate;

pub use inspect::{inspect, InspectArgs};
pub use ner::{eval_ner, run_ner, Casing, NerFormat};
pub use predict::{import, predict, ImportArgs, PredictArgs};
pub use sentiment::{eval_sentiment, run_sentiment};
pub use serve::{serve, ServeArgs};
pub use text::run_text;
pub use tools::{bench, devices, info, list, parity, pull, summary, BenchArgs};
pub use translate::{eval_translate, run_translate};
pub use zoo::error::{one_line, usage};

/// Where the texts of a `zoo run` come from: arguments, `--text`,
/// `--file` (`-` = stdin), or stdin when none is given and it is not a
/// terminal.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Inputs {
    /// Texts to run, one result each.
    pub texts: Vec<String>,
    /// One more text (repeatable), e.g. one that starts with `-`.
    #[arg(long = "text", value_name = "TEXT", allow_hyphen_values = true)]
    pub text: Vec<String>,
    /// Read one text per line from PATH (`-` for stdin).
    #[arg(long, short, value_name = "PATH")]
    pub file: Option<String>,
}

impl Inputs {
    /// The inputs as a stream of chunks, and whether to show a progress bar
    /// (reading a file, with a terminal on stderr).
    pub fn open(&self, what: &str) -> Result<(Chunks, bool)> {
        let mut texts = self.texts.clone();
        texts.extend(self.text.iter().cloned());
        match (&self.file, texts.is_empty()) {
            (Some(_), false) => Err(usage("pass texts or --file, not both")),
            (None, false) => Ok((Chunks::from_texts(texts), false)),
            (Some(path), true) => {
                let r = zoo::input::open(path)?;
                Ok((Chunks::from_reader(r), path != "-"))
            }
            (None, true) => {
                if std::io::stdin().is_terminal() {
                    return Err(usage(format!(
                        "nothing to {what}: pass texts in quotes, --file PATH, or pipe lines on stdin"
                    )));
                }
                Ok((Chunks::from_reader(zoo::input::open("-")?), false))
            }
        }
    }
}

/// How one task writes a record in its text format.
/// Above this fraction of unknown tokens a classifier's text output says
/// `unknown` instead of a label: the label would be a guess (another
/// language, say). `--json` keeps the label and gives `oov`.
pub(crate) const MOSTLY_UNKNOWN: f64 = 0.5;

/// Whether a text's output should give way to a note: most of its words
/// are new to the model (see `zoo::tasks::seen`). The note goes to stderr,
/// by line number; `--json` keeps the output and gives `unseen`.
pub(crate) fn mostly_new(
    line: usize,
    novelty: Option<&zoo::tasks::seen::Novelty>,
    instead: &str,
) -> bool {
    match novelty {
        Some(n) if n.mostly_new() => {
            eprintln!(
                "note: line {line}: {} of its {} words never appeared in this model's training text (another language?); {instead} (--json gives it anyway)",
                n.new, n.counted
            );
            true
        }
        _ => false,
    }
}

pub(crate) type Render<'a, O> = dyn Fn(&mut dyn Write, &Record<'_, O>) -> std::io::Result<()> + 'a;

/// Runs `task` over the inputs with the shared streaming driver: one result
/// line (or JSON Lines object) per input, in order, flushed as each chunk
/// is done. Failures are reported on stderr by line number and make the
/// exit status 1; `--strict` stops at the first.
pub(crate) fn drive<T: Task>(
    task: &T,
    mut chunks: Chunks,
    show_progress: bool,
    chunk: usize,
    batching: Batching,
    common: &Common,
    render: &Render<'_, T::Output>,
) -> Result<std::process::ExitCode> {
    // The sink writes, the end of each chunk flushes: both need the writer.
    let out = std::cell::RefCell::new(stdout());
    let bar = if show_progress {
        progress(chunks.progress().1)
    } else {
        ProgressBar::hidden()
    };
    let totals = driver::stream(
        task,
        &mut chunks,
        chunk,
        batching,
        |r| {
            if let Outcome::Failed(e) = &r.outcome {
                bar.suspend(|| eprintln!("error: line {}: {e}", r.line));
            }
            let mut out = out.borrow_mut();
            if common.json {
                writeln!(out, "{}", driver::record_json(&r))?;
            } else {
                render(&mut *out, &r)?;
            }
            Ok(if r.outcome.is_failure() && common.strict {
                Flow::Stop
            } else {
                Flow::Continue
            })
        },
        |c| {
            out.borrow_mut().flush()?;
            let (done, total) = c.progress();
            match total {
                Some(_) => bar.set_position(done),
                None => bar.inc(1),
            }
            Ok(())
        },
    )?;
    bar.finish_and_clear();
    out.borrow_mut().flush()?;
    Ok(if totals.failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

pub(crate) fn select_device(common: &Common) -> Result<candle_core::Device> {
    let d = device::select(&common.device)?;
    if common.verbose {
        eprintln!("zoo: device {}", device::describe(&d));
    }
    Ok(d)
}

/// Where `zoo eval` runs: `--device` and `--dtype`.
#[derive(clap::Args, Debug, Clone)]
pub struct EvalOn {
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// f32, f16, bf16 or int8 (recurrent weights in int8, CPU only).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
}

impl EvalOn {
    /// Loads a model on the chosen device in the chosen dtype.
    pub(crate) fn load<M: zoo::device::Quantize>(
        &self,
        dir: &zoo::model::ModelDir,
        load: impl FnOnce(&zoo::model::ModelDir, &candle_core::Device, candle_core::DType) -> Result<M>,
    ) -> Result<M> {
        let precision = zoo::device::Precision::parse(&self.dtype)?;
        let device = device::select(&self.device)?;
        precision.load(dir, &device, load)
    }
}

pub(crate) fn select_dtype(common: &Common) -> Result<zoo::device::Precision> {
    zoo::device::Precision::parse(&common.dtype)
}

/// `--batch-size`: at least 1.
pub(crate) fn batching(batch_size: usize) -> Result<Batching> {
    if batch_size == 0 {
        return Err(usage("--batch-size must be at least 1"));
    }
    Ok(Batching::items(batch_size))
}

pub(crate) fn resolve_model(
    spec: Option<&str>,
    task: Option<catalog::TaskKind>,
    verbose: bool,
) -> Result<zoo::model::ModelDir> {
    let spec = match (spec, task) {
        (Some(s), _) => s,
        (None, Some(t)) => t.default_model().unwrap_or(""),
        (None, None) => "",
    };
    if spec.is_empty() {
        return Err(usage("name a model: see `zoo list`"));
    }
    let dir = catalog::resolve(spec, std::io::stderr().is_terminal())?;
    if verbose {
        eprintln!("zoo: model {} from {}", dir.header.name, dir.path.display());
    }
    if let Some(t) = task {
        dir.expect_task(t)?;
    }
    Ok(dir)
}

/// A spinner-or-bar on stderr; hidden when stderr is not a terminal.
pub(crate) fn progress(total_bytes: Option<u64>) -> ProgressBar {
    match total_bytes {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}")
                .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {pos} chunks").expect("valid template"),
        ),
    }
}

/// Standard output, buffered; write with `writeln!(out, …)?` so that a
/// closed pipe is an error the caller ends quietly on, not a panic.
pub(crate) fn stdout() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::new(std::io::stdout().lock())
}

/// A data set file for `zoo eval`: `$ZOO_DATA/REL`, else `shared/data/REL`
/// in the current folder or one above it, else beside the zoo checkout
/// (`../shared/data/REL` from it). The first candidate is named in errors.
pub(crate) fn data_path(given: Option<std::path::PathBuf>, rel: &str) -> std::path::PathBuf {
    if let Some(p) = given {
        return p;
    }
    let mut candidates = Vec::new();
    if let Some(d) = std::env::var_os("ZOO_DATA").filter(|d| !d.is_empty()) {
        candidates.push(std::path::PathBuf::from(d).join(rel));
    }
    if let Ok(cwd) = std::env::current_dir() {
        for a in cwd.ancestors() {
            candidates.push(a.join("shared").join("data").join(rel));
        }
    }
    if let Some(c) = catalog::checkout() {
        if let Some(parent) = c.parent() {
            candidates.push(parent.join("shared").join("data").join(rel));
        }
    }
    candidates
        .iter()
        .find(|p| p.exists())
        .or(candidates.first())
        .cloned()
        .unwrap_or_else(|| std::path::PathBuf::from(rel))
}
