//! Branch-free `exp`, `sigmoid` and `tanh` on f32 that the compiler can
//! vectorise (libm's are scalar calls and dominated the time loop).
//! Cephes polynomials: relative error about 1e-7, well inside the 1e-5
//! parity contract.
#![allow(clippy::excessive_precision)] // Cephes' published constants

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// 1.5·2^23: adding it rounds an f32 of magnitude < 2^22 to an integer
/// held in the low mantissa bits (no float-to-int conversion, whose
/// saturating semantics cost a dozen instructions per vector).
const ROUND_MAGIC: f32 = 12_582_912.0;

/// How the polynomials compute `a * b + c`: [`Fused`] in code that runs
/// with FMA instructions (half the instructions and half the latency of
/// their dependency chains), [`Unfused`] elsewhere, where `mul_add` would
/// be a libm call.
pub trait MulAdd {
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

pub struct Fused;
pub struct Unfused;

impl MulAdd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Unfused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_with::<Unfused>(x)
}

#[inline(always)]
pub fn exp_with<M: MulAdd>(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // x = n·ln2 + r with |r| <= ln2/2; exp(x) = 2^n · exp(r).
    let f = M::madd;
    let k = f(x, LOG2E, ROUND_MAGIC);
    let nf = k - ROUND_MAGIC;
    let n = (k.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = f(-nf, LN2_LO, f(-nf, LN2_HI, x));
    let z = r * r;
    let p = f(1.987_569_1e-4, r, 1.398_199_9e-3);
    let p = f(
        f(
            f(f(p, r, 8.333_452e-3), r, 4.166_579_6e-2),
            r,
            1.666_666_5e-1,
        ),
        r,
        5.000_000_1e-1,
    );
    let er = f(p, z, r) + 1.0;
    er * f32::from_bits((n.wrapping_add(127) as u32) << 23)
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    sigmoid_with::<Unfused>(x)
}

#[inline(always)]
pub fn sigmoid_with<M: MulAdd>(x: f32) -> f32 {
    1.0 / (1.0 + exp_with::<M>(-x))
}

/// A rational minimax fit, odd numerator over even denominator, with
/// Eigen's single-precision coefficients: about 2e-7 from tanh everywhere
/// and exact in sign and relative precision near 0. It costs half of
/// `1 - 2/(exp(2x) + 1)` plus a series for small x, and the cell step
/// takes two tanh per unit.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    tanh_with::<Unfused>(x)
}

#[inline(always)]
pub fn tanh_with<M: MulAdd>(x: f32) -> f32 {
    let f = M::madd;
    // Beyond this, tanh rounds to ±1 in f32.
    let x = x.clamp(-7.905_311, 7.905_311);
    let z = x * x;
    let p = f(f(-2.760_768_5e-16, z, 2.000_187_9e-13), z, -8.604_671_5e-11);
    let p = f(
        f(
            f(f(p, z, 5.122_297e-8), z, 1.485_722_4e-5),
            z,
            6.372_619_3e-4,
        ),
        z,
        4.893_524_6e-3,
    ) * x;
    let q = f(
        f(f(1.198_258_4e-6, z, 1.185_347_1e-4), z, 2.268_434_6e-3),
        z,
        4.893_525_2e-3,
    );
    p / q
}

/// `tanh` of a tensor: on the CPU in f32 with [`tanh`] over the buffer in
/// vector registers (candle's op calls libm's scalar `tanhf`, which took a
/// sixth of the translator's decoding time); elsewhere candle's op.
pub fn tanh_tensor(x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
    if !x.device().is_cpu() || x.dtype() != candle_core::DType::F32 {
        return x.tanh();
    }
    let mut v = x.flatten_all()?.to_vec1::<f32>()?;
    tanh_slice(&mut v);
    candle_core::Tensor::from_vec(v, x.shape(), x.device())
}

/// In place, with the widest vectors this CPU has.
pub fn tanh_slice(v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if super::cpu::allows(super::cpu::Level::Avx512) {
        // SAFETY: the CPU has the feature this copy is compiled for.
        return unsafe { tanh_slice_avx512(v) };
    }
    #[cfg(target_arch = "x86_64")]
    if super::cpu::allows(super::cpu::Level::Avx2) {
        // SAFETY: as above.
        return unsafe { tanh_slice_avx2(v) };
    }
    v.iter_mut().for_each(|x| *x = tanh(*x));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tanh_slice_avx512(v: &mut [f32]) {
    // A plain loop: a `for_each` closure may stay out of line, compiled
    // without the feature, where `mul_add` is a libm call.
    for x in v.iter_mut() {
        *x = tanh_with::<Fused>(*x);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh_slice_avx2(v: &mut [f32]) {
    for x in v.iter_mut() {
        *x = tanh_with::<Fused>(*x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(f: impl Fn(f32) -> f32, g: impl Fn(f64) -> f64, lo: f32, hi: f32) -> f64 {
        let mut worst = 0f64;
        let n = 200_000;
        for i in 0..=n {
            let x = lo + (hi - lo) * i as f32 / n as f32;
            let want = g(x as f64);
            let err = (f(x) as f64 - want).abs() / want.abs().max(1e-3);
            worst = worst.max(err);
        }
        worst
    }

    #[test]
    fn exp_matches_libm_to_single_precision() {
        assert!(sweep(exp, f64::exp, -80.0, 80.0) < 1e-6);
    }

    #[test]
    fn sigmoid_and_tanh_stay_within_a_few_ulp() {
        assert!(sweep(sigmoid, |x| 1.0 / (1.0 + (-x).exp()), -30.0, 30.0) < 1e-6);
        assert!(sweep(tanh, f64::tanh, -20.0, 20.0) < 1e-6);
        // The fused forms (a libm fmaf here unless the test CPU has FMA).
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        assert!(sweep(sigmoid_with::<Fused>, sig, -30.0, 30.0) < 1e-6);
        assert!(sweep(tanh_with::<Fused>, f64::tanh, -20.0, 20.0) < 1e-6);
        assert!(sweep(exp_with::<Fused>, f64::exp, -80.0, 80.0) < 1e-6);
    }

    #[test]
    fn the_tensor_tanh_matches_candles_to_3e7() {
        let xs: Vec<f32> = (0..1001).map(|i| (i as f32 - 500.0) / 40.0).collect();
        let t = candle_core::Tensor::from_vec(xs, (7, 11, 13), &candle_core::Device::Cpu).unwrap();
        let ours = tanh_tensor(&t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let theirs = t
            .tanh()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 3e-7, "{worst}");
        assert_eq!(tanh_tensor(&t).unwrap().dims(), &[7, 11, 13]);
    }

    #[test]
    fn saturates_without_nan_or_inf() {
        for x in [-1e30f32, -1000.0, -88.0, 88.0, 1000.0, 1e30] {
            assert!(
                sigmoid(x).is_finite() && tanh(x).is_finite() && exp(x).is_finite(),
                "x={x}"
            );
        }
        assert_eq!(tanh(1e30), 1.0);
        assert_eq!(tanh(-1e30), -1.0);
    }
}
