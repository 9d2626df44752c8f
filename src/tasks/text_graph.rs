//! `zoo run classify` and `zoo run tag`: an imported graph model with a
//! tokenizer (or vocabulary) and label names, on raw text.

use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::graph::text::{TextConfig, TextEncoder};
use crate::graph::GraphModel;
use crate::model::ModelDir;

/// Many-to-one (a label per text) or many-to-many (a label per token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextTask {
    Classify,
    Tag,
}

pub struct TextGraph {
    pub model: GraphModel,
    encoder: TextEncoder,
    task: TextTask,
    /// The input that takes token ids, and the one that takes lengths (PyTorch).
    ids_input: usize,
    lengths_input: Option<usize>,
    /// A fixed sequence length, where the model's input has one.
    fixed_len: Option<usize>,
    /// Whether padding is masked (Embedding mask_zero or a lengths input):
    /// texts of different lengths can then share a pass.
    mask_aware: bool,
    pre_padding: bool,
}

pub struct Encoded {
    ids: Vec<u32>,
    tokens: Vec<String>,
    oov: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Classified {
    pub label: String,
    #[serde(serialize_with = "crate::driver::ser_round4")]
    pub score: f32,
    /// Every label's score, in label order.
    pub scores: Vec<f64>,
    pub oov: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaggedToken {
    pub token: String,
    pub label: String,
    #[serde(serialize_with = "crate::driver::ser_round4")]
    pub score: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaggedText {
    pub tokens: Vec<TaggedToken>,
    pub oov: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum TextResult {
    Classified(Classified),
    Tagged(TaggedText),
}

impl TextGraph {
    /// Classify or tag, by the rank of the model's output ([batch, labels]
    /// or [batch, steps, labels]).
    pub fn load_any(dir: &ModelDir, device: &Device) -> Result<Self> {
        let mut m = Self::load(dir, device, TextTask::Classify)?;
        let out_rank = m
            .model
            .shapes(1, 3)?
            .last()
            .and_then(|o| o.first())
            .map_or(2, |d| d.len());
        if out_rank == 3 {
            m.task = TextTask::Tag;
        }
        Ok(m)
    }

    pub fn task(&self) -> TextTask {
        self.task
    }

    /// Label names of the output's last axis.
    pub fn labels(&self) -> &[String] {
        &self.model.config.labels
    }

    pub fn load(dir: &ModelDir, device: &Device, task: TextTask) -> Result<Self> {
        let model = GraphModel::load(dir, device)?;
        let raw: serde_json::Value = dir.config()?;
        let text: TextConfig = match raw.get("text") {
            Some(t) => {
                serde_json::from_value(t.clone()).map_err(|e| anyhow!("config.json `text`: {e}"))?
            }
            None => bail!(
                "{} has no tokenizer: import it with `zoo import ... --tokenizer tokenizer.json` \
                 (or a vocabulary file, one token per line)",
                dir.path.display()
            ),
        };
        let encoder = TextEncoder::load(&dir.path, &text)?;
        let pre_padding = text.padding == crate::graph::text::Padding::Pre;
        let inputs = model.inputs();
        let ids_input = inputs
            .iter()
            .position(|s| s.dtype.is_int() && s.shape.len() == 1)
            .ok_or_else(|| {
                anyhow!("the model has no input of token ids ([batch, steps], integers)")
            })?;
        let lengths_input = inputs
            .iter()
            .position(|s| s.dtype.is_int() && s.shape.is_empty());
        if inputs.len() != 1 + lengths_input.is_some() as usize {
            bail!(
                "the model has inputs {}: `zoo run` feeds one input of token ids (and optionally one of lengths)",
                inputs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
        if model.output_names().len() != 1 {
            bail!(
                "the model has {} outputs; `zoo run` reads one (use `zoo predict`)",
                model.output_names().len()
            );
        }
        let fixed_len = inputs[ids_input].shape[0];
        let mask_aware = lengths_input.is_some() || model.masks_padding();
        Ok(TextGraph {
            model,
            encoder,
            task,
            ids_input,
            lengths_input,
            fixed_len,
            mask_aware,
            pre_padding,
        })
    }

    fn label(&self, i: usize) -> String {
        self.model
            .config
            .labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| i.to_string())
    }

    /// One forward pass on texts of the same padded length.
    fn pass(&self, batch: &[&Encoded]) -> Result<Tensor> {
        let dev = self.model.device();
        let longest = batch.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        let steps = self.fixed_len.unwrap_or(longest.max(1));
        let mut flat = Vec::with_capacity(batch.len() * steps);
        for e in batch {
            let pad = steps - e.ids.len();
            if self.pre_padding {
                flat.extend(std::iter::repeat_n(0i64, pad));
            }
            flat.extend(e.ids.iter().map(|&i| i as i64));
            if !self.pre_padding {
                flat.extend(std::iter::repeat_n(0i64, pad));
            }
        }
        let spec = &self.model.inputs()[self.ids_input];
        let ids = Tensor::from_vec(flat, (batch.len(), steps), dev)?;
        let mut feed = vec![(spec.name.clone(), ids)];
        if let Some(li) = self.lengths_input {
            let lens: Vec<i64> = batch.iter().map(|e| e.ids.len() as i64).collect();
            feed.push((
                self.model.inputs()[li].name.clone(),
                Tensor::from_vec(lens, batch.len(), dev)?,
            ));
        }
        let out = self.model.forward(feed)?;
        Ok(out
            .into_iter()
            .next()
            .expect("one output")
            .to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?)
    }

    fn results(&self, batch: &[&Encoded], y: &Tensor) -> Result<Vec<TextResult>> {
        let steps = y.dims().get(1).copied().unwrap_or(0);
        match (self.task, y.rank()) {
            (TextTask::Classify, 2) => {
                let rows = y.to_vec2::<f32>()?;
                Ok(rows
                    .into_iter()
                    .zip(batch)
                    .map(|(r, e)| TextResult::Classified(self.classified(&r, e.oov)))
                    .collect())
            }
            (TextTask::Tag, 3) => {
                let all = y.to_vec3::<f32>()?;
                Ok(all
                    .into_iter()
                    .zip(batch)
                    .map(|(rows, e)| {
                        let off = if self.pre_padding { steps - e.ids.len() } else { 0 };
                        let tokens = e
                            .tokens
                            .iter()
                            .enumerate()
                            .map(|(t, tok)| {
                                let (i, s) = argmax(&rows[off + t]);
                                TaggedToken { token: tok.clone(), label: self.label(i), score: s }
                            })
                            .collect();
                        TextResult::Tagged(TaggedText { tokens, oov: e.oov })
                    })
                    .collect())
            }
            (TextTask::Classify, r) => bail!("the model's output has rank {r}; `classify` reads [batch, labels] (try `zoo run tag`)"),
            (TextTask::Tag, r) => bail!("the model's output has rank {r}; `tag` reads [batch, steps, labels] (try `zoo run classify`)"),
        }
    }

    fn classified(&self, row: &[f32], oov: f64) -> Classified {
        if row.len() == 1 {
            // A sigmoid unit: the score of the second label.
            let p = row[0];
            let i = (p >= 0.5) as usize;
            return Classified {
                label: self.label(i),
                score: if i == 1 { p } else { 1.0 - p },
                scores: vec![(1.0 - p) as f64, p as f64],
                oov,
            };
        }
        let (i, s) = argmax(row);
        Classified {
            label: self.label(i),
            score: s,
            scores: row.iter().map(|&v| crate::driver::round4(v)).collect(),
            oov,
        }
    }
}

impl TextGraph {
    /// What recurrent layer `layer` holds while it reads `text`.
    pub fn inspect(
        &self,
        text: &str,
        layer: usize,
        dir: usize,
    ) -> Result<crate::inspect::Inspection> {
        use crate::driver::Task;
        let e = self.encode(text)?;
        if e.ids.is_empty() {
            bail!("empty text: nothing to inspect");
        }
        let y = self.pass(&[&e])?;
        let answer = match self.results(&[&e], &y)?.remove(0) {
            TextResult::Classified(c) => format!("{} (p = {:.3})", c.label, c.score),
            TextResult::Tagged(t) => t
                .tokens
                .iter()
                .map(|k| format!("{}/{}", k.token, k.label))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let dev = self.model.device();
        let spec = &self.model.inputs()[self.ids_input];
        let ids: Vec<i64> = e.ids.iter().map(|&i| i as i64).collect();
        let n = ids.len();
        let steps = self.fixed_len.unwrap_or(n);
        let mut row = vec![0i64; steps];
        let at = if self.pre_padding { steps - n } else { 0 };
        row[at..at + n].copy_from_slice(&ids);
        let mut feed = vec![(spec.name.clone(), Tensor::from_vec(row, (1, steps), dev)?)];
        if let Some(li) = self.lengths_input {
            feed.push((
                self.model.inputs()[li].name.clone(),
                Tensor::from_vec(vec![n as i64], 1, dev)?,
            ));
        }
        let (name, cfg, sub, trace) = self.model.trace(feed, layer, dir)?;
        let mut tokens = e.tokens.clone();
        tokens.resize(trace.steps, String::new());
        let last = layer + 1 == self.model.recurrent_layer_count();
        Ok(crate::inspect::Inspection {
            model: self.model.config.name.clone(),
            layer_name: name,
            tokens,
            trace,
            importance: None,
            importance_rule: String::new(),
            importance_sides: None,
            attention: None,
            answer,
            shape: crate::inspect::LayerShape::of(
                &cfg,
                sub,
                !(last && self.task == TextTask::Classify),
            ),
        })
    }
}

fn argmax(v: &[f32]) -> (usize, f32) {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
}

impl crate::driver::Task for TextGraph {
    type Encoded = Encoded;
    type Output = TextResult;

    fn encode(&self, text: &str) -> Result<Encoded> {
        let e = self.encoder.encode(text)?;
        if let Some(n) = self.fixed_len {
            if e.ids.len() > n {
                bail!(
                    "the text has {} tokens, more than the {n} this model reads",
                    e.ids.len()
                );
            }
        }
        Ok(Encoded {
            ids: e.ids,
            tokens: e.tokens,
            oov: e.oov,
        })
    }

    fn length(&self, item: &Encoded) -> usize {
        item.ids.len()
    }

    fn run(&self, batch: &[&Encoded]) -> Result<Vec<TextResult>> {
        if self.mask_aware
            || self.fixed_len.is_some()
            || batch.iter().all(|e| e.ids.len() == batch[0].ids.len())
        {
            let y = self.pass(batch)?;
            return self.results(batch, &y);
        }
        // Padding would change an unmasked model's answer: one length per pass.
        let mut out: Vec<Option<TextResult>> = (0..batch.len()).map(|_| None).collect();
        let mut lens: Vec<usize> = batch.iter().map(|e| e.ids.len()).collect();
        lens.sort_unstable();
        lens.dedup();
        for n in lens {
            let idx: Vec<usize> = (0..batch.len())
                .filter(|&i| batch[i].ids.len() == n)
                .collect();
            let group: Vec<&Encoded> = idx.iter().map(|&i| batch[i]).collect();
            let y = self.pass(&group)?;
            for (i, r) in idx.into_iter().zip(self.results(&group, &y)?) {
                out[i] = Some(r);
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.expect("every length ran"))
            .collect())
    }
}
