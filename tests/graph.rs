#![cfg(all(feature = "keras", feature = "cli"))]
//! Graph models: every committed Keras and PyTorch fixture
//! (scripts/gen_graph_fixtures.py) reproduces the framework's own outputs
//! to 1e-5 abs + 1e-5 rel, imported in memory and through a written
//! folder; malformed models and inputs give errors that say what is wrong.

use std::path::{Path, PathBuf};
use std::process::Command;

use zoo::candle::{DType, Device, Tensor};
use zoo::graph::import::{self, Imported};
use zoo::graph::{io, GraphModel};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph")
}

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.npz").exists())
        .collect();
    v.sort();
    v
}

fn imported(dir: &Path) -> Imported {
    if dir.join("model.keras").exists() {
        zoo::graph::keras_file::read(&dir.join("model.keras")).unwrap()
    } else {
        import::pytorch(&dir.join("model.pt"), &dir.join("graph.json")).unwrap()
    }
}

fn check(model: &GraphModel, dir: &Path) {
    let name = dir.file_name().unwrap().to_string_lossy();
    let inputs = io::read(&dir.join("input.npz"), model.inputs(), &Device::Cpu).unwrap();
    let got = model.forward(inputs).unwrap();
    let expected = Tensor::read_npz(dir.join("expected.npz")).unwrap();
    assert_eq!(got.len(), expected.len(), "{name}: number of outputs");
    let names = model.output_names();
    for (n, want) in &expected {
        let i = names
            .iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("{name}: no output {n}"));
        let g = got[i].to_dtype(DType::F32).unwrap();
        assert_eq!(g.dims(), want.dims(), "{name}/{n}: shape");
        let g = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let w = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (j, (a, b)) in g.iter().zip(&w).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-5 * b.abs(),
                "{name}/{n}[{j}]: zoo {a}, framework {b}"
            );
        }
    }
}

#[test]
fn every_fixture_matches_its_framework_to_1e5() {
    let cases = cases();
    assert!(cases.len() >= 8, "fixtures missing: {cases:?}");
    for dir in cases {
        let model = imported(&dir).build(&Device::Cpu).unwrap();
        check(&model, &dir);
    }
}

#[test]
fn imported_folders_load_and_match_too() {
    let tmp = std::env::temp_dir().join(format!("zoo-graph-{}", std::process::id()));
    for dir in cases() {
        let out = tmp.join(dir.file_name().unwrap());
        imported(&dir).write(&out).unwrap();
        let md = zoo::model::ModelDir::open(&out).unwrap();
        let model = GraphModel::load(&md, &Device::Cpu).unwrap();
        check(&model, &dir);
        let card = std::fs::read_to_string(out.join("README.md")).unwrap();
        assert!(card.contains("imported by `zoo import`"), "{card}");
    }
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn keras_param_counts_match_count_params() {
    // model.count_params() as gen_graph_fixtures.py printed it.
    for (case, n) in [
        ("forum_lstm", 24986),
        ("imdb_bilstm", 10405),
        ("tagger_td", 2717),
        ("encdec_repeat", 3622),
        ("conv_bn_gru", 953),
        ("options", 1617),
    ] {
        let m = imported(&fixtures().join(case))
            .build(&Device::Cpu)
            .unwrap();
        assert_eq!(m.param_count(), n, "{case}");
    }
}

fn zoo(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn one_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0]
}

