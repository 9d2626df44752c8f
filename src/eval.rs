//! The metrics the model cards report, computed here so `zoo eval` needs
//! no Python: corpus BLEU and chrF as sacreBLEU computes them (13a
//! tokenisation, exponential smoothing; chrF's defaults: character 6-grams,
//! no word n-grams, beta 2) and CoNLL entity precision/recall/F1.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

/// sacreBLEU's default `13a` tokeniser (mteval-v13a).
pub fn tokenize_13a(line: &str) -> String {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"([\{-~\[-` -&\(-\+:-@/])", " $1 "),
            (r"([^0-9])([\.,])", "$1 $2 "),
            (r"([\.,])([^0-9])", " $1 $2"),
            (r"([0-9])(-)", "$1 $2 "),
        ]
        .into_iter()
        .map(|(p, r)| (Regex::new(p).expect("valid"), r))
        .collect()
    });
    let mut line = line
        .replace("<skipped>", "")
        .replace("-\n", "")
        .replace('\n', " ");
    if line.contains('&') {
        line = line
            .replace("&quot;", "\"")
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
    }
    let mut s = format!(" {line} ");
    for (re, rep) in rules {
        s = re.replace_all(&s, *rep).into_owned();
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Debug, Clone, Serialize)]
pub struct Bleu {
    pub score: f64,
    pub precisions: [f64; 4],
    pub brevity_penalty: f64,
    pub sys_len: usize,
    pub ref_len: usize,
}

fn ngrams(tokens: &[&str], n: usize) -> HashMap<Vec<String>, usize> {
    let mut m = HashMap::new();
    for w in tokens.windows(n) {
        *m.entry(w.iter().map(|s| s.to_string()).collect())
            .or_insert(0) += 1;
    }
    m
}

/// Corpus BLEU of `hyps` against one reference each.
pub fn corpus_bleu(hyps: &[String], refs: &[String]) -> Bleu {
    let (mut correct, mut total) = ([0usize; 4], [0usize; 4]);
    let (mut sys_len, mut ref_len) = (0, 0);
    for (h, r) in hyps.iter().zip(refs) {
        let (h, r) = (tokenize_13a(h), tokenize_13a(r));
        let (h, r): (Vec<&str>, Vec<&str>) = (
            h.split(' ').filter(|t| !t.is_empty()).collect(),
            r.split(' ').filter(|t| !t.is_empty()).collect(),
        );
        sys_len += h.len();
        ref_len += r.len();
        for n in 1..=4 {
            let (hn, rn) = (ngrams(&h, n), ngrams(&r, n));
            total[n - 1] += h.len().saturating_sub(n - 1);
            correct[n - 1] += hn
                .iter()
                .map(|(g, c)| (*c).min(*rn.get(g).unwrap_or(&0)))
                .sum::<usize>();
        }
    }
    let mut precisions = [0f64; 4];
    let mut smooth = 1f64;
    for n in 0..4 {
        precisions[n] = if total[n] == 0 {
            0.0
        } else if correct[n] == 0 {
            smooth *= 2.0;
            100.0 / (smooth * total[n] as f64)
        } else {
            100.0 * correct[n] as f64 / total[n] as f64
        };
    }
    let brevity_penalty = if sys_len == 0 {
        0.0
    } else if sys_len < ref_len {
        (1.0 - ref_len as f64 / sys_len as f64).exp()
    } else {
        1.0
    };
    let score = if precisions.contains(&0.0) {
        0.0
    } else {
        brevity_penalty * (precisions.iter().map(|p| p.ln()).sum::<f64>() / 4.0).exp()
    };
    Bleu {
        score,
        precisions,
        brevity_penalty,
        sys_len,
        ref_len,
    }
}

fn char_ngrams(chars: &[char], n: usize) -> HashMap<&[char], usize> {
    let mut m = HashMap::new();
    for g in chars.windows(n) {
        *m.entry(g).or_insert(0) += 1;
    }
    m
}

