//! `zoo serve`: an HTTP inference server over the shared driver.
//!
//! Each model has a bounded queue and one worker thread: concurrent
//! requests are gathered into one batch (up to `max_batch` texts or
//! `max_wait`), run with [`crate::driver::run_texts`] off the async threads,
//! and answered one by one. Endpoints: the Open Inference Protocol (KServe
//! v2) and a plain JSON one per task whose bodies are the CLI's JSON Lines
//! records; `/metrics` in Prometheus text format.
//!
//! One file per job: [`runners`] loads models, [`queue`] batches requests
//! for them, [`metrics`] counts and logs, and the protocols ([`v1`],
//! [`v2_http`] with the [`binary`] tensor extension) are thin over the queue.

mod binary;
mod metrics;
mod queue;
mod runners;
mod v1;
mod v2;
mod v2_grpc;
mod v2_http;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use crate::model::ModelDir;
use metrics::Metrics;
use runners::Served;

/// Where a started server listens (port 0 picks a free one).
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    pub http: std::net::SocketAddr,
    pub grpc: Option<std::net::SocketAddr>,
}

/// How the server runs; `zoo serve`'s flags.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub host: String,
    pub port: u16,
    /// Texts per forward pass at most.
    pub max_batch: usize,
    /// How long the first request of a batch waits for others (0: a batch
    /// is what queued while the previous one ran).
    pub max_wait: Duration,
    /// Requests waiting per model at most; more get 429.
    pub queue: usize,
    /// Request body bytes at most (413 above).
    pub max_body_bytes: usize,
    /// Characters per text at most (413 above).
    pub max_text_chars: usize,
    /// Texts per request at most (413 above).
    pub max_texts: usize,
    /// A request not answered by then gets 504.
    pub timeout: Duration,
    pub log_json: bool,
    /// The gRPC port (Triton's 8001 by default; 0 picks a free one; `None`
    /// serves HTTP only).
    pub grpc_port: Option<u16>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            max_batch: 64,
            max_wait: Duration::ZERO,
            queue: 256,
            max_body_bytes: 1 << 20,
            max_text_chars: 20_000,
            max_texts: 1024,
            timeout: Duration::from_secs(30),
            log_json: false,
            grpc_port: Some(8001),
        }
    }
}

struct App {
    models: Vec<Served>,
    config: ServeConfig,
    metrics: Metrics,
    draining: AtomicBool,
    /// Request log lines: queued for a writer thread, dropped (and
    /// counted) when the queue is full, never waited for.
    log: tracing_appender::non_blocking::NonBlocking,
}

/// Log lines queued for stderr at most; past that they are dropped.
const LOG_QUEUE_LINES: usize = 2048;

impl App {
    fn model(&self, name: &str) -> Option<&Served> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The served model `name`, or a 404 naming it.
    fn served(&self, name: &str) -> Result<&Served, ApiError> {
        self.model(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no model `{name}` is served"),
            )
        })
    }
}

/// An error answer: a status and a JSON body naming the problem.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(json!({"error": self.message}))).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))
}

/// A body over the limit, or one axum could not read, as a JSON error.
async fn body_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        && resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"))
    {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        )
        .into_response();
    }
    resp
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no endpoint {}", uri.path()))
}

fn router(app: Arc<App>) -> Router {
    use v2_http as v2;
    Router::new()
        .route("/v2", get(v2::server_metadata))
        .route("/v2/health/live", get(v2::live))
        .route("/v2/health/ready", get(v2::ready))
        .route("/v2/repository/index", post(v2::repository_index))
        .route(
            "/v2/repository/models/{name}/{action}",
            post(v2::repository_load),
        )
        .route("/v2/models/{name}", get(v2::model_meta))
        .route("/v2/models/{name}/ready", get(v2::model_ready))
        .route("/v2/models/{name}/config", get(v2::model_config))
        .route("/v2/models/{name}/infer", post(v2::v2_infer))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(v2::model_meta_v),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(v2::model_ready_v),
        )
        .route(
            "/v2/models/{name}/versions/{version}/config",
            get(v2::model_config_v),
        )
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(v2::v2_infer_v),
        )
        .route("/v1/models/{spec}", post(v1::v1_predict))
        .route("/v1/{task}", post(v1::v1_task))
        .route("/metrics", get(metrics::metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(body_errors))
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::observe,
        ))
        .with_state(app)
}

/// Serves `dirs` until SIGTERM or Ctrl-C, then stops accepting, lets the
/// requests in flight finish, and returns. `on_listen` gets the bound
/// address (port 0 picks a free one).
pub fn run(
    dirs: Vec<ModelDir>,
    device: &candle_core::Device,
    config: ServeConfig,
    on_listen: impl FnOnce(Listening),
) -> Result<()> {
    let metrics = Metrics::new();
    let models = runners::load(dirs, device, &config, &metrics)?;
    // The guard flushes what is queued when the server stops.
    let (log, _log_guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("zoo-log")
        .finish(std::io::stderr());
    let app = Arc::new(App {
        models,
        metrics,
        draining: AtomicBool::new(false),
        config,
        log,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let bind = |port: u16, what: &'static str| {
            let addr = format!("{}:{port}", app.config.host);
            async move {
                tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
                    crate::error::usage(format!(
                        "cannot listen on {addr} ({what}): {e}; pick another port (0 picks a free one)"
                    ))
                })
            }
        };
        let http = bind(app.config.port, "HTTP").await?;
        let grpc = match app.config.grpc_port {
            Some(port) => Some(bind(port, "gRPC, --grpc-port").await?),
            None => None,
        };
        on_listen(Listening {
            http: http.local_addr()?,
            grpc: grpc.as_ref().map(|g| g.local_addr()).transpose()?,
        });
        // One signal stops both: stop accepting, finish what is in flight.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let drain = Arc::clone(&app);
        tokio::spawn(async move {
            shutdown_signal().await;
            drain.draining.store(true, Ordering::SeqCst);
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|&s| s).await;
        };
        let grpc_task = grpc.map(|listener| {
            let service = v2_grpc::service(Arc::clone(&app));
            let rx = stop_rx.clone();
            tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(listener),
                        stopped(rx),
                    )
                    .await
            })
        });
        axum::serve(http, router(Arc::clone(&app)))
            .with_graceful_shutdown(stopped(stop_rx))
            .await
            .context("the HTTP server failed")?;
        if let Some(t) = grpc_task {
            t.await
                .context("the gRPC server stopped")?
                .context("the gRPC server failed")?;
        }
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
