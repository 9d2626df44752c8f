//! `zoo serve`: flags, model loading, and the address line on stdout.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use zoo::serve::ServeConfig;

use super::{resolve_model, usage};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Models to serve (catalogue names, folders or Hub repo ids); repeatable.
    /// Default: every task's default model.
    #[arg(long = "model", value_name = "NAME_OR_DIR")]
    pub models: Vec<String>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// 0 picks a free port (printed on stdout).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The gRPC port (KServe v2 / Triton's GRPCInferenceService); 0 picks
    /// a free one (printed on stdout).
    #[arg(long, default_value_t = 8001, conflicts_with = "no_grpc")]
    pub grpc_port: u16,
    /// Serve HTTP only.
    #[arg(long)]
    pub no_grpc: bool,
    /// Texts per forward pass at most.
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    /// How long a request waits for others to share its batch; with 0, a
    /// batch is whatever queued while the previous one ran.
    #[arg(long, default_value_t = 0)]
    pub max_wait_ms: u64,
    /// Requests waiting per model before 429.
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// Request body size limit (413 above).
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Characters per text at most (413 above).
    #[arg(long, default_value_t = 20_000)]
    pub max_text_chars: usize,
    /// Texts per request at most (413 above).
    #[arg(long, default_value_t = 1024)]
    pub max_texts: usize,
    /// Per-request time limit (504 after it).
    #[arg(long, default_value_t = 30_000)]
    pub timeout_ms: u64,
    /// Request log lines on stderr: text or json.
    #[arg(long, default_value = "text")]
    pub log_format: String,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

pub fn serve(a: &ServeArgs) -> Result<ExitCode> {
    let log_json = match a.log_format.as_str() {
        "json" => true,
        "text" => false,
        other => {
            return Err(usage(format!(
                "unknown --log-format `{other}`: text or json"
            )))
        }
    };
    if a.max_batch == 0 || a.queue == 0 || a.max_texts == 0 {
        return Err(usage(
            "--max-batch, --queue and --max-texts must be at least 1",
        ));
    }
    let specs: Vec<String> = if a.models.is_empty() {
        zoo::catalog::TaskKind::ALL
            .iter()
            .filter_map(|t| t.default_model().map(str::to_string))
            .collect()
    } else {
        a.models.clone()
    };
    let dirs = specs
        .iter()
        .map(|s| resolve_model(Some(s), None, false))
        .collect::<Result<Vec<_>>>()?;
    let device = zoo::device::select(&a.device)?;
    let config = ServeConfig {
        host: a.host.clone(),
        port: a.port,
        max_batch: a.max_batch,
        max_wait: Duration::from_millis(a.max_wait_ms),
        queue: a.queue,
        max_body_bytes: a.max_body_bytes,
        max_text_chars: a.max_text_chars,
        max_texts: a.max_texts,
        timeout: Duration::from_millis(a.timeout_ms),
        log_json,
        grpc_port: (!a.no_grpc).then_some(a.grpc_port),
    };
    let names: Vec<String> = dirs.iter().map(|d| d.header.name.clone()).collect();
    zoo::serve::run(dirs, &device, config, |at| {
        // The first stdout lines say where to connect (port 0 picks one).
        let mut out = std::io::stdout();
        let _ = writeln!(out, "listening on http://{}", at.http);
        if let Some(grpc) = at.grpc {
            let _ = writeln!(out, "listening on grpc://{grpc}");
        }
        let _ = out.flush();
        eprintln!("zoo: serving {}", names.join(", "));
    })?;
    Ok(ExitCode::SUCCESS)
}
