//! Elman cell: `h = act(x W + h U + b)`.

use candle_core::{Result, Tensor};

use super::config::Activation;

/// `N` units of one batch row (one block of the packed kernel): `z` is
/// `h @ W_hh`, `gx` the input pre-activations with biases.
#[inline(always)]
pub(crate) fn cell<const N: usize, M: super::math::MulAdd>(
    gx: &[f32; N],
    z: &[f32; N],
    h: &mut [f32; N],
    act: Activation,
) {
    for j in 0..N {
        h[j] = gx[j] + z[j];
    }
    act.apply_slice::<M>(h);
}

pub(crate) fn step(gx: &Tensor, h: &Tensor, wh_t: &Tensor, act: Activation) -> Result<Tensor> {
    act.apply_tensor(&(gx + h.matmul(wh_t)?)?)
}