/// Corpus chrF (sacreBLEU's `CHRF()`, 0-100): character n-grams of orders
/// 1-6 with whitespace removed, statistics summed over the corpus, then the
/// F-beta (beta 2) of the precision and recall averaged over the orders
/// that occur on both sides.
pub fn corpus_chrf(hyps: &[String], refs: &[String]) -> f64 {
    const ORDER: usize = 6;
    const BETA2: f64 = 4.0;
    // Per order: hypothesis n-grams, reference n-grams, matches.
    let mut stats = [[0usize; 3]; ORDER];
    for (h, r) in hyps.iter().zip(refs) {
        let h: Vec<char> = h.chars().filter(|c| !c.is_whitespace()).collect();
        let r: Vec<char> = r.chars().filter(|c| !c.is_whitespace()).collect();
        for (n, st) in stats.iter_mut().enumerate().map(|(i, st)| (i + 1, st)) {
            let (hg, rg) = (char_ngrams(&h, n), char_ngrams(&r, n));
            let hyp_count: usize = hg.values().sum();
            let matches: usize = hg
                .iter()
                .map(|(g, c)| rg.get(g).map_or(0, |rc| (*c).min(*rc)))
                .sum();
            // A hypothesis n-gram counts only where the reference has some.
            st[0] += if rg.is_empty() { 0 } else { hyp_count };
            st[1] += rg.values().sum::<usize>();
            st[2] += matches;
        }
    }
    let (mut prec, mut rec, mut orders) = (0.0, 0.0, 0);
    for [n_hyp, n_ref, n_match] in stats {
        if n_hyp > 0 && n_ref > 0 {
            prec += n_match as f64 / n_hyp as f64;
            rec += n_match as f64 / n_ref as f64;
            orders += 1;
        }
    }
    if orders == 0 {
        return 0.0;
    }
    let (prec, rec) = (prec / orders as f64, rec / orders as f64);
    if prec + rec == 0.0 {
        return 0.0;
    }
    100.0 * (1.0 + BETA2) * prec * rec / (BETA2 * prec + rec)
}

/// A labelled span: (sentence, first word, last word + 1, type).
pub type Span = (usize, usize, usize, String);

/// Spans of an IOB1 / IOB2 / BIOES tag sequence (conlleval's chunking).
pub fn spans(sentence: usize, tags: &[String]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, tag) in tags.iter().enumerate() {
        let (p, ty) = tag.split_once('-').unwrap_or((tag.as_str(), ""));
        let continues = matches!(p, "I" | "E") && open.as_ref().is_some_and(|(_, t)| t == ty);
        if !continues {
            if let Some((s, t)) = open.take() {
                out.push((sentence, s, i, t));
            }
            if p != "O" {
                open = Some((i, ty.to_string()));
            }
        }
        if matches!(p, "E" | "S") {
            if let Some((s, t)) = open.take() {
                out.push((sentence, s, i + 1, t));
            }
        }
    }
    if let Some((s, t)) = open {
        out.push((sentence, s, tags.len(), t));
    }
    out
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

fn prf(tp: usize, pred: usize, gold: usize) -> Prf {
    let p = if pred == 0 {
        0.0
    } else {
        tp as f64 / pred as f64
    };
    let r = if gold == 0 {
        0.0
    } else {
        tp as f64 / gold as f64
    };
    let f1 = if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    };
    Prf {
        precision: p,
        recall: r,
        f1,
        support: gold,
    }
}

