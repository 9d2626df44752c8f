//! Interpretable features of every token of a text: what a unit might
//! hold. Each is a property of the text read so far (the state after the
//! token), not of the token alone: the probe asks what a unit remembers,
//! and what it merely reads is taken out first (see `super::stats`).

/// One feature's value at every token.
#[derive(Debug, Clone)]
pub struct Feature {
    pub name: &'static str,
    /// One line for people.
    pub about: &'static str,
    pub values: Vec<f32>,
}

/// Words after which the next few words are negated.
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "nor", "neither", "nothing", "nobody", "none", "nowhere", "cannot",
    "without", "n't",
];

/// How many words after a negation word count as negated.
const NEGATION_REACH: usize = 3;

/// The features of several texts read one after the other, each from its
/// start (as a model reads parallel slices, each from a zero state).
pub fn char_features_of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<Feature> {
    let mut all: Vec<Feature> = Vec::new();
    for t in texts {
        let fs = char_features(t);
        if all.is_empty() {
            all = fs;
        } else {
            for (a, f) in all.iter_mut().zip(fs) {
                a.values.extend(f.values);
            }
        }
    }
    all
}

/// The features of a text read one character at a time: the value at
/// character i describes the text up to and including it.
pub fn char_features(text: &str) -> Vec<Feature> {
    let n = text.chars().count();
    let mut quote = vec![0f32; n];
    let mut bracket = vec![0f32; n];
    let mut line_pos = vec![0f32; n];
    let mut word_pos = vec![0f32; n];
    let mut sentence_pos = vec![0f32; n];
    let mut negated = vec![0f32; n];
    let mut capital = vec![0f32; n];
    let (mut in_quote, mut depth) = (false, 0usize);
    let (mut col, mut wlen, mut words_in_sentence) = (0usize, 0usize, 0usize);
    let mut word = String::new();
    let mut word_capital = false;
    let mut since_negation = usize::MAX;
    for (i, ch) in text.chars().enumerate() {
        match ch {
            '"' => in_quote = !in_quote,
            '\u{201c}' => in_quote = true,
            '\u{201d}' => in_quote = false,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if ch == '\n' {
            col = 0;
        } else {
            col += 1;
        }
        if ch.is_alphanumeric() || (ch == '\'' && wlen > 0) {
            if wlen == 0 {
                words_in_sentence += 1;
                word_capital = ch.is_uppercase();
                since_negation = since_negation.saturating_add(1);
            }
            wlen += 1;
            word.push(ch.to_ascii_lowercase());
        } else {
            if wlen > 0 {
                let w = word.as_str();
                if NEGATIONS.contains(&w) || w.ends_with("n't") {
                    since_negation = 0;
                }
                word.clear();
            }
            wlen = 0;
            word_capital = false;
            if matches!(ch, '.' | '!' | '?') {
                words_in_sentence = 0;
                since_negation = usize::MAX;
            }
        }
        quote[i] = in_quote as u8 as f32;
        bracket[i] = (depth > 0) as u8 as f32;
        line_pos[i] = col as f32;
        word_pos[i] = wlen as f32;
        sentence_pos[i] = words_in_sentence as f32;
        negated[i] = (1..=NEGATION_REACH).contains(&since_negation) as u8 as f32;
        capital[i] = (word_capital && wlen > 0) as u8 as f32;
    }
    vec![
        Feature {
            name: "in quotes",
            about: "inside double quotes (dialogue)",
            values: quote,
        },
        Feature {
            name: "in brackets",
            about: "inside parentheses or brackets",
            values: bracket,
        },
        Feature {
            name: "line position",
            about: "characters since the line began",
            values: line_pos,
        },
        Feature {
            name: "word position",
            about: "characters since the word began (0 between words: word boundaries)",
            values: word_pos,
        },
        Feature {
            name: "sentence position",
            about: "words since the sentence began",
            values: sentence_pos,
        },
        Feature {
            name: "after negation",
            about: "within three words after not, no, never, n't, …",
            values: negated,
        },
        Feature {
            name: "capitalised word",
            about: "inside a word that starts with a capital",
            values: capital,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(fs: &'a [Feature], name: &str) -> &'a [f32] {
        &fs.iter().find(|f| f.name == name).unwrap().values
    }

    #[test]
    fn quotes_brackets_and_positions_follow_the_text() {
        let t = "He said \"no (really) not now\" Then.\nOk";
        let fs = char_features(t);
        let at = |name: &str, i: usize| get(&fs, name)[i];
        let pos = |s: &str| t.find(s).unwrap();
        assert_eq!(at("in quotes", pos("no")), 1.0);
        assert_eq!(at("in quotes", pos("Then")), 0.0);
        assert_eq!(at("in brackets", pos("really")), 1.0);
        assert_eq!(at("in brackets", pos("not")), 0.0);
        assert_eq!(at("line position", pos("Ok")), 1.0);
        assert_eq!(at("word position", pos("said") + 2), 3.0);
        assert_eq!(at("capitalised word", pos("Then") + 1), 1.0);
        assert_eq!(at("capitalised word", pos("said")), 0.0);
        // "no" negates "really", "not" and "now"; the sentence end stops it.
        assert_eq!(at("after negation", pos("really")), 1.0);
        assert_eq!(at("after negation", pos("Ok")), 0.0);
        assert_eq!(at("sentence position", pos("Ok")), 1.0);
    }
}
