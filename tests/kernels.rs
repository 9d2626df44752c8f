//! Every CPU kernel path this machine can run, forced with `ZOO_KERNEL`:
//! the parity fixtures pass and the shipped models answer as on the best
//! path, so a path nobody's machine picks by default cannot rot.

use std::process::Output;

mod common;
use common::{root, zoo_in};

use zoo::nn::cpu::{self, Level};

fn run(level: Level, args: &[&str], stdin: &[u8]) -> Output {
    zoo_in(root(), &[("ZOO_KERNEL", level.name())], args, stdin)
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn every_runnable_kernel_path_passes_the_layer_fixtures() {
    for level in cpu::runnable() {
        let o = run(level, &["parity", "tests/fixtures/rnn"], b"");
        assert!(
            o.status.success(),
            "{}: {}{}",
            level.name(),
            text(&o),
            String::from_utf8_lossy(&o.stderr)
        );
        let o = run(level, &["devices"], b"");
        assert!(
            text(&o).contains(&format!("CPU kernels: {}", level.name())),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn every_runnable_kernel_path_gives_the_models_answers() {
    let texts = b"A wonderful, moving film.\nDull and far too long.\n";
    let scores = |o: &Output| -> Vec<(String, f64)> {
        text(o)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["label"].as_str().unwrap().to_string(),
                    v["score"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let best = cpu::detected();
    let want = scores(&run(best, &["run", "sentiment", "--json"], texts));
    let want_ner = text(&run(
        best,
        &["run", "ner", "Angela Merkel visited Paris."],
        b"",
    ));
    let want_gen = text(&run(
        best,
        &["run", "generate", "The", "--seed", "1", "--max-chars", "40"],
        b"",
    ));
    for level in cpu::runnable() {
        let got = scores(&run(level, &["run", "sentiment", "--json"], texts));
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0, "{}", level.name());
            assert!((g.1 - w.1).abs() < 1e-3, "{}: {g:?} vs {w:?}", level.name());
        }
        let ner = text(&run(
            level,
            &["run", "ner", "Angela Merkel visited Paris."],
            b"",
        ));
        assert_eq!(ner, want_ner, "{}", level.name());
        let gen = text(&run(
            level,
            &["run", "generate", "The", "--seed", "1", "--max-chars", "40"],
            b"",
        ));
        assert_eq!(gen, want_gen, "{}", level.name());
    }
}
