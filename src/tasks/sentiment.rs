//! Many-to-one: a bidirectional recurrent encoder over GloVe-initialised
//! embeddings, pooled over real tokens, then a classifier head that is a
//! layer graph (`head` in config.json), run by [`crate::graph::GraphModel`].

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Embedding, Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::graph::{GraphConfig, GraphFramework, GraphModel, GraphSpec, InputSpec, NodeSpec};
use crate::model::ModelDir;
use crate::nn::{Activation, CellKind, MergeMode, Rnn, RnnConfig};

/// How the encoder's outputs become one feature vector, over real tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The final state of each direction.
    Last,
    Max,
    Mean,
    /// `[mean; max]`.
    MeanMax,
}

impl Pooling {
    /// Feature vectors per direction the pooling yields.
    pub fn width(self) -> usize {
        if self == Pooling::MeanMax {
            2
        } else {
            1
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pooling::Last => "last",
            Pooling::Max => "max",
            Pooling::Mean => "mean",
            Pooling::MeanMax => "mean_max",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SentimentConfig {
    pub name: String,
    pub cell: CellKind,
    #[serde(default)]
    pub activation: Option<Activation>,
    pub embedding_dim: usize,
    pub vocab_size: usize,
    pub units: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    pub pooling: Pooling,
    /// Only for configs without `head`: a hidden layer of this size (ReLU)
    /// before the classifier.
    #[serde(default)]
    pub hidden_dim: Option<usize>,
    /// The classifier on the pooled features (input `features`), as a layer
    /// graph in the `task: "graph"` schema; see [`SentimentConfig::head_spec`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<GraphSpec>,
    pub labels: Vec<String>,
    /// The window the encoder reads at once; longer texts are read in full,
    /// window by window (see `logits`).
    pub max_tokens: usize,
    pub pad_id: u32,
    /// The tokenizer's id for an unknown word (for the `oov` fraction).
    #[serde(default = "unk")]
    pub unk_id: u32,
    /// Ids below this were seen in training; the rest of the vocabulary
    /// carries pretrained vectors only, so it counts as unknown in `oov`.
    #[serde(default)]
    pub trained_vocab: Option<u32>,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

fn unk() -> u32 {
    1
}

impl SentimentConfig {
    /// Feature size the pooling hands the head.
    pub fn pooled_width(&self) -> usize {
        let dirs = if self.bidirectional { 2 } else { 1 };
        self.units * dirs * self.pooling.width()
    }

    /// The head's graph: `head` as stored, or for older configs the layers
    /// `hidden_dim` describes (`hidden` Linear + ReLU, then `classifier`).
    pub fn head_spec(&self) -> GraphSpec {
        if let Some(h) = &self.head {
            return h.clone();
        }
        let linear = |name: &str, i: usize, o: usize, from: &str| NodeSpec {
            name: name.into(),
            class: "Linear".into(),
            config: serde_json::json!({"in_features": i, "out_features": o})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            inbound: vec![from.into()],
            lengths: None,
        };
        let pooled = self.pooled_width();
        let mut layers = Vec::new();
        let mut from = ("features", pooled);
        if let Some(hd) = self.hidden_dim {
            layers.push(linear("hidden", pooled, hd, "features"));
            layers.push(NodeSpec {
                name: "hidden_relu".into(),
                class: "ReLU".into(),
                config: Default::default(),
                inbound: vec!["hidden".into()],
                lengths: None,
            });
            from = ("hidden_relu", hd);
        }
        layers.push(linear("classifier", from.1, self.labels.len(), from.0));
        GraphSpec {
            framework: GraphFramework::Pytorch,
            inputs: vec![InputSpec {
                name: "features".into(),
                shape: vec![Some(pooled)],
                dtype: Default::default(),
            }],
            layers,
            outputs: vec!["classifier".into()],
        }
    }
}

/// Builds the head and checks it maps `[n, pooled]` to `[n, labels]`.
pub fn build_head(c: &SentimentConfig, vb: VarBuilder, device: &Device) -> Result<GraphModel> {
    let head = GraphModel::build(
        GraphConfig {
            name: format!("{}.head", c.name),
            graph: c.head_spec(),
            labels: c.labels.clone(),
        },
        vb,
        device,
    )
    .map_err(|e| anyhow::anyhow!("config.json `head`: {e:#}"))?;
    let pooled = c.pooled_width();
    match head.inputs() {
        [i] if i.shape == [Some(pooled)] && !i.dtype.is_int() => {}
        _ => bail!(
            "config.json `head` must take one float input of shape [{pooled}] (the pooled features)"
        ),
    }
    if head.output_names().len() != 1 {
        bail!("config.json `head` must have exactly one output");
    }
    let got = head.forward(vec![(
        "features".into(),
        Tensor::zeros((1, pooled), DType::F32, device)?,
    )])?;
    if got[0].dims() != [1, c.labels.len()] {
        bail!(
            "config.json `head` gives {:?} per text, but the model has {} labels",
            &got[0].dims()[1..],
            c.labels.len()
        );
    }
    Ok(head)
}

/// One input's result.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub label: String,
    /// Probability of `label`.
    #[serde(serialize_with = "crate::driver::ser_round4")]
    pub score: f32,
    /// Every label's probability, in config order.
    #[serde(serialize_with = "ser_probs")]
    pub probs: Vec<(String, f32)>,
    pub tokens: usize,
    /// Fraction of the tokens the model did not see in training (0 to 1).
    #[serde(serialize_with = "crate::driver::ser_round4")]
    pub oov: f32,
}

fn ser_probs<S: serde::Serializer>(
    probs: &[(String, f32)],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(probs.len()))?;
    for (label, p) in probs {
        m.serialize_entry(label, &crate::driver::round4(*p))?;
    }
    m.end()
}

/// Windows read together per forward pass, at most.
const WINDOW_BATCH: usize = 64;

/// Padded tokens (windows × longest window) per forward pass, at most: a
/// batch of long reviews costs the memory of a batch of short sentences.
const WINDOW_TOKENS: usize = 16_384;

/// Consecutive groups of windows (by length) whose padded size stays within
/// the budget; a window longer than the budget goes alone.
fn window_groups(lens: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut longest) = (0, 0);
    for (i, &len) in lens.iter().enumerate() {
        let wider = longest.max(len);
        if i > start && (i - start == WINDOW_BATCH || wider * (i - start + 1) > WINDOW_TOKENS) {
            groups.push(start..i);
            start = i;
            longest = len;
        } else {
            longest = wider;
        }
    }
    if start < lens.len() {
        groups.push(start..lens.len());
    }
    groups
}

/// One text's pooled features so far, window by window.
struct Pooled {
    sum: Vec<f32>,
    max: Vec<f32>,
    len: usize,
    /// The final states `[fwd; bwd]` of the last window read (forward part)
    /// and of the first (backward part: it reads right to left).
    last_fwd: Vec<f32>,
    last_bwd: Vec<f32>,
    dirs: usize,
}

impl Pooled {
    fn with_len(mut self, len: usize) -> Self {
        self.len = len;
        self
    }

