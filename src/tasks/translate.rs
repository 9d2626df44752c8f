//! Encoder-decoder with additive attention (Bahdanau et al. 2015): a
//! bidirectional GRU reads the source, a GRU decoder writes the target one
//! token at a time, attending over the source; input and output lengths
//! differ.

use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Embedding, Linear, Module, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::model::ModelDir;
use crate::nn::{CellKind, MergeMode, Rnn, RnnConfig, RnnState};
use crate::tasks::language::{self, Language};
use crate::tasks::seen::{Novelty, SeenWords};
use crate::tasks::sentences;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TranslateConfig {
    pub name: String,
    pub source_lang: String,
    pub target_lang: String,
    pub vocab_size: usize,
    pub embedding_dim: usize,
    pub encoder_units: usize,
    pub decoder_units: usize,
    pub attention_dim: usize,
    pub pad_id: u32,
    pub unk_id: u32,
    pub bos_id: u32,
    pub eos_id: u32,
    /// Longer inputs are refused (the CLI splits them into sentences first).
    pub max_source_tokens: usize,
    /// Decoding stops after `max_len_a * source_tokens + max_len_b` tokens.
    pub max_len_a: f32,
    pub max_len_b: usize,
    pub beam_size: usize,
    /// Hypotheses are ranked by `log p / length^length_penalty`.
    pub length_penalty: f32,
    /// No output repeats an n-gram of this many tokens (0 = off): the
    /// models otherwise fall into loops on long inputs ("in der Nähe von
    /// zwei Jahren" six times).
    #[serde(default = "default_no_repeat_ngram")]
    pub no_repeat_ngram: usize,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

fn default_no_repeat_ngram() -> usize {
    4
}

/// The tokens that would make `toks` repeat one of its own n-grams
/// (fairseq's `no_repeat_ngram_size`); none when `n` is 0.
fn banned_tokens(toks: &[u32], n: usize) -> Vec<u32> {
    if n == 0 || toks.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &toks[toks.len() + 1 - n..];
    toks.windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect()
}

/// One translation. As JSON: `translation`, `score` (null for greedy),
/// the `oov` fraction of the source and its `unseen` one (see
/// [`crate::tasks::seen`]).
#[derive(Debug, Clone, Serialize)]
pub struct Translation {
    #[serde(rename = "translation")]
    pub text: String,
    #[serde(skip)]
    pub ids: Vec<u32>,
    /// Sum of token log-probabilities (including `</s>` when produced).
    #[serde(skip)]
    pub log_prob: f32,
    /// `log_prob / length^length_penalty`, what beam search ranks by.
    #[serde(serialize_with = "crate::driver::ser_round4")]
    pub score: f32,
    /// Fraction of source tokens the vocabulary does not know.
    #[serde(serialize_with = "crate::driver::ser_round4")]
    pub oov: f32,
    /// How many of the source's words the model never read in training
    /// (`None` for a model folder without `seen_words.txt`).
    #[serde(rename = "unseen", serialize_with = "crate::driver::ser_novelty")]
    pub novelty: Option<Novelty>,
    /// What the source is written in (see [`crate::tasks::language`]).
    pub language: Language,
}

impl Translation {
    fn empty() -> Self {
        Translation {
            text: String::new(),
            ids: Vec::new(),
            log_prob: 0.0,
            score: 0.0,
            oov: 0.0,
            novelty: None,
            language: Language::English,
        }
    }
}

/// A source text ready to translate: its token ids, one piece per
/// sentence (a sentence longer than the model reads at once is cut into
/// several), and the space to put before each piece's translation.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub pieces: Vec<Vec<u32>>,
    pub spaces: Vec<String>,
    pub oov: f32,
    pub novelty: Option<Novelty>,
    pub language: Language,
}

/// One member's encoder results that its decoder steps need.
struct Encoded {
    /// `[batch, src, 2H]`
    out: Tensor,
    /// `[batch, src, A]`: the source half of the attention energy.
    keys: Tensor,
}

/// One encoder-decoder network. A translator holds one, or several trained
/// with other seeds (an ensemble) that share the vocabulary.
struct Member {
    src_embedding: Embedding,
    encoder: Rnn,
    bridge: Linear,
    /// Attention `W` split into its decoder-state and encoder columns.
    att_s: Tensor,
    att_h: Tensor,
    att_b: Tensor,
    att_v: Tensor,
    tgt_embedding: Embedding,
    decoder: Rnn,
    out: OutputLayer,
}

