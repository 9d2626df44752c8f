//! Many-to-many: a BiLSTM over words (GloVe embeddings, a character BiLSTM
//! and a casing class per word) with a CRF on top (Lample et al. 2016).

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Embedding, Linear, Module, VarBuilder};
use serde::{Deserialize, Serialize};

use super::crf::Crf;
use crate::model::ModelDir;
use crate::nn::{CellKind, MergeMode, Rnn, RnnConfig};
use crate::tasks::language::{self, Language};
use crate::tasks::seen::{Novelty, SeenWords};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NerConfig {
    pub name: String,
    pub word_dim: usize,
    pub word_vocab_size: usize,
    pub char_dim: usize,
    pub char_vocab_size: usize,
    pub char_units: usize,
    pub max_word_chars: usize,
    #[serde(default)]
    pub char_truncation: CharTruncation,
    pub case_dim: usize,
    pub case_classes: Vec<String>,
    pub units: usize,
    pub num_layers: usize,
    pub tags: Vec<String>,
    pub tag_scheme: String,
    pub pad_id: u32,
    pub unk_id: u32,
    /// Longer lines are tagged in chunks of at most this many words.
    pub max_words: usize,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

/// Which characters of a word longer than `max_word_chars` the char
/// BiLSTM reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CharTruncation {
    /// The first `max_word_chars`.
    #[default]
    First,
    /// Half from each end: prefixes and suffixes carry the signal.
    FirstLast,
}

/// A word of the input line. Offsets count Unicode scalar values.
#[derive(Debug, Clone, Serialize)]
pub struct Word {
    pub text: String,
    pub start: usize,
    pub end: usize,
    #[serde(skip)]
    pub id: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entity {
    pub text: String,
    pub label: String,
    /// Character offsets into the line, end exclusive.
    pub start: usize,
    pub end: usize,
    /// Mean CRF marginal probability of the entity's tags.
    #[serde(serialize_with = "crate::driver::ser_round4")]
    pub score: f32,
}

/// One line's result. As JSON: its entities, the `oov` fraction and the
/// `unseen` one (see [`crate::tasks::seen`]).
#[derive(Debug, Clone, Serialize)]
pub struct Tagged {
    #[serde(skip)]
    pub words: Vec<Word>,
    #[serde(skip)]
    pub tags: Vec<String>,
    pub entities: Vec<Entity>,
    /// Fraction of the words the model's vocabulary does not know.
    #[serde(serialize_with = "crate::driver::ser_round4")]
    pub oov: f32,
    /// How many of the line's words the model never read in training
    /// (`None` for a model folder without `seen_words.txt`).
    #[serde(rename = "unseen", serialize_with = "crate::driver::ser_novelty")]
    pub novelty: Option<Novelty>,
    /// What the line is written in (see [`crate::tasks::language`]).
    pub language: Language,
}

/// A line split into words, ready to tag.
#[derive(Debug, Clone)]
pub struct Sentence {
    pub line: String,
    pub words: Vec<Word>,
}

pub struct NerModel {
    pub config: NerConfig,
    tokenizer: tokenizers::Tokenizer,
    chars: HashMap<char, u32>,
    word_embedding: Embedding,
    char_embedding: Embedding,
    char_rnn: Rnn,
    case_embedding: Embedding,
    seen: Option<SeenWords>,
    rnn: Rnn,
    emission: Linear,
    crf: Crf,
    device: Device,
}

/// The casing class of a word, as the training script computes it.
pub fn casing(word: &str) -> &'static str {
    let n = word.chars().count();
    let digits = word.chars().filter(|c| c.is_ascii_digit()).count();
    let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).collect();
    if n > 0 && digits == n {
        "numeric"
    } else if n > 0 && digits * 2 > n {
        "mostly_numeric"
    } else if !letters.is_empty() && letters.iter().all(|c| c.is_uppercase()) {
        "all_upper"
    } else if !letters.is_empty() && letters.iter().all(|c| c.is_lowercase()) {
        "all_lower"
    } else if word.chars().next().is_some_and(|c| c.is_uppercase()) {
        "init_upper"
    } else if digits > 0 {
        "contains_digit"
    } else {
        "other"
    }
}

impl crate::device::Quantize for NerModel {
    fn quantize_int8(&mut self) -> Result<()> {
        self.char_rnn.quantize_int8_from(1)?;
        Ok(self.rnn.quantize_int8_from(1)?)
    }
}

