//! LSTM cell: `c = f*c + i*act(g)`, `h = o*act(c)`, gates in i,f,g,o order.

use candle_core::{Result, Tensor};

use super::config::{Activation, RecurrentActivation};

/// `N` units (of one or more batch rows), in place. `z[g]` holds gate
/// `g`'s pre-activation (`x W_x + h W_hh` + biases) on entry (overwritten).
#[inline(always)]
pub(crate) fn cell<const N: usize, M: super::math::MulAdd>(
    z: &mut [[f32; N]; 4],
    h: &mut [f32; N],
    c: &mut [f32; N],
    act: Activation,
    ract: RecurrentActivation,
) {
    let [i, f, g, o] = z;
    ract.apply_slice::<M>(i);
    ract.apply_slice::<M>(f);
    act.apply_slice::<M>(g);
    ract.apply_slice::<M>(o);
    for j in 0..N {
        c[j] = f[j] * c[j] + i[j] * g[j];
    }
    // Element by element, not `*h = *c` and a pass: a block-wide array copy
    // is a `memcpy` call.
    for j in 0..N {
        h[j] = act.apply_with::<M>(c[j]) * o[j];
    }
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
