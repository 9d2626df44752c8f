//! Records what a recurrent layer computes at every step and unit: the
//! hidden state, the LSTM memory cell and gates, the GRU gates. For
//! learners (`zoo inspect`); it runs the cell equations step by step on the
//! host, so it is for one sequence, not for speed.

use candle_core::{DType, Tensor};

use super::config::{CellKind, Framework, MergeMode};
use super::error::{Result, RnnError};
use super::layer::Rnn;
use super::schedule::Schedule;
use super::weights::direction_name;

/// Per-step, per-unit values of one layer and direction, in time order.
#[derive(Debug, Clone)]
pub struct Trace {
    pub layer: usize,
    pub direction: &'static str,
    pub steps: usize,
    pub units: usize,
    /// Name and values `[steps * units]` (row = time step), e.g. `h`, `c`,
    /// `input gate`, `forget gate`.
    pub quantities: Vec<(String, Vec<f32>)>,
}

impl Trace {
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.quantities
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// The names a cell records, in display order.
pub fn quantity_names(cell: CellKind) -> &'static [&'static str] {
    match cell {
        CellKind::Lstm => &[
            "input gate i",
            "forget gate f",
            "candidate g",
            "output gate o",
            "cell c",
            "hidden h",
        ],
        CellKind::Gru => &["reset gate r", "update gate z", "candidate n", "hidden h"],
        CellKind::SimpleRnn => &["hidden h"],
    }
}

impl Rnn {
    /// Runs one sequence (`[1, steps, input_size]`) and records every
    /// quantity of layer `layer`, direction `dir` (0 forward, 1 backward),
    /// starting from a zero state.
    pub fn trace(&self, x: &Tensor, layer: usize, dir: usize) -> Result<Trace> {
        self.trace_from(x, layer, dir, None)
    }

    /// [`Rnn::trace`] starting from hidden state `h0` (`[units]`), e.g. a
    /// decoder's initial state.
    pub fn trace_from(
        &self,
        x: &Tensor,
        layer: usize,
        dir: usize,
        h0: Option<&[f32]>,
    ) -> Result<Trace> {
        let cfg = &self.cfg;
        let bad = |m: String| Err(RnnError::Config(format!("{}: {m}", self.label())));
        if layer >= cfg.num_layers {
            return bad(format!(
                "no layer {layer}: it has {} (0..{})",
                cfg.num_layers, cfg.num_layers
            ));
        }
        if dir >= cfg.directions() {
            return bad(format!("no direction {dir}: it has {}", cfg.directions()));
        }
        let (b, steps, _) = x.dims3()?;
        if b != 1 {
            return bad(format!("trace takes one sequence, got a batch of {b}"));
        }
        // The layer's input: the stack below it, concatenated as PyTorch does.
        let input = if layer == 0 {
            x.clone()
        } else {
            let mut below = self.clone();
            below.cfg.num_layers = layer;
            below.cfg.return_sequences = true;
            below.cfg.merge_mode = MergeMode::Concat;
            below.cfg.framework = Framework::Pytorch;
            below.cfg.go_backwards = false;
            below.layers.truncate(layer);
            below.forward_with(x, None, None)?.output
        };
        let l = &self.layers[layer];
        let input: Vec<f32> = input.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        let u = cfg.units;
        let gu = cfg.cell.gates() * u;
        let width = cfg.directions() * gu;
        let (act, ract) = (cfg.activation, cfg.recurrent_activation);
        let names = quantity_names(cfg.cell);
        let mut rec: Vec<Vec<f32>> = names.iter().map(|_| vec![0f32; steps * u]).collect();
        let (mut h, mut c) = (vec![0f32; u], vec![0f32; u]);
        if let Some(h0) = h0 {
            if h0.len() != u {
                return bad(format!(
                    "initial state has {} values, expected units = {u}",
                    h0.len()
                ));
            }
            h.copy_from_slice(h0);
        }
        let schedule = Schedule::for_direction(cfg, dir);
        for k in 0..steps {
            let (t, _) = schedule.step(k, steps, steps);
            // Pre-activations: x W + b (canonical gate order) and h U.
            let xt = &input[t * l.input..(t + 1) * l.input];
            let mut gx: Vec<f32> = l.bx[dir * gu..(dir + 1) * gu].to_vec();
            for (i, &xi) in xt.iter().enumerate() {
                let row = &l.wi_t[i * width + dir * gu..i * width + (dir + 1) * gu];
                gx.iter_mut().zip(row).for_each(|(g, w)| *g += xi * w);
            }
            let wh = &l.wh_t[dir];
            let matvec = |v: &[f32], cols: std::ops::Range<usize>| -> Vec<f32> {
                let mut out = vec![0f32; cols.len()];
                for (i, &vi) in v.iter().enumerate() {
                    let row = &wh[i * gu + cols.start..i * gu + cols.end];
                    out.iter_mut().zip(row).for_each(|(o, w)| *o += vi * w);
                }
                out
            };
            let row = t * u;
            match cfg.cell {
                CellKind::Lstm => {
                    let gh = matvec(&h, 0..gu);
                    for j in 0..u {
                        let i = ract.apply(gx[j] + gh[j]);
                        let f = ract.apply(gx[u + j] + gh[u + j]);
                        let g = act.apply(gx[2 * u + j] + gh[2 * u + j]);
                        let o = ract.apply(gx[3 * u + j] + gh[3 * u + j]);
                        c[j] = f * c[j] + i * g;
                        h[j] = o * act.apply(c[j]);
                        for (q, v) in [i, f, g, o, c[j], h[j]].into_iter().enumerate() {
                            rec[q][row + j] = v;
                        }
                    }
                }
                CellKind::Gru => {
                    let gh = matvec(&h, 0..gu);
                    let mut r = vec![0f32; u];
                    let mut z = vec![0f32; u];
                    for j in 0..u {
                        r[j] = ract.apply(gx[j] + gh[j]);
                        z[j] = ract.apply(gx[u + j] + gh[u + j]);
                    }
                    let hn: Vec<f32> = if cfg.reset_after {
                        (0..u)
                            .map(|j| {
                                r[j] * (gh[2 * u + j] + l.bhn[dir].as_ref().map_or(0.0, |b| b[j]))
                            })
                            .collect()
                    } else {
                        let rh: Vec<f32> = (0..u).map(|j| r[j] * h[j]).collect();
                        matvec(&rh, 2 * u..3 * u)
                    };
                    for j in 0..u {
                        let n = act.apply(gx[2 * u + j] + hn[j]);
                        h[j] = (1.0 - z[j]) * n + z[j] * h[j];
                        for (q, v) in [r[j], z[j], n, h[j]].into_iter().enumerate() {
                            rec[q][row + j] = v;
                        }
                    }
                }
                CellKind::SimpleRnn => {
                    let gh = matvec(&h, 0..gu);
                    for j in 0..u {
                        h[j] = act.apply(gx[j] + gh[j]);
                        rec[0][row + j] = h[j];
                    }
                }
            }
        }
        Ok(Trace {
            layer,
            direction: direction_name(dir),
            steps,
            units: u,
            quantities: names.iter().map(|n| n.to_string()).zip(rec).collect(),
        })
    }
}
