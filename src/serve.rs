//! `zoo serve`: an HTTP inference server over the shared driver.
//!
//! Each model has a bounded queue and one worker thread: concurrent
//! requests are gathered into one batch (up to `max_batch` texts or
//! `max_wait`), run with [`crate::driver::run_texts`] off the async threads,
//! and answered one by one. Endpoints: the Open Inference Protocol (KServe
//! v2) and a plain JSON one per task whose bodies are the CLI's JSON Lines
//! records; `/metrics` in Prometheus text format.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde_json::{json, Map, Value};

use crate::driver::{record_json, run_texts, Batching, Outcome, Record, Task};
use crate::model::{ModelDir, TaskKind};
use crate::tasks::text_graph::{TextGraph, TextTask};
use crate::tasks::{ner::NerModel, sentiment::SentimentModel, translate};

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
        }
    }
}

/// A model as the server runs it: texts in, one JSON outcome each.
trait Runner: Send + Sync {
    fn run(&self, texts: &[&str], batching: Batching) -> Vec<Outcome<Value>>;
}

fn to_json<T: Task>(task: &T, texts: &[&str], batching: Batching) -> Vec<Outcome<Value>> {
    run_texts(task, texts, batching)
        .into_iter()
        .map(|o| match o {
            Outcome::Done(v) => match serde_json::to_value(v) {
                Ok(v) => Outcome::Done(v),
                Err(e) => Outcome::Failed(format!("cannot serialise the result: {e}")),
            },
            Outcome::Empty => Outcome::Empty,
            Outcome::Failed(e) => Outcome::Failed(e),
        })
        .collect()
}

impl Runner for SentimentModel {
    fn run(&self, texts: &[&str], b: Batching) -> Vec<Outcome<Value>> {
        to_json(self, texts, b)
    }
}

impl Runner for TextGraph {
    fn run(&self, texts: &[&str], b: Batching) -> Vec<Outcome<Value>> {
        to_json(self, texts, b)
    }
}

impl Runner for NerModel {
    fn run(&self, texts: &[&str], b: Batching) -> Vec<Outcome<Value>> {
        to_json(self, texts, b)
    }
}

struct TranslateRunner {
    model: translate::Translator,
    beam: usize,
}

impl Runner for TranslateRunner {
    fn run(&self, texts: &[&str], b: Batching) -> Vec<Outcome<Value>> {
        let task = translate::Decoding {
            model: &self.model,
            beam: self.beam,
        };
        to_json(&task, texts, b)
    }
}

/// One request's texts waiting for the worker.
struct Job {
    texts: Vec<String>,
    reply: tokio::sync::oneshot::Sender<Vec<Outcome<Value>>>,
}

