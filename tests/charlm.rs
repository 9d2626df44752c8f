//! The character language model: PyTorch parity (logits, bits per
//! character, greedy text), generation that carries its state, and the
//! probe's two proofs: a unit set by hand to track quotes is found as that,
//! selective; a randomly initialised model shows no unit above chance.

use std::collections::HashMap;
use std::path::Path;

use zoo::candle::{DType, Device, Tensor};
use zoo::model::ModelDir;
use zoo::probe::{self, Verdict};
use zoo::tasks::charlm::{CharLm, Sampling};

mod common;
use common::{root, zoo};

fn shipped() -> CharLm {
    let dir = ModelDir::open(&root().join("models/char-lstm")).unwrap();
    CharLm::load(&dir, &Device::Cpu, DType::F32).unwrap()
}

fn fixture() -> serde_json::Value {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/charlm/char-lstm.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn char_lstm_matches_pytorch_logits_bits_and_greedy_text() {
    let model = shipped();
    let fx = fixture();
    for case in fx["cases"].as_array().unwrap() {
        let prompt = case["prompt"].as_str().unwrap();
        let ids = model.encode(prompt);
        let (h, _) = model.read(&[&ids], None).unwrap();
        let last = h
            .get(0)
            .unwrap()
            .get(ids.len() - 1)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let got = model
            .logits(&last)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let want: Vec<f32> = case["last_logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "{prompt:?}: logits differ by {worst}");
        let sampling = Sampling {
            temperature: 0.0,
            max_chars: case["greedy"].as_str().unwrap().chars().count(),
            ..Sampling::default()
        };
        let text = model.generate(prompt, &sampling, |_| Ok(())).unwrap();
        assert_eq!(text, case["greedy"].as_str().unwrap(), "{prompt:?}");
    }
    let passage = fx["passage"].as_str().unwrap();
    let bpc = model.bits_per_char(passage, 1, 64, |_| {}).unwrap();
    let want = fx["passage_bpc"].as_f64().unwrap();
    assert!((bpc - want).abs() < 1e-4, "bpc {bpc} vs PyTorch {want}");
}

#[test]
fn generation_streams_characters_and_a_seed_repeats_the_text() {
    let model = shipped();
    let s = Sampling {
        temperature: 0.8,
        top_k: 20,
        max_chars: 80,
        seed: 42,
    };
    let mut streamed = String::new();
    let a = model
        .generate("\"Well,\" said", &s, |c| {
            streamed.push(c);
            Ok(())
        })
        .unwrap();
    assert_eq!(a.chars().count(), 80);
    assert_eq!(streamed, a, "each character is handed on as it is sampled");
    let b = model.generate("\"Well,\" said", &s, |_| Ok(())).unwrap();
    assert_eq!(a, b, "the same seed gives the same text");
    let c = model
        .generate(
            "\"Well,\" said",
            &Sampling {
                seed: 7,
                ..s.clone()
            },
            |_| Ok(()),
        )
        .unwrap();
    assert_ne!(a, c, "another seed, another text");
}

#[test]
fn zoo_run_generate_writes_on_from_the_prompt() {
    let generate = || {
        zoo(
            &[
                "run",
                "generate",
                "It was",
                "--seed",
                "3",
                "--max-chars",
                "50",
            ],
            b"",
        )
    };
    let o = generate();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(out.starts_with("It was"), "{out}");
    assert_eq!(
        out.trim_end_matches('\n').chars().count(),
        "It was".len() + 50,
        "{out:?}"
    );
    let again = generate();
    assert_eq!(again.stdout, o.stdout);
    let o = zoo(&["run", "generate", "x", "--temperature", "-1"], b"");
    assert_eq!(o.status.code(), Some(2));
}

/// A one-layer LSTM model folder over a tiny alphabet, weights in
/// PyTorch's names (all zero until `setup` fills them).
fn tiny_model(
    dir: &Path,
    alphabet: &[char],
    emb: usize,
    units: usize,
    setup: impl FnOnce(&mut HashMap<String, (Vec<f32>, Vec<usize>)>),
) {
    let v = alphabet.len() + 1;
    let mut t: HashMap<String, (Vec<f32>, Vec<usize>)> = HashMap::new();
    t.insert(
        "embedding.weight".into(),
        (vec![0.0; v * emb], vec![v, emb]),
    );
    t.insert(
        "rnn.weight_ih_l0".into(),
        (vec![0.0; 4 * units * emb], vec![4 * units, emb]),
    );
    t.insert(
        "rnn.weight_hh_l0".into(),
        (vec![0.0; 4 * units * units], vec![4 * units, units]),
    );
    t.insert(
        "rnn.bias_ih_l0".into(),
        (vec![0.0; 4 * units], vec![4 * units]),
    );
    t.insert(
        "rnn.bias_hh_l0".into(),
        (vec![0.0; 4 * units], vec![4 * units]),
    );
    t.insert("head.weight".into(), (vec![0.0; v * units], vec![v, units]));
    t.insert("head.bias".into(), (vec![0.0; v], vec![v]));
    setup(&mut t);
    std::fs::create_dir_all(dir).unwrap();
    let tensors: HashMap<String, Tensor> = t
        .into_iter()
        .map(|(k, (data, shape))| (k, Tensor::from_vec(data, shape, &Device::Cpu).unwrap()))
        .collect();
    zoo::candle::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    let mut vocab = vec!["[UNK]".to_string()];
    vocab.extend(alphabet.iter().map(|c| c.to_string()));
    std::fs::write(
        dir.join("vocab.json"),
        serde_json::to_string(&vocab).unwrap(),
    )
    .unwrap();
    let config = serde_json::json!({
        "zoo_format": 1, "task": "generate", "name": "tiny", "vocab_size": v,
        "embedding_dim": emb, "units": units, "num_layers": 1
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

/// Text with dialogue in quotes at irregular places, from a fixed seed.
fn corpus(chars: usize) -> String {
    let words = [
        "the", "said", "she", "and", "(then", "it)", "was", "not", "quite", "so", "Emma", "home.",
        "\"yes,", "no\"", "well", "a", "day", "time.", "\"oh", "dear!\"",
    ];
    let mut state = 12345u64;
    let mut out = String::new();
    while out.len() < chars {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.push_str(words[(state >> 33) as usize % words.len()]);
        out.push(if (state >> 20).is_multiple_of(9) {
            '\n'
        } else {
            ' '
        });
    }
    out
}

fn probe_dir(dir: &Path, text: &str) -> probe::Report {
    let m = CharLm::load(&ModelDir::open(dir).unwrap(), &Device::Cpu, DType::F32).unwrap();
    let st = m.states(text, 4, |_| {}).unwrap();
    let feats = probe::char_features_of(st.slices.iter().map(String::as_str));
    let types = probe::char_pair_types(&m.encode(&st.slices.concat()), m.vocab_size());
    let q = |name: &str, values: Vec<f32>| probe::Quantity {
        name: name.into(),
        units: st.units,
        values,
    };
    probe::probe(vec![q("c", st.c), q("h", st.h)], &types, &feats, 1).unwrap()
}

#[test]
fn a_cell_set_by_hand_to_flip_inside_quotes_is_found_as_that_alone() {
    // Unit 0 flips at every '"': forget gate shut and input gate open on a
    // quote, the candidate = -sign of the unit's h (start: +), so c goes
    // +1 inside quotes and -1 outside; elsewhere it keeps c (f = 1, i = 0).
    let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyzE\"(). !,\n".chars().collect();
    let quote = 1 + alphabet.iter().position(|&c| c == '"').unwrap();
    let (emb, units) = (2, 4);
    let dir = std::env::temp_dir().join(format!("zoo-probe-quote-{}", std::process::id()));
    tiny_model(&dir, &alphabet, emb, units, |t| {
        // Gate rows, PyTorch order i, f, g, o; unit 0 of each.
        let (i, f, g, o) = (0, units, 2 * units, 3 * units);
        let mut set = |name: &str, at: usize, v: f32| t.get_mut(name).unwrap().0[at] = v;
        set("embedding.weight", quote * emb, 1.0); // dim 0: "this is a quote"
        set("rnn.weight_ih_l0", i * emb, 40.0);
        set("rnn.bias_ih_l0", i, -20.0);
        set("rnn.weight_ih_l0", f * emb, -40.0);
        set("rnn.bias_ih_l0", f, 20.0);
        set("rnn.weight_hh_l0", g * units, -20.0); // candidate from -h (unit 0)
        set("rnn.bias_ih_l0", g, 3.0); // from zero: inside
        set("rnn.bias_ih_l0", o, 20.0);
    });
    let text = corpus(20_000);
    let rep = probe_dir(&dir, &text);
    let c0 = rep
        .units
        .iter()
        .find(|u| u.quantity == "c" && u.unit == 0)
        .unwrap();
    assert_eq!(rep.features[c0.best].0, "in quotes", "{c0:?}");
    assert!(c0.r[c0.best] > 0.9, "{c0:?}");
    assert_eq!(c0.verdict, Verdict::OneThing, "{c0:?}");
    assert_eq!(c0.tracks.len(), 1, "{c0:?}");
    // The other units hold nothing (all their weights are zero).
    for u in rep.units.iter().filter(|u| u.unit != 0) {
        assert_eq!(u.verdict, Verdict::Nothing, "{u:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_randomly_initialised_model_shows_no_unit_above_chance() {
    // PyTorch's initialisation: LSTM weights U(-1/√units, 1/√units),
    // embeddings N(0, 1) (here uniform with the same variance).
    let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyzE\"(). !,\n".chars().collect();
    let (emb, units) = (16, 64);
    let dir = std::env::temp_dir().join(format!("zoo-probe-random-{}", std::process::id()));
    let mut state = 99u64;
    let mut uniform = move |a: f32| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
    };
    tiny_model(&dir, &alphabet, emb, units, |t| {
        let k = 1.0 / (units as f32).sqrt();
        for (name, (data, _)) in t.iter_mut() {
            let a = if name.starts_with("embedding") {
                3f32.sqrt()
            } else {
                k
            };
            data.iter_mut().for_each(|x| *x = uniform(a));
        }
    });
    let rep = probe_dir(&dir, &corpus(20_000));
    // A random LSTM's cell can integrate a little of the position by
    // itself (one unit sits at |r| = 0.30 on AVX-512, just under on AVX2):
    // nothing may come clearly above the probe's 0.3 line.
    let tracked: Vec<_> = rep
        .units
        .iter()
        .filter(|u| u.verdict != Verdict::Nothing && u.r[u.best].abs() >= 0.35)
        .collect();
    assert!(
        tracked.is_empty(),
        "units above chance in a random model: {tracked:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn zoo_probe_reports_every_unit_and_the_papers_cells() {
    let file = std::env::temp_dir().join(format!("zoo-probe-cli-{}.txt", std::process::id()));
    std::fs::write(&file, corpus(30_000)).unwrap();
    let f = file.to_str().unwrap();
    let o = zoo(&["probe", "char-lstm", "--file", f, "--json"], b"");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let recs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let units = recs[0]["units"].as_u64().unwrap() as usize;
    assert_eq!(
        recs.len(),
        1 + 2 * units,
        "a summary, then every unit as c and h"
    );
    assert_eq!(recs[0]["paper_cells"].as_array().unwrap().len(), 3);
    let o = zoo(&["probe", "char-lstm", "--file", f, "--top", "5"], b"");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains("hold one thing") && out.contains("a quote cell"),
        "{out}"
    );
    let o = zoo(&["probe", "char-lstm", "--file", "/no/such/file.txt"], b"");
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_file(&file).unwrap();
}
