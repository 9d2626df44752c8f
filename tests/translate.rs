//! The shipped translator: greedy token ids equal PyTorch's, and the
//! command line's contract (a pipe in, one line out per line in).

use std::path::Path;

use zoo::candle::{DType, Device};
use zoo::model::ModelDir;
use zoo::tasks::translate::{Translation, Translator};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `A dog runs.` into French, naming the chosen model on stderr.
const TO_FR_VERBOSE: &[&str] = &[
    "run",
    "translate",
    "--to",
    "fr",
    "-v",
    "--text",
    "A dog runs.",
];

#[test]
fn greedy_and_beam_decoding_match_pytorch_token_for_token() {
    // One fixture per shipped translator: the general ones and the caption models.
    let mut names = Vec::new();
    for e in std::fs::read_dir(root().join("tests/fixtures/translate")).unwrap() {
        let path = e.unwrap().path();
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = fixture["model"].as_str().unwrap().to_string();
        check_fixture(&name, &fixture);
        names.push(name);
    }
    for shipped in zoo::catalog::CATALOGUE
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| n.starts_with("translate-"))
    {
        assert!(
            names.iter().any(|n| n == shipped),
            "no fixture for {shipped}: {names:?}"
        );
    }
}

/// A shipped translator from `models/`, in f32 on the CPU.
fn shipped(name: &str) -> Translator {
    let dir = ModelDir::open(&root().join("models").join(name)).unwrap();
    Translator::load(&dir, &Device::Cpu, DType::F32).unwrap()
}

fn check_fixture(name: &str, fixture: &serde_json::Value) {
    let model = shipped(name);
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let src = ids(&case["source_ids"]);
        assert_eq!(
            model.encode_text(text).unwrap(),
            src,
            "{name}: source ids of {text:?}"
        );
        let out = model.greedy(&[&src]).unwrap().remove(0);
        assert_eq!(
            out,
            ids(&case["greedy_ids"]),
            "{name}: greedy ids of {text:?}"
        );
        assert_eq!(
            model.decode_ids(&out).unwrap(),
            case["greedy_text"].as_str().unwrap()
        );
        // Beam search (width 5, score / len^alpha) as scripts/eval_translate.py runs it.
        if let Some(beam) = case.get("beam_ids") {
            let t = model.beam(&src, 5).unwrap();
            assert_eq!(t.ids, ids(beam), "{name}: beam ids of {text:?}");
            let score = case["beam_score"].as_f64().unwrap() as f32;
            assert!(
                (t.score - score).abs() < 1e-3,
                "{name}: beam score of {text:?}: {} vs PyTorch {score}",
                t.score
            );
        }
    }
}

#[test]
fn beam_search_over_a_batch_gives_each_source_its_own_beam_result() {
    // Sources of different lengths finish at different steps and leave the
    // batch; each must still get exactly what it gets alone (and PyTorch's,
    // which the fixture test pins for the one-at-a-time path).
    let model = shipped("translate-en-de");
    let texts = [
        "A man is riding a bicycle down the street.",
        "Dogs.",
        "Two young children in blue jerseys are playing soccer on a green field while their parents watch from the side.",
        "A woman sings.",
        "The meeting has been moved to Thursday afternoon.",
    ];
    let srcs = encoded(&model, &texts);
    let refs: Vec<&[u32]> = srcs.iter().map(|s| s.as_slice()).collect();
    for beam in [1, 3, 5] {
        let batched = model.beam_batch(&refs, beam).unwrap();
        assert_eq!(batched.len(), texts.len());
        for ((src, b), text) in refs.iter().zip(&batched).zip(texts) {
            let alone = model.beam(src, beam).unwrap();
            assert_same_translation(b, &alone, &format!("beam {beam}: {text:?}"));
        }
    }
}

#[test]
fn greedy_decoding_of_a_batch_gives_each_source_what_it_gets_alone() {
    // Finished sources leave the greedy batch (its rows are compacted); the
    // ones still decoding must not notice.
    for name in [
        "translate-en-de",
        "translate-en-fr",
        "translate-en-de-multi30k",
    ] {
        let model = shipped(name);
        let texts = [
            "Dogs.",
            "Two young children in blue jerseys are playing soccer on a green field while their parents watch from the side.",
            "A woman sings.",
            "A man is riding a bicycle down the street.",
            "Hi",
        ];
        let srcs = encoded(&model, &texts);
        let refs: Vec<&[u32]> = srcs.iter().map(|s| s.as_slice()).collect();
        let batched = model.greedy(&refs).unwrap();
        assert_eq!(batched.len(), texts.len());
        let lengths: std::collections::BTreeSet<usize> = batched.iter().map(Vec::len).collect();
        assert!(
            lengths.len() > 2,
            "{name}: outputs of one length test nothing"
        );
        for ((src, b), text) in refs.iter().zip(&batched).zip(texts) {
            let alone = model.greedy(&[src]).unwrap().remove(0);
            assert_eq!(b, &alone, "{name}: {text:?}");
        }
    }
}

/// Each text's source ids.
fn encoded(model: &Translator, texts: &[&str]) -> Vec<Vec<u32>> {
    texts
        .iter()
        .map(|t| model.encode_text(t).unwrap())
        .collect()
}

