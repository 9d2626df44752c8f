//! One driver for every task: texts in, one result per text out, in order.
//! Encoding, sorting by length, batching and putting results back in input
//! order are written once, here; the CLI, `zoo eval` and a server share it.

use anyhow::Result;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::error::one_line;
use crate::input::{Chunks, Line};

/// A pretrained model seen as text in, one result out.
pub trait Task: Sync {
    /// An input ready to run (token ids, words with offsets, ...).
    type Encoded: Send + Sync;
    /// One input's result; its fields are the task's part of a JSON record.
    type Output: Serialize + Send;

    /// Encodes one non-empty text; an error is that input's alone.
    fn encode(&self, text: &str) -> Result<Self::Encoded>;

    /// What inputs are sorted and batched by (tokens, words). An input of
    /// length 0 has an empty result and is not run.
    fn length(&self, item: &Self::Encoded) -> usize;

    /// Runs inputs of similar length together: one result each, in order.
    fn run(&self, batch: &[&Self::Encoded]) -> Result<Vec<Self::Output>>;
}

/// One input's outcome.
#[derive(Debug)]
pub enum Outcome<O> {
    Done(O),
    /// Nothing to read in the text (an empty or blank line): an empty
    /// result, not an error.
    Empty,
    Failed(String),
}

impl<O> Outcome<O> {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

/// How inputs are grouped into forward passes.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// Inputs per forward pass at most.
    pub max_items: usize,
    /// Padded length × inputs per forward pass at most, so that a few very
    /// long inputs do not make one huge batch.
    pub max_cells: usize,
}

impl Batching {
    pub fn items(max_items: usize) -> Self {
        Self {
            max_items: max_items.max(1),
            max_cells: 64 * 1024,
        }
    }
}

/// Runs `texts` through `task`: encodes each, sorts by length, runs in
/// batches and returns one outcome per text in input order. A batch that
/// fails fails only its own inputs.
pub fn run_texts<T: Task>(task: &T, texts: &[&str], batching: Batching) -> Vec<Outcome<T::Output>> {
    let mut out: Vec<Option<Outcome<T::Output>>> = texts.iter().map(|_| None).collect();
    let mut ready: Vec<(usize, T::Encoded, usize)> = Vec::with_capacity(texts.len());
    for (i, t) in texts.iter().enumerate() {
        if t.trim().is_empty() {
            out[i] = Some(Outcome::Empty);
            continue;
        }
        match task.encode(t) {
            Ok(e) => {
                let n = task.length(&e);
                if n == 0 {
                    out[i] = Some(Outcome::Empty);
                } else {
                    ready.push((i, e, n));
                }
            }
            Err(e) => out[i] = Some(Outcome::Failed(one_line(&e))),
        }
    }
    // Longest first: similar lengths share a batch, little padding.
    ready.sort_by_key(|r| std::cmp::Reverse(r.2));
    let mut start = 0;
    while start < ready.len() {
        let longest = ready[start].2.max(1);
        let fit = (batching.max_cells / longest).clamp(1, batching.max_items.max(1));
        let end = (start + fit).min(ready.len());
        let group = &ready[start..end];
        let items: Vec<&T::Encoded> = group.iter().map(|r| &r.1).collect();
        match task.run(&items) {
            Ok(results) if results.len() == group.len() => {
                for (r, o) in group.iter().zip(results) {
                    out[r.0] = Some(Outcome::Done(o));
                }
            }
            Ok(results) => {
                let msg = format!(
                    "internal error: {} results for {} inputs",
                    results.len(),
                    group.len()
                );
                for r in group {
                    out[r.0] = Some(Outcome::Failed(msg.clone()));
                }
            }
            Err(e) => {
                let msg = one_line(&e);
                for r in group {
                    out[r.0] = Some(Outcome::Failed(msg.clone()));
                }
            }
        }
        start = end;
    }
    out.into_iter()
        .map(|o| o.expect("every input has an outcome"))
        .collect()
}

/// One input and its outcome, as the driver hands it to a sink.
pub struct Record<'a, O> {
    /// Line (or argument) number, from 1.
    pub line: usize,
    pub text: &'a str,
    pub outcome: Outcome<O>,
}

/// What a sink wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Counts of a finished stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub inputs: usize,
    pub failed: usize,
}

/// Streams `inputs` through `task` chunk by chunk (each chunk what has
/// arrived, `chunk` inputs at most) and hands every record to `sink` in
/// input order; `after_chunk` runs once a chunk is written (flush,
/// progress). A line that could not be read is a failed record.
pub fn stream<T: Task>(
    task: &T,
    inputs: &mut Chunks,
    chunk: usize,
    batching: Batching,
    mut sink: impl FnMut(Record<'_, T::Output>) -> Result<Flow>,
    mut after_chunk: impl FnMut(&Chunks) -> Result<()>,
) -> Result<Totals> {
    let mut totals = Totals::default();
    while let Some(lines) = inputs.next_chunk(chunk)? {
        let readable: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.text.as_deref().ok())
            .collect();
        let mut outcomes = run_texts(task, &readable, batching).into_iter();
        for Line { number, text } in &lines {
            let (text, outcome) = match text {
                Ok(t) => (t.as_str(), outcomes.next().expect("one outcome per text")),
                Err(e) => ("", Outcome::Failed(e.clone())),
            };
            totals.inputs += 1;
            totals.failed += outcome.is_failure() as usize;
            let flow = sink(Record {
                line: *number,
                text,
                outcome,
            })?;
            if flow == Flow::Stop {
                after_chunk(inputs)?;
                return Ok(totals);
            }
        }
        after_chunk(inputs)?;
    }
    Ok(totals)
}