    /// Adds the next window of the same text.
    fn absorb(&mut self, next: Pooled, len: usize) {
        for (a, b) in self.sum.iter_mut().zip(&next.sum) {
            *a += b;
        }
        for (a, b) in self.max.iter_mut().zip(&next.max) {
            *a = a.max(*b);
        }
        self.len += len;
        self.last_fwd = next.last_fwd;
    }

    /// The classifier's input: `[mean; max]`, mean, max, or `[h_fwd; h_bwd]`.
    fn features(&self, pooling: Pooling) -> Vec<f32> {
        let mean = || self.sum.iter().map(|v| v / self.len.max(1) as f32);
        match pooling {
            Pooling::Mean => mean().collect(),
            Pooling::Max => self.max.clone(),
            Pooling::MeanMax => mean().chain(self.max.iter().copied()).collect(),
            Pooling::Last => {
                let half = self.last_fwd.len() / self.dirs.max(1);
                self.last_fwd[..half]
                    .iter()
                    .chain(&self.last_bwd[half..])
                    .copied()
                    .collect()
            }
        }
    }
}

/// A text ready to classify.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub oov: f32,
}

pub struct SentimentModel {
    pub config: SentimentConfig,
    tokenizer: tokenizers::Tokenizer,
    embedding: Embedding,
    rnn: Rnn,
    head: GraphModel,
    device: Device,
    dtype: DType,
}