/// Exact-match entity scores, overall and per type.
pub fn entity_f1(gold: &[Span], pred: &[Span]) -> (Prf, BTreeMap<String, Prf>) {
    let g: std::collections::HashSet<&Span> = gold.iter().collect();
    let tp: Vec<&Span> = pred.iter().filter(|s| g.contains(s)).collect();
    let types: std::collections::BTreeSet<&String> =
        gold.iter().chain(pred).map(|s| &s.3).collect();
    let per = types
        .into_iter()
        .map(|t| {
            let count = |v: &mut dyn Iterator<Item = &Span>| v.filter(|s| &s.3 == t).count();
            (
                t.clone(),
                prf(
                    count(&mut tp.iter().copied()),
                    count(&mut pred.iter()),
                    count(&mut gold.iter()),
                ),
            )
        })
        .collect();
    (prf(tp.len(), pred.len(), gold.len()), per)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three hypotheses and their references.
    fn german_sample() -> ([String; 3], [String; 3]) {
        let hyps = [
            "Ein Mann fährt mit dem Fahrrad die Straße hinunter.",
            "Zwei Hunde spielen im Schnee.",
            "Eine Frau, die ein rotes Kleid trägt, steht vor 3,5 Gebäuden!",
        ]
        .map(String::from);
        let refs = [
            "Ein Mann fährt auf einem Fahrrad die Straße entlang.",
            "Zwei Hunde spielen im Schnee.",
            "Eine Frau in einem roten Kleid steht vor einem Gebäude.",
        ]
        .map(String::from);
        (hyps, refs)
    }

    #[test]
    fn bleu_matches_sacrebleu_on_a_small_corpus() {
        let (hyps, refs) = german_sample();
        // sacrebleu 2.6.0: corpus_bleu(hyps, [refs]).score
        let b = corpus_bleu(&hyps, &refs);
        assert!((b.score - 30.56719130542277).abs() < 1e-9, "{}", b.score);
        assert_eq!((b.sys_len, b.ref_len), (30, 27));
    }

    #[test]
    fn chrf_matches_sacrebleu() {
        let (hyps, refs) = german_sample();
        // sacrebleu 2.6.0: corpus_chrf(hyps, [refs]).score
        let c = corpus_chrf(&hyps, &refs);
        assert!((c - 64.33202443807411).abs() < 1e-9, "{c}");
        // Short and empty lines: orders a side lacks do not count.
        let c = corpus_chrf(
            &["ab", "", " x y "].map(String::from),
            &["abc", "a", "xy"].map(String::from),
        );
        assert!((c - 71.42857142857142).abs() < 1e-9, "{c}");
        assert_eq!(corpus_chrf(&[String::new()], &["abc".to_string()]), 0.0);
    }

    #[test]
    fn tokenize_13a_matches_sacrebleu() {
        assert_eq!(
            tokenize_13a("Eine Frau, die ein rotes Kleid trägt, steht vor 3,5 Gebäuden!"),
            "Eine Frau , die ein rotes Kleid trägt , steht vor 3,5 Gebäuden !"
        );
        assert_eq!(
            tokenize_13a("He said \"3.5-inch\" (really) &amp; x-y, 1,000."),
            "He said \" 3.5 - inch \" ( really ) & x-y , 1,000 ."
        );
    }

    #[test]
    fn iob1_and_bioes_give_the_same_spans() {
        let iob1: Vec<String> = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]
            .map(String::from)
            .to_vec();
        let bioes: Vec<String> = ["B-PER", "E-PER", "O", "S-LOC", "S-LOC", "S-ORG"]
            .map(String::from)
            .to_vec();
        assert_eq!(spans(0, &iob1), spans(0, &bioes));
        assert_eq!(spans(0, &iob1).len(), 4);
    }

    #[test]
    fn f1_counts_exact_matches_only() {
        let gold = vec![(0, 0, 2, "PER".to_string()), (0, 3, 4, "LOC".to_string())];
        let pred = vec![(0, 0, 2, "PER".to_string()), (0, 3, 5, "LOC".to_string())];
        let (all, per) = entity_f1(&gold, &pred);
        assert!((all.f1 - 0.5).abs() < 1e-12);
        assert_eq!(per["PER"].f1, 1.0);
        assert_eq!(per["LOC"].f1, 0.0);
    }
}
