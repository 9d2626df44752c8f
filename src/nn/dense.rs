//! `x @ W + b` on the CPU with `W` packed once at load.

use candle_core::{DType, Tensor};

use super::packed;

/// A dense layer `x @ W + b` on the CPU with `W` packed once at load into
/// the panels of the recurrent kernel. gemm re-packs `W` on every call;
/// for the translator's output layer (1152 × 6000, a few dozen rows per
/// decoder step) that packing cost as much as the multiply.
#[derive(Debug, Clone)]
pub struct PackedLinear {
    k: usize,
    n: usize,
    data: packed::DensePanels,
    bias: Vec<f32>,
}

/// Below this many multiply-adds a second thread costs more than it saves.
const PARALLEL_MIN_MACS: usize = 1 << 20;

impl PackedLinear {
    /// `w`: `[k, n]` row-major, `bias`: `[n]`.
    pub fn new(w: &[f32], k: usize, n: usize, bias: Vec<f32>) -> Self {
        assert_eq!(bias.len(), n, "dense bias shape");
        Self {
            k,
            n,
            data: packed::pack_dense(w, k, n, false),
            bias,
        }
    }

    /// From a `[k, n]` weight and `[n]` bias tensor; `None` unless both are
    /// f32 on the CPU (the caller then keeps candle's ops).
    pub fn from_tensors(w: &Tensor, b: &Tensor) -> candle_core::Result<Option<Self>> {
        Self::from_weight(w, b, false)
    }

    /// From a `Linear` layer's `[n, k]` weight (PyTorch's layout) and `[n]`
    /// bias, packed without a transposed copy; `None` as in `from_tensors`.
    pub fn from_linear(w: &Tensor, b: &Tensor) -> candle_core::Result<Option<Self>> {
        Self::from_weight(w, b, true)
    }

    fn from_weight(
        w: &Tensor,
        b: &Tensor,
        rows_are_outputs: bool,
    ) -> candle_core::Result<Option<Self>> {
        if [w, b]
            .iter()
            .any(|t| !t.device().is_cpu() || t.dtype() != DType::F32)
        {
            return Ok(None);
        }
        let (rows, cols) = w.dims2()?;
        let (k, n) = if rows_are_outputs {
            (cols, rows)
        } else {
            (rows, cols)
        };
        let bias = b.to_vec1::<f32>()?;
        if bias.len() != n {
            candle_core::bail!("dense bias has {} values for {n} outputs", bias.len());
        }
        let w = w.flatten_all()?.to_vec1::<f32>()?;
        Ok(Some(Self {
            k,
            n,
            data: packed::pack_dense(&w, k, n, rows_are_outputs),
            bias,
        }))
    }

    pub fn param_count(&self) -> usize {
        self.k * self.n + self.n
    }

    /// `x [m, k]` → `[m, n]` on the CPU.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (m, k) = x.dims2()?;
        if k != self.k {
            candle_core::bail!("dense layer reads {} features, got {k}", self.k);
        }
        let x = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        Tensor::from_vec(
            self.forward_rows(&x, m),
            (m, self.n),
            &candle_core::Device::Cpu,
        )
    }

    /// `x`: `m` rows of `k` floats.
    pub fn forward_rows(&self, x: &[f32], m: usize) -> Vec<f32> {
        assert_eq!(x.len(), m * self.k, "dense input shape");
        let panels = self.n.div_ceil(packed::DENSE_WIDTH);
        let mut out: Vec<f32> = Vec::with_capacity(m * self.n);
        let threads = if m * self.k * self.n >= PARALLEL_MIN_MACS {
            super::threads::budget().min(panels)
        } else {
            1
        };
        struct Out(*mut f32);
        // SAFETY: parts write disjoint columns (see below).
        unsafe impl Sync for Out {}
        let dst = Out(out.as_mut_ptr());
        let part = |i: usize| {
            let range = (panels * i / threads)..(panels * (i + 1) / threads);
            // SAFETY: `data` holds `panels` packed panels of depth `k`, `x`
            // is `m * k`, `out` has room for `m * n`; each part writes only
            // its own panels' columns.
            unsafe {
                packed::dense(
                    &self.data,
                    (m, self.k, self.n),
                    x,
                    &self.bias,
                    { &dst }.0,
                    range,
                )
            }
        };
        if threads > 1 {
            rayon::scope(|s| {
                for i in 1..threads {
                    s.spawn(move |_| part(i));
                }
                part(0);
            });
        } else {
            part(0);
        }
        // SAFETY: the panels cover every column of every row.
        unsafe { out.set_len(m * self.n) };
        out
    }
}
