//! The time loop in candle tensor ops, for any device and dtype (CUDA,
//! Metal, f16/bf16). Same schedule as the fused CPU loop.

use candle_core::{DType, Device, Result, Tensor};

use super::config::{CellKind, RnnConfig};
use super::gru::GruWeights;
use super::schedule::{MaskedOutput, Schedule};
use super::{gru, lstm, simple_rnn};

/// Recurrent weights of one direction on the device.
#[derive(Debug, Clone)]
pub(crate) struct DeviceDirection {
    /// `[units, gates*units]`
    pub wh_t: Tensor,
    pub gru: Option<GruWeights>,
}

/// Host-built index and mask tensors describing a schedule over a batch.
struct Plan {
    /// `[steps, batch]`: flat row `b*steps + t` read at step k.
    read: Tensor,
    /// `[steps, batch, 1]` u8: step k of row b is real.
    valid: Option<Tensor>,
    /// `[steps, batch, 1]` u8: row b has had a real step by step k.
    started: Option<Tensor>,
    /// `[batch*steps]`: output row for each position.
    place: Tensor,
}

fn plan(s: &Schedule, lengths: &[usize], steps: usize, dev: &Device) -> Result<Plan> {
    let batch = lengths.len();
    let mut read = vec![0u32; steps * batch];
    let mut valid = vec![0u8; steps * batch];
    let mut started = vec![0u8; steps * batch];
    let mut place = vec![0u32; steps * batch];
    for (b, &len) in lengths.iter().enumerate() {
        let mut seen = false;
        for k in 0..steps {
            let (t, ok) = s.step(k, len, steps);
            seen |= ok;
            read[k * batch + b] = (b * steps + t) as u32;
            valid[k * batch + b] = ok as u8;
            started[k * batch + b] = seen as u8;
            place[b * steps + s.position(k, t, steps)] = (b * steps + k) as u32;
        }
    }
    let all_real = valid.iter().all(|&v| v == 1);
    let mask = |m: Vec<u8>| Tensor::from_vec(m, (steps, batch, 1), dev);
    Ok(Plan {
        read: Tensor::from_vec(read, (steps, batch), dev)?,
        valid: if all_real { None } else { Some(mask(valid)?) },
        started: if all_real { None } else { Some(mask(started)?) },
        place: Tensor::from_vec(place, steps * batch, dev)?,
    })
}

/// Runs one direction. `xp`: `[batch*steps, gates*units]` projected inputs.
/// Returns the outputs `[batch, steps, units]` and the final `h`, `c`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    cfg: &RnnConfig,
    w: &DeviceDirection,
    s: &Schedule,
    xp: &Tensor,
    lengths: &[usize],
    steps: usize,
    mut h: Tensor,
    mut c: Option<Tensor>,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let batch = lengths.len();
    let u = cfg.units;
    let p = plan(s, lengths, steps, xp.device())?;
    let zeros = Tensor::zeros((batch, u), h.dtype(), h.device())?;
    let mut outs = Vec::with_capacity(steps);
    for k in 0..steps {
        let gx = xp.index_select(&p.read.get(k)?, 0)?;
        let (h_new, c_new) = match cfg.cell {
            CellKind::Lstm => {
                let c_prev = c.as_ref().expect("LSTM state has c");
                let (h, c) = lstm::step(
                    &gx,
                    &h,
                    c_prev,
                    &w.wh_t,
                    cfg.activation,
                    cfg.recurrent_activation,
                )?;
                (h, Some(c))
            }
            CellKind::Gru => {
                let g = w.gru.as_ref().expect("GRU weights");
                let h = gru::step(
                    &gx,
                    &h,
                    g,
                    cfg.reset_after,
                    cfg.activation,
                    cfg.recurrent_activation,
                )?;
                (h, None)
            }
            CellKind::SimpleRnn => (simple_rnn::step(&gx, &h, &w.wh_t, cfg.activation)?, None),
        };
        match (&p.valid, &p.started) {
            (Some(valid), Some(started)) => {
                let m = valid.get(k)?.broadcast_as((batch, u))?;
                h = m.where_cond(&h_new, &h)?;
                if let (Some(cn), Some(cp)) = (c_new, &c) {
                    c = Some(m.where_cond(&cn, cp)?);
                }
                let y = match s.masked {
                    MaskedOutput::Zero => m.where_cond(&h, &zeros)?,
                    MaskedOutput::Previous => started
                        .get(k)?
                        .broadcast_as((batch, u))?
                        .where_cond(&h, &zeros)?,
                };
                outs.push(y);
            }
            _ => {
                h = h_new;
                if c_new.is_some() {
                    c = c_new;
                }
                outs.push(h.clone());
            }
        }
    }
    let out = Tensor::stack(&outs, 1)?
        .reshape((batch * steps, u))?
        .index_select(&p.place, 0)?
        .reshape((batch, steps, u))?;
    Ok((out, h, c))
}

/// `[rows, cols]` host values as a tensor of `dtype` on `dev`.
pub(crate) fn device_matrix(
    v: &[f32],
    shape: &[usize],
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    Tensor::from_slice(v, shape, &Device::Cpu)?
        .to_dtype(dtype)?
        .to_device(dev)
}
