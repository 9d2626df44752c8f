//! int8 recurrent weights for the packed kernel: `W_hh` quantized per
//! output column (symmetric, scale = max|w| / 127) and `h` quantized per
//! batch row at every step (scale = max|h| / 127, stored as `q + 128` so
//! that VNNI's `vpdpbusd` multiplies unsigned by signed bytes). The
//! `+ 128` is taken back out through each column's `128 * sum(q_w)`.
//! This is the scheme of PyTorch's dynamic-quantized LSTM, applied to the
//! recurrent matmul, where the time goes; the input projection stays one
//! f32 gemm over all steps.

use super::packed::{LANES, MAX_ROWS, MAX_WIDTH};

/// `W_hh` in groups of 4 rows: for panel `p`, group `g` and lane `i`, the
/// bytes of rows `4g..4g+4` of the lane's column lie next to each other,
/// as `vpdpbusd` reads them.
#[derive(Debug, Clone)]
pub(crate) struct Int8Panels {
    pub groups: usize,
    width: usize,
    data: super::aligned::Aligned<i8>,
    /// Per panel lane: the column's scale, and `128 * sum_k q[k]`.
    scale: Vec<f32>,
    offset: Vec<i32>,
}

impl Int8Panels {
    /// Bytes of weights a step reads.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// From f32 panels laid out as `data[(p * units + k) * width + i]`.
    pub fn quantize(panels: usize, units: usize, width: usize, f32_panels: &[f32]) -> Self {
        let groups = units.div_ceil(4);
        let mut packed = super::aligned::Aligned::zeroed(panels * groups * width * 4);
        let data = packed.as_mut_slice();
        let mut scale = vec![1f32; panels * width];
        let mut offset = vec![0i32; panels * width];
        for p in 0..panels {
            for i in 0..width {
                let col = |k: usize| f32_panels[(p * units + k) * width + i];
                let max = (0..units).map(|k| col(k).abs()).fold(0f32, f32::max);
                let s = if max > 0.0 { max / 127.0 } else { 1.0 };
                let mut sum = 0i32;
                for k in 0..units {
                    let q = (col(k) / s).round_ties_even().clamp(-127.0, 127.0) as i8;
                    data[((p * groups + k / 4) * width + i) * 4 + k % 4] = q;
                    sum += q as i32;
                }
                scale[p * width + i] = s;
                offset[p * width + i] = 128 * sum;
            }
        }
        Self {
            groups,
            width,
            data: packed,
            scale,
            offset,
        }
    }

    /// A plain `[k, n]` row-major matrix, for `x @ W`: panel `p` holds
    /// columns `64p..64p + 64` in order.
    pub fn from_columns(k: usize, n: usize, w: &[f32]) -> Self {
        assert_eq!(w.len(), k * n, "matrix shape");
        let width = 4 * LANES;
        let panels = n.div_ceil(width);
        let mut f = vec![0f32; panels * k * width];
        for p in 0..panels {
            for r in 0..k {
                let cols = (p * width)..((p + 1) * width).min(n);
                let dst = &mut f[(p * k + r) * width..][..cols.len()];
                dst.copy_from_slice(&w[r * n + cols.start..r * n + cols.end]);
            }
        }
        Self::quantize(panels, k, width, &f)
    }

    fn panel(&self, p: usize) -> (*const i8, *const f32, *const i32) {
        (
            self.data.as_slice()[p * self.groups * self.width * 4..].as_ptr(),
            self.scale[p * self.width..].as_ptr(),
            self.offset[p * self.width..].as_ptr(),
        )
    }
}

/// `out = x @ W` for `x` `[rows, k]` and `W` from [`Int8Panels::from_columns`]
/// with `n` columns: `x` quantized per row, split over `threads` threads
/// by rows. `out` is written whole.
pub(crate) fn matmul(
    x: &[f32],
    k: usize,
    w: &Int8Panels,
    n: usize,
    out: &mut [f32],
    threads: usize,
) {
    use rayon::prelude::*;
    let rows = x.len() / k.max(1);
    assert_eq!(out.len(), rows * n, "output shape");
    assert_eq!(w.width, 4 * LANES, "a from_columns matrix");
    // Blocks of 6 rows fill VNNI's registers (24 accumulators).
    const MR: usize = 6;
    let per = rows.div_ceil(threads.max(1)).div_ceil(MR) * MR;
    let job = |(c, out): (usize, &mut [f32])| {
        let r0 = c * per;
        let n_rows = out.len() / n;
        let xs = &x[r0 * k..(r0 + n_rows) * k];
        #[cfg(target_arch = "x86_64")]
        if vnni() {
            // SAFETY: the CPU has the features; shapes checked above.
            return unsafe { matmul_vnni(xs, k, w, n, out) };
        }
        // SAFETY: shapes checked above.
        unsafe { matmul_part::<Portable>(xs, k, w, n, out) }
    };
    if per == 0 {
        return;
    }
    if threads > 1 && rows > per {
        out.par_chunks_mut(per * n).enumerate().for_each(job);
    } else {
        job((0, out));
    }
}

