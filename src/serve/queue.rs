//! The batching queue every protocol shares: requests wait per model, a
//! worker thread gathers them into batches and answers each.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use serde_json::Value;

use super::metrics::ModelLabel;
use super::runners::{Runner, Served};
use super::{ApiError, App};
use crate::driver::{Batching, Outcome};

/// One request's texts waiting for the worker.
pub(super) struct Job {
    pub(super) texts: Vec<String>,
    pub(super) reply: tokio::sync::oneshot::Sender<Vec<Outcome<Value>>>,
}

pub(super) struct Worker {
    pub(super) runner: Box<dyn Runner>,
    pub(super) rx: Receiver<Job>,
    pub(super) waiting: Arc<AtomicUsize>,
    pub(super) max_batch: usize,
    pub(super) max_wait: Duration,
    pub(super) batch_hist: Histogram,
    pub(super) queue_gauge: Gauge,
}

impl Worker {
    /// Gathers requests into batches and answers them until the server
    /// drops the queue.
    pub(super) fn run(self) {
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

/// Queues `texts` for `model` and waits for the answers.
pub(super) async fn infer(
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
