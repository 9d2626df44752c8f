//! The command line as people use it: pipes, stdin, one input convention
//! for every task, quiet closed pipes, models found without the build tree.
//! Each test pins a reported failure.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod common;
use common::{root, zoo, zoo_in, ZOO};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zoo-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A model folder with its weights copied (not linked), as a user has it.
fn copy_model(name: &str, to: &Path) {
    let from = root().join("models").join(name);
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn a_closed_stdout_ends_every_command_quietly_with_status_0() {
    let big = temp("pipe").join("big.txt");
    std::fs::write(&big, "a good film\n".repeat(50_000)).unwrap();
    let big = big.to_str().unwrap();
    let commands: [&[&str]; 7] = [
        &["list"],
        &["devices"],
        &["summary", "sentiment-lstm"],
        &["info", "translate-en-de"],
        &[
            "inspect",
            "sentiment-lstm",
            "not a bad film at all",
            "--json",
        ],
        &["run", "sentiment", "--file", big],
        &["run", "ner", "--file", big, "--json"],
    ];
    for args in commands {
        let mut child = Command::new(ZOO)
            .args(args)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Like `| head -1`: read a line, then close the pipe.
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).is_empty(), "{args:?} wrote: {}", stderr(&o));
        assert!(!first.is_empty(), "{args:?} printed nothing");
    }
}

#[test]
fn every_task_reads_stdin_when_given_no_text() {
    let o = zoo(&["run", "sentiment"], b"a wonderful film\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("positive\t"), "{}", stdout(&o));
    let o = zoo(&["run", "ner"], b"Angela Merkel visited Paris.\n");
    assert_eq!(stdout(&o), "[Angela Merkel](PER) visited [Paris](LOC).\n");
    let o = zoo(&["run", "translate", "--beam", "1"], b"A dog runs.\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 1);
}

#[test]
fn every_task_takes_texts_as_arguments() {
    let o = zoo(
        &[
            "run",
            "ner",
            "Angela Merkel visited Paris.",
            "Berlin is big.",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "[Angela Merkel](PER) visited [Paris](LOC).\n[Berlin](LOC) is big.\n"
    );
    let o = zoo(
        &[
            "run",
            "translate",
            "--beam",
            "1",
            "A dog runs.",
            "A cat sleeps.",
        ],
        b"",
    );
    assert_eq!(stdout(&o).lines().count(), 2, "{}", stderr(&o));
    let o = zoo(&["run", "sentiment", "--text", "-- great, really"], b"");
    assert!(stdout(&o).starts_with("positive\t"), "{}", stderr(&o));
}

#[test]
fn results_stream_line_by_line_before_the_input_ends() {
    let cases: [(&[&str], &str); 3] = [
        (&["run", "sentiment"], "a wonderful film"),
        (&["run", "ner"], "Angela Merkel visited Paris."),
        (&["run", "translate", "--beam", "1"], "A dog runs."),
    ];
    for (args, line) in cases {
        let mut child = Command::new(ZOO)
            .args(args)
            .current_dir(root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        // The pipe stays open: the result must come anyway.
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            BufReader::new(out).read_line(&mut first).unwrap();
            tx.send(first).ok();
        });
        let got = rx.recv_timeout(Duration::from_secs(120));
        drop(stdin);
        child.wait().unwrap();
        let got = got.unwrap_or_else(|_| panic!("{args:?}: no result before end of input"));
        assert!(!got.trim().is_empty(), "{args:?}");
    }
}

#[test]
fn a_byte_order_mark_is_not_read_as_text() {
    let plain = zoo(&["run", "translate", "--beam", "1"], b"A dog runs.\n");
    let bom = zoo(
        &["run", "translate", "--beam", "1"],
        b"\xef\xbb\xbfA dog runs.\n",
    );
    assert_eq!(stdout(&bom), stdout(&plain));
    let plain = zoo(&["run", "ner", "--json"], b"Angela Merkel visited Paris.\n");
    let bom = zoo(
        &["run", "ner", "--json"],
        b"\xef\xbb\xbfAngela Merkel visited Paris.\n",
    );
    assert_eq!(
        json_lines(&bom)[0]["entities"],
        json_lines(&plain)[0]["entities"],
        "offsets do not shift"
    );
}

#[test]
fn an_empty_line_is_an_empty_result_in_every_task() {
    for task in ["sentiment", "ner", "translate"] {
        let o = zoo(&["run", task, "--json"], b"\n   \n");
        assert_eq!(o.status.code(), Some(0), "{task}: {}", stderr(&o));
        let rows = json_lines(&o);
        assert_eq!(rows.len(), 2, "{task}");
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r["line"], i + 1, "{task}");
            assert!(r.get("error").is_none(), "{task}: {r}");
        }
        let o = zoo(&["run", task], b"\n");
        assert_eq!(stdout(&o), "\n", "{task}: an empty line for an empty line");
    }
}

