//! The shipped sentiment models: PyTorch parity on a dozen sentences and
//! the command line's contract.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use zoo::candle::{DType, Device};
use zoo::model::ModelDir;
use zoo::tasks::sentiment::SentimentModel;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every shipped sentiment model (the LSTM default among them).
fn models() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sentiment-"))
        .collect();
    v.sort();
    assert!(
        v.iter().any(|n| n == "sentiment-lstm"),
        "the default model ships"
    );
    v
}

#[test]
fn every_sentiment_model_matches_pytorch_logits() {
    for name in models() {
        let name = name.as_str();
        let dir = ModelDir::open(&root().join("models").join(name)).unwrap();
        let model = SentimentModel::load(&dir, &Device::Cpu, DType::F32).unwrap();
        let fixture: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root().join(format!("tests/fixtures/sentiment/{name}.json")))
                .unwrap(),
        )
        .unwrap();
        let cases = fixture["cases"].as_array().unwrap();
        assert!(cases.len() >= 10, "{name}: a dozen cases expected");
        let mut worst = 0f32;
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let ids: Vec<u32> = case["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            assert_eq!(
                model.encode(text).unwrap(),
                ids,
                "{name}: token ids of {text:?}"
            );
            let logits = model
                .logits(&[&ids])
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
                .remove(0);
            for (a, b) in logits.iter().zip(case["logits"].as_array().unwrap()) {
                let b = b.as_f64().unwrap() as f32;
                worst = worst.max((a - b).abs());
                assert!(
                    (a - b).abs() <= 1e-4,
                    "{name}: {text:?}: logit {a} vs PyTorch {b}"
                );
            }
        }
        eprintln!(
            "{name}: max |logit diff| {worst:.2e} over {} sentences",
            cases.len()
        );
    }
}

#[test]
fn batching_by_length_gives_the_same_answers_as_one_at_a_time() {
    let dir = ModelDir::open(&root().join("models/sentiment-lstm")).unwrap();
    let model = SentimentModel::load(&dir, &Device::Cpu, DType::F32).unwrap();
    let texts = [
        "great",
        "a dull, lifeless and far too long film",
        "I loved it!",
        "not good at all, sadly",
    ];
    let batched = model.predict(&texts, 3);
    for (t, b) in texts.iter().zip(batched) {
        let single = model.predict(&[t], 1).remove(0).unwrap();
        let b = b.unwrap();
        assert_eq!(single.label, b.label);
        assert!((single.score - b.score).abs() < 1e-5, "{t}");
    }
}

