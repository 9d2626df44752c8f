//! `zoo bench`: our recurrent layers against candle-nn's `rnn` module on the
//! same weights, shapes and machine, in one run. Reports ratios, not
//! absolute claims.

use std::time::Instant;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::rnn::{GRUConfig, LSTMConfig, RNN};
use candle_nn::VarBuilder;

use crate::nn::{CellKind, Kernel, Rnn, RnnConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Shape {
    pub batch: usize,
    pub steps: usize,
    pub input: usize,
    pub units: usize,
}

impl Shape {
    /// `BxTxIxH`, e.g. `32x64x128x256`.
    pub fn parse(s: &str) -> Option<Shape> {
        let v: Vec<usize> = s
            .split(['x', '×'])
            .map(|p| p.trim().parse().ok().filter(|&n| n > 0))
            .collect::<Option<_>>()?;
        match v[..] {
            // Bounded so that a typo cannot ask for terabytes.
            [batch, steps, input, units]
                if batch
                    .saturating_mul(steps)
                    .saturating_mul(input.max(units) * 4)
                    <= 1 << 30 =>
            {
                Some(Shape {
                    batch,
                    steps,
                    input,
                    units,
                })
            }
            _ => None,
        }
    }
}

/// The shapes README's table reports.
pub const DEFAULT_SHAPES: [Shape; 3] = [
    Shape {
        batch: 32,
        steps: 64,
        input: 128,
        units: 256,
    },
    Shape {
        batch: 1,
        steps: 20,
        input: 50,
        units: 150,
    },
    Shape {
        batch: 64,
        steps: 128,
        input: 300,
        units: 512,
    },
];

/// Which rows `run` measures.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub cells: Option<Vec<CellKind>>,
    /// 1 or 2.
    pub dirs: Option<usize>,
    /// Also time the stepwise kernel and candle-nn (the peers in this crate).
    pub peers: bool,
    /// Also (or only) rows with int8 recurrent weights.
    pub int8: bool,
    pub f32: bool,
}

#[derive(Debug, Clone)]
pub struct BenchRow {
    pub cell: CellKind,
    pub shape: Shape,
    pub bidirectional: bool,
    pub int8: bool,
    /// Median milliseconds per forward.
    pub zoo_ms: f64,
    pub zoo_stepwise_ms: f64,
    /// candle-nn's `rnn` module, where it has the cell.
    pub candle_nn_ms: Option<f64>,
    /// Largest difference between our output and candle-nn's (int8 rows:
    /// and our f32 output).
    pub max_abs_diff: Option<f32>,
}

fn median_ms(iters: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?; // warm-up
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    Ok(times[times.len() / 2])
}

/// Random PyTorch-named weights for one layer (both directions).
fn random_weights(cell: CellKind, s: Shape, dirs: usize) -> Result<VarBuilder<'static>> {
    let dev = Device::Cpu;
    let g = cell.gates() * s.units;
    let scale = 1.0 / (s.units as f64).sqrt();
    let mut map = std::collections::HashMap::new();
    for d in 0..dirs {
        let sfx = if d == 0 { "" } else { "_reverse" };
        let mut put = |name: String, shape: &[usize]| -> Result<()> {
            map.insert(
                name,
                Tensor::rand(-scale as f32, scale as f32, shape, &dev)?,
            );
            Ok(())
        };
        put(format!("weight_ih_l0{sfx}"), &[g, s.input])?;
        put(format!("weight_hh_l0{sfx}"), &[g, s.units])?;
        put(format!("bias_ih_l0{sfx}"), &[g])?;
        put(format!("bias_hh_l0{sfx}"), &[g])?;
    }
    Ok(VarBuilder::from_tensors(map, DType::F32, &dev))
}

pub fn run(
    shapes: &[Shape],
    iters: usize,
    filter: &Filter,
    mut progress: impl FnMut(&str),
) -> Result<Vec<BenchRow>> {
    let mut rows = Vec::new();
    for &s in shapes {
        for cell in [CellKind::Lstm, CellKind::Gru, CellKind::SimpleRnn] {
            if filter.cells.as_ref().is_some_and(|c| !c.contains(&cell)) {
                continue;
            }
            for bidirectional in [false, true] {
                if filter.dirs.is_some_and(|d| d != 1 + bidirectional as usize) {
                    continue;
                }
                progress(&format!(
                    "{} b{}×t{}×{}→{}{}",
                    cell.name(),
                    s.batch,
                    s.steps,
                    s.input,
                    s.units,
                    if bidirectional { " bi" } else { "" }
                ));
                if filter.f32 {
                    rows.push(bench_one(cell, s, bidirectional, iters, filter.peers)?);
                }
                if filter.int8 {
                    rows.push(bench_int8(cell, s, bidirectional, iters)?);
                }
            }
        }
    }
    Ok(rows)
}

/// The layer and input `bench_one` and `bench_int8` time.
fn layer(
    cell: CellKind,
    s: Shape,
    bidirectional: bool,
) -> Result<(Rnn, VarBuilder<'static>, Tensor)> {
    let dirs = if bidirectional { 2 } else { 1 };
    let vb = random_weights(cell, s, dirs)?;
    let mut cfg = RnnConfig::new(cell, s.input, s.units);
    if bidirectional {
        cfg = cfg.with_bidirectional(crate::nn::MergeMode::Concat);
    }
    let x = Tensor::randn(0f32, 1f32, (s.batch, s.steps, s.input), &Device::Cpu)?;
    Ok((Rnn::new(cfg, vb.clone())?, vb, x))
}