/// A loaded model, its queue and what the KServe metadata says of it.
struct Served {
    name: String,
    task: TaskKind,
    /// An imported graph model that labels every token (else one label a text).
    tags: bool,
    labels: Vec<String>,
    queue: SyncSender<Job>,
    waiting: Arc<AtomicUsize>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReqLabels {
    model: String,
    endpoint: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    requests: Family<ReqLabels, Counter>,
    latency: HistFamily<ModelLabel>,
    batch: HistFamily<ModelLabel>,
    queue: Family<ModelLabel, Gauge>,
    log_dropped: Gauge,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = <Registry>::default();
        let requests = Family::<ReqLabels, Counter>::default();
        let latency: HistFamily<ModelLabel> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16)));
        let batch: HistFamily<ModelLabel> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(1.0, 2.0, 10)));
        let queue = Family::<ModelLabel, Gauge>::default();
        registry.register(
            "zoo_requests",
            "Requests by model, endpoint and HTTP status",
            requests.clone(),
        );
        registry.register(
            "zoo_request_duration_seconds",
            "Time from receiving a request to answering it",
            latency.clone(),
        );
        registry.register("zoo_batch_size", "Texts per forward pass", batch.clone());
        registry.register(
            "zoo_queue_depth",
            "Requests waiting for a model's worker",
            queue.clone(),
        );
        let log_dropped = Gauge::default();
        registry.register(
            "zoo_log_lines_dropped",
            "Request log lines dropped because stderr's reader fell behind (never waited for)",
            log_dropped.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            batch,
            queue,
            log_dropped,
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

/// Loads every model and starts its worker.
fn load(
    dirs: Vec<ModelDir>,
    device: &candle_core::Device,
    config: &ServeConfig,
    metrics: &Metrics,
) -> Result<Vec<Served>> {
    let mut out = Vec::new();
    for dir in dirs {
        let name = dir.header.name.clone();
        if out.iter().any(|s: &Served| s.name == name) {
            anyhow::bail!("model `{name}` is named twice");
        }
        let mut tags = false;
        let (runner, labels): (Box<dyn Runner>, Vec<String>) = match dir.header.task {
            // An imported text model, served as `zoo run classify/tag` runs it.
            TaskKind::Graph => {
                let m = TextGraph::load_any(&dir, device)
                    .with_context(|| format!("model `{name}` cannot be served"))?;
                tags = m.task() == TextTask::Tag;
                let labels = m.labels().to_vec();
                (Box::new(m), labels)
            }
            TaskKind::Sentiment => {
                let m = SentimentModel::load(&dir, device, candle_core::DType::F32)?;
                let labels = m.config.labels.clone();
                (Box::new(m), labels)
            }
            TaskKind::Ner => {
                let m = NerModel::load(&dir, device, candle_core::DType::F32)?;
                let labels = m.config.tags.clone();
                (Box::new(m), labels)
            }
            TaskKind::Translate => {
                let m = translate::Translator::load(&dir, device, candle_core::DType::F32)?;
                let beam = m.config.beam_size;
                (Box::new(TranslateRunner { model: m, beam }), Vec::new())
            }
            TaskKind::Generate => anyhow::bail!(
                "model `{name}` is a character language model: zoo serve does not serve generation; use `zoo run generate`"
            ),
        };
        let (tx, rx) = sync_channel(config.queue.max(1));
        let waiting = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            runner,
            rx,
            waiting: Arc::clone(&waiting),
            max_batch: config.max_batch.max(1),
            max_wait: config.max_wait,
            batch_hist: metrics
                .batch
                .get_or_create(&ModelLabel {
                    model: name.clone(),
                })
                .clone(),
            queue_gauge: metrics
                .queue
                .get_or_create(&ModelLabel {
                    model: name.clone(),
                })
                .clone(),
        };
        std::thread::Builder::new()
            .name(format!("zoo-{name}"))
            .spawn(move || worker.run())
            .context("cannot start a worker thread")?;
        out.push(Served {
            name,
            task: dir.header.task,
            tags,
            labels,
            queue: tx,
            waiting,
        });
    }
    Ok(out)
}

struct Worker {
    runner: Box<dyn Runner>,
    rx: Receiver<Job>,
    waiting: Arc<AtomicUsize>,
    max_batch: usize,
    max_wait: Duration,
    batch_hist: Histogram,
    queue_gauge: Gauge,
}

impl Worker {
    /// Gathers requests into batches and answers them until the server
    /// drops the queue.
    fn run(self) {
        while let Ok(first) = self.rx.recv() {
            let mut jobs = vec![first];
            let mut n = jobs[0].texts.len();
            // What queued while the last batch ran joins this one at no
            // cost; waiting longer for company (max_wait) is optional.
            while n < self.max_batch {
                match self.rx.try_recv() {
                    Ok(j) => {
                        n += j.texts.len();
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
            let deadline = Instant::now() + self.max_wait;
            while n < self.max_batch && !self.max_wait.is_zero() {
                let left = deadline.saturating_duration_since(Instant::now());
                match self.rx.recv_timeout(left) {
                    Ok(j) => {
                        n += j.texts.len();
                        jobs.push(j);
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            self.waiting.fetch_sub(jobs.len(), Ordering::SeqCst);
            self.queue_gauge
                .set(self.waiting.load(Ordering::SeqCst) as i64);
            // A client that went away costs nothing further.
            jobs.retain(|j| !j.reply.is_closed());
            if jobs.is_empty() {
                continue;
            }
            let texts: Vec<&str> = jobs
                .iter()
                .flat_map(|j| j.texts.iter().map(String::as_str))
                .collect();
            self.batch_hist.observe(texts.len() as f64);
            let mut outcomes = self
                .runner
                .run(&texts, Batching::items(self.max_batch))
                .into_iter();
            for j in jobs {
                let mine: Vec<Outcome<Value>> = outcomes.by_ref().take(j.texts.len()).collect();
                let _ = j.reply.send(mine);
            }
        }
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

/// Queues `texts` for `model` and waits for the answers.
async fn infer(
    app: &App,
    model: &Served,
    texts: Vec<String>,
) -> Result<Vec<Outcome<Value>>, ApiError> {
    if app.draining.load(Ordering::SeqCst) {
        return Err(ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            )
        });
    }
    let c = &app.config;
    if texts.len() > c.max_texts {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} texts in one request; at most {}",
                texts.len(),
                c.max_texts
            ),
        ));
    }
    if let Some((i, t)) = texts
        .iter()
        .enumerate()
        .find(|(_, t)| t.chars().count() > c.max_text_chars)
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "text {} has {} characters; at most {}",
                i + 1,
                t.chars().count(),
                c.max_text_chars
            ),
        ));
    }
    let n = texts.len();
    let (tx, rx) = tokio::sync::oneshot::channel();
    model.waiting.fetch_add(1, Ordering::SeqCst);
    match model.queue.try_send(Job { texts, reply: tx }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
            model.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError {
                retry_after: Some(1),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("model `{}` has a full queue; retry shortly", model.name),
                )
            });
        }
    }
    app.metrics
        .queue
        .get_or_create(&ModelLabel {
            model: model.name.clone(),
        })
        .set(model.waiting.load(Ordering::SeqCst) as i64);
    match tokio::time::timeout(c.timeout, rx).await {
        Ok(Ok(out)) if out.len() == n => Ok(out),
        Ok(_) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the model's worker stopped",
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!("no answer within {} ms", c.timeout.as_millis()),
        )),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON: {e}")))
}