impl NerModel {
    /// Loads a model folder; weights are converted to `dtype` on `device`.
    pub fn load(dir: &ModelDir, device: &Device, dtype: DType) -> Result<Self> {
        dir.expect_task(crate::model::TaskKind::Ner)?;
        let config: NerConfig = dir.config()?;
        let tokenizer = dir.tokenizer("tokenizer.json")?;
        let chars_path = dir.file("chars.json")?;
        let chars: HashMap<String, u32> =
            serde_json::from_str(&std::fs::read_to_string(&chars_path)?)
                .map_err(|e| anyhow!("{} is not a char → id map ({e})", chars_path.display()))?;
        let chars = chars
            .into_iter()
            .filter_map(|(k, v)| {
                let mut it = k.chars();
                match (it.next(), it.next()) {
                    (Some(c), None) => Some((c, v)),
                    _ => None, // [PAD], [UNK]
                }
            })
            .collect();
        let vb = dir.var_builder(dtype, device)?;
        let mut model = Self::from_parts(config, tokenizer, chars, vb, device)?;
        model.seen = SeenWords::load(&dir.path)?;
        Ok(model)
    }

    /// The words the model read in training, if its folder lists them.
    pub fn seen_words(&self) -> Option<&SeenWords> {
        self.seen.as_ref()
    }

    fn from_parts(
        config: NerConfig,
        tokenizer: tokenizers::Tokenizer,
        chars: HashMap<char, u32>,
        vb: VarBuilder,
        device: &Device,
    ) -> Result<Self> {
        let c = &config;
        if c.tag_scheme != "BIOES" && c.tag_scheme != "BIO" {
            bail!(
                "unknown tag_scheme `{}`: expected BIOES or BIO",
                c.tag_scheme
            );
        }
        let word_embedding =
            candle_nn::embedding(c.word_vocab_size, c.word_dim, vb.pp("word_embedding"))?;
        let char_embedding =
            candle_nn::embedding(c.char_vocab_size, c.char_dim, vb.pp("char_embedding"))?;
        let char_rnn = Rnn::new(
            RnnConfig::new(CellKind::Lstm, c.char_dim, c.char_units)
                .with_name(format!("{}.char_rnn", c.name))
                .with_bidirectional(MergeMode::Concat),
            vb.pp("char_rnn"),
        )?;
        let case_embedding =
            candle_nn::embedding(c.case_classes.len(), c.case_dim, vb.pp("case_embedding"))?;
        let input = c.word_dim + 2 * c.char_units + c.case_dim;
        let rnn = Rnn::new(
            RnnConfig::new(CellKind::Lstm, input, c.units)
                .with_name(format!("{}.rnn", c.name))
                .with_num_layers(c.num_layers)
                .with_bidirectional(MergeMode::Concat),
            vb.pp("rnn"),
        )?;
        let n = c.tags.len();
        let emission = candle_nn::linear(2 * c.units, n, vb.pp("emission"))?;
        let host = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            Ok(vb
                .pp("crf")
                .get(shape, name)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        };
        let crf = Crf {
            num_tags: n,
            transitions: host("transitions", &[n, n])?,
            start: host("start", &[n])?,
            end: host("end", &[n])?,
        };
        Ok(Self {
            config,
            tokenizer,
            chars,
            word_embedding,
            char_embedding,
            char_rnn,
            case_embedding,
            seen: None,
            rnn,
            emission,
            crf,
            device: device.clone(),
        })
    }

    pub fn rnn(&self) -> &Rnn {
        &self.rnn
    }

    pub fn char_rnn(&self) -> &Rnn {
        &self.char_rnn
    }

    pub fn param_count(&self) -> usize {
        let n = self.config.tags.len();
        self.word_embedding.embeddings().elem_count()
            + self.char_embedding.embeddings().elem_count()
            + self.char_rnn.param_count()
            + self.case_embedding.embeddings().elem_count()
            + self.rnn.param_count()
            + self.emission.weight().elem_count()
            + self.emission.bias().map_or(0, |b| b.elem_count())
            + n * n
            + 2 * n
    }

