use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod cli;

use zoo::tasks::text_graph::TextTask;

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
    Bench(cli::BenchArgs),
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
    /// Serve models over HTTP: KServe v2 and plain JSON endpoints, batching across requests.
    Serve(cli::ServeArgs),
    /// Download catalogue models from their Hub repos into the user data folder.
    Pull {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Look inside a memory cell: h, c and gates per token and unit, as a heatmap, JSON or CSV.
    Inspect(cli::InspectArgs),
    /// What each unit holds over a whole text: every unit against named features (quotes, brackets, line position, …).
    Probe(cli::ProbeArgs),
    /// Run a graph model (a zoo folder, Hub repo id, or a .keras file) on tensors.
    Predict(cli::PredictArgs),
    /// Feed a graph model sequences in chunks: JSON Lines {"id": …, "x": [steps…]} in, each chunk's outputs out, the recurrent state kept per id.
    Stream(cli::StreamArgs),
    /// Turn a Keras .keras file, or a PyTorch state_dict with a graph file, into a zoo model folder.
    Import(cli::ImportArgs),
    /// Keras-style table of a model's layers: shapes, states, parameters and their formulas.
    Summary {
        /// Catalogue name, model folder, Hub repo id, or a Keras .keras file.
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
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Model: a catalogue name (see `zoo list`), a model folder, or a Hub repo id owner/name[@revision].
    #[arg(long)]
    pub model: Option<String>,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// f32, f16, bf16 (weights and computation in that dtype; the fused
    /// CPU kernel is f32), or int8 (recurrent weights in int8, CPU only).
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

/// `zoo run sentiment`, `classify` and `tag` take the same options.
#[derive(Args, Debug)]
pub struct TextRun {
    #[command(flatten)]
    inputs: cli::Inputs,
    /// Texts per forward pass (sorted by length first).
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    #[command(flatten)]
    common: Common,
}

/// Every task reads texts the same way: arguments, `--text`, `--file PATH`
/// (`-` = stdin), or stdin when none is given; one result per input, in order.
#[derive(Subcommand, Debug)]
enum RunTask {
    /// Classify texts as positive or negative.
    Sentiment(TextRun),
    /// Find people, organisations, locations and other names in raw text.
    Ner {
        #[command(flatten)]
        inputs: cli::Inputs,
        /// Output format (--json is the same as --format json).
        #[arg(long, value_enum, default_value = "text")]
        format: cli::NerFormat,
        /// Sentences per forward pass (sorted by length first).
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Label texts with an imported graph model (many-to-one): `--model DIR` from `zoo import --tokenizer --labels`.
    Classify(TextRun),
    /// Label every token with an imported graph model (many-to-many).
    Tag(TextRun),
    /// Write on from a prompt with a character language model (char-lstm), character by character.
    Generate {
        #[command(flatten)]
        inputs: cli::Inputs,
        #[command(flatten)]
        sampling: cli::GenerateArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Translate English to German (or French, `--to fr`): one line in, one line out.
    ///
    /// A line mostly of words the model never read in training (another
    /// language, say) gets an empty output line and a note on stderr;
    /// `--json` gives the translation anyway, with `oov` and `unseen`.
    Translate {
        #[command(flatten)]
        inputs: cli::Inputs,
        /// Target language: picks the shipped model `translate-en-LANG` (de or fr) when --model is not given.
        #[arg(long)]
        to: Option<String>,
        /// Beam width (1 = greedy, at most 64); default from the model's config (5).
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
        /// TSV file with a header line: sentence<TAB>label [default: sst2/dev.tsv in the data folder].
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        on: cli::EvalOn,
    },
    /// Entity F1 (overall and per type) and words/s on a CoNLL file.
    Ner {
        /// CoNLL file [default: conll2003/valid.txt in the data folder].
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        on: cli::EvalOn,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// Score the same sentences with every word lower-cased or upper-cased.
        #[arg(long, value_enum, default_value = "as-written")]
        casing: cli::Casing,
        /// Score only these types (others count as O on both sides), e.g.
        /// PER,ORG,LOC for sets that tag no MISC (WikiANN, WNUT-17's
        /// person/location/corporation/group as CoNLL's).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
    },
    /// Bits per character of a text with a character language model.
    Lm {
        /// UTF-8 text [default: gutenberg/valid.txt in the data folder].
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        on: cli::EvalOn,
        /// The text is scored as this many parallel slices, each from a zero state.
        #[arg(long, default_value_t = 16)]
        streams: usize,
    },
    /// BLEU (sacreBLEU 13a) and chrF of greedy and beam decoding, and sentences/s.
    Translate {
        /// Source sentences [default: multi30k/val.en in the data folder].
        #[arg(long)]
        src: Option<PathBuf>,
        /// References [default: val.LANG beside the source, LANG the model's target language].
        #[arg(long = "ref")]
        reference: Option<PathBuf>,
        /// Target language (de or fr) when --model is not given.
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        on: cli::EvalOn,
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
        Command::Run(RunTask::Sentiment(r)) => {
            cli::run_sentiment(&r.inputs, r.batch_size, &r.common)
        }
        Command::Run(RunTask::Ner {
            inputs,
            format,
            batch_size,
            common,
        }) => cli::run_ner(&inputs, format, batch_size, &common),
        Command::Run(RunTask::Classify(r)) => {
            cli::run_text(TextTask::Classify, &r.inputs, r.batch_size, &r.common)
        }
        Command::Run(RunTask::Tag(r)) => {
            cli::run_text(TextTask::Tag, &r.inputs, r.batch_size, &r.common)
        }
        Command::Run(RunTask::Translate {
            inputs,
            to,
            beam,
            max_len,
            common,
        }) => cli::run_translate(to.as_deref(), &inputs, beam, max_len, &common),
        Command::Run(RunTask::Generate {
            inputs,
            sampling,
            common,
        }) => cli::run_generate(&inputs, &sampling, &common),
        Command::Eval(EvalTask::Lm {
            data,
            model,
            on,
            streams,
        }) => cli::eval_lm(data, model.as_deref(), &on, streams),
        Command::Eval(EvalTask::Sentiment { data, model, on }) => {
            cli::eval_sentiment(data, model.as_deref(), &on)
        }
        Command::Eval(EvalTask::Ner {
            data,
            model,
            on,
            batch_size,
            casing,
            types,
        }) => cli::eval_ner(data, model.as_deref(), &on, batch_size, casing, &types),
        Command::Eval(EvalTask::Translate {
            src,
            reference,
            to,
            model,
            on,
            beam,
            limit,
        }) => cli::eval_translate(
            src,
            reference.as_deref(),
            to.as_deref(),
            model.as_deref(),
            &on,
            beam,
            limit,
        ),
        Command::Bench(a) => cli::bench(&a),
        Command::Parity { paths } => cli::parity(&paths),
        Command::Devices => cli::devices(),
        Command::List => cli::list(),
        Command::Info { model } => cli::info(&model),
        Command::Pull { names } => cli::pull(&names),
        Command::Serve(a) => cli::serve(&a),
        Command::Inspect(a) => cli::inspect(&a),
        Command::Probe(a) => cli::probe(&a),
        Command::Predict(a) => cli::predict(&a),
        Command::Stream(a) => cli::stream(&a),
        Command::Import(a) => cli::import(&a),
        Command::Summary {
            model,
            batch,
            steps,
            json,
        } => cli::summary(&model, batch, steps, json),
    };
    match result {
        Ok(code) => code,
        // `zoo … | head`: the reader has what it wanted.
        Err(e) if zoo::error::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::from(match zoo::error::Kind::of(&e) {
                zoo::error::Kind::Usage => 2,
                _ => 1,
            })
        }
    }
}