/// Whether this CPU has an int8 kernel faster than the f32 ones. Without
/// AVX-512 VNNI the int8 path is the portable one, 3-9x slower than f32
/// (measured on AMD EPYC Zen 3, AVX2 + FMA).
pub fn fast_int8() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        vnni()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
fn vnni() -> bool {
    static VNNI: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VNNI.get_or_init(|| {
        super::cpu::allows(super::cpu::Level::Avx512) && is_x86_feature_detected!("avx512vnni")
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn matmul_vnni(x: &[f32], k: usize, w: &Int8Panels, n: usize, out: &mut [f32]) {
    matmul_part::<x86::Vnni>(x, k, w, n, out)
}

#[inline(always)]
unsafe fn matmul_part<Q: QuantOps>(x: &[f32], k: usize, w: &Int8Panels, n: usize, out: &mut [f32]) {
    let rows = x.len() / k;
    let mut q = Rows::new(rows, w.groups);
    Q::quantize(x.as_ptr(), k, &mut q, 0..rows);
    let mut tile = [[0f32; MAX_WIDTH]; MAX_ROWS];
    let width = 4 * LANES;
    let mut r0 = 0;
    while r0 < rows {
        let mr = (rows - r0).min(6);
        for p in 0..n.div_ceil(width) {
            super::packed::quant_rows::<Q, 4>(w, p, &q, r0, mr, &mut tile);
            let cols = (p * width)..((p + 1) * width).min(n);
            for (r, t) in tile.iter().enumerate().take(mr) {
                let dst = &mut out[(r0 + r) * n + cols.start..(r0 + r) * n + cols.end];
                dst.copy_from_slice(&t[..dst.len()]);
            }
        }
        r0 += mr;
    }
}

/// One step's `h`, quantized by rows, which every part reads whole.
pub(crate) struct Rows {
    stride: usize,
    q: Vec<u8>,
    scale: Vec<f32>,
}

impl Rows {
    pub fn new(batch: usize, groups: usize) -> Self {
        Self {
            stride: groups * 4,
            q: vec![128; batch * groups * 4],
            scale: vec![1.0; batch],
        }
    }
}

/// The int8 operations in the instruction set at hand. Both impls give
/// bit-identical results: integer sums are exact and the float steps are
/// the same operations in the same order.
pub(crate) trait QuantOps {
    /// Quantizes rows `range` of `u` values `u` apart into `rows`.
    unsafe fn quantize(h: *const f32, u: usize, rows: &mut Rows, range: std::ops::Range<usize>);

    /// `tile[r] = h_q[r0 + r] @ panel p`, dequantized, for `MR` rows.
    unsafe fn block<const V: usize, const MR: usize>(
        w: &Int8Panels,
        p: usize,
        rows: &Rows,
        r0: usize,
        tile: &mut [[f32; MAX_WIDTH]; MAX_ROWS],
    );
}

/// The row's scale and its reciprocal; an all-zero row gets scale 1.
#[inline(always)]
fn row_scale(max: f32) -> (f32, f32) {
    if max > 0.0 {
        (max / 127.0, 127.0 / max)
    } else {
        (1.0, 0.0)
    }
}

#[inline(always)]
fn quantize_one(x: f32, inv: f32) -> u8 {
    ((x * inv).round_ties_even() as i32 + 128).clamp(0, 255) as u8
}

/// Scalar code; the compiler vectorises what it can.
pub(crate) struct Portable;

impl QuantOps for Portable {
    #[inline(always)]
    unsafe fn quantize(h: *const f32, u: usize, rows: &mut Rows, range: std::ops::Range<usize>) {
        for b in range {
            let s = &mut rows.scale[b];
            let row = std::slice::from_raw_parts(h.add(b * u), u);
            let (scale, inv) = row_scale(row.iter().fold(0f32, |m, x| m.max(x.abs())));
            *s = scale;
            let q = &mut rows.q[b * rows.stride..][..u];
            for (q, &x) in q.iter_mut().zip(row) {
                *q = quantize_one(x, inv);
            }
        }
    }

    #[inline(always)]
    unsafe fn block<const V: usize, const MR: usize>(
        w: &Int8Panels,
        p: usize,
        rows: &Rows,
        r0: usize,
        tile: &mut [[f32; MAX_WIDTH]; MAX_ROWS],
    ) {
        let (wp, ws, wo) = w.panel(p);
        let width = V * LANES;
        for (r, tile_r) in tile.iter_mut().enumerate().take(MR) {
            let hq = &rows.q[(r0 + r) * rows.stride..][..rows.stride];
            let mut acc = [0i32; MAX_WIDTH];
            for g in 0..w.groups {
                let wg = std::slice::from_raw_parts(wp.add(g * width * 4), width * 4);
                let x = &hq[g * 4..g * 4 + 4];
                for (i, a) in acc.iter_mut().take(width).enumerate() {
                    let wl = &wg[i * 4..i * 4 + 4];
                    *a += (0..4).map(|j| x[j] as i32 * wl[j] as i32).sum::<i32>();
                }
            }
            let rs = rows.scale[r0 + r];
            for (i, (t, a)) in tile_r.iter_mut().zip(&acc).take(width).enumerate() {
                *t = (a - *wo.add(i)) as f32 * (*ws.add(i) * rs);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::*;
    use std::arch::x86_64::*;

    /// AVX-512 VNNI: 64 byte products per `vpdpbusd`.
    pub(crate) struct Vnni;

    impl QuantOps for Vnni {
        #[inline]
        #[target_feature(enable = "avx512f,avx512vnni")]
        unsafe fn quantize(
            h: *const f32,
            u: usize,
            rows: &mut Rows,
            range: std::ops::Range<usize>,
        ) {
            let full = u / LANES;
            for b in range {
                let s = &mut rows.scale[b];
                let row = h.add(b * u);
                let mut m = _mm512_setzero_ps();
                for i in 0..full {
                    m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(row.add(i * LANES))));
                }
                let mut max = _mm512_reduce_max_ps(m);
                for i in full * LANES..u {
                    max = max.max((*row.add(i)).abs());
                }
                let (scale, inv) = row_scale(max);
                *s = scale;
                let q = rows.q[b * rows.stride..].as_mut_ptr();
                let (vinv, bias) = (_mm512_set1_ps(inv), _mm512_set1_epi32(128));
                for i in 0..full {
                    let x = _mm512_mul_ps(_mm512_loadu_ps(row.add(i * LANES)), vinv);
                    // Rounds to nearest even, as `round_ties_even`.
                    let v = _mm512_add_epi32(_mm512_cvtps_epi32(x), bias);
                    _mm_storeu_si128(q.add(i * LANES) as *mut __m128i, _mm512_cvtusepi32_epi8(v));
                }
                for i in full * LANES..u {
                    *q.add(i) = quantize_one(*row.add(i), inv);
                }
            }
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512vnni")]
        unsafe fn block<const V: usize, const MR: usize>(
            w: &Int8Panels,
            p: usize,
            rows: &Rows,
            r0: usize,
            tile: &mut [[f32; MAX_WIDTH]; MAX_ROWS],
        ) {
            let (wp, ws, wo) = w.panel(p);
            let hq = rows.q[r0 * rows.stride..].as_ptr();
            let mut acc = [[_mm512_setzero_si512(); V]; MR];
            for g in 0..w.groups {
                let wg = wp.add(g * V * 64);
                let mut wv = [_mm512_setzero_si512(); V];
                for (v, x) in wv.iter_mut().enumerate() {
                    *x = _mm512_loadu_si512(wg.add(v * 64) as *const __m512i);
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_epi32(std::ptr::read_unaligned(
                        hq.add(r * rows.stride + g * 4) as *const i32,
                    ));
                    for (a, wv) in acc_r.iter_mut().zip(&wv) {
                        *a = _mm512_dpbusd_epi32(*a, x, *wv);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let rs = _mm512_set1_ps(rows.scale[r0 + r]);
                for (v, a) in acc_r.iter().enumerate() {
                    let o = _mm512_loadu_si512(wo.add(v * LANES) as *const __m512i);
                    let s = _mm512_mul_ps(_mm512_loadu_ps(ws.add(v * LANES)), rs);
                    let f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(*a, o)), s);
                    _mm512_storeu_ps(tile[r].as_mut_ptr().add(v * LANES), f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::nn::packed::tests::noise;

    #[test]
    fn int8_matmul_is_near_f32_and_the_same_on_every_path() {
        // Odd sizes: partial groups of 4, a partial panel, a partial row block.
        let (rows, k, n) = (13, 37, 70);
        let (x, w) = (noise(rows * k, 1), noise(k * n, 2));
        let q = Int8Panels::from_columns(k, n, &w);
        let run = |threads: usize| {
            let mut out = vec![f32::NAN; rows * n];
            matmul(&x, k, &q, n, &mut out, threads);
            out
        };
        let mut portable = vec![f32::NAN; rows * n];
        unsafe { matmul_part::<Portable>(&x, k, &q, n, &mut portable) };
        for threads in [1, 2, 3] {
            assert_eq!(run(threads), portable, "{threads} threads");
        }
        let mut worst = 0f32;
        for r in 0..rows {
            for c in 0..n {
                let exact: f32 = (0..k).map(|i| x[r * k + i] * w[i * n + c]).sum();
                worst = worst.max((exact - portable[r * n + c]).abs());
            }
        }
        // Products of values in ±0.3 over 37 terms: 8-bit steps of ~0.0024
        // on both sides leave a few 1e-3.
        assert!(worst > 0.0 && worst < 2e-2, "{worst}");
    }
}
