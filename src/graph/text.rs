//! Raw text to the input ids of a graph model: a Hugging Face
//! `tokenizer.json`, or a word vocabulary as Keras' `TextVectorization`
//! builds it (lower-case, strip punctuation, split on whitespace).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// config.json `text`: which file turns text into ids, and where padding goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    #[serde(default)]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub vocab: Option<String>,
    #[serde(default)]
    pub padding: Padding,
}

/// Which end of a short sequence gets the padding ids, as the model was
/// trained: Keras' `pad_sequences` pads `pre` by default, TextVectorization
/// and PyTorch's `pad_sequence` pad `post`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    Pre,
    #[default]
    Post,
}

/// One token per line, line `i` is id `i`; as `get_vocabulary()` lists
/// it: the padding token `""` (an empty line), then `[UNK]`, then words.
#[derive(Debug, Clone)]
pub struct Vocab {
    ids: HashMap<String, u32>,
    unk: u32,
}

impl Vocab {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| anyhow!("the vocabulary is not UTF-8"))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut ids = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let w = line.trim_end_matches('\r');
            ids.entry(w.to_string()).or_insert(i as u32);
        }
        let unk = *ids.get("[UNK]").ok_or_else(|| {
            anyhow!("no `[UNK]` line: expected TextVectorization's get_vocabulary() order")
        })?;
        if ids.len() < 2 {
            bail!("the vocabulary is empty");
        }
        Ok(Vocab { ids, unk })
    }

    /// Keras' default `standardize="lower_and_strip_punctuation"`, then
    /// `split="whitespace"`.
    pub fn words(text: &str) -> Vec<String> {
        const PUNCT: &str = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'";
        text.to_lowercase()
            .chars()
            .filter(|c| !PUNCT.contains(*c))
            .collect::<String>()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Ids and how many were unknown.
    pub fn encode(&self, text: &str) -> (Vec<u32>, usize) {
        let mut unknown = 0;
        let ids = Self::words(text)
            .iter()
            .map(|w| match self.ids.get(w) {
                Some(&i) if i != self.unk => i,
                _ => {
                    unknown += 1;
                    self.unk
                }
            })
            .collect();
        (ids, unknown)
    }
}

/// Raw text to ids, by whichever the model carries.
pub enum TextEncoder {
    Tokenizer(Box<tokenizers::Tokenizer>),
    Vocab(Vocab),
}

/// One text as ids, with the words (or pieces) they came from.
pub struct Encoded {
    pub ids: Vec<u32>,
    pub tokens: Vec<String>,
    /// Fraction of tokens the model does not know.
    pub oov: f64,
}

impl TextEncoder {
    pub fn load(dir: &Path, cfg: &TextConfig) -> Result<Self> {
        match (&cfg.tokenizer, &cfg.vocab) {
            (Some(t), _) => {
                let p = dir.join(t);
                let tok = tokenizers::Tokenizer::from_file(&p)
                    .map_err(|e| anyhow!("cannot read the tokenizer {} ({e})", p.display()))?;
                Ok(TextEncoder::Tokenizer(Box::new(tok)))
            }
            (None, Some(v)) => {
                let p = dir.join(v);
                let bytes =
                    std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
                Ok(TextEncoder::Vocab(
                    Vocab::parse(&bytes).with_context(|| p.display().to_string())?,
                ))
            }
            (None, None) => bail!("config.json `text` names neither a tokenizer nor a vocab"),
        }
    }

    pub fn encode(&self, text: &str) -> Result<Encoded> {
        match self {
            TextEncoder::Vocab(v) => {
                let (ids, unknown) = v.encode(text);
                let n = ids.len();
                Ok(Encoded {
                    ids,
                    tokens: Vocab::words(text),
                    oov: if n == 0 {
                        0.0
                    } else {
                        unknown as f64 / n as f64
                    },
                })
            }
            TextEncoder::Tokenizer(t) => {
                let e = t
                    .encode(text, true)
                    .map_err(|e| anyhow!("cannot tokenize ({e})"))?;
                let unk = t.token_to_id("[UNK]").or_else(|| t.token_to_id("<unk>"));
                let ids = e.get_ids().to_vec();
                let unknown = unk.map_or(0, |u| ids.iter().filter(|&&i| i == u).count());
                let n = ids.len();
                Ok(Encoded {
                    tokens: e.get_tokens().to_vec(),
                    ids,
                    oov: if n == 0 {
                        0.0
                    } else {
                        unknown as f64 / n as f64
                    },
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocab_reads_text_like_text_vectorization() {
        let v = Vocab::parse(b"\n[UNK]\nthe\nmovie\nwas\ngreat\n").unwrap();
        let (ids, unknown) = v.encode("The movie was GREAT!!  Really.");
        assert_eq!(ids, vec![2, 3, 4, 5, 1]);
        assert_eq!(unknown, 1);
    }

    #[test]
    fn vocab_without_unk_is_refused() {
        assert!(Vocab::parse(b"\nthe\n").is_err());
    }
}
