//! Command implementations for the `zoo` binary.

use std::io::{IsTerminal, Write};

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

use zoo::driver::{self, Batching, Flow, Outcome, Record, Task};
use zoo::input::Chunks;
use zoo::{catalog, device};

use crate::Common;

mod generate;
mod inspect;
mod ner;
mod predict;
mod probe;
mod report;
mod sentiment;
mod serve;
mod stream;
mod text;
mod tools;
mod translate;

pub use generate::{eval_lm, run_generate, GenerateArgs};
pub use inspect::{inspect, InspectArgs};
pub use ner::{eval_ner, run_ner, Casing, NerFormat};
pub use predict::{import, predict, ImportArgs, PredictArgs};
pub use probe::{probe, ProbeArgs};
pub use sentiment::{eval_sentiment, run_sentiment};
pub use serve::{serve, ServeArgs};
pub use stream::{stream, StreamArgs};
pub use text::run_text;
pub use tools::{bench, devices, info, list, parity, pull, summary, BenchArgs};
pub use translate::{eval_translate, run_translate};
pub use zoo::error::{one_line, usage};

/// Where the texts of a `zoo run` come from: arguments (a file's name
/// reads the file), `--text`, `--file` (`-` = stdin), or stdin when none
/// is given (typed at a prompt when stdin is a terminal).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Inputs {
    /// Texts to run, one result each. An argument that names an existing
    /// file is read as a file instead, one text per line; a folder, or a
    /// missing name ending in .txt/.tsv/.csv/.jsonl/.conll without spaces,
    /// is an error.
    pub texts: Vec<String>,
    /// One more text (repeatable): always a text, even one that starts
    /// with `-` or names a file.
    #[arg(long = "text", value_name = "TEXT", allow_hyphen_values = true)]
    pub text: Vec<String>,
    /// Read one text per line from PATH (`-` for stdin).
    #[arg(long, short, value_name = "PATH")]
    pub file: Option<String>,
}

/// What a run shows on stderr while it reads its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Show {
    Nothing,
    /// A progress bar over the files read (when stderr is a terminal).
    Progress,
    /// A prompt before each line a person types at the terminal.
    Prompt,
}

impl Inputs {
    /// The inputs as a stream of chunks, and what to show while they are
    /// read. Every file is opened before any is read, so a missing one is
    /// a usage error before any output.
    pub(crate) fn open(&self, what: &str) -> Result<(Chunks, Show)> {
        use zoo::input::Source;
        let mut sources = self
            .texts
            .iter()
            .map(|a| Source::from_arg(a))
            .collect::<Result<Vec<_>>>()?;
        sources.extend(self.text.iter().cloned().map(Source::Text));
        if let Some(path) = &self.file {
            if !sources.is_empty() {
                return Err(usage("pass texts or --file, not both"));
            }
            sources.push(Source::File(path.clone()));
        }
        if sources.is_empty() {
            if std::io::stdin().is_terminal() {
                eprintln!("Type a text and press Enter to {what} it; Ctrl-D ends.");
                return Ok((Chunks::from_reader(zoo::input::open("-")?), Show::Prompt));
            }
            return Ok((Chunks::from_reader(zoo::input::open("-")?), Show::Nothing));
        }
        let reads_files = sources
            .iter()
            .any(|s| matches!(s, Source::File(p) if p != "-"));
        let opened = sources
            .into_iter()
            .map(Source::open)
            .collect::<Result<Vec<_>>>()?;
        let show = if reads_files {
            Show::Progress
        } else {
            Show::Nothing
        };
        Ok((Chunks::from_sources(opened), show))
    }
}

/// The prompt before each line typed at a terminal.
const PROMPT: &str = "> ";

pub(crate) fn prompt() {
    eprint!("{PROMPT}");
    let _ = std::io::stderr().flush();
}

/// How one task writes a record in its text format.
/// Above this fraction of unknown tokens a classifier's text output says
/// `unknown` instead of a label: the label would be a guess (another
/// language, say). `--json` keeps the label and gives `oov`.
pub(crate) const MOSTLY_UNKNOWN: f64 = 0.5;

/// Whether a text's output should give way to a note: the text is not
/// English, the only language the models read (see `zoo::tasks::language`).
/// The note goes to stderr, by line number; `--json` keeps the output and
/// gives `language`.
pub(crate) fn not_english(
    line: usize,
    language: zoo::tasks::language::Language,
    instead: &str,
) -> bool {
    if language.is_english() {
        return false;
    }
    eprintln!(
        "note: line {line} reads as {} rather than English, which this model was trained on; {instead} (--json gives it anyway)",
        language.name()
    );
    true
}

pub(crate) type Render<'a, O> = dyn Fn(&mut dyn Write, &Record<'_, O>) -> std::io::Result<()> + 'a;

/// Runs `task` over the inputs with the shared streaming driver: one result
/// line (or JSON Lines object) per input, in order, flushed as each chunk
/// is done. Failures are reported on stderr by line number and make the
/// exit status 1; `--strict` stops at the first.
pub(crate) fn drive<T: Task>(
    task: &T,
    mut chunks: Chunks,
    show: Show,
    chunk: usize,
    batching: Batching,
    common: &Common,
    render: &Render<'_, T::Output>,
) -> Result<std::process::ExitCode> {
    // The sink writes, the end of each chunk flushes: both need the writer.
    let out = std::cell::RefCell::new(stdout());
    let bar = if show == Show::Progress {
        progress(chunks.progress().1)
    } else {
        ProgressBar::hidden()
    };
    if show == Show::Prompt {
        prompt();
    }
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
            if show == Show::Prompt {
                prompt();
            }
            Ok(())
        },
    )?;
    if show == Show::Prompt {
        eprintln!(); // the last prompt's line ends at Ctrl-D
    }
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

/// `--dtype` for `zoo run`: int8 is asked for speed, so on a CPU whose
/// int8 kernel is slower than f32 (no AVX-512 VNNI) the run stays f32 and
/// says so once. `ZOO_INT8=always` keeps int8 anyway (to measure it).
pub(crate) fn select_dtype(common: &Common) -> Result<zoo::device::Precision> {
    use zoo::device::Precision;
    let p = Precision::parse(&common.dtype)?;
    let forced = std::env::var("ZOO_INT8").is_ok_and(|v| v == "always");
    if p == Precision::Int8
        && !zoo::nn::fast_int8()
        && !forced
        && !common.device.starts_with("cuda")
    {
        eprintln!(
            "note: --dtype int8 runs f32 on this CPU: without AVX-512 VNNI zoo's int8 kernel is slower than f32 (ZOO_INT8=always runs it anyway)"
        );
        return Ok(Precision::F32);
    }
    Ok(p)
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
