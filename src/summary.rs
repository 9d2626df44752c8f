//! `zoo summary`: a Keras-style table of a model's layers, with shapes for a
//! given batch and length and the parameter formula of every layer.

use anyhow::Result;
use serde::Serialize;

use crate::model::{ModelDir, TaskKind};
use crate::nn::CellKind;
use crate::tasks::ner::NerConfig;
use crate::tasks::sentiment::Pooling;
use crate::tasks::sentiment::SentimentConfig;
use crate::tasks::translate::TranslateConfig;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub layer: String,
    pub kind: String,
    pub units: Option<usize>,
    pub input: String,
    pub output: String,
    /// `h: [batch, units]`, `c: [batch, units]` per direction.
    pub state: String,
    pub return_sequences: Option<bool>,
    pub params: usize,
    pub formula: String,
}

fn embedding(layer: &str, vocab: usize, dim: usize, input: &str, output: &str) -> Row {
    Row {
        layer: layer.into(),
        kind: "Embedding".into(),
        units: None,
        input: input.into(),
        output: output.into(),
        state: String::new(),
        return_sequences: None,
        params: vocab * dim,
        formula: format!("vocab·dim = {vocab}·{dim}"),
    }
}

fn linear(layer: &str, i: usize, o: usize, input: &str, output: &str, bias: bool) -> Row {
    Row {
        layer: layer.into(),
        kind: "Linear".into(),
        units: Some(o),
        input: input.into(),
        output: output.into(),
        state: String::new(),
        return_sequences: None,
        params: i * o + if bias { o } else { 0 },
        formula: if bias {
            format!("(in + 1)·out = ({i} + 1)·{o}")
        } else {
            format!("in·out = {i}·{o}")
        },
    }
}

/// A PyTorch recurrent layer (two bias vectors per direction).
#[allow(clippy::too_many_arguments)]
fn recurrent(
    layer: &str,
    cell: CellKind,
    input: usize,
    units: usize,
    dirs: usize,
    in_shape: &str,
    out_shape: &str,
    return_sequences: bool,
    batch: &str,
) -> Row {
    let gates = cell.gates();
    let name = match cell {
        CellKind::Lstm => "LSTM",
        CellKind::Gru => "GRU",
        CellKind::SimpleRnn => "SimpleRNN",
    };
    let g = if gates == 1 {
        String::new()
    } else {
        format!("{gates}·")
    };
    let mut state = format!("h: [{batch}, {units}]");
    if cell == CellKind::Lstm {
        state.push_str(&format!(", c: [{batch}, {units}]"));
    }
    if dirs == 2 {
        state.push_str(" ×2 directions");
    }
    let per_dir = gates * units * (input + units + 2);
    Row {
        layer: layer.into(),
        kind: format!("{}{name}", if dirs == 2 { "Bi" } else { "" }),
        units: Some(units),
        input: in_shape.into(),
        output: out_shape.into(),
        state,
        return_sequences: Some(return_sequences),
        params: dirs * per_dir,
        formula: format!(
            "{}{g}units·(input + units + 2) = {}{g}{units}·({input} + {units} + 2)",
            if dirs == 2 { "2 × " } else { "" },
            if dirs == 2 { "2 × " } else { "" },
        ),
    }
}