fn zoo(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[test]
fn cli_gets_the_two_readme_sentences_right() {
    let o = zoo(
        &[
            "run",
            "sentiment",
            "a gripping, beautiful film",
            "I wanted to like it, but it's a dull mess.",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let labels: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(labels, ["positive", "negative"], "{out}");
}

#[test]
fn file_input_keeps_one_result_per_line_in_order_despite_bad_lines() {
    let input = b"a wonderful, moving film\n\n\xff\xfe broken\r\nthe worst movie of the year\n";
    let o = zoo(&["run", "sentiment", "--json", "--file", "-"], Some(input));
    assert_eq!(
        o.status.code(),
        Some(1),
        "an invalid line makes the run fail, after all lines"
    );
    let out = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert_eq!(rows[0]["label"], "positive");
    assert!(rows[0]["score"].as_f64().unwrap() > 0.5);
    assert!(rows[0]["probs"]["negative"].is_number() && rows[0]["probs"]["positive"].is_number());
    // Every row has the same schema: line, text, then results or error.
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["line"], i + 1);
    }
    // An empty line is an empty result, as in every task, not an error.
    assert_eq!(rows[1]["text"], "");
    assert!(rows[1].get("error").is_none() && rows[1].get("label").is_none());
    assert_eq!(
        rows[2]["error"].as_str().unwrap(),
        "not valid UTF-8 (bad byte at column 1): save the file as UTF-8"
    );
    assert_eq!(rows[3]["label"], "negative");
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(!err.contains("panicked"));
}

#[test]
fn unknown_model_and_bad_flags_are_usage_errors() {
    let o = zoo(
        &["run", "sentiment", "--model", "no-such-model", "hi"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with("error: unknown model `no-such-model`") && err.lines().count() == 1,
        "{err}"
    );
    let o = zoo(&["run", "sentiment", "--batch-size", "0", "hi"], None);
    assert_eq!(o.status.code(), Some(2));
    let o = zoo(&["run", "sentiment", "--file", "/no/such/file.txt"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stderr)
        .unwrap()
        .contains("cannot open /no/such/file.txt"));
    let o = zoo(
        &["run", "sentiment", "--model", "ner-bilstm-crf", "hi"],
        None,
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "a model of another task is refused"
    );
}

#[test]
fn a_huge_line_is_read_to_its_end_not_dropped() {
    // 25,000 tokens: read in full, window by window, not cut at 256.
    let long = "a truly great film . ".repeat(5_000);
    let o = zoo(
        &["run", "sentiment", "--json", "--file", "-"],
        Some(format!("{long}\nawful\n").as_bytes()),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["tokens"], 25_000);
    assert!(rows[0].get("truncated").is_none());
    assert_eq!(rows[0]["label"], "positive");
    assert_eq!(rows[1]["label"], "negative");
}

#[test]
fn a_long_review_is_read_to_its_end() {
    // The verdict comes after 300 neutral tokens: a 256-token cut would miss it.
    let dir = ModelDir::open(&root().join("models/sentiment-lstm")).unwrap();
    let model = SentimentModel::load(&dir, &Device::Cpu, DType::F32).unwrap();
    let filler = "the film has a plot and some actors in it . ".repeat(30);
    let bad = format!("{filler} it is awful , boring , a dull and tedious mess .");
    let good = format!("{filler} it is wonderful , moving , a gripping and beautiful film .");
    let p = model.predict(&[&bad, &good], 8);
    let (bad, good) = (p[0].as_ref().unwrap(), p[1].as_ref().unwrap());
    assert!(bad.tokens > 300 && good.tokens > 300);
    let pos = |p: &zoo::tasks::sentiment::Prediction| {
        p.probs.iter().find(|(l, _)| l == "positive").unwrap().1
    };
    assert!(
        pos(good) > pos(bad) + 0.2,
        "the ending changes the answer: {} vs {}",
        pos(good),
        pos(bad)
    );
}

/// A copy of sentiment-lstm in a temp folder with its config edited by `edit`
/// and extra weights added; the weights file is a real file, not a link.
fn edited_copy(
    tag: &str,
    edit: impl FnOnce(&mut serde_json::Value),
    extra: Vec<(&str, zoo::candle::Tensor)>,
) -> std::path::PathBuf {
    let src = root().join("models/sentiment-lstm");
    let dir = std::env::temp_dir().join(format!("zoo-sent-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["tokenizer.json", "README.md"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut tensors =
        zoo::candle::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    for (k, t) in extra {
        tensors.insert(k.to_string(), t);
    }
    zoo::candle::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    dir
}

fn logits_of(dir: &Path, texts: &[&str]) -> Vec<Vec<f32>> {
    let m = SentimentModel::load(&ModelDir::open(dir).unwrap(), &Device::Cpu, DType::F32).unwrap();
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| m.encode(t).unwrap()).collect();
    let refs: Vec<&[u32]> = ids.iter().map(|v| &v[..]).collect();
    m.logits(&refs).unwrap().to_vec2::<f32>().unwrap()
}

const HEAD_TEXTS: [&str; 3] = [
    "not a bad film at all",
    "the battery died after two days and support never answered.",
    "a warm, funny and surprisingly moving story",
];

#[test]
fn the_head_is_run_from_its_layer_graph() {
    use zoo::candle::Tensor;
    let base = logits_of(&root().join("models/sentiment-lstm"), &HEAD_TEXTS);
    // hidden = [I; -I], ReLU, classifier = [W, -W]: relu(x) - relu(-x) = x,
    // so this three-layer head computes what the one-layer head does, but
    // only if every layer of the graph runs, in order, with its weights.
    let src = zoo::candle::safetensors::load(
        root().join("models/sentiment-lstm/model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let w = &src["classifier.weight"]; // [2, 600]
    let n = w.dim(1).unwrap();
    let eye = Tensor::eye(n, DType::F32, &Device::Cpu).unwrap();
    let hidden = Tensor::cat(&[&eye, &eye.neg().unwrap()], 0).unwrap();
    let cls = Tensor::cat(&[w, &w.neg().unwrap()], 1).unwrap();
    let dir = edited_copy(
        "deephead",
        |c| {
            c["head"]["layers"] = serde_json::json!([
                {"name": "hidden", "class": "Linear",
                 "config": {"in_features": n, "out_features": 2 * n}, "inbound": ["features"]},
                {"name": "relu", "class": "ReLU", "inbound": ["hidden"]},
                {"name": "out", "class": "Linear",
                 "config": {"in_features": 2 * n, "out_features": 2}, "inbound": ["relu"]}
            ]);
            c["head"]["outputs"] = serde_json::json!(["out"]);
        },
        vec![
            ("hidden.weight", hidden),
            (
                "hidden.bias",
                Tensor::zeros(2 * n, DType::F32, &Device::Cpu).unwrap(),
            ),
            ("out.weight", cls),
            ("out.bias", src["classifier.bias"].clone()),
        ],
    );
    let deep = logits_of(&dir, &HEAD_TEXTS);
    for (a, b) in base.iter().flatten().zip(deep.iter().flatten()) {
        assert!((a - b).abs() < 1e-4, "{base:?} vs {deep:?}");
    }
    // Without a `head`, the config's hidden_dim describes it: the same answers.
    let old = edited_copy(
        "nohead",
        |c| {
            c.as_object_mut().unwrap().remove("head");
        },
        vec![],
    );
    assert_eq!(logits_of(&old, &HEAD_TEXTS), base);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(old);
}

#[test]
fn a_head_that_does_not_give_one_score_per_label_is_a_one_line_error() {
    let dir = edited_copy(
        "badhead",
        |c| c["labels"] = serde_json::json!(["negative", "neutral", "positive"]),
        vec![],
    );
    let o = zoo(
        &["run", "sentiment", "--model", dir.to_str().unwrap(), "fine"],
        None,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("`head` gives [2] per text, but the model has 3 labels"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