/// The texts of a `/v1` body: `{"text": …}`, `{"texts": […]}`, or JSON Lines
/// of `{"text": …}` objects. Returns them and whether the answer is JSON
/// Lines (several objects) or one object.
fn v1_texts(body: &[u8]) -> Result<(Vec<String>, bool), ApiError> {
    let text_of = |v: &Value| -> Result<String, ApiError> {
        v.get("text")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "each object needs a string field `text`",
                )
            })
    };
    let body = std::str::from_utf8(body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the body is not UTF-8"))?;
    let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() > 1 {
        let texts = lines
            .iter()
            .map(|l| text_of(&parse_json(l.as_bytes())?))
            .collect::<Result<_, _>>()?;
        return Ok((texts, true));
    }
    let v = parse_json(body.as_bytes())?;
    if let Some(arr) = v.get("texts") {
        let texts = arr
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|t| t.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, "`texts` must be a list of strings")
            })?;
        return Ok((texts, true));
    }
    Ok((vec![text_of(&v)?], false))
}

/// The CLI's JSON Lines records for `texts`.
fn records(texts: &[String], outcomes: Vec<Outcome<Value>>) -> Vec<Value> {
    texts
        .iter()
        .zip(outcomes)
        .enumerate()
        .map(|(i, (t, o))| {
            record_json(&Record {
                line: i + 1,
                text: t,
                outcome: o,
            })
        })
        .collect()
}

fn v1_response(recs: Vec<Value>, lines: bool) -> Response {
    if !lines {
        return axum::Json(recs.into_iter().next().unwrap_or(Value::Null)).into_response();
    }
    let mut body = String::new();
    for r in recs {
        body.push_str(&r.to_string());
        body.push('\n');
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

async fn v1_task(
    State(app): State<Arc<App>>,
    Path(task): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = TaskKind::ALL
        .into_iter()
        .find(|k| k.as_str() == task)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no task `{task}`: sentiment, ner or translate"),
            )
        })?;
    let model = match q.get("model") {
        Some(name) => app.served(name)?,
        None => app.models.iter().find(|m| m.task == kind).ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("no {kind} model is served"))
        })?,
    };
    if model.task != kind {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "model `{}` is a {} model, not {kind}",
                model.name, model.task
            ),
        ));
    }
    let (texts, lines) = v1_texts(&body)?;
    let out = infer(&app, model, texts.clone()).await?;
    Ok(v1_response(records(&texts, out), lines))
}

async fn v1_predict(
    State(app): State<Arc<App>>,
    Path(spec): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let name = spec
        .strip_suffix(":predict")
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "use POST /v1/models/NAME:predict"))?;
    let model = app.served(name)?;
    let (texts, lines) = v1_texts(&body)?;
    let out = infer(&app, model, texts.clone()).await?;
    Ok(v1_response(records(&texts, out), lines))
}

async fn live() -> impl IntoResponse {
    axum::Json(json!({"live": true}))
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.draining.load(Ordering::SeqCst) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ready": false})),
        )
            .into_response()
    } else {
        axum::Json(json!({"ready": true})).into_response()
    }
}

