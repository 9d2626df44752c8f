//! GRU cell, gates in r,z,n order: `h = (1-z)*n + z*h`. With `reset_after`
//! (PyTorch, Keras default) `n = act(x W_n + r*(h W_hn + b_hn))`; without it
//! (Keras `reset_after=False`) `n = act(x W_n + (r*h) W_hn)`.

use candle_core::{Result, Tensor};

use super::config::{Activation, RecurrentActivation};

/// reset_after: `N` units of one batch row (one block of the packed
/// kernel). `z[g]` holds gate `g`'s `h @ W_hh` on entry (overwritten);
/// `h_prev` is the state before the step, `h` receives the new one.
#[inline(always)]
pub(crate) fn cell_reset_after<const N: usize, M: super::math::MulAdd>(
    gx: [&[f32; N]; 3],
    z: [&mut [f32; N]; 3],
    bhn: &[f32; N],
    h_prev: &[f32; N],
    h: &mut [f32; N],
    act: Activation,
    ract: RecurrentActivation,
) {
    let [r, zg, n] = z;
    for j in 0..N {
        r[j] += gx[0][j];
        zg[j] += gx[1][j];
    }
    ract.apply_slice::<M>(r);
    ract.apply_slice::<M>(zg);
    for j in 0..N {
        n[j] = gx[2][j] + r[j] * (n[j] + bhn[j]);
    }
    act.apply_slice::<M>(n);
    for j in 0..N {
        h[j] = n[j] + zg[j] * (h_prev[j] - n[j]);
    }
}

/// reset_before, first half: writes `z` and `r*h` for the candidate matmul.
#[inline(always)]
pub(crate) fn row_gates_before(
    gx: &[f32],
    gh: &mut [f32],
    h: &[f32],
    z_out: &mut [f32],
    rh_out: &mut [f32],
    ract: RecurrentActivation,
) {
    let u = h.len();
    let rz = &mut gh[..2 * u];
    rz.iter_mut().zip(&gx[..2 * u]).for_each(|(z, x)| *z += x);
    ract.apply_slice::<super::math::Unfused>(rz);
    z_out.copy_from_slice(&rz[u..]);
    for j in 0..u {
        rh_out[j] = rz[j] * h[j];
    }
}

/// reset_before, second half: `ghn` is `(r*h) @ W_hn` on entry (overwritten).
#[inline(always)]
pub(crate) fn row_finish_before(
    gx: &[f32],
    ghn: &mut [f32],
    z: &[f32],
    h: &mut [f32],
    act: Activation,
) {
    let u = h.len();
    ghn.iter_mut()
        .zip(&gx[2 * u..3 * u])
        .for_each(|(n, x)| *n += x);
    act.apply_slice::<super::math::Unfused>(ghn);
    for j in 0..u {
        h[j] = ghn[j] + z[j] * (h[j] - ghn[j]);
    }
}

/// Recurrent weights of one direction, split the way each formulation needs.
#[derive(Debug, Clone)]
pub(crate) struct GruWeights {
    /// `[units, 3*units]`
    pub wh_t: Tensor,
    /// `[units, 2*units]` and `[units, units]`, for reset_before.
    pub wh_rz_t: Tensor,
    pub wh_n_t: Tensor,
    pub bhn: Option<Tensor>,
}

/// One step on any device.
pub(crate) fn step(
    gx: &Tensor,
    h: &Tensor,
    w: &GruWeights,
    reset_after: bool,
    act: Activation,
    ract: RecurrentActivation,
) -> Result<Tensor> {
    let u = h.dim(1)?;
    let (r, z, n) = if reset_after {
        let gh = h.matmul(&w.wh_t)?;
        let r = ract.apply_tensor(&(gx.narrow(1, 0, u)? + gh.narrow(1, 0, u)?)?)?;
        let z = ract.apply_tensor(&(gx.narrow(1, u, u)? + gh.narrow(1, u, u)?)?)?;
        let mut hn = gh.narrow(1, 2 * u, u)?;
        if let Some(b) = &w.bhn {
            hn = hn.broadcast_add(b)?;
        }
        let n = act.apply_tensor(&(gx.narrow(1, 2 * u, u)? + (&r * hn)?)?)?;
        (r, z, n)
    } else {
        let gh = h.matmul(&w.wh_rz_t)?;
        let r = ract.apply_tensor(&(gx.narrow(1, 0, u)? + gh.narrow(1, 0, u)?)?)?;
        let z = ract.apply_tensor(&(gx.narrow(1, u, u)? + gh.narrow(1, u, u)?)?)?;
        let n = act.apply_tensor(&(gx.narrow(1, 2 * u, u)? + (&r * h)?.matmul(&w.wh_n_t)?)?)?;
        (r, z, n)
    };
    drop(r);
    &n + (z * (h - &n)?)?
}
