//! Many-to-one: a bidirectional recurrent encoder over GloVe-initialised
//! embeddings, pooled over real tokens, then a linear classifier.

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Embedding, Linear, Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::model::ModelDir;
use crate::nn::{Activation, CellKind, MergeMode, Rnn, RnnConfig};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SentimentConfig {
    pub name: String,
    pub cell: String,
    #[serde(default)]
    pub activation: Option<String>,
    pub embedding_dim: usize,
    pub vocab_size: usize,
    pub units: usize,
    pub num_layers: usize,
    pub bidirectional: bool,
    /// `last`, `max`, `mean` or `mean_max`, over real tokens only.
    pub pooling: String,
    #[serde(default)]
    pub hidden_dim: Option<usize>,
    pub labels: Vec<String>,
    pub max_tokens: usize,
    pub pad_id: u32,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// One input's result.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub label: String,
    /// Probability of `label`.
    pub score: f32,
    /// Every label's probability, in config order.
    pub probs: Vec<(String, f32)>,
    pub tokens: usize,
    /// The text had more than `max_tokens` tokens; only the first were read.
    pub truncated: bool,
}

pub struct SentimentModel {
    pub config: SentimentConfig,
    tokenizer: tokenizers::Tokenizer,
    embedding: Embedding,
    rnn: Rnn,
    hidden: Option<Linear>,
    classifier: Linear,
    device: Device,
    dtype: DType,
}

impl SentimentModel {
    /// Loads a model folder; weights are converted to `dtype` on `device`.
    pub fn load(dir: &ModelDir, device: &Device, dtype: DType) -> Result<Self> {
        dir.expect_task("sentiment")?;
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
        if !matches!(c.pooling.as_str(), "last" | "max" | "mean" | "mean_max") {
            bail!(
                "unknown pooling `{}` in config.json: expected last, max, mean or mean_max",
                c.pooling
            );
        }
        if c.labels.is_empty() {
            bail!("config.json lists no labels");
        }
        let embedding = candle_nn::embedding(c.vocab_size, c.embedding_dim, vb.pp("embedding"))?;
        let mut rcfg = RnnConfig::new(CellKind::parse(&c.cell)?, c.embedding_dim, c.units)
            .with_name(format!("{}.rnn", c.name))
            .with_num_layers(c.num_layers);
        if let Some(a) = &c.activation {
            rcfg = rcfg.with_activation(Activation::parse(a)?);
        }
        if c.bidirectional {
            rcfg = rcfg.with_bidirectional(MergeMode::Concat);
        }
        let rnn = Rnn::new(rcfg, vb.pp("rnn"))?;
        let dirs = if c.bidirectional { 2 } else { 1 };
        let pooled = c.units * dirs * if c.pooling == "mean_max" { 2 } else { 1 };
        let (hidden, head_in) = match c.hidden_dim {
            Some(hd) => (Some(candle_nn::linear(pooled, hd, vb.pp("hidden"))?), hd),
            None => (None, pooled),
        };
        let classifier = candle_nn::linear(head_in, c.labels.len(), vb.pp("classifier"))?;
        let dtype = vb.dtype();
        Ok(Self {
            config,
            tokenizer,
            embedding,
            rnn,
            hidden,
            classifier,
            device: device.clone(),
            dtype,
        })
    }

    pub fn rnn(&self) -> &Rnn {
        &self.rnn
    }