/// KServe v2 model metadata: inputs and outputs as named tensors.
fn metadata(m: &Served) -> Value {
    let t = |name: &str, datatype: &str, shape: Value| json!({"name": name, "datatype": datatype, "shape": shape});
    let outputs = match m.task {
        TaskKind::Sentiment => vec![
            t("label", "BYTES", json!([-1])),
            t("score", "FP32", json!([-1])),
            t("probs", "FP32", json!([-1, m.labels.len()])),
        ],
        TaskKind::Ner => vec![t("entities", "BYTES", json!([-1]))],
        TaskKind::Translate => vec![
            t("translation", "BYTES", json!([-1])),
            t("score", "FP32", json!([-1])),
        ],
        TaskKind::Graph if m.tags => vec![t("tokens", "BYTES", json!([-1]))],
        TaskKind::Graph => vec![
            t("label", "BYTES", json!([-1])),
            t("score", "FP32", json!([-1])),
            t("scores", "FP32", json!([-1, m.labels.len()])),
        ],
        // Never served (refused at load).
        TaskKind::Generate => Vec::new(),
    };
    json!({
        "name": m.name,
        "versions": ["1"],
        "platform": format!("zoo-{}", m.task),
        "inputs": [t("text", "BYTES", json!([-1]))],
        "outputs": outputs,
        "parameters": {"labels": m.labels},
    })
}

async fn model_meta(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let m = app.served(&name)?;
    Ok(axum::Json(metadata(m)).into_response())
}

async fn model_ready(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    app.served(&name)?;
    Ok(
        axum::Json(json!({"name": name, "ready": !app.draining.load(Ordering::SeqCst)}))
            .into_response(),
    )
}

/// The texts of a KServe v2 infer request: one BYTES input whose shape
/// matches its data.
fn v2_texts(v: &Value) -> Result<(Vec<String>, Option<Value>), ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let inputs = v
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the request needs `inputs`, a list of tensors".into()))?;
    let [input] = inputs.as_slice() else {
        return Err(bad(format!(
            "{} inputs given; this model takes one, `text`",
            inputs.len()
        )));
    };
    let name = input.get("name").and_then(Value::as_str).unwrap_or("");
    if name != "text" {
        return Err(bad(format!(
            "unknown input `{name}`: this model takes `text`"
        )));
    }
    let dt = input.get("datatype").and_then(Value::as_str).unwrap_or("");
    if dt != "BYTES" {
        return Err(bad(format!(
            "input `text` has datatype {dt:?}; expected BYTES"
        )));
    }
    let shape: Vec<u64> = input
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|s| s.iter().map(Value::as_u64).collect())
        .ok_or_else(|| bad("input `text` needs `shape`, a list of sizes".into()))?;
    let data = input
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("input `text` needs `data`".into()))?;
    // Triton clients may nest the strings by shape; take them flat.
    let mut texts = Vec::new();
    fn flat(v: &Value, out: &mut Vec<String>) -> bool {
        match v {
            Value::String(s) => {
                out.push(s.clone());
                true
            }
            Value::Array(a) => a.iter().all(|x| flat(x, out)),
            _ => false,
        }
    }
    if !data.iter().all(|d| flat(d, &mut texts)) {
        return Err(bad("input `text` data must be strings".into()));
    }
    let want: u64 = shape.iter().product();
    if shape.len() > 2 || (shape.len() == 2 && shape[1] != 1) || want != texts.len() as u64 {
        return Err(bad(format!(
            "input `text` has shape {shape:?} but {} strings: expected shape [{}] (or [{}, 1])",
            texts.len(),
            texts.len(),
            texts.len()
        )));
    }
    Ok((texts, v.get("id").cloned()))
}

