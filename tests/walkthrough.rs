//! The README's "bring your own model" walkthrough on the files it ships
//! (docs/walkthrough, made by scripts/walkthrough.py): `zoo predict` gives
//! what Keras' `model.predict` and the PyTorch module gave, to 1e-5.

use std::path::{Path, PathBuf};
use std::process::Command;

use zoo::candle::Tensor;

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/walkthrough")
}

fn zoo_ok(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn assert_close(got: &Path, want: &Path) {
    let got = Tensor::read_npy(got).unwrap().to_vec2::<f32>().unwrap();
    let want = Tensor::read_npy(want).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
        assert!(
            (g - w).abs() <= 1e-5 + 1e-5 * w.abs(),
            "{got:?} vs {want:?}"
        );
    }
}

/// A temp path `zoo-walk-NAME-PID.EXT`.
fn temp(name: &str, ext: &str) -> PathBuf {
    std::env::temp_dir().join(format!("zoo-walk-{name}-{}{ext}", std::process::id()))
}

#[test]
fn the_keras_walkthrough_predicts_what_keras_did() {
    let d = docs();
    let y = temp("keras", ".npy");
    let m = d.join("m.keras");
    let x = d.join("x.npy");
    zoo_ok(&[
        "predict",
        m.to_str().unwrap(),
        "--input",
        x.to_str().unwrap(),
        "--output",
        y.to_str().unwrap(),
    ]);
    assert_close(&y, &d.join("keras_predict.npy"));
    let _ = std::fs::remove_file(y);
}

#[test]
fn the_pytorch_walkthrough_predicts_what_the_module_did() {
    let d = docs();
    let folder = temp("torch", "");
    let (pt, graph) = (d.join("model.pt"), d.join("graph.json"));
    zoo_ok(&[
        "import",
        pt.to_str().unwrap(),
        "--graph",
        graph.to_str().unwrap(),
        "--out",
        folder.to_str().unwrap(),
    ]);
    let y = temp("torch", ".npy");
    let x = d.join("torch_x.npz");
    zoo_ok(&[
        "predict",
        folder.to_str().unwrap(),
        "--input",
        x.to_str().unwrap(),
        "--output",
        y.to_str().unwrap(),
    ]);
    assert_close(&y, &d.join("torch_predict.npy"));
    let _ = std::fs::remove_file(y);
    let _ = std::fs::remove_dir_all(folder);
}