/// The JSON Lines object of a record, the same for every task:
/// `line`, `text`, then the task's fields, or `error` on a failed input.
pub fn record_json<O: Serialize>(record: &Record<'_, O>) -> Value {
    let mut m = Map::new();
    m.insert("line".into(), json!(record.line));
    m.insert("text".into(), json!(record.text));
    match &record.outcome {
        Outcome::Done(o) => match serde_json::to_value(o) {
            Ok(Value::Object(fields)) => m.extend(fields),
            Ok(other) => {
                m.insert("result".into(), other);
            }
            Err(e) => {
                m.insert(
                    "error".into(),
                    json!(format!("cannot serialise the result: {e}")),
                );
            }
        },
        Outcome::Empty => {}
        Outcome::Failed(e) => {
            m.insert("error".into(), json!(e));
        }
    }
    Value::Object(m)
}

/// Rounds a probability or score for output: 4 decimals say all a reader
/// can use, and JSON shows no float noise.
pub fn round4(x: f32) -> f64 {
    if x.is_finite() {
        (x as f64 * 1e4).round() / 1e4
    } else {
        x as f64
    }
}

/// `#[serde(serialize_with = "...")]` helper for `round4`.
/// A [`Novelty`](crate::tasks::seen::Novelty)'s fraction of new words,
/// rounded; `null` when the model has no word list.
pub fn ser_novelty<S: serde::Serializer>(
    n: &Option<crate::tasks::seen::Novelty>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match n {
        Some(n) => ser_round4(&n.fraction(), s),
        None => s.serialize_none(),
    }
}

pub fn ser_round4<S: serde::Serializer>(x: &f32, s: S) -> std::result::Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(round4(*x))
    } else {
        s.serialize_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upper-cases; fails on "boom"; counts chars as length.
    struct Upper;

    impl Task for Upper {
        type Encoded = String;
        type Output = String;
        fn encode(&self, text: &str) -> Result<String> {
            if text == "bad" {
                anyhow::bail!("cannot encode `bad`");
            }
            Ok(text.to_string())
        }
        fn length(&self, item: &String) -> usize {
            item.chars().count()
        }
        fn run(&self, batch: &[&String]) -> Result<Vec<String>> {
            if batch.iter().any(|s| s.as_str() == "boom") {
                anyhow::bail!("the batch failed");
            }
            Ok(batch.iter().map(|s| s.to_uppercase()).collect())
        }
    }

    #[test]
    fn results_come_back_in_input_order_whatever_the_batching() {
        let texts = ["a", "ccc", "", "bb", "bad", "dddd", "  "];
        for max_items in [1, 2, 64] {
            let out = run_texts(&Upper, &texts, Batching::items(max_items));
            let shown: Vec<String> = out
                .iter()
                .map(|o| match o {
                    Outcome::Done(s) => s.clone(),
                    Outcome::Empty => "<empty>".into(),
                    Outcome::Failed(e) => format!("<{e}>"),
                })
                .collect();
            assert_eq!(
                shown,
                [
                    "A",
                    "CCC",
                    "<empty>",
                    "BB",
                    "<cannot encode `bad`>",
                    "DDDD",
                    "<empty>"
                ],
                "batches of {max_items}"
            );
        }
    }

    #[test]
    fn a_failing_batch_fails_only_its_own_inputs() {
        let out = run_texts(&Upper, &["boom", "ok"], Batching::items(1));
        assert!(out[0].is_failure());
        assert!(matches!(&out[1], Outcome::Done(s) if s == "OK"));
    }

    #[test]
    fn long_inputs_get_smaller_batches() {
        struct Count(std::sync::Mutex<Vec<usize>>);
        impl Task for Count {
            type Encoded = usize;
            type Output = ();
            fn encode(&self, t: &str) -> Result<usize> {
                Ok(t.len())
            }
            fn length(&self, n: &usize) -> usize {
                *n
            }
            fn run(&self, b: &[&usize]) -> Result<Vec<()>> {
                self.0.lock().unwrap().push(b.len());
                Ok(vec![(); b.len()])
            }
        }
        let long = "x".repeat(1000);
        let texts: Vec<&str> = vec![long.as_str(); 10];
        let c = Count(Default::default());
        run_texts(
            &c,
            &texts,
            Batching {
                max_items: 64,
                max_cells: 3000,
            },
        );
        assert_eq!(*c.0.lock().unwrap(), vec![3, 3, 3, 1]);
    }

    #[test]
    fn json_records_share_one_schema() {
        let r = Record {
            line: 3,
            text: "hi",
            outcome: Outcome::Done(json!({"label": "x"})),
        };
        assert_eq!(
            record_json(&r).to_string(),
            r#"{"line":3,"text":"hi","label":"x"}"#
        );
        let r: Record<'_, Value> = Record {
            line: 4,
            text: "",
            outcome: Outcome::Failed("not valid UTF-8".into()),
        };
        assert_eq!(
            record_json(&r).to_string(),
            r#"{"line":4,"text":"","error":"not valid UTF-8"}"#
        );
    }

    #[test]
    fn scores_round_to_four_decimals() {
        assert_eq!(round4(0.185_807_02), 0.1858);
        assert_eq!(json!(round4(0.999_96)).to_string(), "1.0");
    }
}