fn v2_outputs(m: &Served, outcomes: &[Outcome<Value>]) -> Result<Vec<Value>, ApiError> {
    let n = outcomes.len();
    if let Some((i, e)) = outcomes.iter().enumerate().find_map(|(i, o)| match o {
        Outcome::Failed(e) => Some((i, e)),
        _ => None,
    }) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("text {}: {e}", i + 1),
        ));
    }
    let field = |o: &Outcome<Value>, k: &str| match o {
        Outcome::Done(v) => v.get(k).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let tensor = |name: &str, dt: &str, shape: Value, data: Vec<Value>| json!({"name": name, "datatype": dt, "shape": shape, "data": data});
    // One field of every outcome, `empty` where a text had none.
    let column = |k: &str, empty: Value| -> Vec<Value> {
        outcomes
            .iter()
            .map(|o| match field(o, k) {
                Value::Null => empty.clone(),
                v => v,
            })
            .collect()
    };
    Ok(match m.task {
        TaskKind::Sentiment => {
            let labels = column("label", json!(""));
            let scores = column("score", Value::Null);
            let probs: Vec<Value> = outcomes
                .iter()
                .flat_map(|o| {
                    let p = field(o, "probs");
                    m.labels
                        .iter()
                        .map(|l| p.get(l).cloned().unwrap_or(Value::Null))
                        .collect::<Vec<_>>()
                })
                .collect();
            vec![
                tensor("label", "BYTES", json!([n]), labels),
                tensor("score", "FP32", json!([n]), scores),
                tensor("probs", "FP32", json!([n, m.labels.len()]), probs),
            ]
        }
        TaskKind::Ner => {
            // One JSON string per text, as BYTES tensors carry it.
            let ents: Vec<Value> = column("entities", json!([]))
                .into_iter()
                .map(|e| json!(e.to_string()))
                .collect();
            vec![tensor("entities", "BYTES", json!([n]), ents)]
        }
        TaskKind::Translate => {
            let tr = column("translation", json!(""));
            let sc = column("score", Value::Null);
            vec![
                tensor("translation", "BYTES", json!([n]), tr),
                tensor("score", "FP32", json!([n]), sc),
            ]
        }
        TaskKind::Graph if m.tags => {
            // Each text's tokens with their labels, one JSON string per text.
            let toks: Vec<Value> = column("tokens", json!([]))
                .into_iter()
                .map(|t| json!(t.to_string()))
                .collect();
            vec![tensor("tokens", "BYTES", json!([n]), toks)]
        }
        TaskKind::Graph => {
            let width = m.labels.len();
            let scores: Vec<Value> = outcomes
                .iter()
                .flat_map(|o| {
                    let s = field(o, "scores");
                    (0..width)
                        .map(|i| s.get(i).cloned().unwrap_or(Value::Null))
                        .collect::<Vec<_>>()
                })
                .collect();
            vec![
                tensor("label", "BYTES", json!([n]), column("label", json!(""))),
                tensor("score", "FP32", json!([n]), column("score", Value::Null)),
                tensor("scores", "FP32", json!([n, width]), scores),
            ]
        }
        TaskKind::Generate => Vec::new(),
    })
}

async fn v2_infer(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let m = app.served(&name)?;
    let (texts, id) = v2_texts(&parse_json(&body)?)?;
    let out = infer(&app, m, texts).await?;
    let mut resp = Map::new();
    resp.insert("model_name".into(), json!(m.name));
    resp.insert("model_version".into(), json!("1"));
    if let Some(id) = id {
        resp.insert("id".into(), id);
    }
    resp.insert("outputs".into(), json!(v2_outputs(m, &out)?));
    Ok(axum::Json(Value::Object(resp)).into_response())
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let dropped = app.log.error_counter().dropped_lines();
    app.metrics.log_dropped.set(dropped as i64);
    let mut s = String::new();
    match prometheus_client::encoding::text::encode(&mut s, &app.metrics.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            s,
        )
            .into_response(),
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The model a request path names, for metrics and logs.
fn model_of(app: &App, uri: &Uri) -> String {
    let p = uri.path();
    let named = p
        .strip_prefix("/v2/models/")
        .or_else(|| p.strip_prefix("/v1/models/"))
        .map(|r| r.split(['/', ':']).next().unwrap_or("").to_string());
    if let Some(n) = named {
        return n;
    }
    if let Some(task) = p.strip_prefix("/v1/") {
        if let Some(q) = uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("model=")))
        {
            return q.to_string();
        }
        if let Some(m) = app.models.iter().find(|m| m.task.as_str() == task) {
            return m.name.clone();
        }
    }
    String::new()
}

/// The route a path took, with the model name replaced: `/v2/models/{name}/infer`.
fn endpoint_of(path: &str) -> String {
    for prefix in ["/v2/models/", "/v1/models/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find(['/', ':']).map_or("", |i| &rest[i..]);
            return format!("{prefix}{{name}}{tail}");
        }
    }
    // Anything else by name only if it is a route: paths are unbounded.
    const ROUTES: [&str; 6] = [
        "/v2/health/live",
        "/v2/health/ready",
        "/v1/sentiment",
        "/v1/ner",
        "/v1/translate",
        "/metrics",
    ];
    if ROUTES.contains(&path) {
        path.to_string()
    } else {
        "other".into()
    }
}