/// The same tokens, and the same score up to float rounding.
fn assert_same_translation(a: &Translation, b: &Translation, what: &str) {
    assert_eq!(a.ids, b.ids, "{what}");
    assert!(
        (a.score - b.score).abs() < 1e-4,
        "{what}: score {} vs {}",
        a.score,
        b.score
    );
}

mod common;
use common::zoo;

#[test]
fn stdin_lines_map_to_output_lines_in_order_including_empty_ones() {
    let o = zoo(
        &["run", "translate", "--beam", "2"],
        b"A man is riding a bicycle down the street.\n\nTwo dogs play in the snow.\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].contains("Mann") && lines[0].contains("Fahrrad"),
        "{out}"
    );
    assert_eq!(lines[1], "");
    assert!(lines[2].contains("Hunde"), "{out}");
}

#[test]
fn json_output_and_long_inputs_always_terminate() {
    let long = "A man is riding a bicycle down the street. ".repeat(40);
    let input = format!("{long}\nA woman sings.\n");
    let o = zoo(
        &[
            "run",
            "translate",
            "--json",
            "--beam",
            "1",
            "--max-len",
            "30",
        ],
        input.as_bytes(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows[0]["translation"].as_str().unwrap().len() > 20);
    assert_eq!(rows[1]["text"], "A woman sings.");
    assert!(rows[1]["translation"].is_string());
}

#[test]
fn to_picks_a_translator_by_language_and_refuses_a_mismatch() {
    let o = zoo(
        &["run", "translate", "--to", "xx", "--text", "A dog runs."],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: unknown target language `xx`"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let o = zoo(
        &[
            "run",
            "translate",
            "--to",
            "fr",
            "--model",
            "translate-en-de",
            "--text",
            "A dog runs.",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("translates into `de`, not `fr`"), "{err}");

    let o = zoo(
        &["run", "translate", "--to", "de", "--text", "A dog runs."],
        b"",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Hund"));

    let o = zoo(TO_FR_VERBOSE, b"");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("chien"));
    // Two translators go into French: --to picks the general one, not the
    // caption model.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("model translate-en-fr from"), "{err}");
}

#[test]
fn to_prefers_the_general_translator_over_other_models_into_that_language() {
    // A user's model into French whose name sorts first must not take
    // `--to fr` away from translate-en-fr.
    let extra = std::env::temp_dir().join(format!("zoo-to-{}", std::process::id()));
    let dir = extra.join("a-captions-fr");
    std::fs::create_dir_all(&dir).unwrap();
    let src = ModelDir::open(&root().join("models/translate-en-fr-multi30k")).unwrap();
    let mut cfg = src.raw_config().clone();
    cfg["name"] = serde_json::json!("a-captions-fr");
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let o = common::zoo_in(
        root(),
        &[("ZOO_MODELS", extra.to_str().unwrap())],
        TO_FR_VERBOSE,
        b"",
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("model translate-en-fr from"), "{err}");
    std::fs::remove_dir_all(&extra).unwrap();
}

/// A folder whose config.json lists `files` (copies of translate-en-de's
/// first weights file) as the ensemble's members; one file: a single network.
fn ensemble_folder(tag: &str, files: &[&str]) -> std::path::PathBuf {
    let src = ModelDir::open(&root().join("models/translate-en-de")).unwrap();
    let dir = std::env::temp_dir().join(format!("zoo-ensemble-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.path.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    for f in files {
        std::fs::copy(src.weights_path().unwrap(), dir.join(f)).unwrap();
    }
    let mut cfg = src.raw_config().clone();
    cfg["weights"] = serde_json::json!(files);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    dir
}

#[test]
fn an_ensemble_of_one_network_twice_translates_like_that_network() {
    // The mean of two equal distributions is that distribution, so greedy
    // and beam ids must equal the single network's, and each network's
    // parameters count once per member.
    let dir = ensemble_folder("twice", &["a.safetensors", "b.safetensors"]);
    let one = ensemble_folder("once", &["a.safetensors"]);
    let single =
        Translator::load(&ModelDir::open(&one).unwrap(), &Device::Cpu, DType::F32).unwrap();
    let pair = Translator::load(&ModelDir::open(&dir).unwrap(), &Device::Cpu, DType::F32).unwrap();
    assert_eq!(single.members(), 1);
    assert_eq!(pair.members(), 2);
    assert_eq!(pair.param_count(), 2 * single.param_count());
    for text in [
        "A man is riding a bicycle down the street.",
        "Two dogs play in the snow.",
    ] {
        let src = single.encode_text(text).unwrap();
        assert_eq!(
            pair.greedy(&[&src]).unwrap(),
            single.greedy(&[&src]).unwrap()
        );
        let (a, b) = (pair.beam(&src, 5).unwrap(), single.beam(&src, 5).unwrap());
        assert_same_translation(&a, &b, text);
    }
    // Every member file must be there.
    std::fs::remove_file(dir.join("b.safetensors")).unwrap();
    let err = Translator::load(&ModelDir::open(&dir).unwrap(), &Device::Cpu, DType::F32)
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("b.safetensors is missing"),
        "{err:#}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&one).unwrap();
}