    /// Splits a raw line into words with character offsets.
    pub fn words(&self, line: &str) -> Result<Vec<Word>> {
        let enc = self
            .tokenizer
            .encode_char_offsets(line, false)
            .map_err(|e| anyhow!("tokenizer failed: {e}"))?;
        let chars: Vec<char> = line.chars().collect();
        Ok(enc
            .get_ids()
            .iter()
            .zip(enc.get_offsets())
            .map(|(&id, &(start, end))| Word {
                text: chars[start..end].iter().collect(),
                start,
                end,
                id,
            })
            .collect())
    }

    fn case_id(&self, word: &str) -> u32 {
        let class = casing(word);
        self.config
            .case_classes
            .iter()
            .position(|c| c == class)
            .unwrap_or(0) as u32
    }

    fn char_ids(&self, word: &str) -> Vec<u32> {
        let ids: Vec<u32> = word
            .chars()
            .map(|c| *self.chars.get(&c).unwrap_or(&self.config.unk_id))
            .collect();
        let m = self.config.max_word_chars;
        if ids.len() <= m {
            return ids;
        }
        match self.config.char_truncation {
            CharTruncation::FirstLast => ids[..m / 2]
                .iter()
                .chain(&ids[ids.len() - (m - m / 2)..])
                .copied()
                .collect(),
            CharTruncation::First => ids[..m].to_vec(),
        }
    }

    /// Records layer `layer`, direction `dir` of the word BiLSTM on a line.
    pub fn inspect(
        &self,
        line: &str,
        layer: usize,
        dir: usize,
    ) -> Result<crate::inspect::Inspection> {
        let words = self.words(line)?;
        if words.is_empty() {
            bail!("empty text: nothing to inspect");
        }
        let x = self.features(&[&words[..]])?;
        let trace = self.rnn.trace(&x.to_dtype(DType::F32)?, layer, dir)?;
        let u = self.config.units;
        let mut importance = None;
        if layer + 1 == self.config.num_layers {
            // Signed pull towards the entity tags against `O`: the unit's
            // mean h times (mean entity-tag weight − O weight) on it.
            let w = self
                .emission
                .weight()
                .to_dtype(DType::F32)?
                .to_vec2::<f32>()?;
            let h = trace.get("hidden h").expect("every cell records h");
            let tags = &self.config.tags;
            let o = tags.iter().position(|t| t == "O");
            let ents: Vec<usize> = (0..tags.len()).filter(|&i| Some(i) != o).collect();
            importance = Some(
                (0..u)
                    .map(|j| {
                        let f = dir * u + j;
                        let went =
                            ents.iter().map(|&i| w[i][f]).sum::<f32>() / ents.len().max(1) as f32;
                        let wo = o.map_or(0.0, |i| w[i][f]);
                        let mean = (0..trace.steps).map(|t| h[t * u + j]).sum::<f32>()
                            / trace.steps as f32;
                        (went - wo) * mean
                    })
                    .collect(),
            );
        }
        Ok(crate::inspect::Inspection {
            model: self.config.name.clone(),
            layer_name: "rnn".into(),
            tokens: words.iter().map(|w| w.text.clone()).collect(),
            trace,
            importance_sides: importance.as_ref().map(|_| ("an entity tag".into(), "O".into())),
            importance,
            importance_rule: "(mean entity-tag emission weight − O weight) · mean h: > 0 pushes towards an entity"
                .into(),
            attention: None,
            answer: match self.tag_lines(&[line], 1).remove(0) {
                Ok(t) => mark_entities(line, &t.entities),
                Err(e) => format!("{e:#}"),
            },
            shape: crate::inspect::LayerShape::of(self.rnn.config(), layer, true),
        })
    }

    /// Emission scores `[words, tags]` per sentence, in one padded batch.
    pub fn emissions(&self, sentences: &[&[Word]]) -> Result<Vec<Vec<f32>>> {
        let lengths: Vec<usize> = sentences.iter().map(|s| s.len()).collect();
        let x = self.features(sentences)?;
        let out = self.rnn.forward_with(&x, Some(&lengths), None)?;
        let em = self
            .emission
            .forward(&out.output)?
            .to_dtype(DType::F32)?
            .to_vec3::<f32>()?;
        Ok(em
            .into_iter()
            .zip(&lengths)
            .map(|(rows, &l)| rows.into_iter().take(l).flatten().collect())
            .collect())
    }