/// The output layer: packed once for the CPU kernel, or as tensors for
/// candle's ops on other devices and dtypes.
enum OutputLayer {
    Packed(crate::nn::PackedLinear),
    /// The weight as `[in, vocab]` (transposed once at load) and the bias.
    Tensors(Tensor, Tensor),
}

impl OutputLayer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            OutputLayer::Packed(p) => p.forward(x)?,
            OutputLayer::Tensors(w, b) => x.matmul(w)?.broadcast_add(b)?,
        })
    }

    fn param_count(&self) -> usize {
        match self {
            OutputLayer::Packed(p) => p.param_count(),
            OutputLayer::Tensors(w, b) => w.elem_count() + b.elem_count(),
        }
    }
}

impl Member {
    fn new(c: &TranslateConfig, name: &str, vb: VarBuilder) -> Result<Self> {
        let (e, h, d, a, v) = (
            c.embedding_dim,
            c.encoder_units,
            c.decoder_units,
            c.attention_dim,
            c.vocab_size,
        );
        let src_embedding = candle_nn::embedding(v, e, vb.pp("src_embedding"))?;
        let encoder = Rnn::new(
            RnnConfig::new(CellKind::Gru, e, h)
                .with_name(format!("{name}.encoder"))
                .with_bidirectional(MergeMode::Concat),
            vb.pp("encoder"),
        )?;
        let bridge = candle_nn::linear(2 * h, d, vb.pp("bridge"))?;
        let w = vb.pp("attention").pp("W").get((a, d + 2 * h), "weight")?;
        let att_s = w.narrow(1, 0, d)?.t()?.contiguous()?;
        let att_h = w.narrow(1, d, 2 * h)?.t()?.contiguous()?;
        let att_b = vb.pp("attention").pp("W").get(a, "bias")?;
        let att_v = vb
            .pp("attention")
            .pp("v")
            .get((1, a), "weight")?
            .t()?
            .contiguous()?;
        let tgt_embedding = candle_nn::embedding(v, e, vb.pp("tgt_embedding"))?;
        let decoder = Rnn::new(
            RnnConfig::new(CellKind::Gru, e + 2 * h, d).with_name(format!("{name}.decoder")),
            vb.pp("decoder"),
        )?;
        let out = candle_nn::linear(d + 2 * h + e, v, vb.pp("out"))?;
        let out_b = out
            .bias()
            .cloned()
            .ok_or_else(|| anyhow!("weight `out.bias` is missing"))?;
        let out = match crate::nn::PackedLinear::from_linear(out.weight(), &out_b)? {
            Some(p) => OutputLayer::Packed(p),
            None => OutputLayer::Tensors(out.weight().t()?.contiguous()?, out_b),
        };
        Ok(Self {
            src_embedding,
            encoder,
            bridge,
            att_s,
            att_h,
            att_b,
            att_v,
            tgt_embedding,
            decoder,
            out,
        })
    }

    fn param_count(&self) -> usize {
        let lin = |l: &Linear| l.weight().elem_count() + l.bias().map_or(0, |b| b.elem_count());
        self.src_embedding.embeddings().elem_count()
            + self.encoder.param_count()
            + lin(&self.bridge)
            + self.att_s.elem_count()
            + self.att_h.elem_count()
            + self.att_b.elem_count()
            + self.att_v.elem_count()
            + self.tgt_embedding.embeddings().elem_count()
            + self.decoder.param_count()
            + self.out.param_count()
    }

    /// Encodes padded ids `[batch, src]`; returns the encoder results and `s0`.
    fn encode(&self, ids: &Tensor, lengths: &[usize]) -> Result<(Encoded, Tensor)> {
        let x = self.src_embedding.forward(ids)?;
        let enc = self.encoder.forward_with(&x, Some(lengths), None)?;
        let s0 =
            crate::nn::math::tanh_tensor(&self.bridge.forward(&Tensor::cat(&enc.state.h, 1)?)?)?;
        let keys = enc
            .output
            .broadcast_matmul(&self.att_h)?
            .broadcast_add(&self.att_b)?;
        Ok((
            Encoded {
                out: enc.output,
                keys,
            },
            s0,
        ))
    }

