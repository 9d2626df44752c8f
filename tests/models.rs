//! Checks every model folder in models/: its summary adds up to the values
//! stored in its weights file, and `zoo inspect` records what it should.

use std::path::{Path, PathBuf};
use std::process::Command;

use zoo::candle::{DType, Device};
use zoo::model::ModelDir;

fn model_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.json").exists())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no models in {}", root.display());
    v
}

#[test]
fn summary_totals_equal_the_values_in_each_weights_file() {
    for p in model_dirs() {
        let d = ModelDir::open(&p).unwrap();
        let rows = zoo::summary::rows(&d, 4, 9).unwrap();
        // An ensemble stores one network per weights file.
        let networks = d.header.weights_files().len();
        let total: usize = rows.iter().map(|r| r.params).sum::<usize>() * networks;
        assert_eq!(
            total,
            zoo::summary::stored_values(&d).unwrap(),
            "{}",
            d.header.name
        );
        let loaded = match d.header.task.as_str() {
            "sentiment" => {
                zoo::tasks::sentiment::SentimentModel::load(&d, &Device::Cpu, DType::F32)
                    .unwrap()
                    .param_count()
            }
            "ner" => zoo::tasks::ner::NerModel::load(&d, &Device::Cpu, DType::F32)
                .unwrap()
                .param_count(),
            "generate" => zoo::tasks::charlm::CharLm::load(&d, &Device::Cpu, DType::F32)
                .unwrap()
                .param_count(),
            _ => zoo::tasks::translate::Translator::load(&d, &Device::Cpu, DType::F32)
                .unwrap()
                .param_count(),
        };
        assert_eq!(
            total, loaded,
            "{}: the loaded model holds every stored value",
            d.header.name
        );
    }
}

#[test]
fn a_single_network_task_refuses_a_list_of_weights_files_with_one_line() {
    let src = ModelDir::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sentiment-rnn"))
        .unwrap();
    let dir = std::env::temp_dir().join(format!("zoo-two-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["tokenizer.json", "model.safetensors"] {
        std::fs::copy(src.path.join(f), dir.join(f)).unwrap();
    }
    let mut cfg = src.raw_config().clone();
    cfg["weights"] = serde_json::json!(["model.safetensors", "model.safetensors"]);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let o = zoo(&[
        "run",
        "sentiment",
        "--model",
        dir.to_str().unwrap(),
        "a fine film",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error:")
            && err.contains("lists 2 weights files, a sentiment model reads one"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn zoo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn inspect_records_every_token_and_unit_of_every_model() {
    for p in model_dirs() {
        let d = ModelDir::open(&p).unwrap();
        let dir = p.to_str().unwrap();
        let text = "A man in Paris said the film wasn't good.";
        let o = zoo(&["inspect", dir, text, "--json", "--units", "0..3"]);
        assert!(
            o.status.success(),
            "{}: {}",
            d.header.name,
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let tokens = v["tokens"].as_array().unwrap().len();
        assert!(tokens > 3);
        for (name, rows) in v["values"].as_object().unwrap() {
            let rows = rows.as_array().unwrap();
            assert_eq!(
                rows.len(),
                tokens,
                "{}: {name} has one row per token",
                d.header.name
            );
            assert!(rows.iter().all(|r| r.as_array().unwrap().len() == 3));
            if name.contains("gate") {
                assert!(rows
                    .iter()
                    .flat_map(|r| r.as_array().unwrap())
                    .all(|x| (0.0..=1.0).contains(&x.as_f64().unwrap())));
            }
        }
        if d.header.task == "translate" {
            let att = &v["attention"]["weights"];
            for row in att.as_array().unwrap() {
                let s: f64 = row
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .sum();
                assert!((s - 1.0).abs() < 1e-4, "attention rows sum to 1");
            }
        }
    }
}

#[test]
fn inspect_draws_an_svg_heatmap() {
    let p = &model_dirs()[0];
    let out = std::env::temp_dir().join(format!("zoo-inspect-{}.svg", std::process::id()));
    let o = zoo(&[
        "inspect",
        p.to_str().unwrap(),
        "A man is riding a bicycle.",
        "--top",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    if err.contains("no TrueType font found") {
        // A machine without any font: the message says what to do.
        assert!(err.contains("ZOO_FONT"));
        return;
    }
    assert!(o.status.success(), "{err}");
    let svg = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).ok();
    assert!(svg.starts_with("<svg") && svg.contains("<rect"));
    // A compact summary: one quantity (an LSTM's cell, else h), not every panel.
    assert!(svg.contains("cell c") || svg.contains("hidden h"), "{svg}");
    assert!(!svg.contains("forget gate") && !svg.contains("update gate"));
}

#[test]
fn inspect_rejects_bad_units_and_layers_with_one_line() {
    let p = model_dirs()[0].to_str().unwrap().to_string();
    for args in [
        vec!["--units", "100000"],
        vec!["--layer", "7"],
        vec!["--direction", "sideways"],
    ] {
        let mut a = vec!["inspect", &p, "some text"];
        a.extend(args.iter().copied());
        let o = zoo(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.starts_with("error: ") && err.lines().count() == 1,
            "{a:?}: {err}"
        );
    }
}
