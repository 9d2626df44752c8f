use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Time our recurrent layers against candle-nn's rnn module (same run, same weights).
    Bench {
        /// Forward passes per measurement (median reported).
        #[arg(long, default_value_t = 20)]
        iters: usize,
    },
    /// Check parity fixtures (safetensors files or folders of them) against our layers.
    Parity {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench { iters } => cli::bench(iters),
        Command::Parity { paths } => cli::parity(&paths),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::from(1)
        }
    }
}
