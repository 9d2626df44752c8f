//! Whether a line is English, judged from what it is made of: the
//! function words every sentence needs and the script its letters are
//! written in, never from a model's training vocabulary.
//!
//! A vocabulary rule ("most words never seen in training") blanked English
//! headlines and tweets, which are mostly names, handles and hashtags; names
//! are new words in any language. Function words are not: "Das ist ein Haus"
//! has four German ones, "ELON MUSK BUYS TWITTER" none of any language, and
//! so it stays English (the models' language) unless the text says otherwise.

use std::collections::HashMap;
use std::sync::OnceLock;

/// What a line is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// English, or nothing that says otherwise (names only, numbers, emoji).
    #[default]
    English,
    /// Another language with Latin letters, by its ISO 639-1 code.
    Latin(&'static str),
    /// Mostly letters of another script, by the script's name.
    Script(&'static str),
}

/// As JSON: its [`name`](Language::name).
impl serde::Serialize for Language {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl Language {
    pub fn is_english(self) -> bool {
        self == Language::English
    }

    /// A short name for messages: "de", "fr", "Cyrillic", "en".
    pub fn name(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Latin(code) => code,
            Language::Script(script) => script,
        }
    }
}

/// A language wins over English with at least this many of its function
/// words, and more of them than English has: a code-switched line that is
/// half English stays English (its names are still worth tagging).
const MIN_HITS: usize = 2;

const ENGLISH: &str = "the of and to in is it that was for on are with as i his her they be at have this \
from or had by but not what all were we when your can said there an which she do how their if will up \
about out them these so some would like him into has more could my than been who its now did get just \
you he me our no very am does don isn doesn didn won can't i'm it's also because any here where why \
only other should after over really off too well going being those much then";

// Function words of each language, minus any that also occur in ordinary
// English (German "war", Dutch "die", Italian "come", Spanish "son"...).
const OTHERS: &[(&str, &str)] = &[
    (
        "de",
        "der die das und ist nicht ich du er sie es wir ihr ein eine einen einem einer mit auf für von zu \
den dem des im sich auch nach wie aber bei noch nur oder wenn über dass hat haben wird werden sind \
kann mein dein uns schon sehr hier jetzt heute kein keine ja nein doch mal bin bist gibt zum zur vom \
aus als wir euch ihm ihn ihnen diese dieser dieses nichts etwas mehr wieder immer man sein seine \
unsere meine meiner meinen warum weil habe hatte wurde waren",
    ),
    (
        "fr",
        "le la les un une des du de et est sont je tu il elle nous vous ils elles ce cette ces qui que dans \
pour pas ne sur avec au aux mais ou où sa ses mon ma mes ton ta tes très plus bien aussi être avoir \
fait été c'est j'ai qu'il n'est l'on d'un d'une suis es sommes êtes ont avons avez leur leurs notre \
votre nos vos cela ça rien tout tous toute toutes comme quand parce y en",
    ),
    (
        "es",
        "el la los las un una unos unas de del y en es que por para con se su sus lo al como más pero muy \
está están son yo tú él ella nosotros ellos ellas este esta estos estas eso esto hay también porque \
cuando ser fue ha tiene todo todos nada sí mi mis tu tus qué cómo dónde donde bien estoy somos",
    ),
    (
        "it",
        "il lo la gli le un una di del della dello dei degli delle è che non per con sono sei ha ho hanno \
questo questa questi quello quella ma anche più come molto nel nella negli nelle alla alle al \
io tu lui lei noi voi loro perché quando essere stato stata sempre cosa mio mia tuo tua suo sua \
ci si già ancora",
    ),
    (
        "nl",
        "de het een en van ik je niet dat op te zijn met voor er maar om ook als bij nog wat uit naar dan \
heeft hebben wordt worden geen deze dit wel zo ze hij wij jij mijn onze jullie hun waar omdat \
kunnen moet moeten zal zullen veel heel",
    ),
    (
        "pt",
        "os um uma de do da dos das em no na nos nas que não com para por se é mais mas como muito também \
ele ela eles elas eu você vocês nós está estão são foi tem isso isto este esta essa esse meu minha \
seu sua pelo pela ao aos à",
    ),
];

/// Words that read as function words of another language but are common
/// English words or parts of English names.
const ENGLISH_TOO: &str = "die man will also hat bin war son come per con sale fast art via pan \
van von";

struct Lists {
    english: HashMap<&'static str, ()>,
    others: Vec<(&'static str, HashMap<&'static str, ()>)>,
}

fn lists() -> &'static Lists {
    static LISTS: OnceLock<Lists> = OnceLock::new();
    LISTS.get_or_init(|| {
        let english: HashMap<_, _> = ENGLISH.split_whitespace().map(|w| (w, ())).collect();
        let too: HashMap<_, _> = ENGLISH_TOO.split_whitespace().map(|w| (w, ())).collect();
        let others = OTHERS
            .iter()
            .map(|(code, words)| {
                let set = words
                    .split_whitespace()
                    .filter(|w| !english.contains_key(w) && !too.contains_key(w))
                    .map(|w| (w, ()))
                    .collect();
                (*code, set)
            })
            .collect();
        Lists { english, others }
    })
}

