//! A bounded, seeded fuzz of the loading path: every shipped model folder's
//! config.json, tokenizer, word list and safetensors file, mutated thousands of ways
//! (bit flips, truncation, splices, random bytes), must load or fail with an
//! error, never panic. Longer runs: ZOO_FUZZ_ROUNDS=N multiplies the rounds.

use std::path::Path;

use zoo::candle::{DType, Device};
use zoo::model::ModelDir;

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
        }
        1 => d.truncate(rng.below(d.len())),
        2 => {
            // Damage the header region, where lengths and offsets live.
            let n = d.len().min(256);
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(n);
                d[i] = rng.next() as u8;
            }
        }
        3 => {
            let i = rng.below(d.len());
            let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            d.splice(i..i, junk);
        }
        4 => d = (0..rng.below(512)).map(|_| rng.next() as u8).collect(),
        _ => {
            let (a, b) = (rng.below(d.len()), rng.below(d.len()));
            let (a, b) = (a.min(b), a.max(b));
            d.drain(a..b);
        }
    }
    d
}

/// Loads whatever task the folder holds.
fn load(dir: &Path) -> anyhow::Result<()> {
    let d = ModelDir::open(dir)?;
    let dev = Device::Cpu;
    match d.header.task.as_str() {
        "sentiment" => drop(zoo::tasks::sentiment::SentimentModel::load(
            &d,
            &dev,
            DType::F32,
        )?),
        "ner" => drop(zoo::tasks::ner::NerModel::load(&d, &dev, DType::F32)?),
        "translate" => drop(zoo::tasks::translate::Translator::load(
            &d,
            &dev,
            DType::F32,
        )?),
        "generate" => drop(zoo::tasks::charlm::CharLm::load(&d, &dev, DType::F32)?),
        other => anyhow::bail!("unknown task {other}"),
    }
    Ok(())
}

#[test]
fn mutated_model_files_never_panic_the_loaders() {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut cases = 0;
    for entry in std::fs::read_dir(&models).unwrap() {
        let src = entry.unwrap().path();
        let work = std::env::temp_dir().join(format!(
            "zoo-fuzz-{}-{}",
            std::process::id(),
            src.file_name().unwrap().to_string_lossy()
        ));
        // Every weights file config.json lists (two for an ensemble).
        let weights = ModelDir::open(&src).unwrap().header.weights_files();
        let files: Vec<String> = [
            "config.json",
            "tokenizer.json",
            "chars.json",
            "seen_words.txt",
            "vocab.json",
        ]
        .iter()
        .map(|f| f.to_string())
        .chain(weights.iter().cloned())
        .filter(|f| src.join(f).exists())
        .collect();
        let originals: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(src.join(f)).unwrap())
            .collect();
        let reset = || {
            let _ = std::fs::remove_dir_all(&work);
            std::fs::create_dir_all(&work).unwrap();
            for (f, data) in files.iter().zip(&originals) {
                std::fs::write(work.join(f), data).unwrap();
            }
        };
        reset();
        load(&work).expect("the unmutated copy loads");
        // The weights get the most rounds: they are the largest attack surface.
        let mut rounds = vec![
            ("config.json", 60),
            ("tokenizer.json", 30),
            ("chars.json", 20),
            ("seen_words.txt", 10),
            ("vocab.json", 20),
        ];
        for (k, w) in weights.iter().enumerate() {
            rounds.push((w.as_str(), if k == 0 { 80 } else { 20 }));
        }
        let scale: usize = std::env::var("ZOO_FUZZ_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        for (file, n) in rounds {
            let n = n * scale;
            let Some(i) = files.iter().position(|f| f == file) else {
                continue;
            };
            for _ in 0..n {
                reset();
                std::fs::write(work.join(file), mutate(&mut rng, &originals[i])).unwrap();
                let r = std::panic::catch_unwind(|| load(&work));
                assert!(
                    r.is_ok(),
                    "loading {} with a mutated {file} panicked",
                    src.display()
                );
                cases += 1;
            }
        }
        std::fs::remove_dir_all(&work).ok();
    }
    assert!(cases > 0, "no model folders found in {}", models.display());
    eprintln!("{cases} mutated loads, no panic");
}

/// A `.keras` file with one member replaced.
#[cfg(feature = "keras")]
fn rezip(src: &[u8], member: &str, data: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(src)).unwrap();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        w.start_file(name.as_str(), opts).unwrap();
        w.write_all(if name == member { data } else { &bytes })
            .unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Imports, builds and runs a graph fixture; any error is fine, a panic is not.
#[cfg(feature = "keras")]
fn import_and_run(path: &Path, graph: Option<&Path>, input: &Path) -> anyhow::Result<()> {
    let imported = match graph {
        None => zoo::graph::keras_file::read(path)?,
        Some(g) => zoo::graph::import::pytorch(path, g)?,
    };
    let model = imported.build(&Device::Cpu)?;
    let inputs = zoo::graph::io::read(input, model.inputs(), &Device::Cpu)?;
    model.forward(inputs)?;
    Ok(())
}

#[cfg(feature = "keras")]
#[test]
fn mutated_keras_and_pytorch_files_never_panic_the_importers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph");
    let work = std::env::temp_dir().join(format!("zoo-fuzz-graph-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    let scale: usize = std::env::var("ZOO_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(0x5eed_1234_abcd_0002);
    let mut cases = 0;
    for case in ["imdb_bilstm", "options", "conv_bn_gru"] {
        let src = std::fs::read(root.join(case).join("model.keras")).unwrap();
        let input = root.join(case).join("input.npz");
        let members: Vec<(String, Vec<u8>)> = {
            use std::io::Read;
            let mut z = zip::ZipArchive::new(std::io::Cursor::new(&src[..])).unwrap();
            (0..z.len())
                .map(|i| {
                    let mut f = z.by_index(i).unwrap();
                    let mut b = Vec::new();
                    f.read_to_end(&mut b).unwrap();
                    (f.name().unwrap().to_string(), b)
                })
                .collect()
        };
        let file = work.join("m.keras");
        for round in 0..200 * scale {
            // The zip itself, then each member mutated inside a valid zip.
            let bytes = match round % 3 {
                0 => mutate(&mut rng, &src),
                _ => {
                    let (name, data) = &members[rng.below(members.len())];
                    rezip(&src, name, &mutate(&mut rng, data))
                }
            };
            std::fs::write(&file, bytes).unwrap();
            let r = std::panic::catch_unwind(|| import_and_run(&file, None, &input));
            assert!(r.is_ok(), "importing a mutated {case}/model.keras panicked");
            cases += 1;
        }
    }
    for case in ["torch_bilstm", "torch_convgru"] {
        let dir = root.join(case);
        let src = std::fs::read(dir.join("model.pt")).unwrap();
        let graph = std::fs::read(dir.join("graph.json")).unwrap();
        let (pt, g) = (work.join("m.pt"), work.join("g.json"));
        for round in 0..200 * scale {
            let (a, b) = if round % 3 == 2 {
                (src.clone(), mutate(&mut rng, &graph))
            } else {
                (mutate(&mut rng, &src), graph.clone())
            };
            std::fs::write(&pt, a).unwrap();
            std::fs::write(&g, b).unwrap();
            let input = dir.join("input.npz");
            let r = std::panic::catch_unwind(|| import_and_run(&pt, Some(&g), &input));
            assert!(r.is_ok(), "importing a mutated {case} panicked");
            cases += 1;
        }
    }
    std::fs::remove_dir_all(&work).ok();
    eprintln!("{cases} mutated imports, no panic");
}