impl crate::device::Quantize for SentimentModel {
    fn quantize_int8(&mut self) -> Result<()> {
        Ok(self.rnn.quantize_int8_from(1)?)
    }
}

impl SentimentModel {
    /// Loads a model folder; weights are converted to `dtype` on `device`.
    pub fn load(dir: &ModelDir, device: &Device, dtype: DType) -> Result<Self> {
        dir.expect_task(crate::model::TaskKind::Sentiment)?;
        let config: SentimentConfig = dir.config()?;
        let tokenizer = dir.tokenizer("tokenizer.json")?;
        let vb = dir.var_builder(dtype, device)?;
        Self::from_parts(config, tokenizer, vb, device)
    }

    fn from_parts(
        config: SentimentConfig,
        tokenizer: tokenizers::Tokenizer,
        vb: VarBuilder,
        device: &Device,
    ) -> Result<Self> {
        let c = &config;
        if c.labels.is_empty() {
            bail!("config.json lists no labels");
        }
        let embedding = candle_nn::embedding(c.vocab_size, c.embedding_dim, vb.pp("embedding"))?;
        let mut rcfg = RnnConfig::new(c.cell, c.embedding_dim, c.units)
            .with_name(format!("{}.rnn", c.name))
            .with_num_layers(c.num_layers);
        if let Some(a) = c.activation {
            rcfg = rcfg.with_activation(a);
        }
        if c.bidirectional {
            rcfg = rcfg.with_bidirectional(MergeMode::Concat);
        }
        let rnn = Rnn::new(rcfg, vb.pp("rnn"))?;
        let head = build_head(c, vb.clone(), device)?;
        let dtype = vb.dtype();
        Ok(Self {
            config,
            tokenizer,
            embedding,
            rnn,
            head,
            device: device.clone(),
            dtype,
        })
    }

    pub fn rnn(&self) -> &Rnn {
        &self.rnn
    }

    pub fn head(&self) -> &GraphModel {
        &self.head
    }

    /// Values in the model: embedding, recurrent layers and head.
    pub fn param_count(&self) -> usize {
        self.embedding.embeddings().elem_count() + self.rnn.param_count() + self.head.param_count()
    }

