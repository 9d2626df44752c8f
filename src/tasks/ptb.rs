//! Turns SST's lower-cased Penn Treebank tokens back into text as people
//! type it (`does n't` -> `doesn't`, `-lrb- x -rrb-` -> `(x)`), to measure
//! the sentiment models on natural text. Mirrors `scripts/sst_detok.py`.

use std::sync::OnceLock;

use regex::Regex;

fn rules() -> &'static [(Regex, &'static str)] {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            (r"\\/", "/"),
            (r"\\\*", "*"),
            (r"-lrb-\s*", "("),
            (r"\s*-rrb-", ")"),
            (r"-lsb-\s*", "["),
            (r"\s*-rsb-", "]"),
            (r"-lcb-\s*", "{"),
            (r"\s*-rcb-", "}"),
            (r"``\s*", "\""),
            (r"\s*''", "\""),
            (r"`\s*", "'"),
            (r"\s+n't\b", "n't"),
            (r"\s+'(s|re|ve|ll|d|m)\b", "'$1"),
            (r"\bcan not\b", "cannot"),
            (r"\bgon na\b", "gonna"),
            (r"\bwan na\b", "wanna"),
            (r"\bgot ta\b", "gotta"),
            (r"([\w.!?,])\s+'(\s|$)", "$1'$2"),
            (r"\s+(\.\.\.|[,.!?;:%])", "$1"),
            (r"([$#])\s+(\d)", "$1$2"),
            (r"\s+", " "),
        ]
        .into_iter()
        .map(|(p, r)| (Regex::new(p).expect("valid rule"), r))
        .collect()
    })
}

pub fn detokenize(text: &str) -> String {
    let mut s = format!(" {} ", text.trim());
    for (re, rep) in rules() {
        s = re.replace_all(&s, *rep).into_owned();
    }
    let s = s.trim();
    static I: OnceLock<Regex> = OnceLock::new();
    let s = I
        .get_or_init(|| Regex::new(r"\bi\b").expect("valid"))
        .replace_all(s, "I");
    // Capitalise the first letter after any leading punctuation.
    let mut out = String::with_capacity(s.len());
    let mut done = false;
    for ch in s.chars() {
        if !done && ch.is_alphanumeric() {
            out.extend(ch.to_uppercase());
            done = true;
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::detokenize;

    #[test]
    fn restores_contractions_brackets_and_punctuation() {
        assert_eq!(
            detokenize("it 's a movie that does n't -lrb- really -rrb- work , is it ?"),
            "It's a movie that doesn't (really) work, is it?"
        );
        assert_eq!(detokenize("`` great '' , i said ."), "\"Great\", I said.");
        assert_eq!(
            detokenize("ca n't stand it ... $ 5 wasted"),
            "Can't stand it... $5 wasted"
        );
    }
}