#[test]
fn a_wrong_initial_state_shape_names_the_input_and_both_shapes() {
    let dir = fixtures().join("forum_lstm");
    let mut inputs = Tensor::read_npz(dir.join("input.npz")).unwrap();
    for (n, t) in inputs.iter_mut() {
        if n == "a0" {
            *t = t.narrow(1, 0, 44).unwrap();
        }
    }
    let bad = std::env::temp_dir().join(format!("zoo-bad-a0-{}.npz", std::process::id()));
    let refs: Vec<(&str, &Tensor)> = inputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    Tensor::write_npz(&refs, &bad).unwrap();
    let model = dir.join("model.keras");
    let (code, _, err) = zoo(&[
        "predict",
        model.to_str().unwrap(),
        "--input",
        bad.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&bad);
    assert_eq!(code, 2);
    assert!(
        one_error_line(&err).contains("input `a0` has shape [32, 44], expected [32, 45]"),
        "{err}"
    );
}

#[test]
fn predict_writes_outputs_a_reader_gets_back() {
    let dir = fixtures().join("options");
    let out = std::env::temp_dir().join(format!("zoo-pred-{}.safetensors", std::process::id()));
    let (code, _, err) = zoo(&[
        "predict",
        dir.join("model.keras").to_str().unwrap(),
        "--input",
        dir.join("input.npz").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let got = zoo::candle::safetensors::load(&out, &Device::Cpu).unwrap();
    let _ = std::fs::remove_file(&out);
    let mut names: Vec<&String> = got.keys().collect();
    names.sort();
    assert_eq!(names, ["output_0", "output_1"]);
    // JSON Lines on stdout: one object per example.
    let (code, stdout, err) = zoo(&[
        "predict",
        dir.join("model.keras").to_str().unwrap(),
        "--input",
        dir.join("input.npz").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout.lines().count(), 6, "{stdout}");
    let first: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["output_0"].as_array().unwrap().len(), 5);
}

#[test]
fn a_lambda_layer_is_refused_by_name_and_class() {
    let m = fixtures().join("unsupported_lambda/model.keras");
    let (code, _, err) = zoo(&["import", m.to_str().unwrap(), "--out", "/nonexistent/never"]);
    assert_ne!(code, 0);
    let line = one_error_line(&err);
    assert!(
        line.contains("layer `lambda` (Lambda)") && line.contains("not supported"),
        "{line}"
    );
}

#[test]
fn corrupt_and_mismatched_keras_files_are_one_line_errors() {
    let tmp = std::env::temp_dir().join(format!("zoo-corrupt-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let x = fixtures().join("imdb_bilstm/input.npz");
    // Not a zip at all, and a zip cut short.
    let garbage = tmp.join("garbage.keras");
    std::fs::write(&garbage, b"not a zip").unwrap();
    let bytes = std::fs::read(fixtures().join("imdb_bilstm/model.keras")).unwrap();
    let cut = tmp.join("cut.keras");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    // One model's config with another's weights.
    let mixed = tmp.join("mixed.keras");
    swap_weights(
        &fixtures().join("imdb_bilstm/model.keras"),
        &fixtures().join("tagger_td/model.keras"),
        &mixed,
    );
    for (file, says) in [
        (&garbage, "is not a .keras file"),
        (&cut, "is not a .keras file"),
        (&mixed, "does not match the model's config.json"),
    ] {
        let (code, _, err) = zoo(&[
            "predict",
            file.to_str().unwrap(),
            "--input",
            x.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{err}");
        assert!(one_error_line(&err).contains(says), "{err}");
    }
    let _ = std::fs::remove_dir_all(tmp);
}

/// `config` from `a`, `model.weights.h5` from `b`.
fn swap_weights(a: &Path, b: &Path, out: &Path) {
    use std::io::{Read, Write};
    let read = |p: &Path, name: &str| {
        let mut z = zip::ZipArchive::new(std::fs::File::open(p).unwrap()).unwrap();
        let mut v = Vec::new();
        z.by_name(name).unwrap().read_to_end(&mut v).unwrap();
        v
    };
    let mut w = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in [
        ("metadata.json", read(a, "metadata.json")),
        ("config.json", read(a, "config.json")),
        ("model.weights.h5", read(b, "model.weights.h5")),
    ] {
        w.start_file(name, opts).unwrap();
        w.write_all(&bytes).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn a_state_dict_with_weights_the_graph_does_not_name_is_refused() {
    let dir = fixtures().join("torch_bilstm");
    let mut g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("graph.json")).unwrap()).unwrap();
    g["layers"][3]["name"] = "classifier".into();
    let gp = std::env::temp_dir().join(format!("zoo-graph-{}.json", std::process::id()));
    std::fs::write(&gp, g.to_string()).unwrap();
    let err = import::pytorch(&dir.join("model.pt"), &gp)
        .err()
        .unwrap()
        .to_string();
    let _ = std::fs::remove_file(&gp);
    assert!(err.contains("head.weight"), "{err}");
}

fn import_text_model(case: &str) -> PathBuf {
    import_text_model_with(case, "", &[])
}

/// Imports fixture `case` with its vocabulary and labels, plus `flags`,
/// into a temp folder named by `tag`.
fn import_text_model_with(case: &str, tag: &str, flags: &[&str]) -> PathBuf {
    let dir = fixtures().join(case);
    let out = std::env::temp_dir().join(format!("zoo-text-{case}{tag}-{}", std::process::id()));
    let (model, vocab, labels) = (
        dir.join("model.keras"),
        dir.join("vocab.txt"),
        dir.join("labels.txt"),
    );
    let mut args = vec![
        "import",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--tokenizer",
        vocab.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let (code, stdout, err) = zoo(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(stdout.trim(), out.to_str().unwrap());
    out
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `zoo run classify --json` on the fixture's texts, and Keras' scores.
fn classify_scores(out: &Path, case: &str) -> (Vec<serde_json::Value>, Vec<Vec<f32>>) {
    let dir = fixtures().join(case);
    let texts = dir.join("texts.txt");
    let (code, stdout, err) = zoo(&[
        "run",
        "classify",
        "--model",
        out.to_str().unwrap(),
        "--json",
        "--file",
        texts.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let expected = Tensor::read_npz(dir.join("expected.npz")).unwrap();
    (json_lines(&stdout), expected[0].1.to_vec2::<f32>().unwrap())
}

fn max_score_error(recs: &[serde_json::Value], want: &[Vec<f32>]) -> f64 {
    assert_eq!(recs.len(), want.len());
    recs.iter()
        .zip(want)
        .flat_map(|(r, w)| {
            r["scores"]
                .as_array()
                .unwrap()
                .iter()
                .zip(w)
                .map(|(a, b)| (a.as_f64().unwrap() - *b as f64).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0, f64::max)
}

#[test]
fn import_padding_pre_feeds_ids_the_way_pad_sequences_did() {
    // An unmasked, fixed-length model trained on pad_sequences' `pre` padding.
    let pre = import_text_model_with("text_prepad", "-pre", &["--padding", "pre"]);
    let (recs, want) = classify_scores(&pre, "text_prepad");
    assert!(
        max_score_error(&recs, &want) <= 1e-4,
        "{recs:?} vs {want:?}"
    );
    let cfg = std::fs::read_to_string(pre.join("config.json")).unwrap();
    assert!(cfg.contains("\"padding\": \"pre\""), "{cfg}");
    // Padded at the end instead, the same model reads something else.
    let post = import_text_model_with("text_prepad", "-post", &[]);
    let (recs, want) = classify_scores(&post, "text_prepad");
    assert!(
        max_score_error(&recs, &want) > 1e-3,
        "padding must matter here"
    );
    // --padding without a tokenizer says what is missing.
    let m = fixtures().join("text_prepad/model.keras");
    let (code, _, err) = zoo(&[
        "import",
        m.to_str().unwrap(),
        "--out",
        post.to_str().unwrap(),
        "--padding",
        "pre",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(one_error_line(&err).contains("--tokenizer"), "{err}");
    let _ = std::fs::remove_dir_all(pre);
    let _ = std::fs::remove_dir_all(post);
}

#[test]
fn run_classify_reads_raw_text_like_the_keras_model_reads_its_ids() {
    let out = import_text_model("text_classify");
    let (recs, want) = classify_scores(&out, "text_classify");
    assert!(
        max_score_error(&recs, &want) <= 1e-4,
        "{recs:?} vs {want:?}"
    );
    let labels = ["negative", "neutral", "positive"];
    for (r, w) in recs.iter().zip(&want) {
        let best = w
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(r["label"], labels[best]);
    }
    // "zebra quartet music": two of three words unknown.
    assert!(
        (recs[2]["oov"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-3,
        "{}",
        recs[2]
    );
    // Text output flags it instead of labelling it.
    let (_, text_out, _) = zoo(&[
        "run",
        "classify",
        "--model",
        out.to_str().unwrap(),
        "zebra quartet music",
    ]);
    assert!(text_out.starts_with("unknown\t"), "{text_out}");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn run_tag_labels_every_word_like_the_keras_model() {
    let out = import_text_model("text_tag");
    let dir = fixtures().join("text_tag");
    let texts: Vec<String> = std::fs::read_to_string(dir.join("texts.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut args = vec!["run", "tag", "--model", out.to_str().unwrap(), "--json"];
    args.extend(texts.iter().map(|s| s.as_str()));
    let (code, stdout, err) = zoo(&args);
    assert_eq!(code, 0, "{err}");
    let expected = Tensor::read_npz(dir.join("expected.npz")).unwrap();
    let want = expected[0].1.to_vec3::<f32>().unwrap();
    let labels = ["O", "B-X", "I-X", "B-Y"];
    let recs = json_lines(&stdout);
    assert_eq!(recs.len(), texts.len());
    for (r, w) in recs.iter().zip(&want) {
        let toks = r["tokens"].as_array().unwrap();
        assert!(!toks.is_empty());
        for (t, row) in toks.iter().zip(w) {
            let (best, score) = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap();
            assert_eq!(t["label"], labels[best], "{r}");
            assert!(
                (t["score"].as_f64().unwrap() - *score as f64).abs() <= 1e-4,
                "{r}"
            );
        }
    }
    // An empty line is an empty result; the lines around it still come out.
    let (code, stdout, _) = zoo(&[
        "run",
        "tag",
        "--model",
        out.to_str().unwrap(),
        "fine",
        "",
        "great",
    ]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("fine/") && lines[1].is_empty() && lines[2].starts_with("great/"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn run_classify_without_a_tokenizer_says_how_to_import_one() {
    let out = std::env::temp_dir().join(format!("zoo-notok-{}", std::process::id()));
    imported(&fixtures().join("text_classify"))
        .write(&out)
        .unwrap();
    let (code, _, err) = zoo(&["run", "classify", "--model", out.to_str().unwrap(), "hello"]);
    let _ = std::fs::remove_dir_all(&out);
    assert_ne!(code, 0);
    assert!(one_error_line(&err).contains("--tokenizer"), "{err}");
}

#[test]
fn inspect_on_an_imported_model_traces_the_state_its_head_reads() {
    let out = import_text_model("text_classify");
    let text = "The movie was GREAT!";
    let (code, stdout, err) = zoo(&[
        "inspect",
        out.to_str().unwrap(),
        text,
        "--json",
        "--top",
        "6",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["tokens"],
        serde_json::json!(["the", "movie", "was", "great"])
    );
    // The last step's h, through the Dense softmax head, is the model's answer.
    let units: Vec<usize> = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_u64().unwrap() as usize)
        .collect();
    let rows = v["values"]["hidden h"].as_array().unwrap();
    let last = rows.last().unwrap().as_array().unwrap();
    let mut h = [0f32; 6];
    for (k, &u) in units.iter().enumerate() {
        h[u] = last[k].as_f64().unwrap() as f32;
    }
    let w = zoo::candle::safetensors::load(out.join("model.safetensors"), &Device::Cpu).unwrap();
    let (kernel, bias) = w
        .iter()
        .find(|(n, t)| n.ends_with(".kernel") && t.dims() == [6, 3])
        .map(|(n, t)| {
            (
                t.to_vec2::<f32>().unwrap(),
                w[&n.replace(".kernel", ".bias")].to_vec1::<f32>().unwrap(),
            )
        })
        .unwrap();
    let logits: Vec<f32> = (0..3)
        .map(|j| bias[j] + (0..6).map(|i| h[i] * kernel[i][j]).sum::<f32>())
        .collect();
    let z: f32 = logits.iter().map(|l| l.exp()).sum();
    let p: Vec<f32> = logits.iter().map(|l| l.exp() / z).collect();
    let (_, cls, _) = zoo(&[
        "run",
        "classify",
        "--model",
        out.to_str().unwrap(),
        "--json",
        text,
    ]);
    let rec: serde_json::Value = serde_json::from_str(cls.trim()).unwrap();
    for (a, b) in p.iter().zip(rec["scores"].as_array().unwrap()) {
        assert!(
            (*a as f64 - b.as_f64().unwrap()).abs() < 1e-3,
            "{p:?} vs {rec}"
        );
    }
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn summary_reads_a_keras_file_directly_and_inspect_says_what_it_needs() {
    let m = fixtures().join("imdb_bilstm/model.keras");
    let (code, out, err) = zoo(&["summary", m.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // Keras' count_params() for this model, as the fixture script printed it.
    assert!(out.contains("Total params: 10,405\n"), "{out}");
    assert!(out.contains("bidirectional_1 (Bidirectional)"), "{out}");
    let (code, out, _) = zoo(&["summary", m.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json_lines(&out).len(), 4);
    let (code, _, err) = zoo(&["summary", "no/such/model.keras"]);
    assert_eq!(code, 2);
    assert!(one_error_line(&err).contains("no such file"), "{err}");
    let (code, _, err) = zoo(&["inspect", m.to_str().unwrap(), "a fine film"]);
    assert_eq!(code, 2);
    assert!(one_error_line(&err).contains("--tokenizer"), "{err}");
}

#[test]
fn an_input_shorter_than_a_kernel_is_an_error_not_a_panic() {
    // pooling: Conv1D(kernel 3, valid) on [batch, 20, 5]; the graph's
    // input is fixed at 20 steps, so build one that takes any length.
    let mut imp = imported(&fixtures().join("pooling"));
    imp.graph.inputs[0].shape[0] = None;
    let m = imp.build(&Device::Cpu).unwrap();
    for steps in [0usize, 1, 2] {
        let x = Tensor::zeros((1, steps, 5), DType::F32, &Device::Cpu).unwrap();
        let err = m
            .forward(vec![("input".into(), x)])
            .err()
            .unwrap_or_else(|| panic!("{steps} steps ran"));
        let msg = format!("{err:#}");
        assert!(msg.contains("(Conv1D)"), "{msg}");
        assert!(msg.contains("time steps"), "{msg}");
    }
    // Long enough for the convolution, too short for the pools after it.
    let x = Tensor::zeros((1, 4, 5), DType::F32, &Device::Cpu).unwrap();
    let msg = format!("{:#}", m.forward(vec![("input".into(), x)]).err().unwrap());
    assert!(msg.contains("fewer than the pool size"), "{msg}");
}

/// A PyTorch LSTM(4→8) (bidirectional or not) → Linear(8·dirs→3) imported
/// into a zoo folder: random weights, a hand-written graph.
fn streamer(bidirectional: bool, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("zoo-stream-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dirs = if bidirectional { 2 } else { 1 };
    let graph = serde_json::json!({
        "framework": "pytorch",
        "inputs": [{"name": "x", "shape": [null, 4]}],
        "layers": [
            {"name": "lstm", "class": "nn.LSTM", "inbound": ["x"],
             "config": {"input_size": 4, "hidden_size": 8, "batch_first": true, "bidirectional": bidirectional}},
            {"name": "head", "class": "nn.Linear", "inbound": ["lstm"],
             "config": {"in_features": 8 * dirs, "out_features": 3}}
        ],
        "outputs": ["head"]
    });
    std::fs::write(dir.join("graph.json"), graph.to_string()).unwrap();
    let r = |s: &[usize]| Tensor::randn(0f32, 0.5, s, &Device::Cpu).unwrap();
    let mut w = std::collections::HashMap::new();
    for d in if bidirectional {
        vec!["", "_reverse"]
    } else {
        vec![""]
    } {
        w.insert(format!("lstm.weight_ih_l0{d}"), r(&[32, 4]));
        w.insert(format!("lstm.weight_hh_l0{d}"), r(&[32, 8]));
        w.insert(format!("lstm.bias_ih_l0{d}"), r(&[32]));
        w.insert(format!("lstm.bias_hh_l0{d}"), r(&[32]));
    }
    w.insert("head.weight".into(), r(&[3, 8 * dirs]));
    w.insert("head.bias".into(), r(&[3]));
    zoo::candle::safetensors::save(&w, dir.join("model.safetensors")).unwrap();
    let out = dir.join("model");
    let (code, _, err) = zoo(&[
        "import",
        dir.join("model.safetensors").to_str().unwrap(),
        "--graph",
        dir.join("graph.json").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    out
}

fn zoo_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn zoo_stream_keeps_each_ids_state_and_matches_predict_on_the_whole_sequence() {
    let model = streamer(false, "uni");
    let m = model.to_str().unwrap();
    let x: Vec<Vec<f32>> = (0..6)
        .map(|t| (0..4).map(|f| ((t * 4 + f) as f32 * 0.37).sin()).collect())
        .collect();
    let input = model.with_file_name("whole.jsonl");
    std::fs::write(&input, format!("{}\n", serde_json::json!({ "x": x }))).unwrap();
    let (code, out, err) = zoo(&["predict", m, "--input", input.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let whole = json_lines(&out)[0]["output"].clone();

    // Two sequences interleaved; "a" in chunks of 2, one bare step, then 3.
    let lines = [
        serde_json::json!({"id": "a", "x": &x[0..2]}),
        serde_json::json!({"id": 7, "x": &x}),
        serde_json::json!({"id": "a", "x": &x[2]}),
        serde_json::json!({"id": "a", "x": &x[3..6], "end": true}),
        serde_json::json!({"id": "a", "x": &x[0..1]}),
    ];
    let stdin: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let (code, out, err) = zoo_stdin(&["stream", m], &stdin);
    assert_eq!(code, 0, "{err}");
    let recs = json_lines(&out);
    assert_eq!(recs.len(), 5, "{out}");
    let steps: Vec<u64> = recs.iter().map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(
        steps,
        [2, 6, 3, 6, 1],
        "`end` drops a's state: it starts again"
    );
    let a: Vec<serde_json::Value> = [0, 2, 3]
        .iter()
        .flat_map(|&i| recs[i]["y"].as_array().unwrap().clone())
        .collect();
    let close = |got: &[serde_json::Value], want: &serde_json::Value| {
        let want = want.as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            for (p, q) in g.as_array().unwrap().iter().zip(w.as_array().unwrap()) {
                let (p, q) = (p.as_f64().unwrap(), q.as_f64().unwrap());
                assert!((p - q).abs() <= 1e-6, "stream {p}, whole {q}");
            }
        }
    };
    close(&a, &whole);
    close(recs[1]["y"].as_array().unwrap(), &whole);
    close(
        recs[4]["y"].as_array().unwrap(),
        &serde_json::json!([whole[0]]),
    );

    // A bad line is an error record and exit 1; the others still answer.
    let (code, out, err) = zoo_stdin(
        &["stream", m],
        "{\"id\": 1, \"x\": [[1, 2]]}\nnot json\n{\"id\": 1, \"x\": [1, 2, 3, 4]}\n",
    );
    assert_eq!(code, 1, "{err}");
    let recs = json_lines(&out);
    assert!(
        recs[0]["error"].as_str().unwrap().contains("shape"),
        "{out}"
    );
    assert_eq!(recs[2]["step"], 1, "{out}");
    assert!(err.contains("line 2"), "{err}");

    // A bidirectional model cannot stream: one line naming the layer.
    let bi = streamer(true, "bi");
    let (code, _, err) = zoo_stdin(&["stream", bi.to_str().unwrap()], "");
    assert_eq!(code, 2, "{err}");
    assert!(
        one_error_line(&err).contains("layer `lstm` (nn.LSTM) is bidirectional"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(model.parent().unwrap());
    let _ = std::fs::remove_dir_all(bi.parent().unwrap());
}

#[test]
fn extra_tensors_in_an_input_file_are_named_in_a_warning_and_ignored() {
    // The inputs with the expected outputs saved next to them, as people do.
    let case = fixtures().join("conv_bn_gru");
    let input = Tensor::read_npz(case.join("input.npz"))
        .unwrap()
        .remove(0)
        .1;
    let expected = Tensor::read_npz(case.join("expected.npz"))
        .unwrap()
        .remove(0)
        .1;
    let both = std::env::temp_dir().join(format!("zoo-extra-{}.npz", std::process::id()));
    Tensor::write_npz(&[("input", &input), ("expected", &expected)], &both).unwrap();
    let model = case.join("model.keras");
    let (code, with_extra, err) = zoo(&[
        "predict",
        model.to_str().unwrap(),
        "--input",
        both.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.starts_with("warning: ")
            && err.contains("(expected)")
            && err.trim().lines().count() == 1,
        "{err}"
    );
    let (_, alone, _) = zoo(&[
        "predict",
        model.to_str().unwrap(),
        "--input",
        case.join("input.npz").to_str().unwrap(),
    ]);
    assert_eq!(with_extra, alone);
    let _ = std::fs::remove_file(both);
}
