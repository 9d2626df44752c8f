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