    /// Token ids of `text`, or why there are none.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| anyhow::anyhow!("tokenizer failed: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn tokens(&self, text: &str) -> Result<Vec<String>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| anyhow::anyhow!("tokenizer failed: {e}"))?;
        Ok(enc.get_tokens().to_vec())
    }

    /// Logits `[n, labels]` for token sequences (none empty), of any length:
    /// each is read in windows of `max_tokens` tokens, and the windows'
    /// pooled features are combined (sums and maxima over every real step;
    /// for `last`, the forward state after the final window and the backward
    /// state after the first), so memory stays bounded by the window.
    pub fn logits(&self, seqs: &[&[u32]]) -> Result<Tensor> {
        if seqs.iter().any(|s| s.is_empty()) {
            bail!("cannot classify an empty token sequence");
        }
        let w = self.config.max_tokens.max(1);
        // (owner, window) for every window, in order.
        let windows: Vec<(usize, &[u32])> = seqs
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.chunks(w).map(move |c| (i, c)))
            .collect();
        let n = seqs.len();
        let mut acc: Vec<Option<Pooled>> = (0..n).map(|_| None).collect();
        // Windows of a few texts share a forward pass, within a memory budget.
        let lens: Vec<usize> = windows.iter().map(|w| w.1.len()).collect();
        for range in window_groups(&lens) {
            let group = &windows[range];
            let parts = self.window_parts(&group.iter().map(|g| g.1).collect::<Vec<_>>())?;
            for ((owner, win), p) in group.iter().zip(parts) {
                let len = win.len();
                match &mut acc[*owner] {
                    slot @ None => *slot = Some(p.with_len(len)),
                    Some(a) => a.absorb(p, len),
                }
            }
        }
        let dims = acc[0]
            .as_ref()
            .map_or(0, |a| a.features(self.config.pooling).len());
        let flat: Vec<f32> = acc
            .into_iter()
            .flat_map(|a| {
                a.expect("every text has a window")
                    .features(self.config.pooling)
            })
            .collect();
        // The head runs in f32 whatever the encoder's dtype: it is tiny.
        let x = Tensor::from_vec(flat, (n, dims), &self.device)?;
        Ok(self.head.forward(vec![("features".into(), x)])?.remove(0))
    }

    /// Sums, maxima and final states of the last layer for windows (none
    /// longer than `max_tokens`) in one padded batch.
    fn window_parts(&self, seqs: &[&[u32]]) -> Result<Vec<Pooled>> {
        let batch = seqs.len();
        let lengths: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        let steps = *lengths.iter().max().unwrap_or(&0);
        let mut ids = vec![self.config.pad_id; batch * steps];
        for (b, s) in seqs.iter().enumerate() {
            ids[b * steps..b * steps + s.len()].copy_from_slice(s);
        }
        let ids = Tensor::from_vec(ids, (batch, steps), &self.device)?;
        let emb = self.embedding.forward(&ids)?;
        let out = self.rnn.forward_with(&emb, Some(&lengths), None)?;
        let l = self.config.num_layers - 1;
        let dirs = self.rnn.config().directions();
        let host =
            |t: Tensor| -> Result<Vec<Vec<f32>>> { Ok(t.to_dtype(DType::F32)?.to_vec2::<f32>()?) };
        // Only what the pooling reads comes back from the device.
        let last = if self.config.pooling == Pooling::Last {
            host(Tensor::cat(&out.state.h[l * dirs..], 1)?)?
        } else {
            vec![Vec::new(); batch]
        };
        let (sum, max) = if self.config.pooling == Pooling::Last {
            (vec![Vec::new(); batch], vec![Vec::new(); batch])
        } else {
            let seq = &out.output; // zeros at padding
            let mut bias = vec![0f32; batch * steps];
            for (b, &len) in lengths.iter().enumerate() {
                bias[b * steps + len..(b + 1) * steps].fill(f32::NEG_INFINITY);
            }
            let bias =
                Tensor::from_vec(bias, (batch, steps, 1), &self.device)?.to_dtype(self.dtype)?;
            (host(seq.sum(1)?)?, host(seq.broadcast_add(&bias)?.max(1)?)?)
        };
        Ok(sum
            .into_iter()
            .zip(max)
            .zip(last)
            .map(|((sum, max), last)| Pooled {
                sum,
                max,
                len: 0,
                last_fwd: last.clone(),
                last_bwd: last,
                dirs,
            })
            .collect())
    }

    /// Records layer `layer`, direction `dir` of the encoder on `text`, with
    /// each unit's pull on the decision when the head allows it.
    pub fn inspect(
        &self,
        text: &str,
        layer: usize,
        dir: usize,
    ) -> Result<crate::inspect::Inspection> {
        let ids = self.encode(text)?;
        if ids.is_empty() {
            bail!("empty text: nothing to inspect");
        }
        let tokens = self.tokens(text)?;
        let x = self.embedding.forward(&Tensor::from_vec(
            ids.clone(),
            (1, ids.len()),
            &self.device,
        )?)?;
        let trace = self.rnn.trace(&x.to_dtype(DType::F32)?, layer, dir)?;
        let c = &self.config;
        let u = c.units;
        let dirs = self.rnn.config().directions();
        let mut importance = None;
        let linear_head = self.head.single_linear();
        if let (true, Some(w)) = (
            layer + 1 == c.num_layers && c.labels.len() == 2,
            linear_head,
        ) {
            // The classifier reads pooled features; a unit's pull is the
            // difference of its two class weights times its pooled value.
            let w = w.to_vec2::<f32>()?; // [in, out]
            let delta: Vec<f32> = w.iter().map(|r| r[1] - r[0]).collect();
            let h = trace.get("hidden h").expect("every cell records h");
            let steps = trace.steps;
            let col = |j: usize| (0..steps).map(move |t| h[t * u + j]);
            let pooled = |kind: &str, j: usize| -> f32 {
                match kind {
                    "max" => col(j).fold(f32::NEG_INFINITY, f32::max),
                    "mean" => col(j).sum::<f32>() / steps as f32,
                    // `last`: the state after the final processed step.
                    _ => {
                        if dir == 0 {
                            h[(steps - 1) * u + j]
                        } else {
                            h[j]
                        }
                    }
                }
            };
            let f = |part: usize, j: usize| part * dirs * u + dir * u + j;
            importance = Some(
                (0..u)
                    .map(|j| match c.pooling {
                        Pooling::MeanMax => {
                            delta[f(0, j)] * pooled("mean", j) + delta[f(1, j)] * pooled("max", j)
                        }
                        p => delta[f(0, j)] * pooled(p.name(), j),
                    })
                    .collect(),
            );
        }
        // Only a two-label linear head has a signed pull to report.
        let importance_rule = match &c.labels[..] {
            [neg, pos] if importance.is_some() => format!(
                "(w[{pos}] − w[{neg}]) · {}-pooled h: > 0 pushes towards {pos}",
                c.pooling.name()
            ),
            _ => String::new(),
        };
        let answer = match self.predict(&[text], 1).remove(0) {
            Ok(p) => format!("{} (p = {:.3})", p.label, p.score),
            Err(e) => format!("{e:#}"),
        };
        let importance_sides = match &c.labels[..] {
            [neg, pos] if importance.is_some() => Some((pos.clone(), neg.clone())),
            _ => None,
        };
        let last = layer + 1 == c.num_layers;
        Ok(crate::inspect::Inspection {
            model: c.name.clone(),
            layer_name: "rnn".into(),
            tokens,
            trace,
            importance,
            importance_rule,
            importance_sides,
            attention: None,
            answer,
            shape: crate::inspect::LayerShape::of(
                self.rnn.config(),
                layer,
                !last || c.pooling != Pooling::Last,
            ),
        })
    }

    /// Classifies texts, batching by length (the shared driver). Each text
    /// gets its own result; an empty text is an error for that text only.
    pub fn predict(&self, texts: &[&str], batch_size: usize) -> Vec<Result<Prediction>> {
        use crate::driver::{run_texts, Batching, Outcome};
        run_texts(self, texts, Batching::items(batch_size))
            .into_iter()
            .map(|o| match o {
                Outcome::Done(p) => Ok(p),
                Outcome::Empty => Err(anyhow::anyhow!("empty text: nothing to classify")),
                Outcome::Failed(e) => Err(anyhow::anyhow!("{e}")),
            })
            .collect()
    }

    fn prediction(&self, probs: Vec<f32>, item: &Encoded) -> Prediction {
        let (best, &score) = probs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("at least one label");
        Prediction {
            label: self.config.labels[best].clone(),
            score,
            probs: self
                .config
                .labels
                .iter()
                .cloned()
                .zip(probs.iter().copied())
                .collect(),
            tokens: item.ids.len(),
            oov: item.oov,
        }
    }
}