    /// Values in the model: embedding, recurrent layers and head.
    pub fn param_count(&self) -> usize {
        let linear = |l: &Linear| l.weight().elem_count() + l.bias().map_or(0, |b| b.elem_count());
        self.embedding.embeddings().elem_count()
            + self.rnn.param_count()
            + self.hidden.as_ref().map_or(0, linear)
            + linear(&self.classifier)
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

    /// Logits `[n, labels]` for token sequences (none empty), in one padded batch.
    pub fn logits(&self, seqs: &[&[u32]]) -> Result<Tensor> {
        let batch = seqs.len();
        let lengths: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        if lengths.contains(&0) {
            bail!("cannot classify an empty token sequence");
        }
        let steps = *lengths.iter().max().unwrap_or(&0);
        let mut ids = vec![self.config.pad_id; batch * steps];
        for (b, s) in seqs.iter().enumerate() {
            ids[b * steps..b * steps + s.len()].copy_from_slice(s);
        }
        let ids = Tensor::from_vec(ids, (batch, steps), &self.device)?;
        let emb = self.embedding.forward(&ids)?;
        let out = self.rnn.forward_with(&emb, Some(&lengths), None)?;
        let pooled = match self.config.pooling.as_str() {
            "last" => {
                let l = self.config.num_layers - 1;
                let dirs = self.rnn.config().directions();
                Tensor::cat(&out.state.h[l * dirs..], 1)?
            }
            p => {
                let seq = &out.output; // zeros at padding
                let lens: Vec<f32> = lengths.iter().map(|&l| l as f32).collect();
                let lens =
                    Tensor::from_vec(lens, (batch, 1), &self.device)?.to_dtype(self.dtype)?;
                let mean = || -> Result<Tensor> { Ok(seq.sum(1)?.broadcast_div(&lens)?) };
                let max = || -> Result<Tensor> {
                    let mut bias = vec![0f32; batch * steps];
                    for (b, &l) in lengths.iter().enumerate() {
                        bias[b * steps + l..(b + 1) * steps].fill(f32::NEG_INFINITY);
                    }
                    let bias = Tensor::from_vec(bias, (batch, steps, 1), &self.device)?
                        .to_dtype(self.dtype)?;
                    Ok(seq.broadcast_add(&bias)?.max(1)?)
                };
                match p {
                    "max" => max()?,
                    "mean" => mean()?,
                    _ => Tensor::cat(&[mean()?, max()?], 1)?,
                }
            }
        };
        let mut x = pooled;
        if let Some(h) = &self.hidden {
            x = h.forward(&x)?.relu()?;
        }
        Ok(self.classifier.forward(&x)?)
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
        if layer + 1 == c.num_layers && self.hidden.is_none() && c.labels.len() == 2 {
            // The classifier reads pooled features; a unit's pull is the
            // difference of its two class weights times its pooled value.
            let w = self
                .classifier
                .weight()
                .to_dtype(DType::F32)?
                .to_vec2::<f32>()?;
            let delta: Vec<f32> = w[1].iter().zip(&w[0]).map(|(p, n)| p - n).collect();
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
                    .map(|j| match c.pooling.as_str() {
                        "mean_max" => {
                            delta[f(0, j)] * pooled("mean", j) + delta[f(1, j)] * pooled("max", j)
                        }
                        p => delta[f(0, j)] * pooled(p, j),
                    })
                    .collect(),
            );
        }
        Ok(crate::inspect::Inspection {
            model: c.name.clone(),
            layer_name: "rnn".into(),
            tokens,
            trace,
            importance,
            importance_rule: format!(
                "(w[{}] − w[{}]) · {}-pooled h: > 0 pushes towards {}",
                c.labels[1], c.labels[0], c.pooling, c.labels[1]
            ),
            attention: None,
        })
    }

    /// Classifies texts, batching by length. Each text gets its own result
    /// (an empty text is an error for that text only).
    pub fn predict(&self, texts: &[&str], batch_size: usize) -> Vec<Result<Prediction>> {
        let mut results: Vec<Option<Result<Prediction>>> = texts.iter().map(|_| None).collect();
        let mut encoded: Vec<(usize, Vec<u32>, bool)> = Vec::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            match self.encode(t) {
                Ok(ids) if ids.is_empty() => {
                    results[i] = Some(Err(anyhow::anyhow!("empty text: nothing to classify")));
                }
                Ok(mut ids) => {
                    let truncated = ids.len() > self.config.max_tokens;
                    ids.truncate(self.config.max_tokens);
                    encoded.push((i, ids, truncated));
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        // Similar lengths together: little padding, fewer wasted steps.
        encoded.sort_by_key(|(_, ids, _)| std::cmp::Reverse(ids.len()));
        for chunk in encoded.chunks(batch_size.max(1)) {
            let seqs: Vec<&[u32]> = chunk.iter().map(|(_, ids, _)| &ids[..]).collect();
            match self.logits(&seqs).and_then(|l| {
                Ok(
                    candle_nn::ops::softmax(&l.to_dtype(DType::F32)?, D::Minus1)?
                        .to_vec2::<f32>()?,
                )
            }) {
                Ok(probs) => {
                    for ((i, ids, truncated), p) in chunk.iter().zip(probs) {
                        results[*i] = Some(Ok(self.prediction(p, ids.len(), *truncated)));
                    }
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    for (i, _, _) in chunk {
                        results[*i] = Some(Err(anyhow::anyhow!("{msg}")));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every input gets a result"))
            .collect()
    }

    fn prediction(&self, probs: Vec<f32>, tokens: usize, truncated: bool) -> Prediction {
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
            tokens,
            truncated,
        }
    }
}