/// The layers of a model folder for inputs of `batch` × `steps` tokens.
pub fn rows(dir: &ModelDir, batch: usize, steps: usize) -> Result<Vec<Row>> {
    let (b, t) = (batch.to_string(), steps.to_string());
    Ok(match dir.header.task {
        TaskKind::Graph => graph_rows(dir, batch, steps)?,
        TaskKind::Sentiment => {
            let c: SentimentConfig = dir.config()?;
            let dirs = if c.bidirectional { 2 } else { 1 };
            let mut v = vec![embedding(
                "embedding",
                c.vocab_size,
                c.embedding_dim,
                &format!("[{b}, {t}]"),
                &format!("[{b}, {t}, {}]", c.embedding_dim),
            )];
            let seq = c.pooling != Pooling::Last;
            for l in 0..c.num_layers {
                let input = if l == 0 {
                    c.embedding_dim
                } else {
                    dirs * c.units
                };
                let last = l + 1 == c.num_layers;
                let out = if last && !seq {
                    format!("[{b}, {}]", dirs * c.units)
                } else {
                    format!("[{b}, {t}, {}]", dirs * c.units)
                };
                v.push(recurrent(
                    &format!("rnn.l{l}"),
                    c.cell,
                    input,
                    c.units,
                    dirs,
                    &format!("[{b}, {t}, {input}]"),
                    &out,
                    !last || seq,
                    &b,
                ));
            }
            // The head is a layer graph: its rows come from the graph itself.
            let vb = dir.var_builder(candle_core::DType::F32, &candle_core::Device::Cpu)?;
            let head = crate::tasks::sentiment::build_head(&c, vb, &candle_core::Device::Cpu)?;
            v.extend(graph_model_rows(&head, batch, steps)?);
            v
        }
        TaskKind::Generate => {
            let c: crate::tasks::charlm::CharLmConfig = dir.config()?;
            let (e, u, v) = (c.embedding_dim, c.units, c.vocab_size);
            let mut rows = vec![embedding(
                "embedding",
                v,
                e,
                &format!("[{b}, {t}]"),
                &format!("[{b}, {t}, {e}]"),
            )];
            for l in 0..c.num_layers {
                let input = if l == 0 { e } else { u };
                rows.push(recurrent(
                    &format!("rnn.l{l}"),
                    CellKind::Lstm,
                    input,
                    u,
                    1,
                    &format!("[{b}, {t}, {input}]"),
                    &format!("[{b}, {t}, {u}]"),
                    true,
                    &b,
                ));
            }
            rows.push(linear(
                "head",
                u,
                v,
                &format!("[{b}, {t}, {u}]"),
                &format!("[{b}, {t}, {v}]"),
                true,
            ));
            rows
        }
        TaskKind::Ner => {
            let c: NerConfig = dir.config()?;
            let words = format!("{b}·{t}");
            let feat = c.word_dim + 2 * c.char_units + c.case_dim;
            let n = c.tags.len();
            vec![
                embedding(
                    "word_embedding",
                    c.word_vocab_size,
                    c.word_dim,
                    &format!("[{b}, {t}]"),
                    &format!("[{b}, {t}, {}]", c.word_dim),
                ),
                embedding(
                    "char_embedding",
                    c.char_vocab_size,
                    c.char_dim,
                    &format!("[{words}, chars]"),
                    &format!("[{words}, chars, {}]", c.char_dim),
                ),
                recurrent(
                    "char_rnn",
                    CellKind::Lstm,
                    c.char_dim,
                    c.char_units,
                    2,
                    &format!("[{words}, chars, {}]", c.char_dim),
                    &format!("[{words}, {}]", 2 * c.char_units),
                    false,
                    &words,
                ),
                embedding(
                    "case_embedding",
                    c.case_classes.len(),
                    c.case_dim,
                    &format!("[{b}, {t}]"),
                    &format!("[{b}, {t}, {}]", c.case_dim),
                ),
                recurrent(
                    "rnn",
                    CellKind::Lstm,
                    feat,
                    c.units,
                    2,
                    &format!("[{b}, {t}, {feat}]"),
                    &format!("[{b}, {t}, {}]", 2 * c.units),
                    true,
                    &b,
                ),
                linear(
                    "emission",
                    2 * c.units,
                    n,
                    &format!("[{b}, {t}, {}]", 2 * c.units),
                    &format!("[{b}, {t}, {n}]"),
                    true,
                ),
                Row {
                    layer: "crf".into(),
                    kind: "CRF".into(),
                    units: None,
                    input: format!("[{b}, {t}, {n}]"),
                    output: format!("[{b}, {t}] tags"),
                    state: String::new(),
                    return_sequences: None,
                    params: n * n + 2 * n,
                    formula: format!("tags² + 2·tags = {n}² + 2·{n}"),
                },
            ]
        }
        TaskKind::Translate => {
            let c: TranslateConfig = dir.config()?;
            let (e, h, d, a, v) = (
                c.embedding_dim,
                c.encoder_units,
                c.decoder_units,
                c.attention_dim,
                c.vocab_size,
            );
            vec![
                embedding(
                    "src_embedding",
                    v,
                    e,
                    &format!("[{b}, {t}]"),
                    &format!("[{b}, {t}, {e}]"),
                ),
                recurrent(
                    "encoder",
                    CellKind::Gru,
                    e,
                    h,
                    2,
                    &format!("[{b}, {t}, {e}]"),
                    &format!("[{b}, {t}, {}]", 2 * h),
                    true,
                    &b,
                ),
                linear(
                    "bridge",
                    2 * h,
                    d,
                    &format!("[{b}, {}]", 2 * h),
                    &format!("[{b}, {d}]"),
                    true,
                ),
                Row {
                    layer: "attention".into(),
                    kind: "Additive attention".into(),
                    units: Some(a),
                    input: format!("s [{b}, {d}], enc [{b}, {t}, {}]", 2 * h),
                    output: format!("context [{b}, {}], weights [{b}, {t}]", 2 * h),
                    state: String::new(),
                    return_sequences: None,
                    params: a * (d + 2 * h) + a + a,
                    formula: format!("A·(D + 2H) + A + A = {a}·({d} + {}) + 2·{a}", 2 * h),
                },
                embedding(
                    "tgt_embedding",
                    v,
                    e,
                    &format!("[{b}, 1] per step"),
                    &format!("[{b}, {e}]"),
                ),
                recurrent(
                    "decoder",
                    CellKind::Gru,
                    e + 2 * h,
                    d,
                    1,
                    &format!("[{b}, 1, {}] per step", e + 2 * h),
                    &format!("[{b}, {d}]"),
                    false,
                    &b,
                ),
                linear(
                    "out",
                    d + 2 * h + e,
                    v,
                    &format!("[{b}, {}]", d + 2 * h + e),
                    &format!("[{b}, {v}]"),
                    true,
                ),
            ]
        }
    })
}

