//! The CPU time loop: f32 slices, buffers allocated once per call. Cells
//! with a packed `W_hh` run the micro-kernel in `packed`; GRU without
//! `reset_after` (whose candidate matmul needs `r` of every unit first)
//! runs two `gemm` calls per step with the gate math between them.

use gemm::Parallelism;

use super::config::{Activation, CellKind, RecurrentActivation};
use super::gru;
use super::packed::{self, Packed};
use super::schedule::{MaskedOutput, Schedule};

/// Below this many multiply-adds a threaded gemm costs more than it saves.
const PARALLEL_MIN_FLOPS: usize = 1 << 20;

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]`, row-major with the given row
/// strides (column stride 1).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    dst: &mut [f32],
    dst_rs: usize,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    mnk: (usize, usize, usize),
    accumulate: bool,
    threads: usize,
) {
    let len = dst.len();
    matmul_raw(
        dst.as_mut_ptr(),
        len,
        dst_rs,
        lhs,
        lhs_rs,
        rhs,
        rhs_rs,
        mnk,
        accumulate,
        threads,
    )
}

/// `dst` points at `dst_len` floats, written (and read when accumulating)
/// only inside the bounds checked here.
#[allow(clippy::too_many_arguments)]
fn matmul_raw(
    dst: *mut f32,
    dst_len: usize,
    dst_rs: usize,
    lhs: &[f32],
    lhs_rs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst_len >= (m - 1) * dst_rs + n, "gemm dst out of bounds");
    assert!(
        k == 0 || lhs.len() >= (m - 1) * lhs_rs + k,
        "gemm lhs out of bounds"
    );
    assert!(
        k == 0 || rhs.len() >= (k - 1) * rhs_rs + n,
        "gemm rhs out of bounds"
    );
    let parallelism = if threads > 1 && m * n * k >= PARALLEL_MIN_FLOPS {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the asserts above keep every access inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            lhs_rs as isize,
            rhs.as_ptr(),
            1,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// What one direction needs besides its inputs.
#[derive(Clone)]
pub(crate) struct Direction<'a> {
    pub cell: CellKind,
    pub reset_after: bool,
    pub act: Activation,
    pub ract: RecurrentActivation,
    pub units: usize,
    /// `[units, gates*units]`
    pub wh_t: &'a [f32],
    /// `W_hh` in panel order, for every cell but GRU without `reset_after`.
    pub packed: Option<&'a Packed>,
    pub bhn: Option<&'a [f32]>,
    /// The input biases `[gates*units]` when the projected inputs don't
    /// hold them yet (the packed kernel adds them as it reads a block).
    pub bx: Option<&'a [f32]>,
    pub schedule: Schedule,
}

/// Where one direction writes its outputs: the rows of a `[batch*steps,
/// dirs*units]` buffer that the directions of a layer share, each writing
/// its own `units` columns, so that no copy interleaves them afterwards.
pub(crate) struct Outputs<'a> {
    ptr: *mut f32,
    rows: usize,
    stride: usize,
    units: usize,
    _buffer: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: each `Outputs` of a buffer writes only its own columns.
unsafe impl Send for Outputs<'_> {}
unsafe impl Sync for Outputs<'_> {}

impl<'a> Outputs<'a> {
    /// One `Outputs` per direction over `buf` (`[rows, dirs*units]`).
    pub fn split(buf: &'a mut [f32], units: usize, dirs: usize) -> Vec<Outputs<'a>> {
        let stride = dirs * units;
        assert_eq!(buf.len() % stride.max(1), 0, "output buffer shape");
        let rows = buf.len() / stride.max(1);
        let ptr = buf.as_mut_ptr();
        (0..dirs)
            .map(|d| Outputs {
                // SAFETY: d*units < stride <= buf.len() when rows > 0.
                ptr: ptr.wrapping_add(d * units),
                rows,
                stride,
                units,
                _buffer: std::marker::PhantomData,
            })
            .collect()
    }

    /// Columns `j0..j0+n` of output row `row`.
    ///
    /// # Safety
    /// No other live slice may cover the same elements (each direction
    /// owns its columns; parts of one direction own disjoint units).
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn cols(&self, row: usize, j0: usize, n: usize) -> &mut [f32] {
        assert!(
            row < self.rows && j0 + n <= self.units,
            "output row out of bounds"
        );
        std::slice::from_raw_parts_mut(self.ptr.add(row * self.stride + j0), n)
    }
}

/// Projected inputs of one direction: row `b*steps + t` starts at
/// `data[row * stride + offset]` and holds `gates*units` values.
pub(crate) struct Projected<'a> {
    pub data: &'a [f32],
    pub stride: usize,
    pub offset: usize,
}

/// Runs one direction over the batch. `h`/`c` hold the initial state on
/// entry and the final state on return; `out` (zero-filled) receives the
/// outputs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    d: &Direction,
    xp: &Projected,
    lengths: &[usize],
    steps: usize,
    h: &mut [f32],
    c: &mut [f32],
    out: &Outputs,
    threads: usize,
) {
    if let Some(p) = d.packed {
        return packed::run(d, p, xp, lengths, steps, h, c, out, threads);
    }
    debug_assert!(d.cell == CellKind::Gru && !d.reset_after);
    assert!(
        d.bx.is_none(),
        "the unpacked loop reads projections with biases"
    );
    #[cfg(target_arch = "x86_64")]
    if super::cpu::allows(super::cpu::Level::Avx2) {
        // SAFETY: the CPU has the features this copy is compiled for.
        return unsafe { run_avx2(d, xp, lengths, steps, h, c, out, threads) };
    }
    run_impl(d, xp, lengths, steps, h, c, out, threads)
}

