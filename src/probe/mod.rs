//! Does one unit hold one thing? The probe runs a model over a corpus,
//! records every unit's state per token and compares each unit with a
//! library of interpretable features ([`features`]).
//!
//! For each unit and feature it measures the correlation `r` between the
//! feature and what the unit holds beyond the token it is reading (its
//! activation minus the mean activation for that token type: a unit that
//! only reacts to what it just read does not "hold" anything; for a
//! character model a type is the last two characters, see
//! [`char_pair_types`]). Chance is
//! measured, not assumed: every feature is also compared after a circular
//! shift of the text (the same runs and rates, at the wrong places), and a
//! unit's chance level is the largest `|r|` any shifted feature reaches.
//!
//! A unit *tracks* a feature when `|r| ≥ MIN_R` and `|r| ≥ CHANCE_FACTOR ×
//! chance`; features that are nearly the same series (`SAME_THING`) count
//! once. It holds *one thing* when it tracks one feature, or its best is at
//! least twice its second best; it *mixes several* when two or more
//! distinct tracked features are within a factor of two; else it tracks
//! *nothing named*.

pub mod features;

use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

pub use features::{char_features, char_features_of, Feature};

/// Token types for a character model: the character and the one before it,
/// so that what a unit holds is measured beyond the last two characters it
/// read. Any recurrent unit, even a random one, echoes a character or two
/// (its state decays over a few steps); quotes, brackets and line length
/// need memory far longer than that.
pub fn char_pair_types(ids: &[u32], alphabet: usize) -> Vec<u32> {
    let mut prev = 0;
    ids.iter()
        .map(|&id| {
            let t = prev * alphabet as u32 + id;
            prev = id;
            t
        })
        .collect()
}

/// Smallest |r| that counts as tracking a feature.
pub const MIN_R: f32 = 0.3;
/// How far above its chance level a unit's |r| must be.
pub const CHANCE_FACTOR: f32 = 2.0;
/// Circular shifts per feature for the chance level.
pub const SHIFTS: usize = 8;
/// Two features correlated at least this much are one thing named twice
/// (in one-sentence lines, the line position is the sentence position):
/// a unit tracking both does not "mix" them.
pub const SAME_THING: f32 = 0.7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    OneThing,
    Several,
    Nothing,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::OneThing => "one thing",
            Verdict::Several => "mixes several",
            Verdict::Nothing => "nothing named",
        }
    }
}

/// What the probe found for one unit of one quantity (`c` or `h`).
#[derive(Debug, Clone, Serialize)]
pub struct UnitFinding {
    pub quantity: String,
    pub unit: usize,
    /// Signed correlation with each feature, in the feature order.
    pub r: Vec<f32>,
    /// The largest |r| of any circularly shifted feature.
    pub chance: f32,
    /// Index of the feature with the largest |r|, and of the second.
    pub best: usize,
    pub second: usize,
    /// Features the unit tracks (indices), best first.
    pub tracks: Vec<usize>,
    /// |r| of the best minus |r| of the second best.
    pub selectivity: f32,
    pub verdict: Verdict,
}

/// Per-token activations of `units` units (row-major `[tokens, units]`).
pub struct Quantity {
    pub name: String,
    pub units: usize,
    pub values: Vec<f32>,
}

/// The probe's findings for every unit of every quantity.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tokens: usize,
    pub features: Vec<(String, String)>,
    pub units: Vec<UnitFinding>,
}

impl Report {
    /// How many units of `quantity` hold one thing, mix several, or track
    /// nothing named.
    pub fn counts(&self, quantity: &str) -> [usize; 3] {
        let mut n = [0; 3];
        for u in self.units.iter().filter(|u| u.quantity == quantity) {
            n[match u.verdict {
                Verdict::OneThing => 0,
                Verdict::Several => 1,
                Verdict::Nothing => 2,
            }] += 1;
        }
        n
    }

