use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod cli;

/// A zoo of pretrained recurrent networks (SimpleRNN, LSTM, GRU) on candle.
#[derive(Parser, Debug)]
#[command(name = "zoo", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a pretrained model on text.
    #[command(subcommand)]
    Run(RunTask),
    /// Time our recurrent layers against candle-nn's rnn module (same run, same weights).
    Bench {
        /// Forward passes per measurement (median reported).
        #[arg(long, default_value_t = 20)]
        iters: usize,
    },
    /// Measure a model on a labelled data set (e.g. SST-2 dev).
    #[command(subcommand)]
    Eval(EvalTask),
    /// Check parity fixtures (safetensors files or folders of them) against our layers.
    Parity {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// List the devices this build can use.
    Devices,
    /// The model catalogue: name, task, cell, units, size, metric, folder.
    List,
    /// One model's card summary (catalogue name, folder or Hub repo id).
    Info { model: String },
    /// Look inside a memory cell: h, c and gates per token and unit, as a heatmap, JSON or CSV.
    Inspect(cli::InspectArgs),
    /// Keras-style table of a model's layers: shapes, states, parameters and their formulas.
    Summary {
        model: String,
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// The rows as JSON Lines.
        #[arg(long)]
        json: bool,
    },
}

/// Options every `run` task takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Model: a catalogue name (see `zoo list`), a model folder, or a Hub repo id owner/name[@revision].
    #[arg(long)]
    pub model: Option<String>,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// f32, f16 or bf16 (computation dtype; the fused CPU kernel is f32).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// JSON Lines on stdout: one object per input.
    #[arg(long)]
    pub json: bool,
    /// Stop at the first input that fails instead of reporting it and going on.
    #[arg(long)]
    pub strict: bool,
    /// Say on stderr what was chosen (device, model folder).
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
enum RunTask {
    /// Classify texts as positive or negative.
    Sentiment {
        /// Texts to classify (one result line each).
        texts: Vec<String>,
        /// Read one text per line from PATH (`-` for stdin).
        #[arg(long, short)]
        file: Option<String>,
        /// Texts per forward pass (sorted by length first).
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Find people, organisations, locations and other names in raw text.
    Ner {
        /// Text file, one unit of text per line (`-` for stdin).
        file: Option<String>,
        /// Tag this one line instead of a file.
        #[arg(long)]
        text: Option<String>,
        /// Output format (--json is the same as --format json).
        #[arg(long, value_enum, default_value = "text")]
        format: cli::NerFormat,
        /// Sentences per forward pass (sorted by length first).
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Translate English to German (or French, `--to fr`): one line in, one line out (stdin by default).
    Translate {
        /// Target language: picks the shipped model `translate-en-LANG` (de or fr) when --model is not given.
        #[arg(long)]
        to: Option<String>,
        /// Read one sentence per line from PATH (`-` for stdin).
        #[arg(long, short)]
        file: Option<String>,
        /// Translate this text instead of reading lines.
        #[arg(long)]
        text: Option<String>,
        /// Beam width (1 = greedy); default from the model's config (5).
        #[arg(long)]
        beam: Option<usize>,
        /// Stop every output after at most this many tokens.
        #[arg(long)]
        max_len: Option<usize>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand, Debug)]
enum EvalTask {
    /// Accuracy on a GLUE-style TSV (sentence, label), on the text as given and turned back into natural text.
    Sentiment {
        /// TSV file with a header line: sentence<TAB>label.
        #[arg(long, default_value = "../shared/data/sst2/dev.tsv")]
        data: PathBuf,
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Entity F1 (overall and per type) and words/s on a CoNLL file.
    Ner {
        #[arg(long, default_value = "../shared/data/conll2003/valid.txt")]
        data: PathBuf,
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value = "auto")]
        device: String,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
    },
    /// BLEU (sacreBLEU 13a) of greedy and beam decoding, and sentences/s.
    Translate {
        #[arg(long, default_value = "../shared/data/multi30k/val.en")]
        src: PathBuf,
        /// References; default: ../shared/data/multi30k/val.LANG for the model's target language.
        #[arg(long = "ref")]
        reference: Option<PathBuf>,
        /// Target language (de or fr) when --model is not given.
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value = "auto")]
        device: String,
        /// Beam width; default from the model's config.
        #[arg(long)]
        beam: Option<usize>,
        /// Only the first N sentences.
        #[arg(long)]
        limit: Option<usize>,
    },
}

fn main() -> ExitCode {
    // Errors are one line for people; candle would otherwise attach a
    // backtrace to every error when RUST_BACKTRACE is set.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(RunTask::Sentiment {
            texts,
            file,
            batch_size,
            common,
        }) => cli::run_sentiment(&texts, file.as_deref(), batch_size, &common),
        Command::Run(RunTask::Ner {
            file,
            text,
            format,
            batch_size,
            common,
        }) => cli::run_ner(
            file.as_deref(),
            text.as_deref(),
            format,
            batch_size,
            &common,
        ),
        Command::Run(RunTask::Translate {
            to,
            file,
            text,
            beam,
            max_len,
            common,
        }) => cli::run_translate(
            to.as_deref(),
            file.as_deref(),
            text.as_deref(),
            beam,
            max_len,
            &common,
        ),
        Command::Eval(EvalTask::Sentiment {
            data,
            model,
            device,
        }) => cli::eval_sentiment(&data, model.as_deref(), &device),
        Command::Eval(EvalTask::Ner {
            data,
            model,
            device,
            batch_size,
        }) => cli::eval_ner(&data, model.as_deref(), &device, batch_size),
        Command::Eval(EvalTask::Translate {
            src,
            reference,
            to,
            model,
            device,
            beam,
            limit,
        }) => cli::eval_translate(
            &src,
            reference.as_deref(),
            to.as_deref(),
            model.as_deref(),
            &device,
            beam,
            limit,
        ),
        Command::Bench { iters } => cli::bench(iters),
        Command::Parity { paths } => cli::parity(&paths),
        Command::Devices => cli::devices(),
        Command::List => cli::list(),
        Command::Info { model } => cli::info(&model),
        Command::Inspect(a) => cli::inspect(&a),
        Command::Summary {
            model,
            batch,
            steps,
            json,
        } => cli::summary(&model, batch, steps, json),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::from(if cli::is_usage(&e) { 2 } else { 1 })
        }
    }
}
