//! The shipped NER tagger: PyTorch parity (words, offsets, ids, emission
//! scores, Viterbi tags) and the command line's offsets and formats.

use std::path::Path;

use zoo::candle::{DType, Device};
use zoo::model::ModelDir;
use zoo::tasks::ner::NerModel;

fn model() -> NerModel {
    let dir = ModelDir::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ner-bilstm-crf"))
        .unwrap();
    NerModel::load(&dir, &Device::Cpu, DType::F32).unwrap()
}

#[test]
fn emissions_and_tags_match_pytorch() {
    let m = model();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ner/ner-bilstm-crf.json");
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    let mut worst = 0f32;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let words = m.words(text).unwrap();
        let want_words: Vec<&str> = case["words"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(
            words.iter().map(|w| w.text.as_str()).collect::<Vec<_>>(),
            want_words,
            "{text:?}"
        );
        for (w, o) in words.iter().zip(case["char_offsets"].as_array().unwrap()) {
            assert_eq!(
                (w.start as u64, w.end as u64),
                (o[0].as_u64().unwrap(), o[1].as_u64().unwrap()),
                "{text:?}"
            );
        }
        let ids: Vec<u64> = words.iter().map(|w| w.id as u64).collect();
        let want_ids: Vec<u64> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(ids, want_ids, "{text:?}");
        let em = m.emissions(&[&words[..]]).unwrap().remove(0);
        let want: Vec<f32> = case["emissions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap() as f32)
            })
            .collect();
        for (a, b) in em.iter().zip(&want) {
            worst = worst.max((a - b).abs());
            assert!(
                (a - b).abs() <= 1e-4,
                "{text:?}: emission {a} vs PyTorch {b}"
            );
        }
        let tagged = m.tag_lines(&[text], 8).remove(0).unwrap();
        let want_tags: Vec<&str> = case["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(tagged.tags, want_tags, "{text:?}");
    }
    eprintln!("max |emission diff| {worst:.2e}");
}

mod common;
use common::zoo;

fn json_lines(o: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn finds_merkel_macron_paris_and_the_eu_with_offsets() {
    let line = "Angela Merkel met Emmanuel Macron in Paris on Tuesday to discuss the future of the European Union.";
    let file = std::env::temp_dir().join(format!("zoo-ner-{}.txt", std::process::id()));
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let o = zoo(
        &["run", "ner", "--file", file.to_str().unwrap(), "--json"],
        b"",
    );
    std::fs::remove_file(&file).ok();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = json_lines(&o);
    let ents: Vec<(String, String, u64, u64)> = rows[0]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["text"].as_str().unwrap().into(),
                e["label"].as_str().unwrap().into(),
                e["start"].as_u64().unwrap(),
                e["end"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [
        ("Angela Merkel", "PER", 0, 13),
        ("Emmanuel Macron", "PER", 18, 33),
        ("Paris", "LOC", 37, 42),
        ("European Union", "ORG", 83, 97),
    ];
    assert_eq!(ents.len(), 4, "{ents:?}");
    for ((t, l, s, e), (wt, wl, ws, we)) in ents.iter().zip(want) {
        assert_eq!((t.as_str(), l.as_str(), *s, *e), (wt, wl, ws, we));
        assert_eq!(
            line.chars()
                .skip(*s as usize)
                .take((e - s) as usize)
                .collect::<String>(),
            *t
        );
    }
    for e in rows[0]["entities"].as_array().unwrap() {
        let s = e["score"].as_f64().unwrap();
        assert!(s > 0.0 && s <= 1.0);
    }
}

#[test]
fn offsets_count_unicode_scalars_through_accents_emoji_and_tabs() {
    let line = "🙂 José Müller\tfrom Zürich joined Siemens AG in 2019.";
    let o = zoo(
        &["run", "ner", "--file", "-", "--json"],
        format!("{line}\n").as_bytes(),
    );
    assert!(o.status.success());
    let rows = json_lines(&o);
    let chars: Vec<char> = line.chars().collect();
    let ents = rows[0]["entities"].as_array().unwrap();
    assert!(!ents.is_empty());
    for e in ents {
        let (s, t) = (
            e["start"].as_u64().unwrap() as usize,
            e["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(
            chars[s..t].iter().collect::<String>(),
            e["text"].as_str().unwrap()
        );
    }
    assert!(
        ents.iter()
            .any(|e| e["text"] == "Zürich" && e["label"] == "LOC"),
        "{ents:?}"
    );
}

#[test]
fn empty_and_invalid_lines_keep_their_place() {
    let o = zoo(
        &["run", "ner", "--file", "-", "--json"],
        b"Paris is nice.\n\n\xff\xfe\nBerlin too.\n",
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "invalid UTF-8 fails the run after all lines are out"
    );
    let rows = json_lines(&o);
    assert_eq!(rows.len(), 4);
    // An empty line is an empty result, not an error.
    assert_eq!(rows[1]["line"], 2);
    assert!(rows[1].get("error").is_none() && rows[1].get("entities").is_none());
    assert!(rows[2]["error"]
        .as_str()
        .unwrap()
        .starts_with("not valid UTF-8"));
    assert_eq!(rows[2]["line"], 3);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("error: line 3: not valid UTF-8"), "{err}");
    assert_eq!(rows[3]["entities"][0]["text"], "Berlin");
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
}

#[test]
fn a_line_longer_than_the_model_reads_is_chunked_not_dropped() {
    let sentence = "Angela Merkel visited Paris . ";
    let line = sentence.repeat(200); // 1000 words > max_words
    let o = zoo(
        &["run", "ner", "--file", "-", "--json"],
        format!("{line}\n").as_bytes(),
    );
    assert!(o.status.success());
    let rows = json_lines(&o);
    let ents = rows[0]["entities"].as_array().unwrap();
    let paris = ents.iter().filter(|e| e["text"] == "Paris").count();
    assert!(
        paris >= 190,
        "entities from every chunk: {paris} Paris of 200"
    );
}

#[test]
fn conll_and_text_formats() {
    let o = zoo(
        &[
            "run",
            "ner",
            "--text",
            "Angela Merkel met Emmanuel Macron in Paris.",
            "--format",
            "conll",
        ],
        b"",
    );
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.starts_with("Angela\tB-PER\nMerkel\tI-PER\n"), "{out}");
    assert!(out.ends_with("\n\n"));
    let o = zoo(
        &[
            "run",
            "ner",
            "--text",
            "Angela Merkel met Emmanuel Macron in Paris.",
        ],
        b"",
    );
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        out.trim_end(),
        "[Angela Merkel](PER) met [Emmanuel Macron](PER) in [Paris](LOC)."
    );
}

#[test]
fn tweets_keep_handles_hashtags_and_links_whole_and_tag_the_names_in_them() {
    let line = "RT @nytimes: Zelenskyy meets Scholz in Kyiv #Ukraine https://t.co/x7Yq2";
    let o = zoo(&["run", "ner", "--format", "conll", line], b"");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    let words: Vec<&str> = out.lines().filter_map(|l| l.split('\t').next()).collect();
    for whole in ["@nytimes", "#Ukraine", "https://t.co/x7Yq2"] {
        assert!(words.contains(&whole), "{whole} split: {words:?}");
    }
    for (word, tag) in [
        ("Zelenskyy", "B-PER"),
        ("Scholz", "B-PER"),
        ("Kyiv", "B-LOC"),
    ] {
        assert!(out.contains(&format!("{word}\t{tag}")), "{word}: {out}");
    }
}