    /// Units sorted for people: one thing first, then several, by
    /// selectivity (then best |r|) within each.
    pub fn ranked(&self) -> Vec<&UnitFinding> {
        let mut v: Vec<&UnitFinding> = self.units.iter().collect();
        let key = |u: &UnitFinding| match u.verdict {
            Verdict::OneThing => 0,
            Verdict::Several => 1,
            Verdict::Nothing => 2,
        };
        v.sort_by(|a, b| {
            key(a)
                .cmp(&key(b))
                .then(b.selectivity.total_cmp(&a.selectivity))
                .then(b.r[b.best].abs().total_cmp(&a.r[a.best].abs()))
        });
        v
    }
}

/// Compares every unit of every quantity with every feature. `types[t]` is
/// token t's type (its character or word id): what a unit holds is
/// measured beyond the mean activation of the token it reads.
pub fn probe(
    quantities: Vec<Quantity>,
    types: &[u32],
    features: &[Feature],
    seed: u64,
) -> Result<Report> {
    let n = types.len();
    if n < 100 {
        bail!("the probe needs at least 100 tokens of text, got {n}");
    }
    if features.iter().any(|f| f.values.len() != n) {
        bail!("every feature needs one value per token");
    }
    let fmat = feature_matrix(features, n, seed)?;
    let nf = features.len();
    let real = fmat.narrow(1, 0, nf)?;
    let same = (real.t()?.matmul(&real)? / n as f64)?.to_vec2::<f32>()?;
    let mut units = Vec::new();
    for q in quantities {
        if q.values.len() != n * q.units {
            bail!(
                "{}: {} values for {n} tokens of {} units",
                q.name,
                q.values.len(),
                q.units
            );
        }
        let r = correlations(q.values, q.units, types, &fmat, n)?;
        for (u, row) in r.iter().enumerate() {
            units.push(judge(&q.name, u, row, &same));
        }
    }
    Ok(Report {
        tokens: n,
        features: features
            .iter()
            .map(|f| (f.name.to_string(), f.about.to_string()))
            .collect(),
        units,
    })
}

/// `[n, F·(1+SHIFTS)]`: each feature standardised, then its circularly
/// shifted copies (offsets spread over the text, jittered by `seed`).
fn feature_matrix(features: &[Feature], n: usize, seed: u64) -> Result<Tensor> {
    let mut rng = StdRng::seed_from_u64(seed);
    let cols = features.len() * (1 + SHIFTS);
    let mut m = vec![0f32; n * cols];
    for (col, f) in features.iter().enumerate() {
        let z = standardise(&f.values);
        let mut offsets = vec![0usize];
        for k in 0..SHIFTS {
            let base = n * (k + 1) / (SHIFTS + 1);
            offsets.push((base + rng.random_range(0..n / (4 * (SHIFTS + 1)) + 1)) % n);
        }
        for (j, off) in offsets.into_iter().enumerate() {
            let c = if j == 0 {
                col
            } else {
                features.len() + col * SHIFTS + (j - 1)
            };
            for t in 0..n {
                m[t * cols + c] = z[(t + off) % n];
            }
        }
    }
    Ok(Tensor::from_vec(m, (n, cols), &Device::Cpu)?)
}

/// Mean 0 and standard deviation 1; a constant series becomes zeros.
fn standardise(x: &[f32]) -> Vec<f32> {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let sd = var.sqrt();
    if sd < 1e-12 {
        return vec![0.0; x.len()];
    }
    x.iter().map(|&v| ((v as f64 - mean) / sd) as f32).collect()
}