    /// One decoder step for token ids `prev` `[n]` with states `s` `[n, D]`,
    /// where each of the `b` encoded sources (and rows of `mask` `[b, src]`)
    /// is read by `group` consecutive rows, `n = b · group` (the hypotheses
    /// of a beam read their source through a broadcast view, not a copy).
    /// Returns log-probs `[n, V]` (the logits when `log_probs` is false),
    /// the new states, the attention weights `[n, src]` and the decoder
    /// GRU's input `[n, 1, E+2H]`.
    fn step(
        &self,
        enc: &Encoded,
        mask: &Tensor,
        group: usize,
        prev: &Tensor,
        s: &Tensor,
        log_probs: bool,
    ) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
        let (keys, out) = (&enc.keys, &enc.out);
        let (b, src, a) = keys.dims3()?;
        let n = s.dim(0)?;
        if n != b * group {
            bail!("decoder step: {n} states for {b} sources of {group} rows each");
        }
        let emb = self.tgt_embedding.forward(prev)?;
        let query = s.matmul(&self.att_s)?.reshape((b, group, 1, a))?;
        let energy = crate::nn::math::tanh_tensor(&keys.unsqueeze(1)?.broadcast_add(&query)?)?;
        let scores = energy
            .reshape((n, src, a))?
            .broadcast_matmul(&self.att_v)?
            .reshape((b, group, src))?
            .broadcast_add(&mask.unsqueeze(1)?)?;
        let att = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let context = att.matmul(out)?.reshape((n, ()))?;
        let att = att.reshape((n, src))?;
        let input = Tensor::cat(&[&emb, &context], 1)?.unsqueeze(1)?;
        let init = RnnState {
            h: vec![s.clone()],
            c: None,
        };
        let s_new = self
            .decoder
            .forward_with(&input, None, Some(&init))?
            .state
            .h
            .remove(0);
        let x = Tensor::cat(&[&s_new, &context, &emb], 1)?;
        let logits = self.out.forward(&x)?;
        let scores = if log_probs {
            candle_nn::ops::log_softmax(&logits, D::Minus1)?
        } else {
            logits
        };
        Ok((scores, s_new, att, input))
    }
}

/// A step's scores from each member's logits `[n, V]` (CPU): a single
/// network's logits when only the ranking counts, else log-softmax per
/// member, and for an ensemble the log-softmax of their mean, as the
/// candle ops on other devices compute them.
fn host_scores(logits: &[Tensor], scores: Scores) -> Result<Tensor> {
    let (n, v) = logits[0].dims2()?;
    if logits.len() == 1 && scores == Scores::Ranked {
        return Ok(logits[0].clone());
    }
    let host = |t: &Tensor| -> Result<Vec<f32>> {
        Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    };
    let mut sum = host(&logits[0])?;
    log_softmax_rows(&mut sum, v);
    if logits.len() > 1 {
        for t in &logits[1..] {
            let mut x = host(t)?;
            log_softmax_rows(&mut x, v);
            sum.iter_mut().zip(&x).for_each(|(a, b)| *a += b);
        }
        let scale = (1.0 / logits.len() as f64) as f32;
        sum.iter_mut().for_each(|a| *a *= scale);
        log_softmax_rows(&mut sum, v);
    }
    Ok(Tensor::from_vec(sum, (n, v), logits[0].device())?)
}

/// The index of the largest score (the first of equals, as candle's argmax).
fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

/// In place, per row of `width`: `(x - max) - ln Σ exp(x - max)`.
fn log_softmax_rows(x: &mut [f32], width: usize) {
    for row in x.chunks_exact_mut(width.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
        let ln = sum.ln();
        row.iter_mut().for_each(|x| *x = (*x - max) - ln);
    }
}

/// What a decoder step's scores must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scores {
    /// Log-probabilities (beam search adds them up).
    LogProbs,
    /// Anything with their ranking (greedy takes the best).
    Ranked,
}

/// The encoded source batch: each member's results and the shared mask.
struct Source {
    members: Vec<Encoded>,
    /// `[batch, src]`: 0 at real tokens, -inf at padding.
    mask: Tensor,
}

