//! The models a server runs: each loaded once, with its worker and queue.

use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;

use super::metrics::{Metrics, ModelLabel};
use super::queue::{Job, Worker};
use super::ServeConfig;
use crate::driver::{run_texts, Batching, Outcome, Task};
use crate::model::{ModelDir, TaskKind};
use crate::tasks::text_graph::{TextGraph, TextTask};
use crate::tasks::{ner::NerModel, sentiment::SentimentModel, translate};

/// A model as the server runs it: texts in, one JSON outcome each.
pub(super) trait Runner: Send + Sync {
    fn run(&self, texts: &[&str], batching: Batching) -> Vec<Outcome<Value>>;
}

pub(super) fn to_json<T: Task>(
    task: &T,
    texts: &[&str],
    batching: Batching,
) -> Vec<Outcome<Value>> {
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

pub(super) struct TranslateRunner {
    pub(super) model: translate::Translator,
    pub(super) beam: usize,
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

/// A loaded model, its queue and what the KServe metadata says of it.
pub(super) struct Served {
    pub(super) name: String,
    pub(super) task: TaskKind,
    /// An imported graph model that labels every token (else one label a text).
    pub(super) tags: bool,
    pub(super) labels: Vec<String>,
    pub(super) queue: SyncSender<Job>,
    pub(super) waiting: Arc<AtomicUsize>,
}

/// Loads every model and starts its worker.
pub(super) fn load(
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