/// Counts, times and logs every request (one line each).
async fn observe(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let t0 = Instant::now();
    let method: Method = req.method().clone();
    let uri = req.uri().clone();
    let model = model_of(&app, &uri);
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let secs = t0.elapsed().as_secs_f64();
    let endpoint = endpoint_of(uri.path());
    if uri.path() != "/metrics" {
        app.metrics
            .requests
            .get_or_create(&ReqLabels {
                model: model.clone(),
                endpoint,
                status,
            })
            .inc();
        if !model.is_empty() && status < 400 {
            app.metrics
                .latency
                .get_or_create(&ModelLabel {
                    model: model.clone(),
                })
                .observe(secs);
        }
    }
    let line = if app.config.log_json {
        json!({"method": method.as_str(), "path": uri.path(), "model": model, "status": status, "ms": (secs * 1e3 * 100.0).round() / 100.0}).to_string()
    } else {
        format!("{method} {} {status} {:.1} ms", uri.path(), secs * 1e3)
    };
    // Never blocks: a full queue drops the line and counts it.
    let _ = app.log.clone().write_all(format!("{line}\n").as_bytes());
    resp
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
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(model_meta))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route("/v2/models/{name}/infer", post(v2_infer))
        .route("/v1/models/{spec}", post(v1_predict))
        .route("/v1/{task}", post(v1_task))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(body_errors))
        .layer(DefaultBodyLimit::max(app.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

/// Serves `dirs` until SIGTERM or Ctrl-C, then stops accepting, lets the
/// requests in flight finish, and returns. `on_listen` gets the bound
/// address (port 0 picks a free one).
pub fn run(
    dirs: Vec<ModelDir>,
    device: &candle_core::Device,
    config: ServeConfig,
    on_listen: impl FnOnce(std::net::SocketAddr),
) -> Result<()> {
    let metrics = Metrics::new();
    let models = load(dirs, device, &config, &metrics)?;
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
        let addr = format!("{}:{}", app.config.host, app.config.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| crate::error::usage(format!("cannot listen on {addr}: {e}")))?;
        on_listen(listener.local_addr()?);
        let drain = Arc::clone(&app);
        axum::serve(listener, router(Arc::clone(&app)))
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                drain.draining.store(true, Ordering::SeqCst);
            })
            .await
            .context("the server failed")?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_name_routes_not_models() {
        assert_eq!(
            endpoint_of("/v2/models/sentiment-lstm/infer"),
            "/v2/models/{name}/infer"
        );
        assert_eq!(
            endpoint_of("/v1/models/m:predict"),
            "/v1/models/{name}:predict"
        );
        assert_eq!(endpoint_of("/v1/ner"), "/v1/ner");
    }

    #[test]
    fn v2_requests_must_match_their_shape() {
        let ok = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]});
        assert_eq!(v2_texts(&ok).unwrap().0, ["a", "b"]);
        let nested = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2, 1], "data": [["a"], ["b"]]}]});
        assert_eq!(v2_texts(&nested).unwrap().0, ["a", "b"]);
        let bad = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3], "data": ["a", "b"]}]});
        let e = v2_texts(&bad).err().unwrap();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.contains("shape [3] but 2 strings"),
            "{}",
            e.message
        );
        let fp =
            json!({"inputs": [{"name": "text", "datatype": "FP32", "shape": [1], "data": [1.0]}]});
        assert!(v2_texts(&fp)
            .err()
            .unwrap()
            .message
            .contains("expected BYTES"));
    }

    #[test]
    fn v1_bodies_are_one_object_a_list_or_json_lines() {
        assert_eq!(
            v1_texts(br#"{"text": "hi"}"#).unwrap(),
            (vec!["hi".to_string()], false)
        );
        assert_eq!(
            v1_texts(br#"{"texts": ["a", "b"]}"#).unwrap(),
            (vec!["a".to_string(), "b".to_string()], true)
        );
        assert_eq!(
            v1_texts(b"{\"text\": \"a\"}\n{\"text\": \"b\"}\n")
                .unwrap()
                .0,
            ["a", "b"]
        );
        assert_eq!(
            v1_texts(b"{nope").err().unwrap().status,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            v1_texts(br#"{"txt": "a"}"#).err().unwrap().status,
            StatusCode::BAD_REQUEST
        );
    }
}
