//! The recurrent step `h @ W_hh` as a register-blocked micro-kernel over a
//! copy of `W_hh` packed once at load, with the cell's gate math applied to
//! each block while it is still in cache. A general gemm re-packs `W_hh`
//! on every step and writes all gates out before the gate pass reads them
//! back; at batch 32 that cost three quarters of the time.
//!
//! Layout: a panel holds `V` vectors of 16 lanes per row of `W_hh`. For
//! LSTM (V=4) and GRU (V=3) the vectors of a panel are the gates of the
//! same 16 units, so one block of accumulators holds every gate a unit
//! needs; for SimpleRNN (one gate) a panel is 64 consecutive units.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::aligned::{Aligned, Plain};
use super::config::CellKind;
use super::fused::{Direction, Outputs, Projected};
use super::quant::{self, Int8Panels, QuantOps};
use super::schedule::MaskedOutput;
use super::{gru, lstm, simple_rnn};

pub(super) const LANES: usize = 16;
/// Widest panel (`V*LANES`) and most rows of one block, for stack tiles.
pub(super) const MAX_WIDTH: usize = 4 * LANES;
pub(super) const MAX_ROWS: usize = 8;
/// Below this many multiply-adds per step, a second thread's barrier costs
/// more than its half of the work (batch 1: GRU at 256 units, 196K, ran
/// 0.68 -> 0.40 ms on two threads; LSTM at 150 units, 96K, no faster).
const PARALLEL_MIN_MACS: usize = 1 << 17;

/// `W_hh` of one direction in panel order (zero-padded to whole panels).
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    cell: CellKind,
    units: usize,
    vectors: usize,
    panels: usize,
    /// f32 panels, or empty when `int8` holds the weights.
    data: Aligned<f32>,
    int8: Option<Int8Panels>,
}

impl Packed {
    /// `wh_t`: `[units, gates*units]`, row-major. GRU without `reset_after`
    /// needs `r` of every unit before its candidate matmul and is not packed.
    pub fn new(cell: CellKind, reset_after: bool, units: usize, wh_t: &[f32]) -> Option<Self> {
        if cell == CellKind::Gru && !reset_after {
            return None;
        }
        let gu = cell.gates() * units;
        assert_eq!(wh_t.len(), units * gu, "W_hh shape");
        let vectors = if cell == CellKind::SimpleRnn {
            4
        } else {
            cell.gates()
        };
        let mut packed = Packed {
            cell,
            units,
            vectors,
            panels: 0,
            data: Aligned::default(),
            int8: None,
        };
        packed.panels = units.div_ceil(packed.panel_units());
        let width = vectors * LANES;
        let mut data = Aligned::zeroed(packed.panels * units * width);
        let slots = data.as_mut_slice();
        for p in 0..packed.panels {
            for k in 0..units {
                let dst = &mut slots[(p * units + k) * width..][..width];
                for (i, slot) in dst.iter_mut().enumerate() {
                    if let Some(col) = packed.column(p, i / LANES, i % LANES) {
                        *slot = wh_t[k * gu + col];
                    }
                }
            }
        }
        packed.data = data;
        Some(packed)
    }

    /// The same panels with int8 weights (see [`quant`]); the f32 copy is
    /// dropped.
    pub fn to_int8(&self) -> Self {
        if self.int8.is_some() {
            return self.clone();
        }
        let width = self.vectors * LANES;
        Packed {
            int8: Some(Int8Panels::quantize(
                self.panels,
                self.units,
                width,
                self.data.as_slice(),
            )),
            data: Aligned::default(),
            ..self.clone()
        }
    }

    pub fn is_int8(&self) -> bool {
        self.int8.is_some()
    }

    /// Bytes of weights every step reads.
    fn bytes(&self) -> usize {
        self.int8
            .as_ref()
            .map_or(self.data.len() * 4, Int8Panels::bytes)
    }

    fn panel_units(&self) -> usize {
        if self.cell == CellKind::SimpleRnn {
            self.vectors * LANES
        } else {
            LANES
        }
    }

    /// The column of `W_hh` behind lane `l` of vector `v` in panel `p`.
    fn column(&self, p: usize, v: usize, l: usize) -> Option<usize> {
        let u = self.units;
        if self.cell == CellKind::SimpleRnn {
            let j = p * self.panel_units() + v * LANES + l;
            (j < u).then_some(j)
        } else {
            let j = p * LANES + l;
            (j < u).then_some(v * u + j)
        }
    }

    fn panel(&self, p: usize) -> &[f32] {
        let width = self.vectors * LANES;
        &self.data.as_slice()[p * self.units * width..][..self.units * width]
    }
}

/// Runs one direction with the packed kernel; same contract as
/// [`super::fused::run`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    d: &Direction,
    packed: &Packed,
    xp: &Projected,
    lengths: &[usize],
    steps: usize,
    h: &mut [f32],
    c: &mut [f32],
    out: &Outputs,
    threads: usize,
) {
    let macs = lengths.len() * packed.units * packed.vectors * LANES * packed.panels;
    let threads = if macs >= PARALLEL_MIN_MACS && steps > 1 {
        threads
    } else {
        1
    };
    let split = if split_rows(lengths.len(), threads, packed.bytes()) {
        Split::Rows
    } else {
        Split::Panels
    };
    run_with(
        Isa::detect(),
        d,
        packed,
        xp,
        lengths,
        steps,
        h,
        c,
        out,
        (threads, split),
    )
}

/// How the threads of one direction share its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Split {
    /// Each part takes some units (panels) of every row, and the parts
    /// meet at a barrier after every step.
    Panels,
    /// Each part takes whole rows of the batch and never waits.
    Rows,
}

#[allow(clippy::too_many_arguments)]
fn run_with(
    isa: Isa,
    d: &Direction,
    packed: &Packed,
    xp: &Projected,
    lengths: &[usize],
    steps: usize,
    h: &mut [f32],
    c: &mut [f32],
    out: &Outputs,
    (threads, how): (usize, Split),
) {
    let mut spare = vec![0f32; h.len()];
    let shared = Shared {
        h: [h.as_mut_ptr(), spare.as_mut_ptr()],
        c: c.as_mut_ptr(),
        out,
    };
    let batch = lengths.len();
    let by_rows = how == Split::Rows;
    let job = |part: usize, parts: usize, barrier: &SpinBarrier| {
        let (panels, rows) = if by_rows {
            (0..packed.panels, split(batch, parts, part))
        } else {
            (split(packed.panels, parts, part), 0..batch)
        };
        // SAFETY: each part writes only its own rows (which need no
        // barrier: rows are independent) or the units of its own panels,
        // where the barrier orders one step's writes before the next
        // step's reads.
        unsafe {
            isa.steps((
                d,
                packed,
                xp,
                lengths,
                steps,
                &shared,
                (panels, rows),
                barrier,
            ))
        }
    };
    let threads = threads.clamp(1, if by_rows { batch } else { packed.panels });
    match Helpers::lease(threads) {
        Some((helpers, _lease)) => {
            let parts = threads.min(helpers.pool.current_num_threads() + 1);
            let barrier = SpinBarrier::new(if by_rows { 1 } else { parts });
            let (job, barrier) = (&job, &barrier);
            helpers.pool.in_place_scope(|s| {
                for part in 1..parts {
                    s.spawn(move |_| job(part, parts, barrier));
                }
                job(0, parts, barrier);
            });
        }
        None => job(0, 1, &SpinBarrier::new(1)),
    }
    if steps % 2 == 1 {
        h.copy_from_slice(&spare);
    }
}

