//! Prometheus metrics and the request log: every request counted, timed
//! and logged in one line that never waits for its reader.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde_json::json;

use super::{ApiError, App};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ReqLabels {
    pub(super) model: String,
    pub(super) endpoint: String,
    pub(super) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ModelLabel {
    pub(super) model: String,
}

pub(super) type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub(super) struct Metrics {
    pub(super) registry: Registry,
    pub(super) requests: Family<ReqLabels, Counter>,
    pub(super) latency: HistFamily<ModelLabel>,
    pub(super) batch: HistFamily<ModelLabel>,
    pub(super) queue: Family<ModelLabel, Gauge>,
    pub(super) log_dropped: Gauge,
}

impl Metrics {
    pub(super) fn new() -> Self {
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

pub(super) async fn metrics(State(app): State<Arc<App>>) -> Response {
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
pub(super) fn model_of(app: &App, uri: &Uri) -> String {
    // Only served names: a label per made-up name would grow without bound.
    let served = |n: &str| app.model(n).map_or_else(String::new, |m| m.name.clone());
    let p = uri.path();
    let named = p
        .strip_prefix("/v2/models/")
        .or_else(|| p.strip_prefix("/v1/models/"))
        .map(|r| r.split(['/', ':']).next().unwrap_or(""));
    if let Some(n) = named {
        return served(n);
    }
    if let Some(task) = p.strip_prefix("/v1/") {
        if let Some(q) = uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("model=")))
        {
            return served(q);
        }
        if let Some(m) = app.models.iter().find(|m| m.task.as_str() == task) {
            return m.name.clone();
        }
    }
    String::new()
}

/// The route a path took, with the model name and version replaced:
/// `/v2/models/{name}/infer`; any other path is `other` (paths are
/// unbounded, metric labels must not be).
pub(super) fn endpoint_of(path: &str) -> String {
    const TAILS: [&str; 5] = ["", "/ready", "/infer", "/config", ":predict"];
    for prefix in ["/v2/models/", "/v1/models/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find(['/', ':']).map_or("", |i| &rest[i..]);
            let (versioned, tail) = match tail.strip_prefix("/versions/") {
                Some(v) => (true, v.find('/').map_or("", |i| &v[i..])),
                None => (false, tail),
            };
            if !TAILS.contains(&tail) {
                break;
            }
            let version = if versioned { "/versions/{version}" } else { "" };
            return format!("{prefix}{{name}}{version}{tail}");
        }
    }
    const ROUTES: [&str; 9] = [
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/repository/index",
        "/v1/sentiment",
        "/v1/ner",
        "/v1/translate",
        "/v1/generate",
        "/metrics",
    ];
    if ROUTES.contains(&path) {
        path.to_string()
    } else {
        "other".into()
    }
}

/// Counts, times and logs every request (one line each).
pub(super) async fn observe(
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
        assert_eq!(
            endpoint_of("/v2/models/m/versions/1/infer"),
            "/v2/models/{name}/versions/{version}/infer"
        );
        assert_eq!(endpoint_of("/v2/models/m/anything/else"), "other");
        assert_eq!(endpoint_of("/v2/models/m/versions/1/x"), "other");
    }
}
