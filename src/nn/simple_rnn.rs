//! Elman cell: `h = act(x W + h U + b)`.

use candle_core::{Result, Tensor};

use super::config::Activation;

#[inline(always)]
pub(crate) fn row(gx: &[f32], gh: &[f32], h: &mut [f32], act: Activation) {
    let u = h.len();
    let (gx, gh) = (&gx[..u], &gh[..u]);
    for j in 0..u {
        h[j] = gx[j] + gh[j];
    }
    act.apply_slice(h);
}

pub(crate) fn step(gx: &Tensor, h: &Tensor, wh_t: &Tensor, act: Activation) -> Result<Tensor> {
    act.apply_tensor(&(gx + h.matmul(wh_t)?)?)
}
