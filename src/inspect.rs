//! `zoo inspect`: what a recurrent layer holds, token by token and unit by
//! unit, as a terminal heatmap, JSON/CSV, or an SVG/PNG picture.

use anyhow::{anyhow, Result};
use serde_json::json;

use crate::nn::Trace;

/// A traced layer with the tokens it read.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub model: String,
    /// e.g. `rnn`, `encoder`, `decoder`.
    pub layer_name: String,
    pub tokens: Vec<String>,
    pub trace: Trace,
    /// How strongly each unit moves the model's output, when the model can
    /// say (sentiment: classifier weight × pooled activation).
    pub importance: Option<Vec<f32>>,
    pub importance_rule: String,
    /// What a positive / negative importance pushes towards, when signed
    /// (e.g. `("positive", "negative")`).
    pub importance_sides: Option<(String, String)>,
    /// Translation only: the greedy translation's attention.
    pub attention: Option<Attention>,
    /// The model's answer for the text, as a person reads it: a label and
    /// its probability, the tagged sentence, or the translation.
    pub answer: String,
    /// The traced layer's real shapes.
    pub shape: LayerShape,
}

/// What a traced layer reads and returns, for the report's diagram.
#[derive(Debug, Clone)]
pub struct LayerShape {
    pub cell: crate::nn::CellKind,
    /// Features per step of this layer's input.
    pub input: usize,
    pub units: usize,
    /// 2 for a bidirectional layer.
    pub directions: usize,
    /// Whether the model uses every step's output of this layer
    /// (many-to-many) or only the last (many-to-one).
    pub return_sequences: bool,
    /// How many such layers the network stacks.
    pub layers: usize,
}

