//! A character-level LSTM language model (Karpathy, Johnson and Fei-Fei,
//! "Visualizing and Understanding Recurrent Networks", 2015): it reads text
//! one character at a time and gives the next character's distribution.
//! Generation carries the state step by step and never re-reads the prompt.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Embedding, Linear, Module, VarBuilder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::model::ModelDir;
use crate::nn::{CellKind, PackedLinear, Rnn, RnnConfig, RnnState};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CharLmConfig {
    pub name: String,
    pub vocab_size: usize,
    pub embedding_dim: usize,
    pub units: usize,
    pub num_layers: usize,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// How `generate` samples.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// Logits are divided by this; 0 picks the likeliest character.
    pub temperature: f32,
    /// Sample among the `k` likeliest characters only (0 = all).
    pub top_k: usize,
    pub max_chars: usize,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.8,
            top_k: 0,
            max_chars: 400,
            seed: 0,
        }
    }
}

pub struct CharLm {
    pub config: CharLmConfig,
    /// Id → character; id 0 stands for any character not in the alphabet.
    chars: Vec<char>,
    index: HashMap<char, u32>,
    embedding: Embedding,
    rnn: Rnn,
    head: Linear,
    /// The head packed for the CPU (f32); candle's `Linear` elsewhere.
    packed_head: Option<PackedLinear>,
    device: Device,
}

impl crate::device::Quantize for CharLm {
    fn quantize_int8(&mut self) -> Result<()> {
        Ok(self.rnn.quantize_int8_from(0)?)
    }
}

/// The unknown character's entry in `vocab.json`.
const UNK: &str = "[UNK]";