/// Correlation of each unit's residual (activation minus its token type's
/// mean) with each column of `fmat`: `[units][cols]`.
fn correlations(
    mut values: Vec<f32>,
    units: usize,
    types: &[u32],
    fmat: &Tensor,
    n: usize,
) -> Result<Vec<Vec<f32>>> {
    let kinds = types.iter().copied().max().unwrap_or(0) as usize + 1;
    let mut sums = vec![0f64; kinds * units];
    let mut counts = vec![0usize; kinds];
    for (t, &k) in types.iter().enumerate() {
        counts[k as usize] += 1;
        let row = &values[t * units..(t + 1) * units];
        let s = &mut sums[k as usize * units..(k as usize + 1) * units];
        s.iter_mut().zip(row).for_each(|(a, &b)| *a += b as f64);
    }
    let means: Vec<f32> = sums
        .chunks(units)
        .zip(&counts)
        .flat_map(|(s, &c)| s.iter().map(move |&v| (v / c.max(1) as f64) as f32))
        .collect();
    let mut sq = vec![0f64; units];
    for (t, &k) in types.iter().enumerate() {
        let m = &means[k as usize * units..(k as usize + 1) * units];
        let row = &mut values[t * units..(t + 1) * units];
        for ((v, &mu), s) in row.iter_mut().zip(m).zip(sq.iter_mut()) {
            *v -= mu;
            *s += (*v as f64).powi(2);
        }
    }
    let sd: Vec<f32> = sq.iter().map(|&s| (s / n as f64).sqrt() as f32).collect();
    let a = Tensor::from_vec(values, (n, units), &Device::Cpu)?;
    // [units, cols] = aᵀ · f / n, then per unit / sd (features have sd 1).
    let cov = (a.t()?.matmul(fmat)? / n as f64)?.to_vec2::<f32>()?;
    Ok(cov
        .into_iter()
        .zip(&sd)
        .map(|(row, &s)| {
            row.into_iter()
                .map(|c| {
                    if s > 1e-9 {
                        (c / s).clamp(-1.0, 1.0)
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect())
}

/// `same[a][b]`: the correlation of features a and b over the text.
fn judge(quantity: &str, unit: usize, row: &[f32], same: &[Vec<f32>]) -> UnitFinding {
    let nf = same.len();
    let (r, shifted) = row.split_at(nf);
    let chance = shifted.iter().fold(0f32, |m, &x| m.max(x.abs()));
    let mut order: Vec<usize> = (0..nf).collect();
    order.sort_by(|&a, &b| r[b].abs().total_cmp(&r[a].abs()));
    let best = order[0];
    let distinct = |a: usize, b: usize| same[a][b].abs() < SAME_THING;
    // The second best is the best feature that is not the best one again.
    let second = order
        .iter()
        .copied()
        .find(|&f| f != best && distinct(best, f))
        .unwrap_or(best);
    let mut tracks: Vec<usize> = Vec::new();
    for &f in &order {
        let strong = r[f].abs() >= MIN_R && r[f].abs() >= CHANCE_FACTOR * chance;
        if strong && tracks.iter().all(|&t| distinct(t, f)) {
            tracks.push(f);
        }
    }
    let top = r[best].abs();
    let verdict = match tracks.len() {
        0 => Verdict::Nothing,
        1 => Verdict::OneThing,
        _ if r[tracks[1]].abs() * 2.0 <= top => Verdict::OneThing,
        _ => Verdict::Several,
    };
    UnitFinding {
        quantity: quantity.to_string(),
        unit,
        r: r.to_vec(),
        chance,
        best,
        second,
        selectivity: top - if second == best { 0.0 } else { r[second].abs() },
        tracks,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit equal to a feature plus noise is found; one of pure noise is not.
    #[test]
    fn a_unit_copying_a_feature_is_found_and_noise_is_not() {
        let mut rng = StdRng::seed_from_u64(7);
        let words = [
            "said", "the", "\"quoted", "here\"", "(part)", "not", "there.", "Then",
        ];
        let text: String = (0..600)
            .map(|_| words[rng.random_range(0..words.len())])
            .collect::<Vec<_>>()
            .join(" ");
        let feats = char_features(&text);
        let n = feats[0].values.len();
        let types: Vec<u32> = text.chars().map(|c| c as u32 % 64).collect();
        let quote = &feats[0].values;
        let mut values = vec![0f32; n * 2];
        for t in 0..n {
            values[t * 2] = quote[t] + 0.3 * rng.random::<f32>();
            values[t * 2 + 1] = rng.random::<f32>();
        }
        let q = Quantity {
            name: "c".into(),
            units: 2,
            values,
        };
        let rep = probe(vec![q], &types, &feats, 1).unwrap();
        let (u0, u1) = (&rep.units[0], &rep.units[1]);
        assert_eq!(rep.features[u0.best].0, "in quotes");
        assert_eq!(u0.verdict, Verdict::OneThing, "{u0:?}");
        assert!(u0.r[u0.best] > 0.8, "{u0:?}");
        assert_eq!(u1.verdict, Verdict::Nothing, "{u1:?}");
    }
}