/// Whether the parts of a layer take whole rows of the batch (every step,
/// every panel, no barrier: rows never read each other's state) rather
/// than panels of units (a barrier at every step). Rows need enough of
/// them for full register blocks in each part, and every part then reads
/// all of `W_hh` each step, so it must fit in half a core's L2 (a 4 MiB
/// f32 LSTM at 512 units ran 7% slower by rows, from L3; at 256 units,
/// 1 MiB, 8% faster, and int8 LSTM 26% faster at 32x64x128->256).
fn split_rows(batch: usize, threads: usize, weight_bytes: usize) -> bool {
    threads > 1 && batch >= 8 * threads && weight_bytes <= l2_bytes() / 2
}

/// One core's L2 cache (Linux sysfs), else a conservative 1 MiB.
fn l2_bytes() -> usize {
    static L2: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *L2.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index2/size")
            .ok()
            .and_then(|s| parse_cache_size(s.trim()))
            .unwrap_or(1 << 20)
    })
}

/// `2048K` / `2M` / `512` (bytes) as sysfs writes cache sizes.
fn parse_cache_size(s: &str) -> Option<usize> {
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let n: usize = digits.parse().ok()?;
    match unit {
        "" => Some(n),
        "K" => n.checked_mul(1 << 10),
        "M" => n.checked_mul(1 << 20),
        _ => None,
    }
}

fn split(n: usize, parts: usize, part: usize) -> std::ops::Range<usize> {
    (n * part / parts)..(n * (part + 1) / parts)
}

/// Threads that run the other parts of a layer. They are long-lived, so the
/// scheduler keeps them on their own cores: threads spawned per call often
/// landed on the caller's core and spun there in turn, at half speed.
/// Parts wait for each other at every step, so a run takes the pool whole
/// (no part ever queues behind another run's) or runs on one thread.
struct Helpers {
    pool: rayon::ThreadPool,
    busy: std::sync::Mutex<()>,
}

impl Helpers {
    fn lease(threads: usize) -> Option<(&'static Helpers, std::sync::MutexGuard<'static, ()>)> {
        static HELPERS: std::sync::OnceLock<Option<Helpers>> = std::sync::OnceLock::new();
        if threads < 2 {
            return None;
        }
        let helpers = HELPERS
            .get_or_init(|| {
                let n = super::threads::machine().saturating_sub(1);
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(n.max(1))
                    .thread_name(|i| format!("zoo-rnn-{i}"))
                    .build()
                    .ok()?;
                Some(Helpers {
                    pool,
                    busy: std::sync::Mutex::new(()),
                })
            })
            .as_ref()?;
        let lease = helpers.busy.try_lock().ok()?;
        Some((helpers, lease))
    }
}

/// The state buffers every part writes its own units of.
struct Shared<'a> {
    /// Step `k` reads `h[k % 2]` and writes `h[(k + 1) % 2]`.
    h: [*mut f32; 2],
    c: *mut f32,
    out: &'a Outputs<'a>,
}

// SAFETY: parts touch disjoint units, ordered by the barrier (see `run`).
unsafe impl Sync for Shared<'_> {}