impl CharLm {
    pub fn load(dir: &ModelDir, device: &Device, dtype: DType) -> Result<Self> {
        dir.expect_task(crate::model::TaskKind::Generate)?;
        let config: CharLmConfig = dir.config()?;
        let path = dir.file("vocab.json")?;
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let vocab: Vec<String> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} must be a JSON list of single characters after \"{UNK}\"",
                path.display()
            )
        })?;
        let vb = dir.var_builder(dtype, device)?;
        Self::from_parts(config, &vocab, vb, device)
    }

    fn from_parts(
        config: CharLmConfig,
        vocab: &[String],
        vb: VarBuilder,
        device: &Device,
    ) -> Result<Self> {
        if vocab.len() != config.vocab_size || vocab.first().map(String::as_str) != Some(UNK) {
            bail!(
                "vocab.json has {} entries and must start with \"{UNK}\"; config.json says vocab_size {}",
                vocab.len(),
                config.vocab_size
            );
        }
        let mut chars = vec!['\u{fffd}'];
        for v in &vocab[1..] {
            let mut it = v.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => chars.push(c),
                _ => bail!("vocab.json entry {v:?} is not one character"),
            }
        }
        let index = chars
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, &c)| (c, i as u32))
            .collect();
        let c = &config;
        let embedding = candle_nn::embedding(c.vocab_size, c.embedding_dim, vb.pp("embedding"))?;
        let rcfg = RnnConfig::new(CellKind::Lstm, c.embedding_dim, c.units)
            .with_name(format!("{}.rnn", c.name))
            .with_num_layers(c.num_layers);
        let rnn = Rnn::new(rcfg, vb.pp("rnn"))?;
        let head = candle_nn::linear(c.units, c.vocab_size, vb.pp("head"))?;
        let packed_head = match head.bias() {
            Some(b) => PackedLinear::from_linear(head.weight(), b)?,
            None => None,
        };
        Ok(Self {
            config,
            chars,
            index,
            embedding,
            rnn,
            head,
            packed_head,
            device: device.clone(),
        })
    }

    pub fn rnn(&self) -> &Rnn {
        &self.rnn
    }

    pub fn param_count(&self) -> usize {
        let head = self.config.units * self.config.vocab_size + self.config.vocab_size;
        self.embedding.embeddings().elem_count() + self.rnn.param_count() + head
    }

    /// Character ids; a character outside the alphabet is id 0.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.chars()
            .map(|c| self.index.get(&c).copied().unwrap_or(0))
            .collect()
    }

    /// The character of an id (`�` for the unknown one).
    pub fn vocab_size(&self) -> usize {
        self.chars.len()
    }

    pub fn char_of(&self, id: u32) -> char {
        self.chars.get(id as usize).copied().unwrap_or('\u{fffd}')
    }

    /// The embedded inputs `[batch, steps, emb]` of equally long rows.
    pub fn embed(&self, rows: &[&[u32]]) -> Result<Tensor> {
        let steps = rows.first().map_or(0, |r| r.len());
        if rows.iter().any(|r| r.len() != steps) || steps == 0 {
            bail!("character rows must be non-empty and equally long");
        }
        let flat: Vec<u32> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        let ids = Tensor::from_vec(flat, (rows.len(), steps), &self.device)?;
        Ok(self.embedding.forward(&ids)?)
    }

    /// Reads `rows` (equally long) from `state` (zeros when `None`): the
    /// hidden states `[batch, steps, units]` of the last layer and the state
    /// after the last step.
    pub fn read(&self, rows: &[&[u32]], state: Option<&RnnState>) -> Result<(Tensor, RnnState)> {
        let x = self.embed(rows)?;
        let out = self.rnn.forward_with(&x, None, state)?;
        Ok((out.output, out.state))
    }

    /// Next-character logits `[n, vocab]` from hidden states `[n, units]`.
    pub fn logits(&self, h: &Tensor) -> Result<Tensor> {
        match &self.packed_head {
            Some(p) => Ok(p.forward(&h.to_dtype(DType::F32)?)?),
            None => Ok(self.head.forward(h)?),
        }
    }

    /// Bits per character of `text`, read as `streams` parallel slices
    /// (each from a zero state, carried across windows of `window`
    /// characters), as `scripts/train_charlm.py` evaluates. `progress` gets
    /// the characters scored so far.
    pub fn bits_per_char(
        &self,
        text: &str,
        streams: usize,
        window: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<f64> {
        let ids = self.encode(text);
        let streams = streams.max(1);
        let n = ids.len() / streams;
        if n < 2 {
            bail!(
                "the text is too short to score: it needs at least {} characters",
                2 * streams
            );
        }
        let rows: Vec<&[u32]> = ids.chunks_exact(n).take(streams).collect();
        let (mut state, mut nats, mut count) = (None, 0f64, 0usize);
        let mut i = 0;
        while i < n - 1 {
            let j = (i + window.max(1)).min(n - 1);
            let xs: Vec<&[u32]> = rows.iter().map(|r| &r[i..j]).collect();
            let (h, s) = self.read(&xs, state.as_ref())?;
            state = Some(s);
            let logits = self.logits(&h.flatten_to(1)?)?;
            let logp = candle_nn::ops::log_softmax(&logits.to_dtype(DType::F32)?, D::Minus1)?
                .to_vec2::<f32>()?;
            for (r, row) in rows.iter().enumerate() {
                for t in i..j {
                    nats -= logp[r * (j - i) + (t - i)][row[t + 1] as usize] as f64;
                }
            }
            count += streams * (j - i);
            progress(count);
            i = j;
        }
        Ok(nats / count as f64 / std::f64::consts::LN_2)
    }

    /// Writes a continuation of `prompt`, calling `emit` with each character
    /// as soon as it is sampled. The prompt is read once; every further
    /// step feeds one character and carries the state.
    pub fn generate(
        &self,
        prompt: &str,
        sampling: &Sampling,
        mut emit: impl FnMut(char) -> Result<()>,
    ) -> Result<String> {
        let mut rng = StdRng::seed_from_u64(sampling.seed);
        // An empty prompt starts after a line break, as a text would.
        let ids = match self.encode(prompt) {
            ids if ids.is_empty() => self.encode("\n"),
            ids => ids,
        };
        let (h, mut state) = self.read(&[&ids], None)?;
        let mut last = h.get(0)?.get(ids.len() - 1)?.unsqueeze(0)?;
        let mut out = String::new();
        for _ in 0..sampling.max_chars {
            let logits = self.logits(&last)?.to_dtype(DType::F32)?.flatten_all()?;
            let id = sample(&logits.to_vec1::<f32>()?, sampling, &mut rng);
            let ch = self.char_of(id);
            emit(ch)?;
            out.push(ch);
            let (h, s) = self.read(&[&[id]], Some(&state))?;
            state = s;
            last = h.get(0)?;
        }
        Ok(out)
    }
}

/// Draws an id from logits: the likeliest at temperature 0, else softmax
/// of `logits / temperature` over the `top_k` likeliest (all when 0).
fn sample(logits: &[f32], s: &Sampling, rng: &mut StdRng) -> u32 {
    let mut order: Vec<usize> = (1..logits.len()).collect(); // never the unknown id
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if s.temperature <= 0.0 || order.len() == 1 {
        return order[0] as u32;
    }
    if s.top_k > 0 {
        order.truncate(s.top_k);
    }
    let top = logits[order[0]];
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| (((logits[i] - top) / s.temperature) as f64).exp())
        .collect();
    let mut r = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (&i, w) in order.iter().zip(&weights) {
        r -= w;
        if r <= 0.0 {
            return i as u32;
        }
    }
    order[order.len() - 1] as u32
}

/// Sampling settings a person can get wrong, as usage errors.
pub fn check_sampling(s: &Sampling) -> Result<()> {
    if !s.temperature.is_finite() || s.temperature < 0.0 {
        return Err(crate::error::usage(format!(
            "--temperature must be a number ≥ 0 (0 = always the likeliest character), not {}",
            s.temperature
        )));
    }
    if s.max_chars > 1_000_000 {
        return Err(crate::error::usage(
            "--max-chars is at most 1000000 characters",
        ));
    }
    Ok(())
}