fn bench_int8(cell: CellKind, s: Shape, bidirectional: bool, iters: usize) -> Result<BenchRow> {
    let (f32_layer, _, x) = layer(cell, s, bidirectional)?;
    let ours = f32_layer.clone().with_int8()?;
    let zoo_ms = median_ms(iters, || {
        Ok(ours.forward_with(&x, None, None).map(|_| ())?)
    })?;
    let a = ours.forward_with(&x, None, None)?.output;
    let b = f32_layer.forward_with(&x, None, None)?.output;
    let diff = (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok(BenchRow {
        cell,
        shape: s,
        bidirectional,
        int8: true,
        zoo_ms,
        zoo_stepwise_ms: f64::NAN,
        candle_nn_ms: None,
        max_abs_diff: Some(diff),
    })
}

fn bench_one(
    cell: CellKind,
    s: Shape,
    bidirectional: bool,
    iters: usize,
    peers: bool,
) -> Result<BenchRow> {
    let (ours, vb, x) = layer(cell, s, bidirectional)?;
    let stepwise = ours.clone().with_kernel(Kernel::Stepwise);
    let zoo_ms = median_ms(iters, || {
        Ok(ours.forward_with(&x, None, None).map(|_| ())?)
    })?;
    if !peers {
        return Ok(BenchRow {
            cell,
            shape: s,
            bidirectional,
            int8: false,
            zoo_ms,
            zoo_stepwise_ms: f64::NAN,
            candle_nn_ms: None,
            max_abs_diff: None,
        });
    }
    let zoo_stepwise_ms = median_ms(iters, || {
        Ok(stepwise.forward_with(&x, None, None).map(|_| ())?)
    })?;

    // candle-nn has no bidirectional wrapper: a user runs a second layer
    // on the reversed sequence and concatenates, as done here.
    let rev_idx = Tensor::from_vec(
        (0..s.steps as u32).rev().collect::<Vec<_>>(),
        s.steps,
        &Device::Cpu,
    )?;
    let reverse = move |t: &Tensor| -> Result<Tensor> { Ok(t.index_select(&rev_idx, 1)?) };
    let reference: Option<Box<dyn Fn() -> Result<Tensor>>> = match cell {
        CellKind::Lstm => {
            let fwd = candle_nn::rnn::lstm(s.input, s.units, LSTMConfig::default(), vb.clone())?;
            let bwd_cfg = LSTMConfig {
                direction: candle_nn::rnn::Direction::Backward,
                ..Default::default()
            };
            let bwd = if bidirectional {
                Some(candle_nn::rnn::lstm(s.input, s.units, bwd_cfg, vb.clone())?)
            } else {
                None
            };
            let x = x.clone();
            Some(Box::new(move || {
                let f = fwd.states_to_tensor(&fwd.seq(&x)?)?;
                let Some(bwd) = &bwd else { return Ok(f) };
                let b = reverse(&bwd.states_to_tensor(&bwd.seq(&reverse(&x)?)?)?)?;
                Ok(Tensor::cat(&[f, b], 2)?)
            }))
        }
        CellKind::Gru if !bidirectional => {
            // candle-nn's GRU only loads `*_l0` names, so no reverse layer.
            let m = candle_nn::rnn::gru(s.input, s.units, GRUConfig::default(), vb.clone())?;
            let x = x.clone();
            // Its states_to_tensor concatenates along time; stack instead.
            Some(Box::new(move || {
                let st = m.seq(&x)?;
                Ok(Tensor::stack(
                    &st.iter().map(|s| s.h.clone()).collect::<Vec<_>>(),
                    1,
                )?)
            }))
        }
        _ => None,
    };
    let mut candle_nn_ms = None;
    let mut max_abs_diff = None;
    if let Some(f) = reference {
        candle_nn_ms = Some(median_ms(iters, || f().map(|_| ()))?);
        let a = ours.forward_with(&x, None, None)?.output;
        let b = f()?;
        max_abs_diff = Some((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?);
    }
    Ok(BenchRow {
        cell,
        shape: s,
        bidirectional,
        int8: false,
        zoo_ms,
        zoo_stepwise_ms,
        candle_nn_ms,
        max_abs_diff,
    })
}

impl BenchRow {
    /// One JSON object per row, for `zoo bench --json` and scripts/bench_torch.py.
    pub fn to_json(&self) -> serde_json::Value {
        let s = self.shape;
        let finite = |v: f64| if v.is_finite() { Some(v) } else { None };
        serde_json::json!({
            "cell": self.cell.name(), "batch": s.batch, "steps": s.steps, "input": s.input,
            "units": s.units, "dirs": 1 + self.bidirectional as usize,
            "dtype": if self.int8 { "int8" } else { "f32" },
            "median_ms": self.zoo_ms, "stepwise_ms": finite(self.zoo_stepwise_ms),
            "candle_nn_ms": self.candle_nn_ms, "max_abs_diff": self.max_abs_diff,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_parse_as_batch_steps_input_units() {
        assert_eq!(
            Shape::parse("32x64x128x256"),
            Some(Shape {
                batch: 32,
                steps: 64,
                input: 128,
                units: 256
            })
        );
        assert_eq!(Shape::parse("32x64x128"), None);
        assert_eq!(Shape::parse("0x1x1x1"), None);
        assert_eq!(
            Shape::parse("100000x100000x512x512"),
            None,
            "too large to allocate"
        );
    }
}