#[test]
fn json_records_share_line_text_and_error_across_tasks() {
    for task in ["sentiment", "ner", "translate"] {
        let mut args = vec!["run", task, "--json"];
        if task == "translate" {
            args.extend(["--beam", "1"]);
        }
        let o = zoo(&args, b"Paris.\n\xff\n");
        let rows = json_lines(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{task}: a failed line fails the run"
        );
        let keys: Vec<&String> = rows[0].as_object().unwrap().keys().take(2).collect();
        assert_eq!(keys, ["line", "text"], "{task}");
        assert_eq!(rows[1]["line"], 2);
        assert!(rows[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("not valid UTF-8"));
    }
}

#[test]
fn error_rows_keep_their_columns_and_say_the_line_once() {
    let o = zoo(&["run", "sentiment"], b"good\n\xff\xfe\n");
    assert_eq!(o.status.code(), Some(1));
    let lines: Vec<&str> = std::str::from_utf8(&o.stdout).unwrap().lines().collect();
    assert_eq!(
        lines[1], "error\t\t",
        "label, empty score, the (unreadable) text"
    );
    let err = stderr(&o);
    assert_eq!(err.matches("line 2").count(), 1, "{err}");
}

#[test]
fn an_argument_with_a_line_break_is_one_result() {
    let o = zoo(&["run", "sentiment", "a good\nfilm"], b"");
    assert_eq!(stdout(&o).lines().count(), 1, "{}", stdout(&o));
}

#[test]
fn ner_runs_in_f16() {
    let o = zoo(
        &[
            "run",
            "ner",
            "--dtype",
            "f16",
            "Angela Merkel visited Paris.",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("[Paris](LOC)"), "{}", stdout(&o));
}

#[test]
fn reduced_precision_weights_give_the_f32_labels_with_nearby_scores() {
    let texts = "A wonderful, moving film.\nDull and far too long.\nIt is not bad at all.\n";
    // ZOO_INT8=always: int8 weights even where int8 is not the fast path.
    let run = |dtype: &str| {
        let o = zoo_in(
            root(),
            &[("ZOO_INT8", "always")],
            &[
                "run",
                "sentiment",
                "--json",
                "--device",
                "cpu",
                "--dtype",
                dtype,
            ],
            texts.as_bytes(),
        );
        assert!(o.status.success(), "{dtype}: {}", stderr(&o));
        json_lines(&o)
    };
    let f32s = run("f32");
    assert_eq!(f32s.len(), 3);
    for dtype in ["int8", "bf16", "f16"] {
        let mut moved = 0f64;
        for (a, b) in f32s.iter().zip(&run(dtype)) {
            assert_eq!(a["label"], b["label"], "{dtype}: {a} vs {b}");
            let d = (a["score"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs();
            assert!(d < 0.02, "{dtype}: {a} vs {b}");
            moved += d;
        }
        // The reduced weights are in use: the scores move, a little (f16
        // keeps 11 bits, too many to move a 3-digit score reliably).
        if dtype != "f16" {
            assert!(moved > 0.0, "{dtype} scores equal f32 to the last digit");
        }
    }
    let o = zoo(
        &[
            "run",
            "ner",
            "--dtype",
            "int8",
            "Angela Merkel visited Paris.",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("[Paris](LOC)"), "{}", stdout(&o));
}

#[test]
fn bad_values_are_one_line_usage_errors() {
    let cases: [&[&str]; 5] = [
        &["run", "translate", "--beam", "10000000000", "hi"],
        &["run", "sentiment", "--dtype", "int4", "good"],
        &["run", "ner", "--file", "."],
        &["inspect", "sentiment-lstm", "good", "--part", "decoder"],
        &["run", "sentiment", "--file", "/no/such/file.txt"],
    ];
    for args in cases {
        let o = zoo(args, b"");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{args:?}: {err}"
        );
    }
}

#[test]
fn inspect_works_on_a_model_with_one_label() {
    use zoo::candle::{Device, Tensor};
    let dir = temp("onelabel");
    copy_model("sentiment-lstm", &dir);
    let mut tensors = zoo::candle::safetensors::load(
        root().join("models/sentiment-lstm/model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let w = tensors["classifier.weight"].narrow(0, 0, 1).unwrap();
    let b: Tensor = tensors["classifier.bias"].narrow(0, 0, 1).unwrap();
    tensors.insert("classifier.weight".into(), w);
    tensors.insert("classifier.bias".into(), b);
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    zoo::candle::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    cfg["labels"] = serde_json::json!(["positive"]);
    // The head is data: its classifier now has one output.
    cfg["head"]["layers"][0]["config"]["out_features"] = serde_json::json!(1);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    let d = dir.to_str().unwrap();
    for args in [
        vec!["inspect", d, "not a bad film", "--json"],
        vec!["inspect", d, "not a bad film"],
    ] {
        let o = zoo(&args, b"");
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    let o = zoo(&["run", "sentiment", "--model", d, "fine"], b"");
    assert!(
        stdout(&o).starts_with("positive\t1.000\t"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn models_are_found_without_the_build_tree() {
    // A release layout: bin/zoo and share/zoo/models, outside any checkout.
    let prefix = temp("install");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    let bin = prefix.join("bin/zoo");
    std::fs::copy(ZOO, &bin).unwrap();
    for m in ["sentiment-lstm", "ner-bilstm-crf", "translate-en-de"] {
        copy_model(m, &prefix.join("share/zoo/models").join(m));
    }
    let home = prefix.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let task = |args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .current_dir(&home)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("HF_HUB_OFFLINE", "1")
            .env_remove("ZOO_MODELS")
            .output()
            .unwrap()
    };
    // Every task runs from the installed layout.
    let o = task(&["run", "ner", "Angela Merkel visited Paris."]);
    assert_eq!(
        stdout(&o),
        "[Angela Merkel](PER) visited [Paris](LOC).\n",
        "{}",
        stderr(&o)
    );
    let o = task(&["run", "translate", "--beam", "1", "A dog runs."]);
    assert!(
        o.status.success() && !stdout(&o).trim().is_empty(),
        "{}",
        stderr(&o)
    );
    let run = |env: &[(&str, &str)]| {
        Command::new(&bin)
            .args(["run", "sentiment", "a wonderful film"])
            .current_dir(&home)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HOME", home.join("hf"))
            .env_remove("ZOO_MODELS")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let o = run(&[]);
    assert!(
        o.status.success(),
        "share/zoo/models beside the binary: {}",
        stderr(&o)
    );
    assert!(stdout(&o).starts_with("positive\t"));
    // Moved elsewhere, named by ZOO_MODELS.
    let elsewhere = prefix.join("elsewhere");
    std::fs::rename(prefix.join("share/zoo/models"), &elsewhere).unwrap();
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(1), "found nowhere: {}", stdout(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let o = run(&[("ZOO_MODELS", elsewhere.to_str().unwrap())]);
    assert!(o.status.success(), "ZOO_MODELS: {}", stderr(&o));
    // In the user data folder.
    std::fs::create_dir_all(home.join("data/zoo")).unwrap();
    std::fs::rename(&elsewhere, home.join("data/zoo/models")).unwrap();
    let o = run(&[]);
    assert!(
        o.status.success(),
        "XDG_DATA_HOME/zoo/models: {}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&prefix).ok();
}

#[test]
fn eval_finds_its_data_from_any_folder() {
    let data = root().join("../shared/data/sst2/dev.tsv");
    if !data.exists() {
        eprintln!("skipped: {} is absent", data.display());
        return;
    }
    let o = zoo_in(&std::env::temp_dir(), &[], &["eval", "sentiment"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"accuracy\""));
}

#[test]
fn the_cards_int8_accuracy_is_what_zoo_eval_measures() {
    let data = root().join("../shared/data/sst2/dev.tsv");
    if !data.exists() {
        eprintln!("skipped: {} is absent", data.display());
        return;
    }
    let card = std::fs::read_to_string(root().join("models/sentiment-lstm/README.md")).unwrap();
    let row = card
        .lines()
        .find(|l| l.starts_with("| int8 | "))
        .expect("the card has a Precision table with an int8 row");
    let on_card: f64 = row
        .split(['|', ' '])
        .filter(|c| !c.is_empty())
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let o = Command::new(ZOO)
        .args([
            "eval",
            "sentiment",
            "--device",
            "cpu",
            "--dtype",
            "int8",
            "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    let measured = 100.0 * r["accuracy"].as_f64().unwrap();
    assert!(
        (measured - on_card).abs() < 0.006,
        "card {on_card}, measured {measured}"
    );
}

#[test]
fn summary_fits_120_columns_with_thousands_separators() {
    for m in ["sentiment-lstm", "ner-bilstm-crf", "translate-en-de"] {
        let o = zoo(&["summary", m], b"");
        let out = stdout(&o);
        let widest = out.lines().map(|l| l.chars().count()).max().unwrap();
        assert!(widest <= 120, "{m}: {widest} columns");
        assert!(out.contains("Total params: ") && out.contains(','), "{out}");
    }
}

#[test]
fn info_states_what_a_model_is_for_and_its_limits() {
    for m in [
        "sentiment-lstm",
        "ner-bilstm-crf",
        "translate-en-de",
        "translate-en-fr",
    ] {
        let o = zoo(&["info", m], b"");
        let out = stdout(&o);
        assert!(out.contains("Intended use:"), "{m}: {out}");
        assert!(out.to_lowercase().contains("limitations"), "{m}: {out}");
    }
}

#[test]
fn the_library_builds_without_the_cli_hub_and_plot_stacks() {
    let o = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--no-default-features",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let tree = stdout(&o);
    for heavy in ["clap ", "indicatif ", "plotters ", "hf-hub ", "ureq "] {
        assert!(
            !tree.contains(heavy),
            "{heavy}is in the lean library's tree"
        );
    }
    assert!(tree.contains("candle-core "));
}

#[test]
fn text_in_another_language_is_flagged_not_labelled() {
    let o = zoo(
        &[
            "run",
            "sentiment",
            "Das ist ein wirklich schlechter Film",
            "a great film",
        ],
        b"",
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("unknown\t"), "{out}");
    assert!(lines[1].starts_with("positive\t"), "{out}");
    let o = zoo(
        &[
            "run",
            "sentiment",
            "--json",
            "Das ist ein wirklich schlechter Film",
        ],
        b"",
    );
    assert!(json_lines(&o)[0]["oov"].as_f64().unwrap() > 0.5);
}

#[test]
fn german_text_is_left_untagged_and_untranslated_with_a_note() {
    // GloVe and the joint BPE know these words (oov 0), but the English
    // training text never held most of them.
    let german = "Das ist ein Haus und ich bin hier.";
    let english = "The man is here and the house is blue.";
    for task in ["ner", "translate"] {
        let o = zoo(&["run", task, german, english], b"");
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let flagged = if task == "ner" { german } else { "" };
        assert_eq!(lines[0], flagged, "{task}: {out}");
        assert!(
            !lines[1].is_empty() && lines[1] != english || task == "ner",
            "{out}"
        );
        let err = stderr(&o);
        assert!(
            err.contains("line 1 reads as de rather than English") && !err.contains("line 2"),
            "{task}: {err}"
        );
        let o = zoo(&["run", task, "--json", german, english], b"");
        let recs = json_lines(&o);
        assert_eq!(recs[0]["language"], "de", "{task}");
        assert_eq!(recs[1]["language"], "en", "{task}");
        // `unseen` stays informative: the English line is mostly seen words.
        assert!(recs[1]["unseen"].as_f64().unwrap() < 0.2, "{task}");
    }
}

#[test]
fn english_headlines_and_tweets_full_of_names_are_tagged_without_a_note() {
    // Mostly words the training text never held, but English: names,
    // handles and hashtags say nothing about the language.
    for line in [
        "ELON MUSK BUYS TWITTER",
        "RT @nytimes: Zelenskyy meets Scholz in Kyiv #Ukraine",
    ] {
        let o = zoo(&["run", "ner", line], b"");
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(!stderr(&o).contains("note:"), "{line}: {}", stderr(&o));
        assert!(stdout(&o).contains("]("), "{line}: {}", stdout(&o));
    }
}

#[test]
fn int8_is_never_the_slow_path_of_zoo_run() {
    let text = "a gripping, beautiful film";
    let f32_run = zoo(&["run", "sentiment", text], b"");
    let int8_run = zoo(&["run", "sentiment", "--dtype", "int8", text], b"");
    assert!(int8_run.status.success(), "{}", stderr(&int8_run));
    let noted = stderr(&int8_run).contains("--dtype int8 runs f32 on this CPU");
    // Where int8 has no fast kernel the run stays f32 and says so, once.
    assert_eq!(noted, !zoo::nn::fast_int8(), "{}", stderr(&int8_run));
    if noted {
        assert_eq!(stdout(&int8_run), stdout(&f32_run));
        assert_eq!(stderr(&int8_run).lines().count(), 1);
    }
}