/// A graph's own layers, shapes from a run on placeholder inputs.
fn graph_rows(dir: &ModelDir, batch: usize, steps: usize) -> Result<Vec<Row>> {
    graph_model_rows(
        &crate::graph::GraphModel::load(dir, &candle_core::Device::Cpu)?,
        batch,
        steps,
    )
}

pub fn graph_model_rows(
    g: &crate::graph::GraphModel,
    batch: usize,
    steps: usize,
) -> Result<Vec<Row>> {
    let shapes = g.shapes(batch, steps)?;
    let show = |dims: &[usize]| {
        let d: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
        format!("[{}]", d.join(", "))
    };
    Ok(g.layers()
        .into_iter()
        .zip(shapes)
        .map(|(l, outs)| Row {
            layer: l.name,
            kind: l.class,
            units: l.units,
            input: l.inbound.join(", "),
            output: outs.iter().map(|d| show(d)).collect::<Vec<_>>().join(", "),
            state: String::new(),
            return_sequences: None,
            params: l.params,
            formula: l.formula,
        })
        .collect())
}

/// Values stored in the model's safetensors file(s).
pub fn stored_values(dir: &ModelDir) -> Result<usize> {
    let mut total = 0;
    for path in dir.weights_paths()? {
        let bytes = std::fs::read(path)?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| anyhow::anyhow!("bad safetensors: {e}"))?;
        total += st
            .tensors()
            .iter()
            .map(|(_, v)| v.shape().iter().product::<usize>())
            .sum::<usize>();
    }
    Ok(total)
}

/// `3026902` as `3,026,902`.
pub fn thousands(n: usize) -> String {
    let d = n.to_string();
    let mut out = String::with_capacity(d.len() + d.len() / 3);
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The table, as `zoo summary` prints it: Keras' layout (layer and type,
/// output shape, state, parameters), each layer's parameter formula on
/// the line below, within 120 columns.
pub fn render(dir: &ModelDir, batch: usize, steps: usize) -> Result<String> {
    let about = About {
        name: dir.header.name.clone(),
        task: dir.header.task.to_string(),
        networks: dir.header.weights_files().len(),
        stored: stored_values(dir)?,
        file_bytes: dir.weights_bytes()?,
    };
    Ok(render_rows(&rows(dir, batch, steps)?, &about, batch, steps))
}

/// What the table's header and footer say about where the rows came from.
pub struct About {
    pub name: String,
    pub task: String,
    /// Networks in an ensemble (1 for one model).
    pub networks: usize,
    /// Values stored in the weights.
    pub stored: usize,
    /// Bytes of the file(s) holding them.
    pub file_bytes: u64,
}

/// A built graph's table, e.g. for a `.keras` file read in memory.
pub fn render_graph(
    g: &crate::graph::GraphModel,
    about: &About,
    batch: usize,
    steps: usize,
) -> Result<String> {
    Ok(render_rows(
        &graph_model_rows(g, batch, steps)?,
        about,
        batch,
        steps,
    ))
}

fn render_rows(rows: &[Row], about: &About, batch: usize, steps: usize) -> String {
    let total: usize = rows.iter().map(|r| r.params).sum();
    let file = about.file_bytes;
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let kind = match (r.units, r.return_sequences) {
                (Some(u), Some(rs)) => {
                    format!("{}({u}{})", r.kind, if rs { ", seq" } else { "" })
                }
                (Some(u), None) => format!("{}({u})", r.kind),
                _ => r.kind.clone(),
            };
            [
                format!("{} ({kind})", r.layer),
                r.output.clone(),
                r.state.clone(),
                thousands(r.params),
            ]
        })
        .collect();
    let head = ["Layer (type)", "Output shape", "State", "Param #"];
    let mut w = head.map(|h| h.chars().count());
    for c in &cells {
        for (k, v) in c.iter().enumerate() {
            w[k] = w[k].max(v.chars().count());
        }
    }
    let width = w.iter().sum::<usize>() + 3 * 2;
    let line = "─".repeat(width);
    let row = |c: &[String; 4]| {
        format!(
            "{:<a$}  {:<b$}  {:<c$}  {:>d$}\n",
            c[0],
            c[1],
            c[2],
            c[3],
            a = w[0],
            b = w[1],
            c = w[2],
            d = w[3]
        )
    };
    let mut s = format!(
        "Model: {} ({}), batch {batch}, {steps} steps\n{line}\n",
        about.name, about.task
    );
    s.push_str(&row(&head.map(String::from)));
    s.push_str(&format!("{line}\n"));
    for (r, c) in rows.iter().zip(&cells) {
        s.push_str(&row(c));
        if !r.formula.is_empty() {
            s.push_str(&format!("    params = {}\n", r.formula));
        }
    }
    let networks = about.networks;
    let total = if networks == 1 {
        thousands(total)
    } else {
        format!(
            "{} per network × {networks} networks (an ensemble) = {}",
            thousands(total),
            thousands(total * networks)
        )
    };
    s.push_str(&format!(
        "{line}\nTotal params: {total}\nValues in the weights files: {}\nFile size: {} bytes ({:.1} MiB)\n",
        thousands(about.stored),
        thousands(file as usize),
        file as f64 / (1 << 20) as f64
    ));
    s
}