/// A barrier that spins briefly: a step takes microseconds, and a
/// condvar's wake-up takes as long. It yields after a while so that a
/// machine with fewer free cores than parts still makes progress.
struct SpinBarrier {
    parts: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    fn new(parts: usize) -> Self {
        Self {
            parts,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    fn wait(&self) {
        if self.parts == 1 {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.parts {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if spins < 1 << 10 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// What a weight panel holds: f32, or f16 bits that widen to f32 as they
/// load (exactly: every f16 is an f32), for half the memory traffic.
trait Elem: Copy {
    /// # Safety
    /// `p` points at 16 readable elements; `S`'s features are enabled.
    unsafe fn load<S: Simd>(p: *const Self) -> S::V;
}

impl Elem for f32 {
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const f32) -> S::V {
        S::load(p)
    }
}

impl Elem for u16 {
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const u16) -> S::V {
        S::load_f16(p)
    }
}

/// One vector of 16 lanes in the instruction set at hand.
trait Simd {
    type V: Copy;
    /// Accumulator vectors the register file holds with room to spare.
    const REGISTERS: usize;
    /// How the gate math's polynomials multiply-add.
    type Madd: super::math::MulAdd;
    unsafe fn zero() -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    /// 16 f16 values (their bits), widened to f32.
    unsafe fn load_f16(p: *const u16) -> Self::V;
    unsafe fn splat(x: f32) -> Self::V;
    /// `acc + a * b`
    unsafe fn fma(acc: Self::V, a: Self::V, b: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    pub struct Avx512;
    impl super::Simd for Avx512 {
        type V = __m512;
        const REGISTERS: usize = 32;
        type Madd = crate::nn::math::Fused;
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load(p: *const f32) -> __m512 {
            _mm512_loadu_ps(p)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn load_f16(p: *const u16) -> __m512 {
            _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i))
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn fma(acc: __m512, a: __m512, b: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, acc)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn add(a: __m512, b: __m512) -> __m512 {
            _mm512_add_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn store(p: *mut f32, v: __m512) {
            _mm512_storeu_ps(p, v)
        }
    }

    /// 16 lanes as two 8-lane registers.
    pub struct Avx2;
    impl super::Simd for Avx2 {
        type V = (__m256, __m256);
        const REGISTERS: usize = 8;
        type Madd = crate::nn::math::Fused;
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn zero() -> Self::V {
            (_mm256_setzero_ps(), _mm256_setzero_ps())
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn load(p: *const f32) -> Self::V {
            (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn load_f16(p: *const u16) -> Self::V {
            (
                _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
                _mm256_cvtph_ps(_mm_loadu_si128(p.add(8) as *const __m128i)),
            )
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn splat(x: f32) -> Self::V {
            let v = _mm256_set1_ps(x);
            (v, v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fma(acc: Self::V, a: Self::V, b: Self::V) -> Self::V {
            (
                _mm256_fmadd_ps(a.0, b.0, acc.0),
                _mm256_fmadd_ps(a.1, b.1, acc.1),
            )
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn add(a: Self::V, b: Self::V) -> Self::V {
            (_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1))
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn store(p: *mut f32, v: Self::V) {
            _mm256_storeu_ps(p, v.0);
            _mm256_storeu_ps(p.add(8), v.1);
        }
    }
}

/// Plain arrays: the compiler vectorises them for whatever the target has
/// (NEON on aarch64).
struct Portable;
impl Simd for Portable {
    type V = [f32; LANES];
    const REGISTERS: usize = 8;
    #[cfg(any(target_arch = "aarch64", target_feature = "fma"))]
    type Madd = super::math::Fused;
    #[cfg(not(any(target_arch = "aarch64", target_feature = "fma")))]
    type Madd = super::math::Unfused;
    #[inline(always)]
    unsafe fn zero() -> Self::V {
        [0.0; LANES]
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        std::ptr::read_unaligned(p as *const [f32; LANES])
    }
    #[inline(always)]
    unsafe fn load_f16(p: *const u16) -> Self::V {
        std::ptr::read_unaligned(p as *const [u16; LANES]).map(|b| half::f16::from_bits(b).to_f32())
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self::V {
        [x; LANES]
    }
    #[inline(always)]
    unsafe fn fma(mut acc: Self::V, a: Self::V, b: Self::V) -> Self::V {
        for l in 0..LANES {
            acc[l] += a[l] * b[l];
        }
        acc
    }
    #[inline(always)]
    unsafe fn add(mut a: Self::V, b: Self::V) -> Self::V {
        for l in 0..LANES {
            a[l] += b[l];
        }
        a
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        std::ptr::write_unaligned(p as *mut [f32; LANES], v)
    }
}

#[derive(Clone, Copy, Debug)]
enum Isa {
    /// AVX-512 with VNNI for int8 weights (f32 as `Avx512`).
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Isa {
    /// Every instruction set this CPU can run, best first.
    #[cfg(test)]
    fn available() -> Vec<Self> {
        let mut all = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni") {
                all.push(Isa::Avx512Vnni);
            }
            if is_x86_feature_detected!("avx512f") {
                all.push(Isa::Avx512);
            }
            if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
            {
                all.push(Isa::Avx2);
            }
        }
        all.push(Isa::Portable);
        all
    }

    /// Detected once: the feature checks and the environment don't change.
    fn detect() -> Self {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(Self::probe)
    }

    fn probe() -> Self {
        use super::cpu::{allows, Level};
        #[cfg(target_arch = "x86_64")]
        {
            if allows(Level::Avx512) {
                if is_x86_feature_detected!("avx512vnni") {
                    return Isa::Avx512Vnni;
                }
                return Isa::Avx512;
            }
            if allows(Level::Avx2) {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// # Safety
    /// `shared` must point at buffers of the shapes `run` documents, and
    /// the parts' panel ranges must be disjoint.
    unsafe fn steps(self, args: StepArgs) {
        let packed = args.1;
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni if packed.is_int8() => steps_avx512_vnni(args),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx512Vnni => steps_avx512(args),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => steps_avx2(args),
            Isa::Portable => steps_generic::<Portable, quant::Portable>(args),
        }
    }
}

/// What one part of the time loop reads: the direction, its weights and
/// inputs, the shared state and its own panels.
type StepArgs<'a> = (
    &'a Direction<'a>,
    &'a Packed,
    &'a Projected<'a>,
    &'a [usize],
    usize,
    &'a Shared<'a>,
    (std::ops::Range<usize>, std::ops::Range<usize>),
    &'a SpinBarrier,
);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn steps_avx512_vnni(args: StepArgs) {
    steps_generic::<x86::Avx512, quant::x86::Vnni>(args)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn steps_avx512(args: StepArgs) {
    steps_generic::<x86::Avx512, quant::Portable>(args)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn steps_avx2(args: StepArgs) {
    steps_generic::<x86::Avx2, quant::Portable>(args)
}

/// The time loop of one part: its panels, every row block, every step.
#[inline(always)]
unsafe fn steps_generic<S: Simd, Q: QuantOps>(
    (d, packed, xp, lengths, steps, shared, (panels, part_rows), barrier): StepArgs,
) {
    let (u, v) = (packed.units, packed.vectors);
    let batch = lengths.len();
    let rows_per_block = ((S::REGISTERS - v - 1) / v).clamp(1, MAX_ROWS);
    let mut tile = [[0f32; MAX_WIDTH]; MAX_ROWS];
    let mut read = vec![(0usize, false); batch];
    let mut started = vec![false; batch];
    // int8: every part quantizes the rows of `h` it reads for itself (with
    // a panel split that is all of them, a few microseconds a step, which
    // saves a second barrier).
    let mut h_q = packed
        .int8
        .as_ref()
        .map(|w| quant::Rows::new(batch, w.groups));
    for k in 0..steps {
        for (b, r) in read
            .iter_mut()
            .enumerate()
            .take(part_rows.end)
            .skip(part_rows.start)
        {
            *r = d.schedule.step(k, lengths[b], steps);
        }
        let h_prev = shared.h[k % 2] as *const f32;
        if let Some(q) = h_q.as_mut() {
            Q::quantize(h_prev, u, q, part_rows.clone());
        }
        for p in panels.clone() {
            let mut r0 = part_rows.start;
            while r0 < part_rows.end {
                let rows = rows_per_block.min(part_rows.end - r0);
                // Every row of the block at a valid step: the gate math of
                // the whole block at once (see `gate_block`).
                let whole = read[r0..r0 + rows].iter().all(|&(_, valid)| valid)
                    && match packed.cell {
                        CellKind::Lstm => true,
                        CellKind::Gru => (p + 1) * LANES <= u,
                        CellKind::SimpleRnn => (p + 1) * MAX_WIDTH <= u,
                    };
                let pre = match (&packed.int8, &h_q) {
                    (Some(w), Some(q)) => {
                        match v {
                            4 => quant_rows::<Q, 4>(w, p, q, r0, rows, &mut tile),
                            3 => quant_rows::<Q, 3>(w, p, q, r0, rows, &mut tile),
                            _ => unreachable!("panels have 3 or 4 vectors"),
                        }
                        Pre::Tile
                    }
                    _ => {
                        let panel = packed.panel(p).as_ptr();
                        let h_rows = h_prev.add(r0 * u);
                        if whole {
                            Pre::Packed(panel, h_rows)
                        } else {
                            match v {
                                4 => block_rows::<S, 4, _>(panel, h_rows, u, rows, &mut tile),
                                3 => block_rows::<S, 3, _>(panel, h_rows, u, rows, &mut tile),
                                _ => unreachable!("panels have 3 or 4 vectors"),
                            }
                            Pre::Tile
                        }
                    }
                };
                if whole {
                    for (b, r) in (r0..r0 + rows).zip(&read[r0..]) {
                        prefetch_next(d, packed, xp, steps, lengths, (k, b, p), r.0, &panels);
                    }
                    let args = (d, packed, xp, steps, shared, (k, p), r0);
                    let block = &read[r0..r0 + rows];
                    gate_block::<S>(args, block, pre, &tile);
                    started[r0..r0 + rows].fill(true);
                    r0 += rows;
                    continue;
                }
                for (r, tile_r) in tile.iter_mut().enumerate().take(rows) {
                    let b = r0 + r;
                    prefetch_next(d, packed, xp, steps, lengths, (k, b, p), read[b].0, &panels);
                    epilogue::<S::Madd>(
                        d,
                        packed,
                        xp,
                        steps,
                        shared,
                        (k, b, p),
                        read[b],
                        &mut started[b],
                        tile_r,
                    );
                }
                r0 += rows;
            }
        }
        barrier.wait();
    }
}

/// The int8 `block_rows`.
#[inline(always)]
pub(super) unsafe fn quant_rows<Q: QuantOps, const V: usize>(
    w: &Int8Panels,
    p: usize,
    q: &quant::Rows,
    r0: usize,
    rows: usize,
    tile: &mut [[f32; MAX_WIDTH]; MAX_ROWS],
) {
    match rows {
        1 => Q::block::<V, 1>(w, p, q, r0, tile),
        2 => Q::block::<V, 2>(w, p, q, r0, tile),
        3 => Q::block::<V, 3>(w, p, q, r0, tile),
        4 => Q::block::<V, 4>(w, p, q, r0, tile),
        5 => Q::block::<V, 5>(w, p, q, r0, tile),
        6 => Q::block::<V, 6>(w, p, q, r0, tile),
        7 => Q::block::<V, 7>(w, p, q, r0, tile),
        _ => Q::block::<V, 8>(w, p, q, r0, tile),
    }
}

/// `tile[r] = h[r, :] @ panel` for `rows` rows, with the row count fixed
/// at compile time so that the accumulators live in registers.
#[inline(always)]
unsafe fn block_rows<S: Simd, const V: usize, E: Elem>(
    panel: *const E,
    h: *const f32,
    u: usize,
    rows: usize,
    tile: &mut [[f32; MAX_WIDTH]; MAX_ROWS],
) {
    match rows {
        1 => block::<S, V, 1, _>(panel, h, u, tile),
        2 => block::<S, V, 2, _>(panel, h, u, tile),
        3 => block::<S, V, 3, _>(panel, h, u, tile),
        4 => block::<S, V, 4, _>(panel, h, u, tile),
        5 => block::<S, V, 5, _>(panel, h, u, tile),
        6 => block::<S, V, 6, _>(panel, h, u, tile),
        7 => block::<S, V, 7, _>(panel, h, u, tile),
        _ => block::<S, V, 8, _>(panel, h, u, tile),
    }
}

#[inline(always)]
unsafe fn block<S: Simd, const V: usize, const MR: usize, E: Elem>(
    panel: *const E,
    h: *const f32,
    u: usize,
    tile: &mut [[f32; MAX_WIDTH]; MAX_ROWS],
) {
    let acc = block_acc::<S, V, MR, _>(panel, h, u);
    for (acc_r, tile_r) in acc.iter().zip(tile.iter_mut()) {
        for (i, a) in acc_r.iter().enumerate() {
            S::store(tile_r.as_mut_ptr().add(i * LANES), *a);
        }
    }
}

/// `h[r, :] @ panel` for `MR` rows, in registers.
#[inline(always)]
unsafe fn block_acc<S: Simd, const V: usize, const MR: usize, E: Elem>(
    panel: *const E,
    h: *const f32,
    u: usize,
) -> [[S::V; V]; MR] {
    // A block of fewer than ~16 accumulators waits on each FMA's latency
    // (batch 1: four chains, one FMA a cycle of two); such blocks sum every
    // `ks`-th `k` into its own set, where the registers allow.
    let room = S::REGISTERS.saturating_sub(V + 1) / (MR * V);
    match (16 / (MR * V)).min(room).clamp(1, 4) {
        1 => block_acc_split::<S, V, MR, 1, _>(panel, h, u),
        2 => block_acc_split::<S, V, MR, 2, _>(panel, h, u),
        3 => block_acc_split::<S, V, MR, 3, _>(panel, h, u),
        _ => block_acc_split::<S, V, MR, 4, _>(panel, h, u),
    }
}

/// [`block_acc`] with `KS` interleaved sets of accumulators over `k`.
#[inline(always)]
unsafe fn block_acc_split<S: Simd, const V: usize, const MR: usize, const KS: usize, E: Elem>(
    panel: *const E,
    h: *const f32,
    u: usize,
) -> [[S::V; V]; MR] {
    let mut acc = [[[S::zero(); V]; MR]; KS];
    let full = u / KS * KS;
    for k0 in (0..full).step_by(KS) {
        for (s, acc_s) in acc.iter_mut().enumerate() {
            fma_k::<S, V, MR, _>(acc_s, panel, h, u, k0 + s);
        }
    }
    for k in full..u {
        fma_k::<S, V, MR, _>(&mut acc[0], panel, h, u, k);
    }
    let mut sum = acc[0];
    for other in &acc[1..] {
        for (acc_r, o_r) in sum.iter_mut().zip(other) {
            for (a, o) in acc_r.iter_mut().zip(o_r) {
                *a = S::add(*a, *o);
            }
        }
    }
    sum
}

/// `acc[r] += h[r, k] * panel[k]` (a function, not a closure: a closure
/// left out of line lacks the caller's target features).
#[inline(always)]
unsafe fn fma_k<S: Simd, const V: usize, const MR: usize, E: Elem>(
    acc: &mut [[S::V; V]; MR],
    panel: *const E,
    h: *const f32,
    u: usize,
    k: usize,
) {
    let w_row = panel.add(k * V * LANES);
    let mut w = [S::zero(); V];
    for (i, wv) in w.iter_mut().enumerate() {
        *wv = E::load::<S>(w_row.add(i * LANES));
    }
    for (r, acc_r) in acc.iter_mut().enumerate() {
        let x = S::splat(*h.add(r * u + k));
        for (a, wv) in acc_r.iter_mut().zip(&w) {
            *a = S::fma(*a, *wv, x);
        }
    }
}

/// Columns of a dense layer's weight per panel (four vectors, as LSTM's).
pub(super) const DENSE_WIDTH: usize = 4 * LANES;

/// A dense layer's packed weight: f16 where every value is one (weights
/// stored in f16 and widened at load), else f32.
#[derive(Debug, Clone)]
pub(crate) enum DensePanels {
    F32(Aligned<f32>),
    /// f16 bits. Widening is exact, so the products are the f32 ones, for
    /// half the memory traffic: a decoder step with a few rows streams the
    /// whole 1152 x 6000 output layer, 27.6 MB as f32, and waits on it.
    F16(Aligned<u16>),
}

/// `w [k, n]` (row-major) in panels of [`DENSE_WIDTH`] columns, each `k`
/// rows deep, zero-padded: the layout [`dense`] reads; f16 if lossless.
/// With `rows_are_outputs`, `w` is `[n, k]` instead (PyTorch's and candle's
/// `Linear` layout), packed as it stands: no transposed copy first.
pub(super) fn pack_dense(w: &[f32], k: usize, n: usize, rows_are_outputs: bool) -> DensePanels {
    let f16 = half::f16::from_f32;
    if w.iter().all(|&v| f16(v).to_f32().to_bits() == v.to_bits()) {
        DensePanels::F16(pack_columns(w, (k, n, rows_are_outputs), |v| {
            f16(v).to_bits()
        }))
    } else {
        DensePanels::F32(pack_columns(w, (k, n, rows_are_outputs), |v| v))
    }
}

fn pack_columns<T: Plain>(
    w: &[f32],
    (k, n, rows_are_outputs): (usize, usize, bool),
    cast: impl Fn(f32) -> T,
) -> Aligned<T> {
    assert_eq!(w.len(), k * n, "dense weight shape");
    let panels = n.div_ceil(DENSE_WIDTH);
    let mut packed = Aligned::zeroed(panels * k * DENSE_WIDTH);
    let data = packed.as_mut_slice();
    for p in 0..panels {
        let cols = (n - p * DENSE_WIDTH).min(DENSE_WIDTH);
        let panel = &mut data[p * k * DENSE_WIDTH..][..k * DENSE_WIDTH];
        if rows_are_outputs {
            // Column j of the panel is row p*64+j of `w`: read it in order.
            for j in 0..cols {
                let src = &w[(p * DENSE_WIDTH + j) * k..][..k];
                for (kk, &v) in src.iter().enumerate() {
                    panel[kk * DENSE_WIDTH + j] = cast(v);
                }
            }
        } else {
            for kk in 0..k {
                let src = &w[kk * n + p * DENSE_WIDTH..][..cols];
                for (d, &v) in panel[kk * DENSE_WIDTH..][..cols].iter_mut().zip(src) {
                    *d = cast(v);
                }
            }
        }
    }
    packed
}

/// `out[r, cols of p] = x[r, :] @ panel p + bias` for every row `r < m`
/// and every panel `p` in `panels`: the packed step's block kernel with a
/// bias epilogue. `out` has `n` columns.
///
/// # Safety
/// `data` holds [`pack_dense`] panels of depth `k`, `x` has `m * k`
/// floats, `out` has room for `m * n` and no other thread writes the
/// columns of `panels`.
pub(super) unsafe fn dense(
    data: &DensePanels,
    (m, k, n): (usize, usize, usize),
    x: &[f32],
    bias: &[f32],
    out: *mut f32,
    panels: std::ops::Range<usize>,
) {
    dense_with(Isa::detect(), (data, (m, k, n), x, bias, out, panels))
}

unsafe fn dense_with(isa: Isa, args: DenseArgs) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Vnni => dense_avx512(args),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => dense_avx2(args),
        Isa::Portable => dense_generic::<Portable>(args),
    }
}

type DenseArgs<'a> = (
    &'a DensePanels,
    (usize, usize, usize),
    &'a [f32],
    &'a [f32],
    *mut f32,
    std::ops::Range<usize>,
);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dense_avx512(args: DenseArgs) {
    dense_generic::<x86::Avx512>(args)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dense_avx2(args: DenseArgs) {
    dense_generic::<x86::Avx2>(args)
}

#[inline(always)]
unsafe fn dense_generic<S: Simd>((data, mkn, x, bias, out, panels): DenseArgs) {
    // f16 panels are read directly, widened in registers: with few rows
    // memory is the bound (1 row: 0.54 -> 0.29 ms at 1152 x 6000); with 64
    // rows the widening takes FMA slots (2.7 -> 2.9 ms; widening each panel
    // into an f32 copy first was no better).
    match data {
        DensePanels::F32(d) => dense_panels::<S, f32>(d.as_slice(), mkn, x, bias, out, panels),
        DensePanels::F16(d) => dense_panels::<S, u16>(d.as_slice(), mkn, x, bias, out, panels),
    }
}

#[inline(always)]
unsafe fn dense_panels<S: Simd, E: Elem>(
    data: &[E],
    (m, k, n): (usize, usize, usize),
    x: &[f32],
    bias: &[f32],
    out: *mut f32,
    panels: std::ops::Range<usize>,
) {
    const V: usize = DENSE_WIDTH / LANES;
    let rows_per_block = ((S::REGISTERS - V - 1) / V).clamp(1, MAX_ROWS);
    let mut tile = [[0f32; MAX_WIDTH]; MAX_ROWS];
    for p in panels {
        let panel = data[p * k * DENSE_WIDTH..][..k * DENSE_WIDTH].as_ptr();
        let (j0, cols) = (p * DENSE_WIDTH, (n - p * DENSE_WIDTH).min(DENSE_WIDTH));
        let b = &bias[j0..j0 + cols];
        let mut r0 = 0;
        while r0 < m {
            let rows = rows_per_block.min(m - r0);
            block_rows::<S, V, _>(panel, x[r0 * k..].as_ptr(), k, rows, &mut tile);
            for (r, t) in tile.iter().enumerate().take(rows) {
                let dst = std::slice::from_raw_parts_mut(out.add((r0 + r) * n + j0), cols);
                for ((d, t), b) in dst.iter_mut().zip(t).zip(b) {
                    *d = t + b;
                }
            }
            r0 += rows;
        }
    }
}

/// Prefetches the inputs the next panel of row `b` reads (a panel's work
/// ahead): fetched a whole step ahead, they were evicted by the `W_hh`
/// stream before they were read.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn prefetch_next(
    d: &Direction,
    packed: &Packed,
    xp: &Projected,
    steps: usize,
    lengths: &[usize],
    (k, b, p): (usize, usize, usize),
    t: usize,
    panels: &std::ops::Range<usize>,
) {
    if p + 1 < panels.end {
        prefetch_inputs(packed, xp, steps, (b, p + 1), t);
    } else if k + 1 < steps {
        let next = read_next(d, k + 1, lengths[b], steps);
        prefetch_inputs(packed, xp, steps, (b, panels.start), next);
    }
}

/// The gate math of a whole block (`read.len()` rows, every one at a
/// valid step) at once: the polynomial chains of the rows overlap, where
/// one row at a time left the vector units waiting on each chain's latency.
/// GRU and SimpleRNN blocks must be of full panels (16 and 64 units).
#[inline(always)]
unsafe fn gate_block<S: Simd>(
    (d, packed, xp, steps, shared, kp, r0): BlockAt,
    read: &[(usize, bool)],
    pre: Pre,
    tile: &[[f32; MAX_WIDTH]; MAX_ROWS],
) {
    let args = (d, packed, xp, steps, shared, kp, r0, read);
    /// `$rows::<S, MR, { MR * $width }>` for the block's row count `MR`.
    macro_rules! by_rows {
        ($rows:ident, $width:expr) => {
            match read.len() {
                1 => $rows::<S, 1, { $width }>(args, pre, tile),
                2 => $rows::<S, 2, { 2 * $width }>(args, pre, tile),
                3 => $rows::<S, 3, { 3 * $width }>(args, pre, tile),
                4 => $rows::<S, 4, { 4 * $width }>(args, pre, tile),
                5 => $rows::<S, 5, { 5 * $width }>(args, pre, tile),
                6 => $rows::<S, 6, { 6 * $width }>(args, pre, tile),
                7 => $rows::<S, 7, { 7 * $width }>(args, pre, tile),
                _ => $rows::<S, 8, { 8 * $width }>(args, pre, tile),
            }
        };
    }
    match packed.cell {
        CellKind::Lstm => by_rows!(lstm_rows, LANES),
        CellKind::Gru => by_rows!(gru_rows, LANES),
        CellKind::SimpleRnn => by_rows!(simple_rows, MAX_WIDTH),
    }
}

/// Where a block's `h @ W_hh` is: already in the tile (int8, or computed
/// for another epilogue), or still to compute from an f32 panel and `h`'s
/// rows, straight into registers.
#[derive(Clone, Copy)]
enum Pre {
    Tile,
    Packed(*const f32, *const f32),
}

/// Where a block sits: direction, weights, inputs, steps, state, (step,
/// panel) and its first row.
type BlockAt<'a> = (
    &'a Direction<'a>,
    &'a Packed,
    &'a Projected<'a>,
    usize,
    &'a Shared<'a>,
    (usize, usize),
    usize,
);

type BlockArgs<'a> = (
    &'a Direction<'a>,
    &'a Packed,
    &'a Projected<'a>,
    usize,
    &'a Shared<'a>,
    (usize, usize),
    usize,
    &'a [(usize, bool)],
);

/// [`gate_block`] for LSTM, `MR` rows (`N = MR * LANES` units).
#[inline(always)]
unsafe fn lstm_rows<S: Simd, const MR: usize, const N: usize>(
    (d, packed, xp, steps, shared, (k, p), r0, read): BlockArgs,
    pre: Pre,
    tile: &[[f32; MAX_WIDTH]; MAX_ROWS],
) {
    let u = packed.units;
    let j0 = p * LANES;
    let n = LANES.min(u - j0);
    let mut z = [[0f32; N]; 4];
    let mut cell = [0f32; N];
    let mut h = [0f32; N];
    let acc = block_pre::<S, 4, MR>(pre, tile, u);
    for (r, &(t, _)) in read.iter().enumerate() {
        let b = r0 + r;
        let gx = &xp.data[(b * steps + t) * xp.stride + xp.offset..];
        let at = r * LANES;
        let c = std::slice::from_raw_parts(shared.c.add(b * u + j0), n);
        // Explicit vectors: element loops here compiled to scalar code and
        // array copies to `memcpy` calls.
        if n == LANES {
            for g in 0..4 {
                let zg = S::add(acc[r][g], x_gate::<S>(d, gx, g * u + j0));
                S::store(z[g][at..at + LANES].as_mut_ptr(), zg);
            }
            S::store(cell[at..at + LANES].as_mut_ptr(), S::load(c.as_ptr()));
        } else {
            let mut row = [0f32; MAX_WIDTH];
            for (g, a) in acc[r].iter().enumerate() {
                S::store(row[g * LANES..].as_mut_ptr(), *a);
            }
            for g in 0..4 {
                for i in 0..n {
                    let bias = d.bx.map_or(0.0, |bx| bx[g * u + j0 + i]);
                    z[g][at + i] = row[g * LANES + i] + gx[g * u + j0 + i] + bias;
                }
            }
            cell[at..at + n].copy_from_slice(c);
        }
    }
    lstm::cell::<N, S::Madd>(&mut z, &mut h, &mut cell, d.act, d.ract);
    store_rows(d, shared, (k, j0, n), (r0, read, steps), &h, Some(&cell));
}

/// [`gate_block`] for GRU (reset_after), `MR` rows (`N = MR * LANES` units).
#[inline(always)]
unsafe fn gru_rows<S: Simd, const MR: usize, const N: usize>(
    (d, packed, xp, steps, shared, (k, p), r0, read): BlockArgs,
    pre: Pre,
    tile: &[[f32; MAX_WIDTH]; MAX_ROWS],
) {
    let u = packed.units;
    let j0 = p * LANES;
    let acc = block_pre::<S, 3, MR>(pre, tile, u);
    let mut hz = [[0f32; N]; 3];
    let mut xz = [[0f32; N]; 3];
    let (mut prev, mut bhn, mut h) = ([0f32; N], [0f32; N], [0f32; N]);
    for (r, &(t, _)) in read.iter().enumerate() {
        let b = r0 + r;
        let gx = &xp.data[(b * steps + t) * xp.stride + xp.offset..];
        let at = r * LANES;
        for g in 0..3 {
            S::store(hz[g][at..at + LANES].as_mut_ptr(), acc[r][g]);
            let x = x_gate::<S>(d, gx, g * u + j0);
            S::store(xz[g][at..at + LANES].as_mut_ptr(), x);
        }
        let h_prev = shared.h[k % 2].add(b * u + j0);
        S::store(prev[at..at + LANES].as_mut_ptr(), S::load(h_prev));
        if let Some(bn) = d.bhn {
            S::store(
                bhn[at..at + LANES].as_mut_ptr(),
                S::load(bn[j0..][..LANES].as_ptr()),
            );
        }
    }
    let [z0, z1, z2] = &mut hz;
    gru::cell_reset_after::<N, S::Madd>(
        [&xz[0], &xz[1], &xz[2]],
        [z0, z1, z2],
        &bhn,
        &prev,
        &mut h,
        d.act,
        d.ract,
    );
    store_rows(d, shared, (k, j0, LANES), (r0, read, steps), &h, None);
}

/// [`gate_block`] for SimpleRNN, `MR` rows (`N = MR * MAX_WIDTH` units).
#[inline(always)]
unsafe fn simple_rows<S: Simd, const MR: usize, const N: usize>(
    (d, packed, xp, steps, shared, (k, p), r0, read): BlockArgs,
    pre: Pre,
    tile: &[[f32; MAX_WIDTH]; MAX_ROWS],
) {
    let u = packed.units;
    let j0 = p * MAX_WIDTH;
    let acc = block_pre::<S, 4, MR>(pre, tile, u);
    let mut z = [0f32; N];
    let mut x = [0f32; N];
    let mut h = [0f32; N];
    for (r, &(t, _)) in read.iter().enumerate() {
        let gx = &xp.data[((r0 + r) * steps + t) * xp.stride + xp.offset..];
        for (v, a) in acc[r].iter().enumerate() {
            let at = r * MAX_WIDTH + v * LANES;
            S::store(z[at..at + LANES].as_mut_ptr(), *a);
            let xv = x_gate::<S>(d, gx, j0 + v * LANES);
            S::store(x[at..at + LANES].as_mut_ptr(), xv);
        }
    }
    simple_rnn::cell::<N, S::Madd>(&x, &z, &mut h, d.act);
    store_rows(d, shared, (k, j0, MAX_WIDTH), (r0, read, steps), &h, None);
}

/// A block's `h @ W_hh` in registers: computed from an f32 panel, or
/// loaded from the tile.
#[inline(always)]
unsafe fn block_pre<S: Simd, const V: usize, const MR: usize>(
    pre: Pre,
    tile: &[[f32; MAX_WIDTH]; MAX_ROWS],
    u: usize,
) -> [[S::V; V]; MR] {
    match pre {
        Pre::Packed(panel, h_rows) => block_acc::<S, V, MR, _>(panel, h_rows, u),
        Pre::Tile => {
            let mut acc = [[S::zero(); V]; MR];
            for (acc_r, tile_r) in acc.iter_mut().zip(tile) {
                for (g, a) in acc_r.iter_mut().enumerate() {
                    *a = S::load(tile_r[g * LANES..].as_ptr());
                }
            }
            acc
        }
    }
}

/// 16 units of a gate's input pre-activation from column `at`, plus their
/// biases where the kernel adds them.
#[inline(always)]
unsafe fn x_gate<S: Simd>(d: &Direction, gx: &[f32], at: usize) -> S::V {
    let x = S::load(gx[at..][..LANES].as_ptr());
    match d.bx {
        Some(bx) => S::add(x, S::load(bx[at..][..LANES].as_ptr())),
        None => x,
    }
}

/// Writes a block's new states (`h`, and the LSTM's `cell`) and outputs:
/// `n` units from `j0` for each of its rows, which lie `h.len() / rows`
/// apart in `h` and `cell`.
#[inline(always)]
unsafe fn store_rows(
    d: &Direction,
    shared: &Shared,
    (k, j0, n): (usize, usize, usize),
    (r0, read, steps): (usize, &[(usize, bool)], usize),
    h: &[f32],
    cell: Option<&[f32]>,
) {
    let u = d.units;
    let stride = h.len() / read.len();
    for (r, &(t, _)) in read.iter().enumerate() {
        let state = (r0 + r) * u + j0;
        let at = r * stride;
        if let Some(cell) = cell {
            copy(
                std::slice::from_raw_parts_mut(shared.c.add(state), n),
                &cell[at..at + n],
            );
        }
        let h_next = std::slice::from_raw_parts_mut(shared.h[(k + 1) % 2].add(state), n);
        copy(h_next, &h[at..at + n]);
        let pos = d.schedule.position(k, t, steps);
        copy(
            shared.out.cols((r0 + r) * steps + pos, j0, n),
            &h[at..at + n],
        );
    }
}

/// The time step that processing step `k` reads.
#[inline(always)]
fn read_next(d: &Direction, k: usize, len: usize, steps: usize) -> usize {
    d.schedule.step(k, len, steps).0
}

/// Asks for the input pre-activations that block `p` of row `b` reads at
/// time step `t` (the next step's). Rows of one step lie `steps` rows apart, too far for the
/// hardware prefetcher; a step ahead is ample time for them to arrive.
#[inline(always)]
fn prefetch_inputs(
    packed: &Packed,
    xp: &Projected,
    steps: usize,
    (b, p): (usize, usize),
    t: usize,
) {
    let u = packed.units;
    let j0 = p * packed.panel_units();
    let row = (b * steps + t) * xp.stride + xp.offset + j0;
    let vectors = if packed.cell == CellKind::SimpleRnn {
        1
    } else {
        packed.vectors
    };
    let lines = if packed.cell == CellKind::SimpleRnn {
        packed.vectors
    } else {
        1
    };
    for g in 0..vectors {
        for l in 0..lines {
            if let Some(x) = xp.data.get(row + g * u + l * LANES) {
                prefetch(x);
            }
        }
    }
}

#[inline(always)]
fn prefetch(x: &f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(x as *const f32 as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// `dst = src`, zero-padded: `src` is a whole block (the usual case, one
/// register move) or the last, partial one.
#[inline(always)]
fn fill<const N: usize>(dst: &mut [f32; N], src: &[f32]) {
    match <&[f32; N]>::try_from(src) {
        Ok(whole) => *dst = *whole,
        Err(_) => {
            dst.fill(0.0);
            dst[..src.len()].copy_from_slice(src);
        }
    }
}

/// `dst.copy_from_slice(src)` that compiles to a few vector moves for a
/// whole block: `copy_from_slice` of a run-time length calls `memcpy`,
/// which at three copies per row and panel took ~5% of a step.
#[inline(always)]
fn copy(dst: &mut [f32], src: &[f32]) {
    match (
        <&mut [f32; LANES]>::try_from(&mut *dst),
        <&[f32; LANES]>::try_from(src),
    ) {
        (Ok(d), Ok(s)) => *d = *s,
        _ => match (
            <&mut [f32; MAX_WIDTH]>::try_from(&mut *dst),
            <&[f32; MAX_WIDTH]>::try_from(src),
        ) {
            (Ok(d), Ok(s)) => *d = *s,
            _ => dst.copy_from_slice(src),
        },
    }
}

/// `x[..n] += bx[at..at + n]` when the biases were not preloaded.
#[inline(always)]
fn add_bias<const N: usize>(x: &mut [f32; N], bx: Option<&[f32]>, at: usize, n: usize) {
    if let Some(b) = bx {
        let mut v = [0f32; N];
        fill(&mut v, &b[at..at + n]);
        x.iter_mut().zip(&v).for_each(|(x, b)| *x += b);
    }
}

/// Gate math of one block of one row, on fixed-size arrays so that every
/// loop is a handful of vector instructions, written straight into the
/// state and output buffers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn epilogue<M: super::math::MulAdd>(
    d: &Direction,
    packed: &Packed,
    xp: &Projected,
    steps: usize,
    shared: &Shared,
    (k, b, p): (usize, usize, usize),
    (t, valid): (usize, bool),
    started: &mut bool,
    tile: &mut [f32; MAX_WIDTH],
) {
    let u = packed.units;
    let j0 = p * packed.panel_units();
    let n = packed.panel_units().min(u - j0);
    let state = b * u + j0;
    let h_prev = std::slice::from_raw_parts(shared.h[k % 2].add(state), n);
    let h_next = std::slice::from_raw_parts_mut(shared.h[(k + 1) % 2].add(state), n);
    if valid {
        let gx = &xp.data[(b * steps + t) * xp.stride + xp.offset..];
        let gates: &mut [[f32; LANES]; 4] = tile
            .as_chunks_mut::<LANES>()
            .0
            .try_into()
            .expect("a tile row holds four vectors");
        let mut x = [[0f32; LANES]; 4];
        let mut h = [0f32; LANES];
        match packed.cell {
            CellKind::Lstm => {
                for (g, xg) in x.iter_mut().enumerate() {
                    fill(xg, &gx[g * u + j0..][..n]);
                    add_bias(xg, d.bx, g * u + j0, n);
                }
                let c = std::slice::from_raw_parts_mut(shared.c.add(state), n);
                let mut cell = [0f32; LANES];
                fill(&mut cell, c);
                for (z, x) in gates.iter_mut().zip(&x) {
                    for (z, x) in z.iter_mut().zip(x) {
                        *z += x;
                    }
                }
                lstm::cell::<LANES, M>(gates, &mut h, &mut cell, d.act, d.ract);
                copy(c, &cell[..n]);
                copy(h_next, &h[..n]);
            }
            CellKind::Gru => {
                let [x0, x1, x2, _] = &mut x;
                for (g, xg) in [x0, x1, x2].into_iter().enumerate() {
                    fill(xg, &gx[g * u + j0..][..n]);
                    add_bias(xg, d.bx, g * u + j0, n);
                }
                let mut bhn = [0f32; LANES];
                if let Some(b) = d.bhn {
                    fill(&mut bhn, &b[j0..j0 + n]);
                }
                let mut prev = [0f32; LANES];
                fill(&mut prev, h_prev);
                let [z0, z1, z2, _] = gates;
                gru::cell_reset_after::<LANES, M>(
                    [&x[0], &x[1], &x[2]],
                    [z0, z1, z2],
                    &bhn,
                    &prev,
                    &mut h,
                    d.act,
                    d.ract,
                );
                copy(h_next, &h[..n]);
            }
            CellKind::SimpleRnn => {
                let mut x = [0f32; MAX_WIDTH];
                fill(&mut x, &gx[j0..j0 + n]);
                add_bias(&mut x, d.bx, j0, n);
                let mut h = [0f32; MAX_WIDTH];
                simple_rnn::cell::<MAX_WIDTH, M>(&x, tile, &mut h, d.act);
                copy(h_next, &h[..n]);
            }
        }
        *started = true;
    } else {
        copy(h_next, h_prev);
        if d.schedule.masked == MaskedOutput::Zero || !*started {
            return; // `out` is already zero there
        }
    }
    // A masked step carries the state, so `h` is the previous output.
    let pos = d.schedule.position(k, t, steps);
    copy(shared.out.cols(b * steps + pos, j0, n), h_next);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn cache_sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_cache_size("2048K"), Some(2 << 20));
        assert_eq!(parse_cache_size("1M"), Some(1 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        assert_eq!(parse_cache_size("lots"), None);
    }

    #[test]
    fn packing_puts_each_units_gates_in_one_panel() {
        // units 3, LSTM: column g*3 + j holds 10*g + j in every row.
        let (u, gu) = (3, 12);
        let wh_t: Vec<f32> = (0..u * gu)
            .map(|i| ((i % gu) / u * 10 + i % u) as f32)
            .collect();
        let p = Packed::new(CellKind::Lstm, true, u, &wh_t).unwrap();
        assert_eq!(p.panels, 1);
        let row = &p.panel(0)[..4 * LANES];
        for g in 0..4 {
            assert_eq!(
                &row[g * LANES..g * LANES + 3],
                &[
                    10.0 * g as f32,
                    10.0 * g as f32 + 1.0,
                    10.0 * g as f32 + 2.0
                ]
            );
            assert!(
                row[g * LANES + 3..(g + 1) * LANES]
                    .iter()
                    .all(|&x| x == 0.0),
                "padding is zero"
            );
        }
    }

    #[test]
    fn the_dense_kernel_matches_a_plain_matmul_on_every_instruction_set() {
        // Partial last panel (n = 70) and row counts around the block size.
        let (k, n) = (37, 70);
        let w = noise(k * n, 3);
        let bias = noise(n, 4);
        // f32 panels, and f16 ones for weights that are f16 values.
        let w16: Vec<f32> = w.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
        // ... and the same from the transposed `[n, k]` layout.
        let t = |w: &[f32]| -> Vec<f32> { (0..n * k).map(|i| w[(i % k) * n + i / k]).collect() };
        let packings = [
            (pack_dense(&w, k, n, false), &w),
            (pack_dense(&w16, k, n, false), &w16),
            (pack_dense(&t(&w), k, n, true), &w),
            (pack_dense(&t(&w16), k, n, true), &w16),
        ];
        assert!(matches!(packings[0].0, DensePanels::F32(_)));
        assert!(matches!(packings[1].0, DensePanels::F16(_)));
        assert!(matches!(packings[3].0, DensePanels::F16(_)));
        let panels = n.div_ceil(DENSE_WIDTH);
        for (data, w) in &packings {
            for m in [1, 5, 6, 7, 13] {
                let x = noise(m * k, 5 + m as u32);
                let want: Vec<f32> = (0..m * n)
                    .map(|i| {
                        let (r, j) = (i / n, i % n);
                        bias[j] + (0..k).map(|kk| x[r * k + kk] * w[kk * n + j]).sum::<f32>()
                    })
                    .collect();
                for isa in Isa::available() {
                    let mut out = vec![f32::NAN; m * n];
                    // Two calls over halves of the panels, as two threads do.
                    for range in [0..1, 1..panels] {
                        let args = (data, (m, k, n), &x[..], &bias[..], out.as_mut_ptr(), range);
                        unsafe { dense_with(isa, args) };
                    }
                    for (i, (o, e)) in out.iter().zip(&want).enumerate() {
                        assert!((o - e).abs() < 1e-5, "{isa:?} m={m} [{i}]: {o} vs {e}");
                    }
                }
            }
        }
    }

    /// A tanh/sigmoid direction over `packed`, reading `bhn` for GRU.
    fn direction<'a>(
        cell: CellKind,
        u: usize,
        wh_t: &'a [f32],
        packed: &'a Packed,
        bhn: &'a [f32],
        cfg: &crate::nn::config::RnnConfig,
    ) -> Direction<'a> {
        use crate::nn::config::{Activation, RecurrentActivation};
        Direction {
            cell,
            reset_after: true,
            act: Activation::Tanh,
            ract: RecurrentActivation::Sigmoid,
            units: u,
            wh_t,
            packed: Some(packed),
            bhn: (cell == CellKind::Gru).then_some(bhn),
            bx: None,
            schedule: crate::nn::schedule::Schedule::for_direction(cfg, 0),
        }
    }

    /// A small deterministic generator: tests need no `rand`.
    pub(crate) fn noise(n: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2_654_435_761) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32 - 0.5) * 0.6
            })
            .collect()
    }

    #[test]
    fn every_instruction_set_thread_count_split_and_bias_path_gives_the_same_states() {
        use crate::nn::config::RnnConfig;
        let (steps, u) = (7, 70);
        let all_lengths = [7, 0, 3, 7, 1, 6, 7, 2, 5, 7, 4];
        // 1 and 2 rows: blocks too small to hide FMA latency split `k`.
        let cases = [CellKind::Lstm, CellKind::Gru, CellKind::SimpleRnn]
            .into_iter()
            .flat_map(|cell| [1, 2, 11].map(|batch| (cell, batch)));
        for (cell, batch) in cases {
            let lengths = &all_lengths[..batch];
            let gu = cell.gates() * u;
            let wh_t = noise(u * gu, 1);
            let packed = Packed::new(cell, true, u, &wh_t).unwrap();
            let xp_data = noise(batch * steps * gu, 2);
            let bhn = noise(u, 3);
            let cfg = RnnConfig::new(cell, 1, u).keras();
            let d = direction(cell, u, &wh_t, &packed, &bhn, &cfg);
            // The same inputs with their biases split off, for the kernel to add.
            let bias = noise(gu, 6);
            let unbiased: Vec<f32> = xp_data
                .iter()
                .enumerate()
                .map(|(i, v)| v - bias[i % gu])
                .collect();
            let d_bias = Direction {
                bx: Some(&bias),
                ..d.clone()
            };
            let xp = Projected {
                data: &xp_data,
                stride: gu,
                offset: 0,
            };
            let xp_unbiased = Projected {
                data: &unbiased,
                stride: gu,
                offset: 0,
            };
            let mut results = Vec::new();
            let runs = Isa::available().into_iter().flat_map(|isa| {
                [(1, Split::Panels), (3, Split::Panels), (3, Split::Rows)]
                    .map(|threads_split| (isa, threads_split))
            });
            for (isa, (threads, split)) in runs {
                for (dir, inputs) in [(&d, &xp), (&d_bias, &xp_unbiased)] {
                    let mut h = noise(batch * u, 4);
                    let mut c = noise(batch * u, 5);
                    let mut out = vec![0f32; batch * steps * u];
                    let outs = Outputs::split(&mut out, u, 1);
                    run_with(
                        isa,
                        dir,
                        &packed,
                        inputs,
                        lengths,
                        steps,
                        &mut h,
                        &mut c,
                        &outs[0],
                        (threads, split),
                    );
                    results.push((h, c, out));
                }
            }
            let first = &results[0];
            for r in &results[1..] {
                for (a, b) in [(&first.0, &r.0), (&first.1, &r.1), (&first.2, &r.2)] {
                    let worst = a
                        .iter()
                        .zip(b)
                        .map(|(x, y)| (x - y).abs())
                        .fold(0f32, f32::max);
                    assert!(worst < 1e-5, "{cell:?}: {worst}");
                }
            }
        }
    }

    #[test]
    fn int8_weights_agree_on_every_instruction_set_and_stay_near_f32() {
        use crate::nn::config::RnnConfig;
        // 70 units: a partial panel and a partial group of 4 rows.
        let (batch, steps, u) = (9, 6, 70);
        let lengths = [6, 0, 3, 6, 1, 5, 6, 2, 4];
        for cell in [CellKind::Lstm, CellKind::Gru, CellKind::SimpleRnn] {
            let gu = cell.gates() * u;
            let wh_t = noise(u * gu, 11);
            let packed = Packed::new(cell, true, u, &wh_t).unwrap();
            let int8 = packed.to_int8();
            assert!(int8.is_int8() && int8.data.as_slice().is_empty());
            let xp_data = noise(batch * steps * gu, 12);
            let bhn = noise(u, 13);
            let cfg = RnnConfig::new(cell, 1, u).keras();
            let d = direction(cell, u, &wh_t, &packed, &bhn, &cfg);
            let xp = Projected {
                data: &xp_data,
                stride: gu,
                offset: 0,
            };
            let run = |isa: Isa, weights: &Packed, threads: (usize, Split)| {
                let mut h = noise(batch * u, 14);
                let mut c = noise(batch * u, 15);
                let mut out = vec![0f32; batch * steps * u];
                let outs = Outputs::split(&mut out, u, 1);
                run_with(
                    isa, &d, weights, &xp, &lengths, steps, &mut h, &mut c, &outs[0], threads,
                );
                drop(outs);
                (h, out)
            };
            let worst = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max)
            };
            let f32_ref = run(Isa::Portable, &packed, (1, Split::Panels));
            let int8_ref = run(Isa::Portable, &int8, (1, Split::Panels));
            // Quantization error, not a bug: well under the 0.5 a wrong
            // weight or scale would give.
            let err = worst(&f32_ref.1, &int8_ref.1);
            assert!(err > 0.0 && err < 5e-2, "{cell:?}: int8 vs f32 {err}");
            for isa in Isa::available() {
                for threads in [(1, Split::Panels), (3, Split::Panels), (3, Split::Rows)] {
                    let (h, out) = run(isa, &int8, threads);
                    assert!(worst(&h, &int8_ref.0) < 1e-6, "{cell:?} {isa:?}");
                    assert!(worst(&out, &int8_ref.1) < 1e-6, "{cell:?} {isa:?}");
                }
            }
        }
    }

    #[test]
    fn gru_without_reset_after_is_not_packed() {
        assert!(Packed::new(CellKind::Gru, false, 2, &[0.0; 12]).is_none());
    }

    #[test]
    fn split_covers_every_panel_once() {
        for n in 1..20 {
            for parts in 1..5 {
                let got: Vec<usize> = (0..parts).flat_map(|p| split(n, parts, p)).collect();
                assert_eq!(got, (0..n).collect::<Vec<_>>());
            }
        }
    }
}
