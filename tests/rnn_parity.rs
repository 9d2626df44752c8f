//! Every fixture in tests/fixtures/rnn (and in $ZOO_RNN_FIXTURES) must
//! match the framework's outputs to 1e-5 absolute + 1e-5 relative.

use std::path::{Path, PathBuf};

use zoo::parity::check_fixture;

fn fixtures_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read fixture folder {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

fn check_all(files: &[PathBuf]) {
    let mut failed = Vec::new();
    for f in files {
        match check_fixture(f) {
            Ok(r) => {
                let status = if r.failure.is_some() { "FAIL" } else { "ok" };
                eprintln!(
                    "{status:4} max_abs_err={:.2e} {}",
                    r.max_abs_err,
                    f.display()
                );
                if let Some(why) = r.failure {
                    failed.push(format!("{}: {why}", f.display()));
                }
            }
            Err(e) => {
                eprintln!("ERR  {}: {e:#}", f.display());
                failed.push(format!("{}: {e:#}", f.display()));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} fixture(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn committed_fixtures_match_their_frameworks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rnn");
    let files = fixtures_in(&dir);
    assert!(
        files.len() >= 30,
        "expected the committed fixtures, found {}",
        files.len()
    );
    check_all(&files);
}

#[test]
fn fixtures_named_by_zoo_rnn_fixtures_match() {
    let Ok(dir) = std::env::var("ZOO_RNN_FIXTURES") else {
        eprintln!("ZOO_RNN_FIXTURES not set: nothing extra to check");
        return;
    };
    let files = fixtures_in(Path::new(&dir));
    assert!(
        !files.is_empty(),
        "no *.safetensors in ZOO_RNN_FIXTURES={dir}"
    );
    check_all(&files);
}

#[test]
fn a_fixture_with_a_perturbed_output_fails() {
    use candle_core::{Device, Tensor};
    let src =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rnn/pt_lstm_bi.safetensors");
    let bytes = std::fs::read(&src).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).unwrap();
    let out = tensors["output"].clone();
    tensors.insert("output".into(), (out + 1e-3).unwrap());
    let dst =
        std::env::temp_dir().join(format!("zoo-perturbed-{}.safetensors", std::process::id()));
    let metadata = meta.metadata().clone();
    let views: Vec<(String, Tensor)> = tensors.into_iter().collect();
    candle_core::safetensors::save(&views.iter().cloned().collect(), &dst).unwrap();
    // candle's save drops metadata: rewrite with it.
    let data: Vec<(String, Vec<u8>, Vec<usize>)> = views
        .iter()
        .map(|(n, t)| {
            let t = t.to_dtype(t.dtype()).unwrap();
            let bytes: Vec<u8> = match t.dtype() {
                candle_core::DType::I64 => t
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<i64>()
                    .unwrap()
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
                _ => t
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            };
            (n.clone(), bytes, t.dims().to_vec())
        })
        .collect();
    let st_views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .zip(&views)
        .map(|((n, b, s), (_, t))| {
            let dt = if t.dtype() == candle_core::DType::I64 {
                safetensors::Dtype::I64
            } else {
                safetensors::Dtype::F32
            };
            (
                n.clone(),
                safetensors::tensor::TensorView::new(dt, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(st_views, metadata, &dst).unwrap();
    let report = check_fixture(&dst).unwrap();
    std::fs::remove_file(&dst).ok();
    assert!(
        report.failure.is_some(),
        "a 1e-3 shift must be caught (max err {})",
        report.max_abs_err
    );
}
