//! The words a model read in training (`seen_words.txt` in its folder,
//! written by `scripts/seen_words.py`), and how much of a text is new to it.
//!
//! A vocabulary check can't tell another language: subword pieces and
//! GloVe's 400k words cover German and French too, so German input had
//! `oov` 0.0 and got tagged or "translated" with confidence. Words the
//! model never read in its training inputs can: "Das ist ein Haus und ich
//! bin hier." has 5 of 6 lower-case words the English training text never
//! held, an English sentence a few names at most.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};

/// The file in a model folder.
pub const FILE: &str = "seen_words.txt";

/// A text counts as mostly new to a model above this fraction of new
/// words...
pub const MOSTLY_NEW: f32 = 0.5;
/// ...among at least this many counted words (two names say nothing).
pub const MIN_WORDS: usize = 3;

#[derive(Debug, Clone, Default)]
pub struct SeenWords {
    words: HashSet<String>,
}

/// How much of one text a model has read before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Novelty {
    /// Words counted (see [`counted_words`]).
    pub counted: usize,
    /// Of those, words the model never read in training.
    pub new: usize,
}

impl Novelty {
    /// Fraction of the counted words that are new (0 when none counted).
    pub fn fraction(&self) -> f32 {
        if self.counted == 0 {
            0.0
        } else {
            self.new as f32 / self.counted as f32
        }
    }

    /// Whether the text is mostly words the model never read (another
    /// language, say): its output would be a guess.
    pub fn mostly_new(&self) -> bool {
        self.counted >= MIN_WORDS && self.fraction() > MOSTLY_NEW
    }
}

/// The words a model is judged on: maximal runs of letters, lower-cased.
/// In mixed-case text only the words written in lower case count: capitals
/// mark names, which are new to any model and say nothing about the
/// language, while function words are lower case in every language.
/// All-lower or all-upper text has no such mark, so every word counts.
pub fn counted_words(text: &str) -> Vec<String> {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let has_lower = words.iter().any(|w| w.chars().any(char::is_lowercase));
    let has_upper = words.iter().any(|w| w.chars().any(char::is_uppercase));
    words
        .into_iter()
        .filter(|w| !(has_lower && has_upper && w.chars().any(char::is_uppercase)))
        .map(str::to_lowercase)
        .collect()
}

impl SeenWords {
    /// The folder's `seen_words.txt`, or `None` if it has none.
    pub fn load(folder: &Path) -> Result<Option<Self>> {
        let path = folder.join(FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| {
                format!(
                    "cannot read {} (UTF-8, one word per line; delete it to run without the unseen-word check)",
                    path.display()
                )
            })?;
        Ok(Some(Self::from_lines(&text)))
    }

    pub fn from_lines(text: &str) -> Self {
        SeenWords {
            words: text
                .lines()
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn novelty(&self, text: &str) -> Novelty {
        let words = counted_words(text);
        Novelty {
            counted: words.len(),
            new: words.iter().filter(|w| !self.words.contains(*w)).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen() -> SeenWords {
        SeenWords::from_lines("the\nis\na\nhouse\nand\ni\nam\nhere\nmeeting\nmoved\nto\nvisited\n")
    }

    #[test]
    fn german_is_mostly_new_to_an_english_word_list() {
        let n = seen().novelty("Das ist ein Haus und ich bin hier.");
        // "Das" and "Haus" are capitalised in mixed-case text: not counted.
        assert_eq!(n, Novelty { counted: 6, new: 6 });
        assert!(n.mostly_new());
        assert!(!seen()
            .novelty("I am here and the house is a house.")
            .mostly_new());
    }

    #[test]
    fn names_in_mixed_case_text_do_not_count() {
        let n = seen().novelty("Angela Merkel visited Washington.");
        assert_eq!(n, Novelty { counted: 1, new: 0 });
        // Only capitals: nothing to judge by, so never flagged.
        let names = seen().novelty("Elon Musk");
        assert_eq!(names.counted, 0);
        assert!(!names.mostly_new());
    }

    #[test]
    fn all_lower_and_all_upper_text_count_every_word() {
        assert_eq!(
            seen().novelty("angela merkel visited the house"),
            Novelty { counted: 5, new: 2 }
        );
        let upper = seen().novelty("DAS IST EIN HAUS");
        assert_eq!(upper, Novelty { counted: 4, new: 4 });
        assert!(upper.mostly_new());
    }

    #[test]
    fn a_text_without_letters_is_not_judged() {
        let n = seen().novelty("12:30 -- 3.5%");
        assert_eq!(n.counted, 0);
        assert_eq!(n.fraction(), 0.0);
        assert!(!n.mostly_new());
    }
}
