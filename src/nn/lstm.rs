//! LSTM cell: `c = f*c + i*act(g)`, `h = o*act(c)`, gates in i,f,g,o order.

use candle_core::{Result, Tensor};

use super::config::{Activation, RecurrentActivation};

/// One batch row, in place. `gx`: input pre-activations with biases;
/// `gh`: `h @ W_hh` on entry, the gate values on return (`[4*units]`).
#[inline(always)]
pub(crate) fn row(
    gx: &[f32],
    gh: &mut [f32],
    h: &mut [f32],
    c: &mut [f32],
    act: Activation,
    ract: RecurrentActivation,
) {
    let u = h.len();
    let (gx, gh, c) = (&gx[..4 * u], &mut gh[..4 * u], &mut c[..u]);
    gh.iter_mut().zip(gx).for_each(|(z, x)| *z += x);
    let (ifg, o) = gh.split_at_mut(3 * u);
    let (i_f, g) = ifg.split_at_mut(2 * u);
    ract.apply_slice(i_f);
    act.apply_slice(g);
    ract.apply_slice(o);
    let (i, f) = i_f.split_at(u);
    for j in 0..u {
        c[j] = f[j] * c[j] + i[j] * g[j];
    }
    h.copy_from_slice(c);
    act.apply_slice(h);
    h.iter_mut().zip(o.iter()).for_each(|(h, o)| *h *= o);
}

/// One step on any device: returns `(h, c)`.
pub(crate) fn step(
    gx: &Tensor,
    h: &Tensor,
    c: &Tensor,
    wh_t: &Tensor,
    act: Activation,
    ract: RecurrentActivation,
) -> Result<(Tensor, Tensor)> {
    let u = h.dim(1)?;
    let z = (gx + h.matmul(wh_t)?)?;
    let i = ract.apply_tensor(&z.narrow(1, 0, u)?)?;
    let f = ract.apply_tensor(&z.narrow(1, u, u)?)?;
    let g = act.apply_tensor(&z.narrow(1, 2 * u, u)?)?;
    let o = ract.apply_tensor(&z.narrow(1, 3 * u, u)?)?;
    let c = ((f * c)? + (i * g)?)?;
    let h = (o * act.apply_tensor(&c)?)?;
    Ok((h, c))
}