    /// The word BiLSTM's input: word embedding, char BiLSTM state and casing
    /// embedding per word, `[batch, words, features]`, zero-padded.
    fn features(&self, sentences: &[&[Word]]) -> Result<Tensor> {
        let batch = sentences.len();
        let lengths: Vec<usize> = sentences.iter().map(|s| s.len()).collect();
        if lengths.contains(&0) {
            bail!("cannot tag an empty sentence");
        }
        let steps = *lengths.iter().max().unwrap_or(&0);
        let total: usize = lengths.iter().sum();
        let mut word_ids = vec![self.config.pad_id; batch * steps];
        let mut case_ids = vec![0u32; batch * steps];
        // Real words index their char features; padding points at a zero row.
        let mut slot = vec![total as u32; batch * steps];
        let mut char_seqs: Vec<Vec<u32>> = Vec::with_capacity(total);
        for (b, s) in sentences.iter().enumerate() {
            for (t, w) in s.iter().enumerate() {
                word_ids[b * steps + t] = w.id;
                case_ids[b * steps + t] = self.case_id(&w.text);
                slot[b * steps + t] = char_seqs.len() as u32;
                char_seqs.push(self.char_ids(&w.text));
            }
        }
        let dev = &self.device;
        let max_chars = char_seqs.iter().map(|c| c.len()).max().unwrap_or(1).max(1);
        let mut char_ids = vec![0u32; total * max_chars];
        for (i, c) in char_seqs.iter().enumerate() {
            char_ids[i * max_chars..i * max_chars + c.len()].copy_from_slice(c);
        }
        let char_lengths: Vec<usize> = char_seqs.iter().map(|c| c.len()).collect();
        let chars =
            self.char_embedding
                .forward(&Tensor::from_vec(char_ids, (total, max_chars), dev)?)?;
        let char_out = self
            .char_rnn
            .forward_with(&chars, Some(&char_lengths), None)?;
        let char_feat = Tensor::cat(&char_out.state.h, 1)?; // [total, 2*char_units]
        let zero = Tensor::zeros((1, char_feat.dim(1)?), char_feat.dtype(), dev)?;
        let char_feat = Tensor::cat(&[char_feat, zero], 0)?
            .index_select(&Tensor::from_vec(slot, batch * steps, dev)?, 0)?
            .reshape((batch, steps, ()))?;
        let words =
            self.word_embedding
                .forward(&Tensor::from_vec(word_ids, (batch, steps), dev)?)?;
        let case =
            self.case_embedding
                .forward(&Tensor::from_vec(case_ids, (batch, steps), dev)?)?;
        Ok(Tensor::cat(&[words, char_feat, case], 2)?)
    }

    /// Tags lines of raw text, batching by length; a line longer than
    /// `max_words` is tagged in chunks cut at sentence ends where possible.
    pub fn tag_lines(&self, lines: &[&str], batch_size: usize) -> Vec<Result<Tagged>> {
        self.tag_words(lines.iter().map(|l| self.words(l)).collect(), batch_size)
    }

    /// A word given already split (e.g. a CoNLL token): its vocabulary id
    /// after the tokenizer's normalisation.
    pub fn word(&self, text: &str, start: usize) -> Result<Word> {
        use tokenizers::{NormalizedString, Normalizer};
        let mut ns = NormalizedString::from(text);
        if let Some(n) = self.tokenizer.get_normalizer() {
            n.normalize(&mut ns)
                .map_err(|e| anyhow!("normalizer failed: {e}"))?;
        }
        let id = self
            .tokenizer
            .token_to_id(ns.get())
            .unwrap_or(self.config.unk_id);
        Ok(Word {
            text: text.to_string(),
            start,
            end: start + text.chars().count(),
            id,
        })
    }