impl Source {
    /// The sources at `rows`, in that order.
    fn select(&self, rows: &Tensor) -> Result<Source> {
        let members = self
            .members
            .iter()
            .map(|e| {
                Ok(Encoded {
                    out: e.out.index_select(rows, 0)?,
                    keys: e.keys.index_select(rows, 0)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Source {
            members,
            mask: self.mask.index_select(rows, 0)?,
        })
    }
}

pub struct Translator {
    pub config: TranslateConfig,
    tokenizer: tokenizers::Tokenizer,
    members: Vec<Member>,
    device: Device,
    seen: Option<SeenWords>,
    /// `--max-len`: an absolute cap on output tokens.
    max_output: Option<usize>,
}

impl crate::device::Quantize for Translator {
    fn quantize_int8(&mut self) -> Result<()> {
        for m in &mut self.members {
            m.encoder.quantize_int8_from(1)?;
            m.decoder.quantize_int8_from(1)?;
        }
        Ok(())
    }
}

impl Translator {
    /// Loads a model folder; weights are converted to `dtype` on `device`.
    /// A folder listing several weights files is an ensemble of them.
    pub fn load(dir: &ModelDir, device: &Device, dtype: DType) -> Result<Self> {
        dir.expect_task(crate::model::TaskKind::Translate)?;
        let config: TranslateConfig = dir.config()?;
        let tokenizer = dir.tokenizer("tokenizer.json")?;
        let vbs = dir.var_builders(dtype, device)?;
        let n = vbs.len();
        let members = vbs
            .into_iter()
            .enumerate()
            .map(|(i, vb)| {
                let name = if n == 1 {
                    config.name.clone()
                } else {
                    format!("{}.member{}", config.name, i + 1)
                };
                Member::new(&config, &name, vb)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            tokenizer,
            members,
            device: device.clone(),
            seen: SeenWords::load(&dir.path)?,
            max_output: None,
            config,
        })
    }

    /// The words the model read in training, if its folder lists them.
    pub fn seen_words(&self) -> Option<&SeenWords> {
        self.seen.as_ref()
    }

    /// The first member's encoder (what `zoo inspect` records).
    pub fn encoder(&self) -> &Rnn {
        &self.members[0].encoder
    }

    /// The first member's decoder.
    pub fn decoder(&self) -> &Rnn {
        &self.members[0].decoder
    }

    /// How many networks are decoded together (1 unless an ensemble).
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Parameters of all members together.
    pub fn param_count(&self) -> usize {
        self.members.iter().map(Member::param_count).sum()
    }

    /// Source token ids (without special tokens).
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| anyhow!("tokenizer failed: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode_ids(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| anyhow!("detokenizer failed: {e}"))
    }

    /// `f(i)` for every member `i`, in order; an ensemble's members run on
    /// parallel CPU threads, one each (their small per-step matmuls leave
    /// cores idle).
    fn per_member<T: Send>(&self, f: impl Fn(usize) -> Result<T> + Sync + Send) -> Vec<Result<T>> {
        use rayon::prelude::*;
        if self.members.len() > 1 && self.device.is_cpu() {
            // One core each: their kernels must not split again.
            (0..self.members.len())
                .into_par_iter()
                .map(|i| crate::nn::threads::with_budget(1, || f(i)))
                .collect()
        } else {
            (0..self.members.len()).map(f).collect()
        }
    }

    /// Encodes a padded batch; returns the source and each member's `s0`.
    fn encode(&self, srcs: &[&[u32]]) -> Result<(Source, Vec<Tensor>)> {
        let batch = srcs.len();
        let lengths: Vec<usize> = srcs.iter().map(|s| s.len()).collect();
        let steps = *lengths.iter().max().unwrap_or(&0);
        if steps == 0 || lengths.contains(&0) {
            bail!("cannot translate an empty input");
        }
        let mut ids = vec![self.config.pad_id; batch * steps];
        let mut mask = vec![f32::NEG_INFINITY; batch * steps];
        for (b, s) in srcs.iter().enumerate() {
            ids[b * steps..b * steps + s.len()].copy_from_slice(s);
            mask[b * steps..b * steps + s.len()].fill(0.0);
        }
        let ids = Tensor::from_vec(ids, (batch, steps), &self.device)?;
        let (mut members, mut s0) = (Vec::new(), Vec::new());
        for r in self.per_member(|i| self.members[i].encode(&ids, &lengths)) {
            let (enc, s) = r?;
            members.push(enc);
            s0.push(s);
        }
        let mask = Tensor::from_vec(mask, (batch, steps), &self.device)?.to_dtype(s0[0].dtype())?;
        Ok((Source { members, mask }, s0))
    }

    /// One decoder step for `prev` tokens `[n]` with each member's states
    /// `[n, D]`, `group` rows per encoded source (see `Member::step`). Returns log-probs
    /// `[n, V]` (an ensemble's: the renormalised mean of its members'), the
    /// new states, and the first member's attention weights `[n, src]` and
    /// decoder input (for `inspect`). With `Scores::Ranked` a single
    /// network's scores are its logits: the same ranking, without the
    /// log-softmax over the vocabulary at every step.
    fn step(
        &self,
        src: &Source,
        group: usize,
        prev: &[u32],
        s: &[Tensor],
        scores: Scores,
    ) -> Result<(Tensor, Vec<Tensor>, (Tensor, Tensor))> {
        // On the CPU the scores are made here from each member's logits,
        // as plain loops: candle's ops on [n, 6000] tensors, run from two
        // member threads at once, spent a sixth of an ensemble's time
        // waiting on candle's own thread pool.
        let host = self.device.is_cpu();
        let log_probs = !host && (scores == Scores::LogProbs || self.members.len() > 1);
        let prev = Tensor::from_vec(prev.to_vec(), prev.len(), &self.device)?;
        let mut logps = Vec::with_capacity(self.members.len());
        let mut states = Vec::with_capacity(self.members.len());
        let mut first = None;
        let steps = self.per_member(|i| {
            self.members[i].step(&src.members[i], &src.mask, group, &prev, &s[i], log_probs)
        });
        for r in steps {
            let (logp, s_new, att, input) = r?;
            logps.push(logp);
            states.push(s_new);
            first.get_or_insert((att, input));
        }
        let logp = if host {
            host_scores(&logps, scores)?
        } else if logps.len() == 1 {
            logps.remove(0)
        } else {
            let mean = (Tensor::stack(&logps, 0)?.sum(0)? / logps.len() as f64)?;
            candle_nn::ops::log_softmax(&mean, D::Minus1)?
        };
        Ok((logp, states, first.expect("a translator has a member")))
    }

    /// Decoding always stops: after this many tokens at most.
    fn max_len(&self, src_len: usize) -> usize {
        let relative = (self.config.max_len_a * src_len as f32) as usize + self.config.max_len_b;
        self.max_output.map_or(relative, |m| relative.min(m)).max(1)
    }

    /// Caps every output at `tokens` tokens.
    pub fn set_max_output(&mut self, tokens: usize) {
        self.max_output = Some(tokens);
    }

    /// Splits source ids into pieces the model reads at once: at sentence
    /// ends (`.`, `!`, `?` tokens) where possible, else at the limit, so a
    /// long text is translated in pieces and never refused.
    pub fn pieces(&self, ids: &[u32]) -> Vec<Vec<u32>> {
        let max = self.config.max_source_tokens.max(1);
        if ids.len() <= max {
            return vec![ids.to_vec()];
        }
        let ends: Vec<u32> = [".", "!", "?"]
            .iter()
            .filter_map(|t| self.tokenizer.token_to_id(t))
            .collect();
        let mut out = Vec::new();
        let mut start = 0;
        while start < ids.len() {
            let mut end = (start + max).min(ids.len());
            if end < ids.len() {
                // The last sentence end within the window, if any.
                if let Some(cut) = (start..end).rev().find(|&i| ends.contains(&ids[i])) {
                    end = cut + 1;
                }
            }
            out.push(ids[start..end].to_vec());
            start = end;
        }
        out
    }

    /// Greedy decoding of a batch; each result's ids end with `</s>` when
    /// the model produced it before the length limit. Finished rows leave
    /// the batch, so the longest output no longer costs every row a step.
    pub fn greedy(&self, srcs: &[&[u32]]) -> Result<Vec<Vec<u32>>> {
        let (mut source, mut s) = self.encode(srcs)?;
        let limit: Vec<usize> = srcs.iter().map(|x| self.max_len(x.len())).collect();
        let mut outs: Vec<Vec<u32>> = vec![Vec::new(); srcs.len()];
        // The sources still decoding, in batch row order.
        let mut live: Vec<usize> = (0..srcs.len()).collect();
        let mut prev = vec![self.config.bos_id; srcs.len()];
        for t in 0..*limit.iter().max().unwrap_or(&0) {
            let (scores, s_new, _) = self.step(&source, 1, &prev, &s, Scores::Ranked)?;
            s = s_new;
            let best = scores.argmax(D::Minus1)?.to_vec1::<u32>()?;
            let mut keep = Vec::with_capacity(live.len());
            for (row, (&b, &tok)) in live.iter().zip(&best).enumerate() {
                let banned = banned_tokens(&outs[b], self.config.no_repeat_ngram);
                let tok = if banned.contains(&tok) {
                    let mut row_scores = scores.get(row)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                    banned
                        .iter()
                        .for_each(|&x| row_scores[x as usize] = f32::NEG_INFINITY);
                    argmax(&row_scores)
                } else {
                    tok
                };
                outs[b].push(tok);
                if tok != self.config.eos_id && t + 1 < limit[b] {
                    keep.push(row);
                }
            }
            if keep.is_empty() {
                break;
            }
            if keep.len() < live.len() {
                let rows = self.index(keep.iter().map(|&r| r as u32))?;
                source = source.select(&rows)?;
                s = s
                    .iter()
                    .map(|m| m.index_select(&rows, 0))
                    .collect::<candle_core::Result<_>>()?;
                live = keep.iter().map(|&r| live[r]).collect();
            }
            prev = live
                .iter()
                .map(|&b| *outs[b].last().expect("a token"))
                .collect();
        }
        Ok(outs)
    }

    /// Beam search for each source, as `scripts/eval_translate.py` runs it
    /// for one: each step ranks the best `2·beam` (hypothesis, token)
    /// continuations and walks them best first; one ending in `</s>` is
    /// finished with score `log p / len^length_penalty` (len counts `</s>`),
    /// any other stays live until `beam` are live. A search stops once
    /// `beam` hypotheses are finished or at the length limit (live ones are
    /// then finished too). The sources are searched together: every step
    /// runs the live hypotheses of all unfinished ones as one batch, `beam`
    /// rows per source (fewer live ones are padded with copies whose
    /// results are ignored).
    pub fn beam_batch(&self, srcs: &[&[u32]], beam: usize) -> Result<Vec<Translation>> {
        struct Search {
            live: Vec<(Vec<u32>, f32)>,
            finished: Vec<(Vec<u32>, f32, f32)>, // ids, log p, score
            limit: usize,
        }
        let beam = beam.clamp(1, self.config.vocab_size.max(1));
        let (mut source, s0) = self.encode(srcs)?;
        let norm = |lp: f32, len: usize| {
            (lp as f64 / (len.max(1) as f64).powf(self.config.length_penalty as f64)) as f32
        };
        let mut searches: Vec<Search> = srcs
            .iter()
            .map(|x| Search {
                live: vec![(Vec::new(), 0.0)],
                finished: Vec::new(),
                limit: self.max_len(x.len()),
            })
            .collect();
        // `active[j]`: the search whose source is row j of `source`, read
        // by state rows j·beam .. (j+1)·beam.
        let mut active: Vec<usize> = (0..srcs.len()).collect();
        let spread = self.index(
            active
                .iter()
                .flat_map(|&j| std::iter::repeat_n(j as u32, beam)),
        )?;
        let mut s: Vec<Tensor> = s0
            .iter()
            .map(|t| t.index_select(&spread, 0))
            .collect::<candle_core::Result<_>>()?;
        let k = 2 * beam;
        for t in 0.. {
            let prev: Vec<u32> = active
                .iter()
                .flat_map(|&j| {
                    let live = &searches[j].live;
                    (0..beam).map(move |r| {
                        let toks = &live[r.min(live.len() - 1)].0;
                        *toks.last().unwrap_or(&self.config.bos_id)
                    })
                })
                .collect();
            let (logp, s_new, _) = self.step(&source, beam, &prev, &s, Scores::LogProbs)?;
            let mut logp = logp.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            let (mut keep, mut still) = (Vec::new(), Vec::new());
            for (j, &sj) in active.iter().enumerate() {
                let search = &mut searches[sj];
                for (i, (toks, _)) in search.live.iter().enumerate() {
                    for x in banned_tokens(toks, self.config.no_repeat_ngram) {
                        logp[j * beam + i][x as usize] = f32::NEG_INFINITY;
                    }
                }
                let rows = &logp[j * beam..j * beam + search.live.len()];
                // The global top 2·beam lies within each row's top 2·beam.
                let mut cands: Vec<(usize, u32, f32)> = Vec::with_capacity(rows.len() * k);
                for (i, row) in rows.iter().enumerate() {
                    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
                    let kk = k.min(idx.len());
                    idx.select_nth_unstable_by(kk - 1, |a, b| {
                        row[*b as usize].total_cmp(&row[*a as usize])
                    });
                    for &tok in &idx[..kk] {
                        cands.push((i, tok, search.live[i].1 + row[tok as usize]));
                    }
                }
                cands.sort_by(|a, b| b.2.total_cmp(&a.2));
                cands.truncate(k);
                let mut next: Vec<(Vec<u32>, f32)> = Vec::with_capacity(beam);
                let mut from: Vec<usize> = Vec::with_capacity(beam);
                for (i, tok, lp) in cands {
                    let mut toks = search.live[i].0.clone();
                    toks.push(tok);
                    if tok == self.config.eos_id {
                        let score = norm(lp, toks.len());
                        search.finished.push((toks, lp, score));
                    } else {
                        next.push((toks, lp));
                        from.push(i);
                        if next.len() == beam {
                            break;
                        }
                    }
                }
                search.live = next;
                if search.finished.len() >= beam || search.live.is_empty() {
                    search.live.clear();
                } else if t + 1 >= search.limit {
                    for (toks, lp) in search.live.drain(..) {
                        let score = norm(lp, toks.len());
                        search.finished.push((toks, lp, score));
                    }
                } else {
                    still.push(j);
                    keep.extend((0..beam).map(|r| (j * beam + from[r.min(from.len() - 1)]) as u32));
                }
            }
            if still.is_empty() {
                break;
            }
            if still.len() < active.len() {
                // Finished sources leave the batch: one copy of the rows left.
                source = source.select(&self.index(still.iter().map(|&j| j as u32))?)?;
                active = still.iter().map(|&j| active[j]).collect();
            }
            let keep = self.index(keep.into_iter())?;
            s = s_new
                .iter()
                .map(|t| t.index_select(&keep, 0))
                .collect::<candle_core::Result<_>>()?;
        }
        searches
            .into_iter()
            .map(|search| {
                // The first of the best, as Python's strict `>` keeps it.
                let mut best: Option<(Vec<u32>, f32, f32)> = None;
                for f in search.finished {
                    if best.as_ref().is_none_or(|b| f.2 > b.2) {
                        best = Some(f);
                    }
                }
                let (ids, log_prob, score) =
                    best.ok_or_else(|| anyhow!("beam search produced nothing"))?;
                Ok(Translation {
                    text: self.decode_ids(&ids)?,
                    ids,
                    log_prob,
                    score,
                    oov: 0.0,
                    novelty: None,
                    language: Language::English,
                })
            })
            .collect()
    }

    /// Beam search for one source (see `beam_batch`).
    pub fn beam(&self, src: &[u32], beam: usize) -> Result<Translation> {
        Ok(self.beam_batch(&[src], beam)?.remove(0))
    }

    /// Row indices as a tensor on the model's device.
    fn index(&self, rows: impl Iterator<Item = u32>) -> Result<Tensor> {
        let rows: Vec<u32> = rows.collect();
        let n = rows.len();
        Ok(Tensor::from_vec(rows, n, &self.device)?)
    }

    /// Records the encoder (direction `dir`) or the decoder on `text`, with
    /// the greedy translation's attention matrix. In an ensemble this is the
    /// first member, fed the ensemble's output tokens.
    pub fn inspect(
        &self,
        text: &str,
        part: &str,
        layer: usize,
        dir: usize,
    ) -> Result<crate::inspect::Inspection> {
        let src = self.encode_text(text)?;
        if src.is_empty() {
            bail!("empty text: nothing to inspect");
        }
        let piece = |id: &u32| {
            self.tokenizer
                .id_to_token(*id)
                .unwrap_or_else(|| format!("#{id}"))
        };
        let src_tokens: Vec<String> = src.iter().map(piece).collect();
        // Greedy decoding, keeping each step's decoder input and attention.
        let (source, s0) = self.encode(&[&src])?;
        let (mut s, mut prev) = (s0.clone(), self.config.bos_id);
        let (mut inputs, mut rows, mut out) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..self.max_len(src.len()) {
            let (logp, s_new, (att, input)) = self.step(&source, 1, &[prev], &s, Scores::Ranked)?;
            s = s_new;
            prev = logp.argmax(D::Minus1)?.to_vec1::<u32>()?[0];
            inputs.push(input);
            rows.push(att.to_dtype(DType::F32)?.squeeze(0)?.to_vec1::<f32>()?);
            out.push(prev);
            if prev == self.config.eos_id {
                break;
            }
        }
        let out_tokens: Vec<String> = out.iter().map(piece).collect();
        let (layer_name, tokens, trace) = match part {
            "encoder" => {
                let x = self.members[0].src_embedding.forward(&Tensor::from_vec(
                    src.clone(),
                    (1, src.len()),
                    &self.device,
                )?)?;
                (
                    "encoder",
                    src_tokens.clone(),
                    self.encoder().trace(&x.to_dtype(DType::F32)?, layer, dir)?,
                )
            }
            "decoder" => {
                let x = Tensor::cat(&inputs, 1)?.to_dtype(DType::F32)?;
                let h0 = s0[0].to_dtype(DType::F32)?.squeeze(0)?.to_vec1::<f32>()?;
                (
                    "decoder",
                    out_tokens.clone(),
                    self.decoder().trace_from(&x, layer, dir, Some(&h0))?,
                )
            }
            other => bail!("no part `{other}` in a translator: use encoder or decoder"),
        };
        Ok(crate::inspect::Inspection {
            model: self.config.name.clone(),
            layer_name: layer_name.into(),
            tokens,
            trace,
            importance: None,
            importance_rule: "variance of h over the tokens".into(),
            importance_sides: None,
            attention: Some(crate::inspect::Attention {
                source: src_tokens,
                target: out_tokens,
                weights: rows,
            }),
            answer: self.decode_ids(&out)?,
            shape: crate::inspect::LayerShape::of(
                if part == "encoder" {
                    self.encoder().config()
                } else {
                    self.decoder().config()
                },
                layer,
                true,
            ),
        })
    }

    /// Greedy translations of many texts, batched by source length (the
    /// shared driver); an empty text translates to an empty line.
    pub fn greedy_batch(&self, texts: &[&str], batch_size: usize) -> Vec<Result<String>> {
        use crate::driver::{run_texts, Batching, Outcome};
        let task = Decoding {
            model: self,
            beam: 1,
        };
        run_texts(&task, texts, Batching::items(batch_size))
            .into_iter()
            .map(|o| match o {
                Outcome::Done(t) => Ok(t.text),
                Outcome::Empty => Ok(String::new()),
                Outcome::Failed(e) => Err(anyhow!("{e}")),
            })
            .collect()
    }

    /// Translates one text: greedy when `beam` is 1; a text longer than the
    /// model reads is translated piece by piece.
    pub fn translate(&self, text: &str, beam: usize) -> Result<Translation> {
        self.translate_source(&self.source(text)?, beam)
    }

    /// A text's source ids, a piece per sentence: the models learned to
    /// stop after one sentence, so a paragraph read whole loses the rest.
    pub fn source(&self, text: &str) -> Result<SourceText> {
        let (mut pieces, mut spaces) = (Vec::new(), Vec::new());
        let (mut unknown, mut tokens) = (0, 0);
        for (k, sentence) in sentences::split(text).into_iter().enumerate() {
            let ids = self.encode_text(sentence.text)?;
            unknown += ids.iter().filter(|&&i| i == self.config.unk_id).count();
            tokens += ids.len();
            for (j, piece) in self
                .pieces(&ids)
                .into_iter()
                .filter(|p| !p.is_empty())
                .enumerate()
            {
                let space = match (k, j) {
                    (0, 0) => "",
                    (_, 0) => sentence.space_before,
                    _ => " ",
                };
                spaces.push(space.to_string());
                pieces.push(piece);
            }
        }
        Ok(SourceText {
            oov: unknown as f32 / tokens.max(1) as f32,
            novelty: self.seen.as_ref().map(|w| w.novelty(text)),
            language: language::detect(text),
            pieces,
            spaces,
        })
    }

    fn translate_source(&self, src: &SourceText, beam: usize) -> Result<Translation> {
        Ok(self.decode_batch(&[src], beam)?.remove(0))
    }
}

/// A translator with a beam width: the task the driver runs.
pub struct Decoding<'a> {
    pub model: &'a Translator,
    /// 1 = greedy.
    pub beam: usize,
}

impl crate::driver::Task for Decoding<'_> {
    type Encoded = SourceText;
    type Output = Translation;

    fn encode(&self, text: &str) -> Result<SourceText> {
        self.model.source(text)
    }

    fn length(&self, item: &SourceText) -> usize {
        item.pieces.iter().map(Vec::len).sum()
    }

    fn run(&self, batch: &[&SourceText]) -> Result<Vec<Translation>> {
        self.model.decode_batch(batch, self.beam)
    }
}

impl Translator {
    /// Translates sources together: every piece of every source is decoded
    /// in one batch, greedy (`beam` 1) or by beam search.
    pub fn decode_batch(&self, batch: &[&SourceText], beam: usize) -> Result<Vec<Translation>> {
        let model = self;
        let pieces: Vec<&[u32]> = batch
            .iter()
            .flat_map(|s| s.pieces.iter().map(|p| &p[..]))
            .collect();
        // Per piece: ids, log p and score (NaN for greedy, which keeps none).
        let mut decoded = if pieces.is_empty() {
            Vec::new()
        } else if beam > 1 {
            model
                .beam_batch(&pieces, beam)?
                .into_iter()
                .map(|t| (t.ids, t.log_prob, t.score))
                .collect()
        } else {
            model
                .greedy(&pieces)?
                .into_iter()
                .map(|ids| (ids, f32::NAN, f32::NAN))
                .collect::<Vec<_>>()
        }
        .into_iter();
        batch
            .iter()
            .map(|s| {
                let mut out = Translation::empty();
                out.oov = s.oov;
                out.novelty = s.novelty;
                out.language = s.language;
                for space in &s.spaces {
                    let (ids, log_prob, score) = decoded.next().expect("one output per piece");
                    out.text.push_str(space);
                    out.text.push_str(&model.decode_ids(&ids)?);
                    out.ids.extend(ids);
                    out.log_prob += log_prob;
                    out.score += score;
                }
                Ok(out)
            })
            .collect()
    }
}
