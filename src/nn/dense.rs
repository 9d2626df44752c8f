//! `x @ W + b` on the CPU through gemm directly. candle's CPU matmul hands
//! its gemm to the thread pool and spins while it waits, so on a 2-core
//! machine the caller's spinning takes a core from the gemm; here the
//! caller sleeps on the pool's latch instead.

use candle_core::{DType, Storage, Tensor};

use super::fused;

/// `x [m, k] @ w [k, n] + b [n]`, or `None` where the fast path does not
/// apply (another device or dtype): the caller then uses candle's ops.
pub fn linear_cpu(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Option<Tensor>> {
    let all_cpu_f32 = [x, w, b]
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32);
    if !all_cpu_f32 || x.rank() != 2 || w.rank() != 2 {
        return Ok(None);
    }
    let ((m, k), (k2, n)) = (x.dims2()?, w.dims2()?);
    if k != k2 || b.dims() != [n] {
        return Ok(None);
    }
    let (x, w, b) = (x.contiguous()?, w.contiguous()?, b.contiguous()?);
    let bias = b.to_vec1::<f32>()?;
    let mut out = Vec::with_capacity(m * n);
    for _ in 0..m {
        out.extend_from_slice(&bias);
    }
    {
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (Storage::Cpu(xs), Storage::Cpu(ws)) = (&*xs, &*ws) else {
            return Ok(None);
        };
        let (xa, xb) = xl.contiguous_offsets().expect("contiguous");
        let (wa, wb) = wl.contiguous_offsets().expect("contiguous");
        fused::matmul(
            &mut out,
            n,
            &xs.as_slice::<f32>()?[xa..xb],
            k,
            &ws.as_slice::<f32>()?[wa..wb],
            n,
            (m, n, k),
            true,
            candle_core::utils::get_num_threads(),
        );
    }
    Ok(Some(Tensor::from_vec(out, (m, n), x.device())?))
}