impl CharLm {
    /// The last layer's hidden state `h` and memory cell `c` after every
    /// character of `text`, as `[chars, units]` host rows in text order.
    /// The text is read as `streams` parallel slices (each from a zero
    /// state), one character per step so that `c` is seen at every step.
    /// A tail shorter than a slice is dropped; the count read is returned.
    pub fn states(
        &self,
        text: &str,
        streams: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<States> {
        let ids = self.encode(text);
        let streams = streams.clamp(1, ids.len().max(1));
        let n = ids.len() / streams;
        if n == 0 {
            bail!("no characters to read");
        }
        let units = self.config.units;
        let rows: Vec<&[u32]> = ids.chunks_exact(n).take(streams).collect();
        // One step at a time is one small matmul per layer: too little for
        // the kernel's own threads, so groups of streams run side by side.
        let groups = crate::nn::threads::budget().min(streams).max(1);
        let per = streams.div_ceil(groups);
        let done = std::sync::atomic::AtomicUsize::new(0);
        let parts: Vec<Result<(Vec<f32>, Vec<f32>)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = rows
                .chunks(per)
                .map(|group| {
                    let done = &done;
                    scope.spawn(move || {
                        crate::nn::threads::with_budget(1, || self.record(group, n, done))
                    })
                })
                .collect();
            let mut last = 0;
            while handles.iter().any(|h| !h.is_finished()) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                let now = done.load(std::sync::atomic::Ordering::Relaxed);
                if now != last {
                    progress(now);
                    last = now;
                }
            }
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a reader thread failed")))
                })
                .collect()
        });
        let (mut h, mut c) = (Vec::new(), Vec::new());
        for part in parts {
            let (ph, pc) = part?;
            h.extend(ph);
            c.extend(pc);
        }
        let chars: Vec<char> = text.chars().collect();
        let slices = chars[..streams * n]
            .chunks(n)
            .map(|s| s.iter().collect())
            .collect();
        Ok(States {
            slices,
            units,
            h,
            c,
        })
    }
}

impl CharLm {
    /// `h` and `c` of the last layer after each of the first `n` steps of
    /// each row, rows one after the other; `done` counts characters read.
    fn record(
        &self,
        rows: &[&[u32]],
        n: usize,
        done: &std::sync::atomic::AtomicUsize,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let units = self.config.units;
        let mut h = vec![0f32; rows.len() * n * units];
        let mut c = vec![0f32; rows.len() * n * units];
        let mut state: Option<RnnState> = None;
        let layer = self.config.num_layers - 1;
        for t in 0..n {
            let xs: Vec<[u32; 1]> = rows.iter().map(|r| [r[t]]).collect();
            let xs: Vec<&[u32]> = xs.iter().map(|x| &x[..]).collect();
            let (_, s) = self.read(&xs, state.as_ref())?;
            let hv = s.h[layer].to_dtype(DType::F32)?.to_vec2::<f32>()?;
            let cells = s.c.as_ref().ok_or_else(|| anyhow!("an LSTM state has c"))?;
            let cv = cells[layer].to_dtype(DType::F32)?.to_vec2::<f32>()?;
            for r in 0..rows.len() {
                let at = (r * n + t) * units;
                h[at..at + units].copy_from_slice(&hv[r]);
                c[at..at + units].copy_from_slice(&cv[r]);
            }
            state = Some(s);
            done.fetch_add(rows.len(), std::sync::atomic::Ordering::Relaxed);
        }
        Ok((h, c))
    }
}

/// What [`CharLm::states`] recorded: per character of the slices (in
/// order), `units` values of `h` and of `c`.
pub struct States {
    /// The parallel slices the text was read in, each from a zero state.
    pub slices: Vec<String>,
    pub units: usize,
    pub h: Vec<f32>,
    pub c: Vec<f32>,
}

impl CharLm {
    /// Records every quantity of layer `layer` over `text`, one step per
    /// character, for `zoo inspect`; the answer is the likeliest next
    /// character.
    pub fn inspect(&self, text: &str, layer: usize) -> Result<crate::inspect::Inspection> {
        let ids = self.encode(text);
        if ids.is_empty() {
            bail!("empty text: nothing to inspect");
        }
        let x = self.embed(&[&ids])?.to_dtype(DType::F32)?;
        let trace = self.rnn.trace(&x, layer, 0)?;
        let (h, _) = self.read(&[&ids], None)?;
        let last = h.get(0)?.get(ids.len() - 1)?.unsqueeze(0)?;
        let probs = candle_nn::ops::softmax(&self.logits(&last)?.to_dtype(DType::F32)?, D::Minus1)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let best = (1..probs.len())
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap_or(0);
        Ok(crate::inspect::Inspection {
            model: self.config.name.clone(),
            layer_name: "rnn".into(),
            tokens: text.chars().map(|c| c.to_string()).collect(),
            trace,
            importance: None,
            importance_rule: String::new(),
            importance_sides: None,
            attention: None,
            answer: format!(
                "next character: {:?} ({:.3})",
                self.char_of(best as u32),
                probs[best]
            ),
            shape: crate::inspect::LayerShape::of(self.rnn.config(), layer, true),
        })
    }
}