impl crate::driver::Task for SentimentModel {
    type Encoded = Encoded;
    type Output = Prediction;

    fn encode(&self, text: &str) -> Result<Encoded> {
        let ids = SentimentModel::encode(self, text)?;
        let trained = self.config.trained_vocab.unwrap_or(u32::MAX);
        let unknown = ids
            .iter()
            .filter(|&&i| i == self.config.unk_id || i >= trained)
            .count();
        let oov = unknown as f32 / ids.len().max(1) as f32;
        Ok(Encoded { ids, oov })
    }

    fn length(&self, item: &Encoded) -> usize {
        item.ids.len()
    }

    fn run(&self, batch: &[&Encoded]) -> Result<Vec<Prediction>> {
        let seqs: Vec<&[u32]> = batch.iter().map(|e| &e.ids[..]).collect();
        let probs = candle_nn::ops::softmax(&self.logits(&seqs)?.to_dtype(DType::F32)?, D::Minus1)?
            .to_vec2::<f32>()?;
        Ok(batch
            .iter()
            .zip(probs)
            .map(|(e, p)| self.prediction(p, e))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_groups_cover_every_window_once_within_the_token_budget() {
        let lens: Vec<usize> = (0..500).map(|i| [3, 2048, 700, 1, 4000][i % 5]).collect();
        let groups = window_groups(&lens);
        let mut next = 0;
        for g in &groups {
            assert_eq!(g.start, next, "groups are consecutive");
            assert!(!g.is_empty() && g.len() <= WINDOW_BATCH);
            let widest = lens[g.clone()].iter().max().unwrap();
            assert!(g.len() == 1 || widest * g.len() <= WINDOW_TOKENS, "{g:?}");
            next = g.end;
        }
        assert_eq!(next, lens.len());
        // Short windows still share a pass up to the count limit.
        assert_eq!(window_groups(&[5; 130]).len(), 3);
        assert!(window_groups(&[]).is_empty());
    }
}
