//! Sentences of a text, for tasks whose models read one sentence at a time
//! (the translators learned to stop after one). Boundaries are Unicode's
//! (UAX #29, `unicode-segmentation`); a boundary right after a known
//! abbreviation or an initial ("Dr.", "p.m.", "J.") is taken back, since
//! UAX #29 breaks after any period followed by a capital or a digit.

use unicode_segmentation::UnicodeSegmentation;

/// One sentence of a text: the whitespace before it (kept so the output
/// can be joined with the source's own spacing) and the sentence itself,
/// trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence<'a> {
    pub space_before: &'a str,
    pub text: &'a str,
}

/// Words that end in a period without ending a sentence (compared in lower
/// case). Single letters ("J.") and dotted letter groups ("U.S.", "e.g.")
/// are recognised by shape, not listed.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "rev", "hon", "gen", "gov",
    "sen", "rep", "pres", "lt", "col", "capt", "cpt", "sgt", "maj", "cmdr", "adm", "messrs", "mme",
    "mlle", "vs", "etc", "inc", "ltd", "co", "corp", "bros", "dept", "univ", "assn", "approx",
    "est", "ca", "cf", "al", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct",
    "nov", "dec", "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun", "ave",
    "blvd", "rd", "hwy", "min", "max", "tel", "dist", "div", "ed", "eds", "op", "viz",
];

/// Abbreviations only when a number follows ("No. 5", "p. 12"): "No." is
/// a sentence too.
const BEFORE_NUMBERS: &[&str] = &[
    "no", "nos", "vol", "vols", "fig", "figs", "pp", "ch", "sec", "op", "art", "nr",
];

/// Whether `segment` (a UAX #29 sentence, trailing space trimmed) ends in
/// an abbreviation or an initial rather than a sentence; `next` is the
/// text that follows.
fn ends_in_abbreviation(segment: &str, next: &str) -> bool {
    let Some(stem) = segment.strip_suffix('.') else {
        return false;
    };
    let word = stem
        .rsplit(|c: char| c.is_whitespace() || c == '(' || c == '"' || c == '\u{201c}')
        .next()
        .unwrap_or("");
    if word.is_empty() {
        return false;
    }
    // An initial ("J.") or a dotted group ("U.S", "e.g", "p.m").
    let letters_between_dots = word
        .split('.')
        .all(|part| part.chars().count() == 1 && part.chars().all(char::is_alphabetic));
    if letters_between_dots {
        return true;
    }
    let lower = word.to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
        || (BEFORE_NUMBERS.contains(&lower.as_str())
            && next.trim_start().starts_with(|c: char| c.is_ascii_digit()))
}

/// Splits `text` into sentences, in order; their texts and the space
/// between them make up `text` again (leading space included, trailing
/// space dropped). A text without sentence ends is one sentence; a blank
/// text none.
pub fn split(text: &str) -> Vec<Sentence<'_>> {
    let mut out: Vec<Sentence<'_>> = Vec::new();
    // Byte range of the sentence being built, which may span several
    // UAX #29 segments when an abbreviation ended one.
    let mut open: Option<(usize, usize)> = None;
    let mut space_start = 0;
    let sentence = |start: usize, end: usize, space_start: usize| Sentence {
        space_before: &text[space_start..start],
        text: &text[start..end],
    };
    let segments: Vec<(usize, &str)> = text.split_sentence_bound_indices().collect();
    for (k, &(i, seg)) in segments.iter().enumerate() {
        let trimmed = seg.trim_end();
        let lead = trimmed.len() - trimmed.trim_start().len();
        if trimmed.trim_start().is_empty() {
            continue;
        }
        let (start, end) = match open {
            Some((s, _)) => (s, i + trimmed.len()),
            None => (i + lead, i + trimmed.len()),
        };
        let next = segments.get(k + 1).map_or("", |s| s.1);
        if ends_in_abbreviation(&text[start..end], next) {
            open = Some((start, end));
            continue;
        }
        out.push(sentence(start, end, space_start));
        space_start = end;
        open = None;
    }
    if let Some((s, e)) = open {
        out.push(sentence(s, e, space_start));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(t: &str) -> Vec<&str> {
        split(t).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn a_paragraph_splits_into_its_sentences_in_order() {
        let p = "I like cats. She likes dogs! Do you? We went home after the game. It rained.";
        assert_eq!(
            texts(p),
            [
                "I like cats.",
                "She likes dogs!",
                "Do you?",
                "We went home after the game.",
                "It rained."
            ]
        );
    }

    #[test]
    fn abbreviations_and_initials_do_not_end_a_sentence() {
        assert_eq!(
            texts("Dr. Smith arrived at 5 p.m. on Jan. 3. He left."),
            ["Dr. Smith arrived at 5 p.m. on Jan. 3.", "He left."]
        );
        assert_eq!(
            texts("See No. 5 on p. 12. No. It is vol. 2."),
            ["See No. 5 on p. 12.", "No.", "It is vol. 2."]
        );
        assert_eq!(
            texts("J. R. R. Tolkien lived in the U.S. for a while? No. Mr. Brown did."),
            [
                "J. R. R. Tolkien lived in the U.S. for a while?",
                "No.",
                "Mr. Brown did."
            ]
        );
    }

    #[test]
    fn the_spacing_between_sentences_is_kept() {
        let t = "  One.  Two.\tThree ";
        let s = split(t);
        let rebuilt: String = s
            .iter()
            .map(|x| format!("{}{}", x.space_before, x.text))
            .collect();
        assert_eq!(rebuilt, t.trim_end());
        assert_eq!(s[1].space_before, "  ");
        assert_eq!(s[2].space_before, "\t");
    }

    #[test]
    fn text_without_an_end_is_one_sentence_and_blank_text_none() {
        assert_eq!(texts("no full stop here"), ["no full stop here"]);
        assert!(split("   ").is_empty());
        assert!(split("").is_empty());
    }
}
