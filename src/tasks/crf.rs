//! Linear-chain CRF decoding: Viterbi for the best tag sequence and
//! forward-backward for per-token tag marginals (the confidence we report).
#![allow(clippy::needless_range_loop)] // index math mirrors the equations

/// `transitions[i * n + j]`: score of tag `i` followed by tag `j`.
#[derive(Debug, Clone)]
pub struct Crf {
    pub num_tags: usize,
    pub transitions: Vec<f32>,
    pub start: Vec<f32>,
    pub end: Vec<f32>,
}

impl Crf {
    /// Best tag sequence for `emissions` (`[steps, num_tags]`, row-major).
    pub fn viterbi(&self, emissions: &[f32]) -> Vec<usize> {
        let n = self.num_tags;
        let steps = emissions.len() / n;
        if steps == 0 {
            return Vec::new();
        }
        let mut score: Vec<f32> = (0..n).map(|j| self.start[j] + emissions[j]).collect();
        let mut back = vec![0usize; steps * n];
        let mut next = vec![0f32; n];
        for t in 1..steps {
            for j in 0..n {
                let (mut best, mut arg) = (f32::NEG_INFINITY, 0);
                for i in 0..n {
                    let s = score[i] + self.transitions[i * n + j];
                    if s > best {
                        best = s;
                        arg = i;
                    }
                }
                next[j] = best + emissions[t * n + j];
                back[t * n + j] = arg;
            }
            std::mem::swap(&mut score, &mut next);
        }
        let mut last = 0;
        let mut best = f32::NEG_INFINITY;
        for j in 0..n {
            let s = score[j] + self.end[j];
            if s > best {
                best = s;
                last = j;
            }
        }
        let mut path = vec![0usize; steps];
        path[steps - 1] = last;
        for t in (1..steps).rev() {
            path[t - 1] = back[t * n + path[t]];
        }
        path
    }

    /// `p(tag_t = j | sentence)` for every step, `[steps, num_tags]`.
    pub fn marginals(&self, emissions: &[f32]) -> Vec<f32> {
        let n = self.num_tags;
        let steps = emissions.len() / n;
        let mut alpha = vec![0f32; steps * n];
        let mut beta = vec![0f32; steps * n];
        if steps == 0 {
            return alpha;
        }
        for j in 0..n {
            alpha[j] = self.start[j] + emissions[j];
            beta[(steps - 1) * n + j] = self.end[j];
        }
        let mut tmp = vec![0f32; n];
        for t in 1..steps {
            for j in 0..n {
                for i in 0..n {
                    tmp[i] = alpha[(t - 1) * n + i] + self.transitions[i * n + j];
                }
                alpha[t * n + j] = log_sum_exp(&tmp) + emissions[t * n + j];
            }
        }
        for t in (0..steps - 1).rev() {
            for i in 0..n {
                for j in 0..n {
                    tmp[j] = self.transitions[i * n + j]
                        + emissions[(t + 1) * n + j]
                        + beta[(t + 1) * n + j];
                }
                beta[t * n + i] = log_sum_exp(&tmp);
            }
        }
        let z = log_sum_exp(
            &(0..n)
                .map(|j| alpha[(steps - 1) * n + j] + self.end[j])
                .collect::<Vec<_>>(),
        );
        alpha
            .iter()
            .zip(&beta)
            .map(|(a, b)| (a + b - z).exp())
            .collect()
    }
}

fn log_sum_exp(xs: &[f32]) -> f32 {
    let m = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f32>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exhaustive search over all paths of a tiny CRF.
    fn brute(crf: &Crf, em: &[f32]) -> (Vec<usize>, Vec<f32>) {
        let n = crf.num_tags;
        let steps = em.len() / n;
        let mut best = (f32::NEG_INFINITY, vec![]);
        let mut marg = vec![0f64; steps * n];
        let mut z = 0f64;
        for code in 0..n.pow(steps as u32) {
            let path: Vec<usize> = (0..steps).map(|t| (code / n.pow(t as u32)) % n).collect();
            let mut s = crf.start[path[0]] + crf.end[path[steps - 1]];
            for t in 0..steps {
                s += em[t * n + path[t]];
                if t > 0 {
                    s += crf.transitions[path[t - 1] * n + path[t]];
                }
            }
            if s > best.0 {
                best = (s, path.clone());
            }
            z += (s as f64).exp();
            for t in 0..steps {
                marg[t * n + path[t]] += (s as f64).exp();
            }
        }
        (best.1, marg.iter().map(|m| (m / z) as f32).collect())
    }

    #[test]
    fn viterbi_and_marginals_match_exhaustive_search() {
        let crf = Crf {
            num_tags: 3,
            transitions: vec![0.5, -1.0, 0.2, 0.1, 0.3, -0.7, -0.4, 0.9, 0.0],
            start: vec![0.2, -0.3, 0.1],
            end: vec![-0.1, 0.4, 0.0],
        };
        let em = [
            1.0, 0.2, -0.5, 0.3, 0.8, 0.1, -0.2, 0.4, 0.9, 0.6, -0.1, 0.2,
        ];
        let (path, marg) = brute(&crf, &em);
        assert_eq!(crf.viterbi(&em), path);
        for (a, b) in crf.marginals(&em).iter().zip(&marg) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