    /// Tags word sequences (one per line or sentence), batching by length.
    pub fn tag_words(
        &self,
        words: Vec<Result<Vec<Word>>>,
        batch_size: usize,
    ) -> Vec<Result<Tagged>> {
        // (line, word range) per chunk.
        let mut chunks: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
        for (i, w) in words.iter().enumerate() {
            if let Ok(w) = w {
                for r in chunk_ranges(w, self.config.max_words.max(1)) {
                    chunks.push((i, r));
                }
            }
        }
        let mut order: Vec<usize> = (0..chunks.len()).collect();
        order.sort_by_key(|&c| std::cmp::Reverse(chunks[c].1.len()));
        let mut emissions: Vec<Option<Result<Vec<f32>>>> = chunks.iter().map(|_| None).collect();
        for group in order.chunks(batch_size.max(1)) {
            let sents: Vec<&[Word]> = group
                .iter()
                .map(|&c| {
                    let (line, r) = &chunks[c];
                    &words[*line].as_ref().expect("only lines that split")[r.clone()]
                })
                .collect();
            match self.emissions(&sents) {
                Ok(em) => {
                    for (&c, e) in group.iter().zip(em) {
                        emissions[c] = Some(Ok(e));
                    }
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    for &c in group {
                        emissions[c] = Some(Err(anyhow!("{msg}")));
                    }
                }
            }
        }
        // Chunks are in line order, so each line's parts come in word order.
        let mut per_line: Vec<Vec<Result<Vec<f32>>>> = words.iter().map(|_| Vec::new()).collect();
        for ((line, _), e) in chunks.into_iter().zip(emissions) {
            per_line[line].push(e.expect("every chunk ran"));
        }
        words
            .into_iter()
            .zip(per_line)
            .map(|(w, parts)| {
                let w = w?;
                let mut tags = Vec::with_capacity(w.len());
                let mut probs = Vec::with_capacity(w.len());
                for e in parts {
                    let e = e?;
                    let path = self.crf.viterbi(&e);
                    let marg = self.crf.marginals(&e);
                    let n = self.crf.num_tags;
                    for (t, &tag) in path.iter().enumerate() {
                        probs.push(marg[t * n + tag]);
                        tags.push(self.config.tags[tag].clone());
                    }
                }
                let entities = entities(&w, &tags, &probs);
                let unknown = w.iter().filter(|x| x.id == self.config.unk_id).count();
                Ok(Tagged {
                    oov: unknown as f32 / w.len().max(1) as f32,
                    novelty: None,
                    language: Language::English,
                    words: w,
                    tags,
                    entities,
                })
            })
            .collect()
    }
}

impl crate::driver::Task for NerModel {
    type Encoded = Sentence;
    type Output = Tagged;

    fn encode(&self, text: &str) -> Result<Sentence> {
        Ok(Sentence {
            line: text.to_string(),
            words: self.words(text)?,
        })
    }

    fn length(&self, item: &Sentence) -> usize {
        item.words.len()
    }

    fn run(&self, batch: &[&Sentence]) -> Result<Vec<Tagged>> {
        let words = batch.iter().map(|s| Ok(s.words.clone())).collect();
        self.tag_words(words, batch.len())
            .into_iter()
            .zip(batch)
            .map(|(t, s)| {
                let mut t = t?;
                fill_text(&s.line, &mut t.entities);
                t.novelty = self.seen.as_ref().map(|w| w.novelty(&s.line));
                t.language = language::detect(&s.line);
                Ok(t)
            })
            .collect()
    }
}

/// Text already split into words by single spaces (a CoNLL sentence): the
/// task `zoo eval ner` runs, so that words match the gold tags one to one.
pub struct PreTokenized<'a>(pub &'a NerModel);

impl crate::driver::Task for PreTokenized<'_> {
    type Encoded = Sentence;
    type Output = Tagged;

    fn encode(&self, text: &str) -> Result<Sentence> {
        let mut at = 0;
        let mut words = Vec::new();
        for w in text.split(' ').filter(|w| !w.is_empty()) {
            words.push(self.0.word(w, at)?);
            at += w.chars().count() + 1;
        }
        Ok(Sentence {
            line: text.to_string(),
            words,
        })
    }

    fn length(&self, item: &Sentence) -> usize {
        item.words.len()
    }

    fn run(&self, batch: &[&Sentence]) -> Result<Vec<Tagged>> {
        crate::driver::Task::run(self.0, batch)
    }
}

