//! Loads PyTorch- or Keras-named weights into one canonical layout per
//! direction: transposed matrices (`x @ W`) with gates in PyTorch order
//! (i,f,g,o for LSTM; r,z,n for GRU), recurrent biases folded into the
//! input bias wherever the cell allows it.

use candle_core::DType;
use candle_nn::VarBuilder;

use super::config::{CellKind, Framework, RnnConfig};
use super::error::{Result, RnnError};

/// One direction of one layer, on the host, in canonical layout.
#[derive(Debug, Clone)]
pub(crate) struct HostDirection {
    /// `[input, gates*units]`
    pub wi_t: Vec<f32>,
    /// `[units, gates*units]`
    pub wh_t: Vec<f32>,
    /// `[gates*units]`: input bias plus every recurrent bias that can be
    /// added before the gate math.
    pub bx: Vec<f32>,
    /// GRU with reset_after: the recurrent bias of the candidate, which
    /// sits inside `r * (h W_hn + b_hn)` and cannot be folded.
    pub bhn: Option<Vec<f32>>,
    /// Values read from the file, for the parameter count.
    pub loaded_values: usize,
}

pub(crate) fn direction_suffix(dir: usize) -> &'static str {
    if dir == 0 {
        ""
    } else {
        "_reverse"
    }
}

/// Name of a direction in messages.
pub(crate) fn direction_name(dir: usize) -> &'static str {
    if dir == 0 {
        "forward"
    } else {
        "backward"
    }
}

fn load(vb: &VarBuilder, name: &str, expected: &[usize]) -> Result<Vec<f32>> {
    if !vb.contains_tensor(name) {
        return Err(RnnError::MissingWeight {
            name: name.to_string(),
            why: format!("expected shape {expected:?}"),
        });
    }
    let t = vb.get_unchecked_dtype(name, DType::F32)?;
    if t.dims() != expected {
        return Err(RnnError::WeightShape {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: t.dims().to_vec(),
        });
    }
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut dst = vec![0f32; src.len()];
    for r in 0..rows {
        for c in 0..cols {
            dst[c * rows + r] = src[r * cols + c];
        }
    }
    dst
}

/// Reorders blocks of `units` columns (Keras GRU z,r,h -> r,z,n).
fn permute_blocks(src: &[f32], rows: usize, units: usize, order: &[usize]) -> Vec<f32> {
    let cols = units * order.len();
    let mut dst = vec![0f32; src.len()];
    for r in 0..rows {
        for (to, &from) in order.iter().enumerate() {
            let s = r * cols + from * units;
            let d = r * cols + to * units;
            dst[d..d + units].copy_from_slice(&src[s..s + units]);
        }
    }
    dst
}

pub(crate) fn load_direction(
    cfg: &RnnConfig,
    vb: &VarBuilder,
    layer: usize,
    dir: usize,
) -> Result<HostDirection> {
    match cfg.framework {
        Framework::Pytorch => load_pytorch(cfg, vb, layer, dir),
        Framework::Keras => load_keras(cfg, vb, dir),
    }
}

fn load_pytorch(
    cfg: &RnnConfig,
    vb: &VarBuilder,
    layer: usize,
    dir: usize,
) -> Result<HostDirection> {
    let u = cfg.units;
    let g = cfg.cell.gates() * u;
    let input = cfg.layer_input_size(layer);
    let sfx = direction_suffix(dir);
    let w_ih = load(vb, &format!("weight_ih_l{layer}{sfx}"), &[g, input])?;
    let w_hh = load(vb, &format!("weight_hh_l{layer}{sfx}"), &[g, u])?;
    let mut loaded_values = w_ih.len() + w_hh.len();
    let mut bx = vec![0f32; g];
    let mut bhn = None;
    if cfg.use_bias {
        let b_ih = load(vb, &format!("bias_ih_l{layer}{sfx}"), &[g])?;
        let b_hh = load(vb, &format!("bias_hh_l{layer}{sfx}"), &[g])?;
        loaded_values += b_ih.len() + b_hh.len();
        // The GRU candidate's recurrent bias is gated by r, so it stays apart.
        let foldable = if cfg.cell == CellKind::Gru { 2 * u } else { g };
        for j in 0..g {
            bx[j] = b_ih[j] + if j < foldable { b_hh[j] } else { 0.0 };
        }
        if cfg.cell == CellKind::Gru {
            bhn = Some(b_hh[2 * u..].to_vec());
        }
    }
    Ok(HostDirection {
        wi_t: transpose(&w_ih, g, input),
        wh_t: transpose(&w_hh, g, u),
        bx,
        bhn,
        loaded_values,
    })
}

fn load_keras(cfg: &RnnConfig, vb: &VarBuilder, dir: usize) -> Result<HostDirection> {
    let u = cfg.units;
    let g = cfg.cell.gates() * u;
    let input = cfg.input_size;
    let prefix = if cfg.bidirectional {
        if dir == 0 {
            "forward/"
        } else {
            "backward/"
        }
    } else {
        ""
    };
    // Keras GRU stacks z,r,h; the canonical order is r,z,n.
    let order: &[usize] = match cfg.cell {
        CellKind::Gru => &[1, 0, 2],
        CellKind::Lstm => &[0, 1, 2, 3],
        CellKind::SimpleRnn => &[0],
    };
    let kernel = load(vb, &format!("{prefix}kernel"), &[input, g])?;
    let recurrent = load(vb, &format!("{prefix}recurrent_kernel"), &[u, g])?;
    let mut loaded_values = kernel.len() + recurrent.len();
    let mut bx = vec![0f32; g];
    let mut bhn = None;
    if cfg.use_bias {
        let name = format!("{prefix}bias");
        if cfg.cell == CellKind::Gru && cfg.reset_after {
            let b = load(vb, &name, &[2, g])?;
            loaded_values += b.len();
            let b_in = permute_blocks(&b[..g], 1, u, order);
            let b_rec = permute_blocks(&b[g..], 1, u, order);
            for j in 0..g {
                bx[j] = b_in[j] + if j < 2 * u { b_rec[j] } else { 0.0 };
            }
            bhn = Some(b_rec[2 * u..].to_vec());
        } else {
            let b = load(vb, &name, &[g])?;
            loaded_values += b.len();
            bx = permute_blocks(&b, 1, u, order);
        }
    } else if cfg.cell == CellKind::Gru && cfg.reset_after {
        // No bias at all: the candidate's recurrent bias is zero.
        bhn = None;
    }
    Ok(HostDirection {
        wi_t: permute_blocks(&kernel, input, u, order),
        wh_t: permute_blocks(&recurrent, u, u, order),
        bx,
        bhn,
        loaded_values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_swaps_rows_and_columns() {
        assert_eq!(
            transpose(&[1., 2., 3., 4., 5., 6.], 2, 3),
            vec![1., 4., 2., 5., 3., 6.]
        );
    }

    #[test]
    fn permute_blocks_moves_whole_gate_blocks() {
        // one row, units=2, blocks z r h -> r z h
        let src = [1., 2., 3., 4., 5., 6.];
        assert_eq!(
            permute_blocks(&src, 1, 2, &[1, 0, 2]),
            vec![3., 4., 1., 2., 5., 6.]
        );
    }
}