/// The script of a letter outside the Latin alphabet, if it has a common
/// one.
fn script(c: char) -> Option<&'static str> {
    Some(match c as u32 {
        0x0370..=0x03FF | 0x1F00..=0x1FFF => "Greek",
        0x0400..=0x052F => "Cyrillic",
        0x0590..=0x05FF => "Hebrew",
        0x0600..=0x06FF | 0x0750..=0x077F => "Arabic",
        0x0900..=0x097F => "Devanagari",
        0x0E00..=0x0E7F => "Thai",
        0x1100..=0x11FF | 0xAC00..=0xD7AF => "Hangul",
        0x3040..=0x30FF => "Kana",
        0x4E00..=0x9FFF | 0x3400..=0x4DBF => "Han",
        _ => return None,
    })
}

/// Words that say something about the language: lower-cased runs of
/// letters and apostrophes, leaving out @handles, #hashtags and links,
/// which are names whatever the language.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace()
        .filter(|t| {
            !(t.starts_with('@')
                || t.starts_with('#')
                || t.contains("://")
                || t.starts_with("www."))
        })
        .flat_map(|t| t.split(|c: char| !(c.is_alphabetic() || c == '\'' || c == '’')))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '’').replace('’', "'"))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
}

/// The language of one line (see the module docs).
pub fn detect(text: &str) -> Language {
    // Script first: a line mostly in another script is not English.
    let mut latin = 0usize;
    let mut other: HashMap<&'static str, usize> = HashMap::new();
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        match script(c) {
            Some(s) => *other.entry(s).or_default() += 1,
            None => latin += 1,
        }
    }
    if let Some((s, n)) = other.into_iter().max_by_key(|&(s, n)| (n, s)) {
        if n > latin {
            return Language::Script(s);
        }
    }
    let lists = lists();
    let mut english = 0usize;
    let mut counts = vec![0usize; lists.others.len()];
    for w in words(text) {
        // "c'est" counts whole and, split at the apostrophe, as "est".
        let parts: Vec<&str> = std::iter::once(w.as_str()).chain(w.split('\'')).collect();
        if parts.iter().any(|p| lists.english.contains_key(p)) {
            english += 1;
            continue;
        }
        for (i, (_, set)) in lists.others.iter().enumerate() {
            if parts.iter().any(|p| set.contains_key(p)) {
                counts[i] += 1;
            }
        }
    }
    let best = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, &n)| (n, std::cmp::Reverse(i)))
        .map(|(i, &n)| (lists.others[i].0, n));
    match best {
        Some((code, n)) if n >= MIN_HITS && n > english => Language::Latin(code),
        _ => Language::English,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_headlines_full_of_names_stay_english() {
        for line in [
            "ELON MUSK BUYS TWITTER",
            "APPLE UNVEILS NEW IPHONE IN CUPERTINO",
            "Angela Merkel met Emmanuel Macron in Paris",
            "Zelenskyy Meets Scholz, Macron And Draghi In Kyiv",
            "Björk, Sigur Rós and Ólafur Arnalds at Harpa",
        ] {
            assert_eq!(detect(line), Language::English, "{line}");
        }
    }

    #[test]
    fn tweets_with_handles_and_hashtags_stay_english() {
        for line in [
            "@united thanks for nothing, 3 hours on the tarmac #fail",
            "RT @elonmusk: Tesla Gigafactory Berlin-Brandenburg opens today! https://t.co/x1Y2",
            "omg @taylorswift13 in #Paris tonight 😍😍",
            "@JetBlue @AmericanAir @Delta @SouthwestAir #Boston #JFK",
        ] {
            assert_eq!(detect(line), Language::English, "{line}");
        }
    }

    #[test]
    fn german_french_spanish_and_other_scripts_are_named() {
        assert_eq!(
            detect("Das ist ein Haus und ich bin hier."),
            Language::Latin("de")
        );
        assert_eq!(detect("DAS IST NICHT GUT"), Language::Latin("de"));
        assert_eq!(
            detect("Je suis allé au marché avec mes amis."),
            Language::Latin("fr")
        );
        assert_eq!(
            detect("C'est la vie, n'est-ce pas ?"),
            Language::Latin("fr")
        );
        assert_eq!(
            detect("El presidente de México visitó la ciudad con sus ministros."),
            Language::Latin("es")
        );
        assert_eq!(
            detect("Путин встретился с Макроном в Париже"),
            Language::Script("Cyrillic")
        );
        assert_eq!(detect("北京举行了会议"), Language::Script("Han"));
        assert!(matches!(
            detect("東京で会議が開かれた"),
            Language::Script(_)
        ));
    }

    #[test]
    fn code_switched_lines_with_a_fair_share_of_english_stay_english() {
        assert_eq!(
            detect("Ich habe keine Zeit, but I will meet you at the Brandenburger Tor"),
            Language::English
        );
        assert_eq!(
            detect("We had dinner at Chez Paul, c'est magnifique, and then went to the Louvre"),
            Language::English
        );
        // Mostly German with an English phrase: German.
        assert_eq!(
            detect("Ich bin heute mit meiner Mutter in die Stadt gefahren, it was nice"),
            Language::Latin("de")
        );
    }
}