/// The same loop compiled for AVX2+FMA, so the gate math uses 8 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn run_avx2(
    d: &Direction,
    xp: &Projected,
    lengths: &[usize],
    steps: usize,
    h: &mut [f32],
    c: &mut [f32],
    out: &Outputs,
    threads: usize,
) {
    run_impl(d, xp, lengths, steps, h, c, out, threads)
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn run_impl(
    d: &Direction,
    xp: &Projected,
    lengths: &[usize],
    steps: usize,
    h: &mut [f32],
    _c: &mut [f32],
    out: &Outputs,
    threads: usize,
) {
    let u = d.units;
    let gu = d.cell.gates() * u;
    let batch = lengths.len();
    let mut gh = vec![0f32; batch * gu];
    // z, r*h and (r*h) @ W_hn per row.
    let mut z = vec![0f32; batch * u];
    let mut rh = vec![0f32; batch * u];
    let mut ghn = vec![0f32; batch * u];
    let mut started = vec![false; batch];
    let gx_at = |b: usize, t: usize| {
        let s = (b * steps + t) * xp.stride + xp.offset;
        &xp.data[s..s + gu]
    };

    for k in 0..steps {
        matmul(
            &mut gh,
            gu,
            h,
            u,
            d.wh_t,
            gu,
            (batch, 2 * u, u),
            false,
            threads,
        );
        for b in 0..batch {
            let (t, valid) = d.schedule.step(k, lengths[b], steps);
            let (zb, rhb) = (&mut z[b * u..(b + 1) * u], &mut rh[b * u..(b + 1) * u]);
            if valid {
                let ghb = &mut gh[b * gu..(b + 1) * gu];
                gru::row_gates_before(gx_at(b, t), ghb, &h[b * u..(b + 1) * u], zb, rhb, d.ract);
            } else {
                rhb.fill(0.0);
            }
        }
        matmul(
            &mut ghn,
            u,
            &rh,
            u,
            &d.wh_t[2 * u..],
            gu,
            (batch, u, u),
            false,
            threads,
        );
        for b in 0..batch {
            let (t, valid) = d.schedule.step(k, lengths[b], steps);
            let hb = &mut h[b * u..(b + 1) * u];
            if valid {
                gru::row_finish_before(
                    gx_at(b, t),
                    &mut ghn[b * u..(b + 1) * u],
                    &z[b * u..(b + 1) * u],
                    hb,
                    d.act,
                );
                started[b] = true;
            } else if d.schedule.masked == MaskedOutput::Zero || !started[b] {
                continue; // `out` is already zero there
            }
            // A masked step carries the state, so `h` is the previous output.
            let p = d.schedule.position(k, t, steps);
            // SAFETY: this direction's columns, written by this thread only.
            unsafe { out.cols(b * steps + p, 0, u) }.copy_from_slice(hb);
        }
    }
}
