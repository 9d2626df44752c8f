//! The shipped translator: greedy token ids equal PyTorch's, and the
//! command line's contract (a pipe in, one line out per line in).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use zoo::candle::{DType, Device};
use zoo::model::ModelDir;
use zoo::tasks::translate::Translator;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn greedy_and_beam_decoding_match_pytorch_token_for_token() {
    // One fixture per shipped translator (en-de, and en-fr where present).
    let mut names = Vec::new();
    for e in std::fs::read_dir(root().join("tests/fixtures/translate")).unwrap() {
        let path = e.unwrap().path();
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = fixture["model"].as_str().unwrap().to_string();
        check_fixture(&name, &fixture);
        names.push(name);
    }
    assert!(names.iter().any(|n| n == "translate-en-de"), "{names:?}");
}

fn check_fixture(name: &str, fixture: &serde_json::Value) {
    let dir = ModelDir::open(&root().join("models").join(name)).unwrap();
    let model = Translator::load(&dir, &Device::Cpu, DType::F32).unwrap();
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
        }
    }
}

fn zoo(args: &[&str], stdin: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

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

    let o = zoo(
        &["run", "translate", "--to", "fr", "--text", "A dog runs."],
        b"",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("chien"));
}
