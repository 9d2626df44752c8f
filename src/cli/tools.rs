//! `zoo bench`, `zoo parity`, `zoo devices`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use zoo::parity::check_fixture;
use zoo::{bench, device};

use super::{one_line, usage};

pub fn devices() -> Result<ExitCode> {
    for d in device::available() {
        println!("{d}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn bench(iters: usize) -> Result<ExitCode> {
    if iters == 0 {
        return Err(usage("--iters must be at least 1"));
    }
    let rows = bench::run(&bench::DEFAULT_SHAPES, iters, |what| {
        eprintln!("bench: {what}")
    })?;
    println!("{}", bench::table(&rows));
    Ok(ExitCode::SUCCESS)
}

fn fixture_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        v.sort();
        Ok(v)
    } else if path.exists() {
        Ok(vec![path.to_path_buf()])
    } else {
        Err(usage(format!(
            "{} does not exist: pass a fixture file or a folder of them",
            path.display()
        )))
    }
}

pub fn parity(paths: &[PathBuf]) -> Result<ExitCode> {
    let mut failed = 0;
    let mut total = 0;
    for p in paths {
        for f in fixture_files(p)? {
            total += 1;
            match check_fixture(&f) {
                Ok(r) if r.failure.is_none() => {
                    println!("ok    max_abs_err={:.2e}  {}", r.max_abs_err, f.display())
                }
                Ok(r) => {
                    failed += 1;
                    println!("FAIL  {}: {}", f.display(), r.failure.unwrap_or_default());
                }
                Err(e) => {
                    failed += 1;
                    println!("ERROR {}: {}", f.display(), one_line(&e));
                }
            }
        }
    }
    println!("{} passed, {failed} failed", total - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cell_and_units(cfg: &serde_json::Value) -> (String, String) {
    let s = |k: &str| cfg.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let n = |k: &str| cfg.get(k).and_then(|v| v.as_u64());
    match cfg.get("task").and_then(|t| t.as_str()) {
        Some("translate") => (
            "gru".into(),
            format!(
                "{}+{}",
                n("encoder_units").unwrap_or(0),
                n("decoder_units").unwrap_or(0)
            ),
        ),
        Some("ner") => (
            "lstm".into(),
            n("units").map_or("-".into(), |u| u.to_string()),
        ),
        _ => (
            s("cell").unwrap_or("-".into()),
            n("units").map_or("-".into(), |u| u.to_string()),
        ),
    }
}

fn headline_metric(cfg: &serde_json::Value) -> String {
    let Some(m) = cfg.get("metrics").and_then(|m| m.as_object()) else {
        return "-".into();
    };
    m.iter()
        .find_map(|(k, v)| {
            v.as_f64().map(|x| {
                format!(
                    "{k}={}",
                    if x <= 1.0 {
                        format!("{:.1}%", 100.0 * x)
                    } else {
                        format!("{x:.1}")
                    }
                )
            })
        })
        .unwrap_or_else(|| "-".into())
}

pub fn list() -> Result<ExitCode> {
    let models = zoo::catalog::list()?;
    if models.is_empty() {
        println!("no models in {}", zoo::catalog::models_root().display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<18} {:<10} {:<11} {:<8} {:>9}  {:<36} where",
        "name", "task", "cell", "units", "size", "metric"
    );
    for d in models {
        let cfg = d.raw_config();
        let (cell, units) = cell_and_units(cfg);
        let size = d.weights_bytes().map_or("-".into(), |b| {
            format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
        });
        println!(
            "{:<18} {:<10} {:<11} {:<8} {:>9}  {:<36} {}",
            d.header.name,
            d.header.task,
            cell,
            units,
            size,
            headline_metric(cfg),
            d.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn info(spec: &str) -> Result<ExitCode> {
    let d = super::resolve_model(Some(spec), "", false)?;
    let cfg = d.raw_config();
    println!("name:    {}", d.header.name);
    println!("task:    {}", d.header.task);
    println!("folder:  {}", d.path.display());
    let (cell, units) = cell_and_units(cfg);
    println!("cell:    {cell} (units {units})");
    for p in d.weights_paths().unwrap_or_default() {
        let bytes = std::fs::metadata(&p)?.len();
        println!(
            "weights: {} ({:.1} MiB)",
            p.display(),
            bytes as f64 / (1 << 20) as f64
        );
    }
    if let Some(m) = cfg.get("metrics") {
        println!("metrics: {m}");
    }
    if let Some(seed) = cfg.get("seed") {
        println!("seed:    {seed}");
    }
    // The card's title and first paragraph.
    if let Ok(card) = std::fs::read_to_string(d.path.join("README.md")) {
        let body = card
            .strip_prefix("---")
            .and_then(|r| r.split_once("\n---").map(|(_, b)| b))
            .unwrap_or(&card);
        let para: Vec<&str> = body
            .lines()
            .map(str::trim)
            .skip_while(|l| l.is_empty())
            .take_while(|l| !l.is_empty())
            .collect();
        if !para.is_empty() {
            println!("\n{}", para.join("\n"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn summary(spec: &str, batch: usize, steps: usize, json: bool) -> Result<ExitCode> {
    if batch == 0 || steps == 0 {
        return Err(usage("--batch and --steps must be at least 1"));
    }
    let d = super::resolve_model(Some(spec), "", false)?;
    if json {
        for r in zoo::summary::rows(&d, batch, steps)? {
            println!("{}", serde_json::to_string(&r)?);
        }
    } else {
        print!("{}", zoo::summary::render(&d, batch, steps)?);
    }
    Ok(ExitCode::SUCCESS)
}