/// Word ranges of at most `max` words, ending after `.`, `!` or `?` when
/// one falls in the second half of a chunk.
fn chunk_ranges(words: &[Word], max: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < words.len() {
        let mut end = (start + max).min(words.len());
        if end < words.len() {
            if let Some(cut) = (start + max / 2..end)
                .rev()
                .find(|&i| matches!(words[i].text.as_str(), "." | "!" | "?"))
            {
                end = cut + 1;
            }
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// Spans from BIOES (or BIO) tags; tolerant of ill-formed sequences.
pub fn entities(words: &[Word], tags: &[String], probs: &[f32]) -> Vec<Entity> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    let close = |out: &mut Vec<Entity>, from: usize, to: usize, label: &str| {
        let score = probs[from..=to].iter().sum::<f32>() / (to - from + 1) as f32;
        out.push(Entity {
            text: String::new(),
            label: label.to_string(),
            start: words[from].start,
            end: words[to].end,
            score,
        });
    };
    for (i, tag) in tags.iter().enumerate() {
        let (prefix, label) = tag.split_once('-').unwrap_or((tag.as_str(), ""));
        // Anything but a continuation of the open span closes it.
        if let Some((s, l)) = &open {
            if !(matches!(prefix, "I" | "E") && label == l) {
                close(&mut out, *s, i - 1, l);
                open = None;
            }
        }
        match prefix {
            "S" => close(&mut out, i, i, label),
            "B" => open = Some((i, label.to_string())),
            "I" if open.is_none() => open = Some((i, label.to_string())),
            "E" => {
                let s = open.take().map_or(i, |(s, _)| s);
                close(&mut out, s, i, label);
            }
            _ => {}
        }
    }
    if let Some((s, l)) = open {
        close(&mut out, s, tags.len() - 1, &l);
    }
    out
}

/// The line with its entities marked: `[Angela Merkel](PER) met …`.
pub fn mark_entities(line: &str, entities: &[Entity]) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut s = String::with_capacity(line.len() + 16 * entities.len());
    let mut at = 0;
    for e in entities {
        s.extend(&chars[at..e.start]);
        s.push('[');
        s.extend(&chars[e.start..e.end]);
        s.push_str(&format!("]({})", e.label));
        at = e.end;
    }
    s.extend(&chars[at..]);
    s
}

/// Fills each entity's text from the line it came from.
pub fn fill_text(line: &str, ents: &mut [Entity]) {
    let chars: Vec<char> = line.chars().collect();
    for e in ents {
        e.text = chars[e.start..e.end].iter().collect();
    }
}

/// BIOES → BIO, for CoNLL-style output.
pub fn to_bio(tag: &str) -> String {
    match tag.split_once('-') {
        Some(("S", l)) => format!("B-{l}"),
        Some(("E", l)) => format!("I-{l}"),
        _ => tag.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str, start: usize) -> Word {
        Word {
            text: text.into(),
            start,
            end: start + text.chars().count(),
            id: 0,
        }
    }

    #[test]
    fn bioes_spans_become_entities_with_char_offsets() {
        let words = [
            w("Angela", 0),
            w("Merkel", 7),
            w("met", 14),
            w("Paris", 18),
            w("AG", 24),
        ];
        let tags: Vec<String> = ["B-PER", "E-PER", "O", "S-LOC", "I-ORG"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ents = entities(&words, &tags, &[0.9, 0.7, 1.0, 0.6, 0.5]);
        assert_eq!(ents.len(), 3);
        assert_eq!(
            (ents[0].start, ents[0].end, ents[0].label.as_str()),
            (0, 13, "PER")
        );
        assert!((ents[0].score - 0.8).abs() < 1e-6);
        assert_eq!(
            (ents[1].start, ents[1].end, ents[1].label.as_str()),
            (18, 23, "LOC")
        );
        assert_eq!(
            (ents[2].start, ents[2].end, ents[2].label.as_str()),
            (24, 26, "ORG")
        );
    }

    #[test]
    fn casing_classes_follow_the_training_rule() {
        assert_eq!(casing("1990"), "numeric");
        assert_eq!(casing("3.5"), "mostly_numeric");
        assert_eq!(casing("EU"), "all_upper");
        assert_eq!(casing("Müller"), "init_upper");
        assert_eq!(casing("the"), "all_lower");
        assert_eq!(casing("iPhone"), "other");
        assert_eq!(casing("A4-sized"), "init_upper");
        assert_eq!(casing(","), "other");
    }

    #[test]
    fn long_inputs_split_at_sentence_ends_without_losing_words() {
        let words: Vec<Word> = (0..25)
            .map(|i| w(if i % 7 == 6 { "." } else { "x" }, i * 2))
            .collect();
        let r = chunk_ranges(&words, 10);
        assert_eq!(r.iter().map(|r| r.len()).sum::<usize>(), 25);
        assert!(r.iter().all(|r| r.len() <= 10));
        assert_eq!(r[0], 0..7, "cut after the full stop at index 6");
    }
}