impl LayerShape {
    pub fn of(cfg: &crate::nn::RnnConfig, layer: usize, return_sequences: bool) -> Self {
        let dirs = cfg.directions();
        Self {
            cell: cfg.cell,
            input: if layer == 0 {
                cfg.input_size
            } else {
                cfg.units * dirs
            },
            units: cfg.units,
            directions: dirs,
            return_sequences,
            layers: cfg.num_layers,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Attention {
    pub source: Vec<String>,
    pub target: Vec<String>,
    /// `[target][source]`
    pub weights: Vec<Vec<f32>>,
}

/// Units ranked by importance (or, without one, by how much `h` moves).
pub fn ranked_units(ins: &Inspection) -> Vec<usize> {
    let t = &ins.trace;
    let score: Vec<f32> = match &ins.importance {
        Some(v) => v.iter().map(|x| x.abs()).collect(),
        None => {
            let h = t.get("hidden h").unwrap_or(&[]);
            (0..t.units)
                .map(|j| {
                    let col: Vec<f32> = (0..t.steps).map(|s| h[s * t.units + j]).collect();
                    let mean = col.iter().sum::<f32>() / col.len().max(1) as f32;
                    col.iter().map(|v| (v - mean).powi(2)).sum::<f32>()
                })
                .collect()
        }
    };
    let mut idx: Vec<usize> = (0..t.units).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    idx
}

/// Parses `--units 0..16` (end exclusive) or `3,7,9`.
pub fn parse_units(spec: &str, units: usize) -> Result<Vec<usize>> {
    let bad = || {
        anyhow!("bad --units `{spec}`: write a range like 0..16 or a list like 3,7,9 (the layer has {units} units)")
    };
    let v: Vec<usize> = if let Some((a, b)) = spec.split_once("..") {
        let a: usize = if a.is_empty() {
            0
        } else {
            a.trim().parse().map_err(|_| bad())?
        };
        let b: usize = if b.is_empty() {
            units
        } else {
            b.trim().parse().map_err(|_| bad())?
        };
        (a..b.min(units)).collect()
    } else {
        spec.split(',')
            .map(|s| s.trim().parse::<usize>().map_err(|_| bad()))
            .collect::<Result<_>>()?
    };
    if v.is_empty() || v.iter().any(|&u| u >= units) {
        return Err(bad());
    }
    Ok(v)
}

/// The quantities shown by default: all of them (gates included).
pub fn quantities(ins: &Inspection) -> Vec<&str> {
    ins.trace
        .quantities
        .iter()
        .map(|(n, _)| n.as_str())
        .collect()
}

pub(crate) fn value(ins: &Inspection, q: &str, step: usize, unit: usize) -> f32 {
    ins.trace
        .get(q)
        .map_or(f32::NAN, |v| v[step * ins.trace.units + unit])
}

pub fn to_json(ins: &Inspection, units: &[usize]) -> serde_json::Value {
    let qs: serde_json::Map<String, serde_json::Value> = ins
        .trace
        .quantities
        .iter()
        .map(|(name, _)| {
            let rows: Vec<Vec<f32>> = (0..ins.trace.steps)
                .map(|s| units.iter().map(|&u| value(ins, name, s, u)).collect())
                .collect();
            (name.clone(), json!(rows))
        })
        .collect();
    let mut o = json!({
        "model": ins.model,
        "layer": format!("{}.l{}", ins.layer_name, ins.trace.layer),
        "direction": ins.trace.direction,
        "tokens": ins.tokens,
        "units": units,
        "values": qs,
        "values_layout": "[token][unit]",
    });
    if let Some(imp) = &ins.importance {
        o["importance"] = json!(units.iter().map(|&u| imp[u]).collect::<Vec<_>>());
        o["importance_rule"] = json!(ins.importance_rule);
    }
    if let Some(a) = &ins.attention {
        o["attention"] = json!({"source_tokens": a.source, "target_tokens": a.target, "weights": a.weights, "layout": "[target][source]"});
    }
    o
}

pub fn to_csv(ins: &Inspection, units: &[usize]) -> String {
    let mut s = String::from("quantity,step,token,unit,value\n");
    for (name, _) in &ins.trace.quantities {
        for (step, tok) in ins.tokens.iter().enumerate() {
            for &u in units {
                let tok = tok.replace('"', "\"\"");
                s.push_str(&format!(
                    "{name},{step},\"{tok}\",{u},{}\n",
                    value(ins, name, step, u)
                ));
            }
        }
    }
    s
}

/// Value range of a quantity over the shown units: gates live in [0, 1],
/// states in [-1, 1] (wider when the data are).
pub(crate) fn range(ins: &Inspection, q: &str, units: &[usize]) -> (f32, f32) {
    let m = (0..ins.trace.steps)
        .flat_map(|s| units.iter().map(move |&u| value(ins, q, s, u)))
        .fold(0f32, |a, b| a.max(b.abs()));
    if q.contains("gate") {
        (0.0, 1.0)
    } else {
        let m = m.max(1.0);
        (-m, m)
    }
}

/// Blue (low) – white – red (high).
pub(crate) fn colour(v: f32, (lo, hi): (f32, f32)) -> (u8, u8, u8) {
    let x = ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 2.0 - 1.0;
    let f = |a: f32| (255.0 * a).round() as u8;
    if x >= 0.0 {
        (255, f(1.0 - x * 0.85), f(1.0 - x * 0.85))
    } else {
        (f(1.0 + x * 0.85), f(1.0 + x * 0.6), 255)
    }
}

pub(crate) fn short(tok: &str, n: usize) -> String {
    let t: String = tok.chars().filter(|c| !c.is_control()).take(n).collect();
    if t.is_empty() {
        "·".into()
    } else {
        t
    }
}

/// A compact heatmap for the terminal: ANSI colours when `color`, else the
/// values alone.
pub fn render_terminal(ins: &Inspection, units: &[usize], qs: &[&str], color: bool) -> String {
    let w = 5;
    let mut s = format!(
        "{} {}.l{} {} — rows: units, columns: tokens\n",
        ins.model, ins.layer_name, ins.trace.layer, ins.trace.direction
    );
    for q in qs {
        let r = range(ins, q, units);
        s.push_str(&format!(
            "\n{q}  (scale {:+.1} … {:+.1})\n{:>6} ",
            r.0, r.1, "unit"
        ));
        for tok in &ins.tokens {
            s.push_str(&format!("{:>w$} ", short(tok, w)));
        }
        s.push('\n');
        for &u in units {
            s.push_str(&format!("{u:>6} "));
            for step in 0..ins.trace.steps {
                let v = value(ins, q, step, u);
                let cell = format!("{:>w$}", format!("{v:+.2}").replace("0.", "."));
                if color {
                    let (r8, g8, b8) = colour(v, r);
                    s.push_str(&format!(
                        "\x1b[48;2;{r8};{g8};{b8}m\x1b[38;2;0;0;0m{cell}\x1b[0m "
                    ));
                } else {
                    s.push_str(&format!("{cell} "));
                }
            }
            s.push('\n');
        }
    }
    if let Some(imp) = &ins.importance {
        s.push_str(&format!("\nimportance ({}):", ins.importance_rule));
        for &u in units.iter().take(8) {
            s.push_str(&format!(" unit {u}: {:+.3}", imp[u]));
        }
        s.push('\n');
    }
    s
}

#[cfg(feature = "plot")]
pub use crate::plot::render_plot;
