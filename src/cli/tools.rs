//! `zoo bench`, `zoo parity`, `zoo devices`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use zoo::catalog::TaskKind;
use zoo::parity::check_fixture;
use zoo::{bench, device};

use super::{one_line, stdout, usage};

pub fn devices() -> Result<ExitCode> {
    let mut out = stdout();
    for d in device::available() {
        writeln!(out, "{d}")?;
    }
    writeln!(out, "{}", zoo::nn::cpu::describe())?;
    writeln!(
        out,
        "int8 on the CPU: {}",
        if zoo::nn::fast_int8() {
            "AVX-512 VNNI kernel"
        } else {
            "no fast kernel on this CPU (no AVX-512 VNNI): `zoo run --dtype int8` runs f32"
        }
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Forward passes per measurement (median reported).
    #[arg(long, default_value_t = 20)]
    pub iters: usize,
    /// Only these cells: lstm, gru, simple_rnn (repeatable).
    #[arg(long)]
    pub cell: Vec<String>,
    /// Only this shape, BxTxIxH (batch x steps x input x units); repeatable.
    /// Default: 32x64x128x256, 1x20x50x150 and 64x128x300x512.
    #[arg(long)]
    pub shape: Vec<String>,
    /// Only unidirectional (1) or bidirectional (2) layers.
    #[arg(long)]
    pub dirs: Option<usize>,
    /// Weights: f32, int8 (recurrent weights in int8, VNNI where the CPU
    /// has it), or both (repeat the flag). Default f32.
    #[arg(long, value_parser = ["f32", "int8"])]
    pub dtype: Vec<String>,
    /// One JSON object per row (cell, batch, steps, input, units, dirs, dtype, median_ms).
    #[arg(long)]
    pub json: bool,
}

pub fn bench(a: &BenchArgs) -> Result<ExitCode> {
    if a.iters == 0 {
        return Err(usage("--iters must be at least 1"));
    }
    let shapes = if a.shape.is_empty() {
        bench::DEFAULT_SHAPES.to_vec()
    } else {
        a.shape
            .iter()
            .map(|s| {
                bench::Shape::parse(s).ok_or_else(|| {
                    usage(format!(
                        "bad --shape `{s}`: write BxTxIxH with positive sizes, e.g. 32x64x128x256 (at most 1 GiB per tensor)"
                    ))
                })
            })
            .collect::<Result<_>>()?
    };
    let cells = if a.cell.is_empty() {
        None
    } else {
        Some(
            a.cell
                .iter()
                .map(|c| zoo::nn::CellKind::parse(c).map_err(|e| usage(e.to_string())))
                .collect::<Result<Vec<_>>>()?,
        )
    };
    if a.dirs.is_some_and(|d| d != 1 && d != 2) {
        return Err(usage("--dirs is 1 or 2"));
    }
    let filter = bench::Filter {
        cells,
        dirs: a.dirs,
        // The JSON rows are for scripts/bench_torch.py, which brings its own peer.
        peers: !a.json,
        f32: a.dtype.is_empty() || a.dtype.iter().any(|d| d == "f32"),
        int8: a.dtype.iter().any(|d| d == "int8"),
    };
    let mut out = stdout();
    eprintln!("bench: {}", zoo::nn::cpu::describe());
    if filter.int8 && !zoo::nn::fast_int8() {
        eprintln!(
            "bench: this CPU has no AVX-512 VNNI: the int8 rows time the portable int8 kernel, slower than f32; `zoo run --dtype int8` runs f32 here"
        );
    }
    let rows = bench::run(&shapes, a.iters, &filter, |what| {
        if !a.json {
            eprintln!("bench: {what}")
        }
    })?;
    if a.json {
        for r in &rows {
            writeln!(out, "{}", r.to_json())?;
        }
    } else {
        writeln!(out, "{}", table(&rows))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The README table (Markdown).
fn table(rows: &[bench::BenchRow]) -> String {
    let mut t = String::from(
        "| cell | batch×steps×input→units | dirs | weights | zoo (ms) | zoo stepwise (ms) | candle-nn rnn (ms) | candle-nn / zoo | max abs diff (int8: vs f32) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let s = r.shape;
        let (cn, ratio) = match r.candle_nn_ms {
            Some(c) => (format!("{c:.3}"), format!("{:.1}×", c / r.zoo_ms)),
            None => ("—".into(), "—".into()),
        };
        t.push_str(&format!(
            "| {} | {}×{}×{}→{} | {} | {} | {:.3} | {} | {} | {} | {} |\n",
            r.cell.name(),
            s.batch,
            s.steps,
            s.input,
            s.units,
            if r.bidirectional { 2 } else { 1 },
            if r.int8 { "int8" } else { "f32" },
            r.zoo_ms,
            if r.zoo_stepwise_ms.is_finite() {
                format!("{:.3}", r.zoo_stepwise_ms)
            } else {
                "—".into()
            },
            cn,
            ratio,
            r.max_abs_diff.map_or("—".into(), |d| format!("{d:.1e}")),
        ));
    }
    t
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
    let mut out = stdout();
    for p in paths {
        for f in fixture_files(p)? {
            total += 1;
            match check_fixture(&f) {
                Ok(r) if r.failure.is_none() => writeln!(
                    out,
                    "ok    max_abs_err={:.2e}  {}",
                    r.max_abs_err,
                    f.display()
                )?,
                Ok(r) => {
                    failed += 1;
                    writeln!(
                        out,
                        "FAIL  {}: {}",
                        f.display(),
                        r.failure.unwrap_or_default()
                    )?;
                }
                Err(e) => {
                    failed += 1;
                    writeln!(out, "ERROR {}: {}", f.display(), one_line(&e))?;
                }
            }
            out.flush()?;
        }
    }
    writeln!(out, "{} passed, {failed} failed", total - failed)?;
    out.flush()?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The cell and its units, as `zoo list` and `zoo info` show them.
fn cell_and_units(d: &zoo::model::ModelDir) -> (String, String) {
    let cfg = d.raw_config();
    let n = |k: &str| cfg.get(k).and_then(|v| v.as_u64());
    let units = || n("units").map_or("-".into(), |u| u.to_string());
    match d.header.task {
        TaskKind::Translate => (
            "gru".into(),
            format!(
                "{}+{}",
                n("encoder_units").unwrap_or(0),
                n("decoder_units").unwrap_or(0)
            ),
        ),
        TaskKind::Ner | TaskKind::Generate => ("lstm".into(), units()),
        TaskKind::Graph => {
            // The recurrent classes of the graph and their sizes.
            let layers = cfg
                .pointer("/graph/layers")
                .and_then(|l| l.as_array())
                .cloned()
                .unwrap_or_default();
            let mut cells = Vec::new();
            let mut sizes = Vec::new();
            for l in &layers {
                let class = l.get("class").and_then(|c| c.as_str()).unwrap_or("");
                let c = l.get("config");
                let (class, c) = if class == "Bidirectional" {
                    let inner = c.and_then(|c| c.get("layer"));
                    (
                        inner
                            .and_then(|i| i.get("class_name"))
                            .and_then(|v| v.as_str())
                            .unwrap_or(""),
                        inner.and_then(|i| i.get("config")),
                    )
                } else {
                    (class, c)
                };
                if matches!(
                    class,
                    "SimpleRNN" | "LSTM" | "GRU" | "RNN" | "nn.LSTM" | "nn.GRU" | "nn.RNN"
                ) {
                    cells.push(class.trim_start_matches("nn.").to_lowercase());
                    let size = c
                        .and_then(|c| c.get("units").or_else(|| c.get("hidden_size")))
                        .and_then(|v| v.as_u64());
                    sizes.push(size.map_or("-".into(), |s| s.to_string()));
                }
            }
            if cells.is_empty() {
                ("-".into(), "-".into())
            } else {
                (cells.join("+"), sizes.join("+"))
            }
        }
        TaskKind::Sentiment => (
            cfg.get("cell")
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_string(),
            units(),
        ),
    }
}

/// The metric `zoo list` shows: config.json's `headline_metric` when it
/// names one of `metrics` (a general translator's everyday-text BLEU, not
/// its caption BLEU), else the first.
fn headline_metric(cfg: &serde_json::Value) -> String {
    let Some(m) = cfg.get("metrics").and_then(|m| m.as_object()) else {
        return "-".into();
    };
    let chosen = cfg
        .get("headline_metric")
        .and_then(|k| k.as_str())
        .and_then(|k| m.get_key_value(k));
    chosen
        .into_iter()
        .chain(m.iter())
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
    let mut out = stdout();
    if models.is_empty() {
        let path: Vec<String> = zoo::catalog::search_path()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        writeln!(
            out,
            "no models found in {}: set ZOO_MODELS, or `zoo pull NAME`",
            path.join(", ")
        )?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let name_width = models
        .iter()
        .map(|d| d.header.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(18);
    writeln!(
        out,
        "{:<name_width$} {:<10} {:<11} {:<8} {:>9}  {:<36} where",
        "name", "task", "cell", "units", "size", "metric"
    )?;
    for d in models {
        let cfg = d.raw_config();
        let (cell, units) = cell_and_units(&d);
        let size = d.weights_bytes().map_or("-".into(), |b| {
            format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
        });
        writeln!(
            out,
            "{:<name_width$} {:<10} {:<11} {:<8} {:>9}  {:<36} {}",
            d.header.name,
            d.header.task.as_str(),
            cell,
            units,
            size,
            headline_metric(cfg),
            d.path.display()
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The card's summary paragraph and the sections a user needs before
/// trusting a model: what it is for, what it was trained on, where it fails.
fn card_summary(card: &str) -> (String, Vec<(String, String)>) {
    let body = card
        .strip_prefix("---")
        .and_then(|r| r.split_once("\n---").map(|(_, b)| b))
        .unwrap_or(card);
    let mut lines = body.lines().map(str::trim_end).peekable();
    // Title, then the first paragraph.
    while lines
        .peek()
        .is_some_and(|l| l.trim().is_empty() || l.starts_with("# "))
    {
        lines.next();
    }
    let mut para = Vec::new();
    while let Some(l) = lines.next_if(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        para.push(l.trim());
    }
    let mut sections = Vec::new();
    let mut current: Option<(String, Vec<&str>)> = None;
    let wanted = |h: &str| {
        let h = h.to_lowercase();
        ["intended use", "limitation", "training data", "data"]
            .iter()
            .any(|w| h.contains(w))
    };
    for l in lines {
        if let Some(h) = l.strip_prefix("## ") {
            if let Some((t, b)) = current.take() {
                sections.push((t, b.join("\n").trim().to_string()));
            }
            current = wanted(h).then(|| (h.trim().to_string(), Vec::new()));
        } else if let Some((_, b)) = &mut current {
            b.push(l);
        }
    }
    if let Some((t, b)) = current {
        sections.push((t, b.join("\n").trim().to_string()));
    }
    (para.join(" "), sections)
}

pub fn info(spec: &str) -> Result<ExitCode> {
    let d = super::resolve_model(Some(spec), None, false)?;
    let cfg = d.raw_config();
    let mut out = stdout();
    writeln!(out, "name:    {}", d.header.name)?;
    writeln!(out, "task:    {}", d.header.task)?;
    writeln!(out, "folder:  {}", d.path.display())?;
    let (cell, units) = cell_and_units(&d);
    writeln!(out, "cell:    {cell} (units {units})")?;
    for p in d.weights_paths().unwrap_or_default() {
        let bytes = std::fs::metadata(&p)?.len();
        writeln!(
            out,
            "weights: {} ({:.1} MiB)",
            p.display(),
            bytes as f64 / (1 << 20) as f64
        )?;
    }
    if let Some(m) = cfg.get("metrics").and_then(|m| m.as_object()) {
        writeln!(out, "metrics:")?;
        for (k, v) in m {
            writeln!(out, "  {k}: {v}")?;
        }
    }
    if let Some(by) = cfg.get("measured_by").and_then(|v| v.as_str()) {
        writeln!(out, "measured by: {by}")?;
    }
    if let Some(seed) = cfg.get("seed") {
        writeln!(out, "seed:    {seed}")?;
    }
    if let Some(words) = zoo::tasks::seen::SeenWords::load(&d.path)? {
        writeln!(
            out,
            "read in training: {} distinct words ({}; text mostly outside them is flagged, not labelled)",
            words.len(),
            zoo::tasks::seen::FILE
        )?;
    }
    if let Ok(card) = std::fs::read_to_string(d.path.join("README.md")) {
        let (summary, sections) = card_summary(&card);
        if !summary.is_empty() {
            writeln!(out, "\n{summary}")?;
        }
        for (title, text) in sections {
            writeln!(out, "\n{title}:\n{text}")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn pull(names: &[String]) -> Result<ExitCode> {
    let mut out = stdout();
    for n in names {
        let dest = zoo::catalog::pull(n, std::io::IsTerminal::is_terminal(&std::io::stderr()))?;
        writeln!(out, "{n}\t{}", dest.display())?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn summary(spec: &str, batch: usize, steps: usize, json: bool) -> Result<ExitCode> {
    if batch == 0 || steps == 0 {
        return Err(usage("--batch and --steps must be at least 1"));
    }
    let mut out = stdout();
    if let Some(path) = super::predict::keras_file(spec)? {
        let (g, about) = super::predict::keras_for_summary(path)?;
        if json {
            for r in zoo::summary::graph_model_rows(&g, batch, steps)? {
                writeln!(out, "{}", serde_json::to_string(&r)?)?;
            }
        } else {
            write!(
                out,
                "{}",
                zoo::summary::render_graph(&g, &about, batch, steps)?
            )?;
        }
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let d = super::resolve_model(Some(spec), None, false)?;
    if json {
        for r in zoo::summary::rows(&d, batch, steps)? {
            writeln!(out, "{}", serde_json::to_string(&r)?)?;
        }
    } else {
        write!(out, "{}", zoo::summary::render(&d, batch, steps)?)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::{card_summary, headline_metric};

    #[test]
    fn list_shows_the_metric_the_config_names_else_the_first() {
        let metrics = serde_json::json!({"a_bleu": 30.5, "b_bleu": 40.25});
        let named = serde_json::json!({"metrics": metrics, "headline_metric": "b_bleu"});
        assert_eq!(headline_metric(&named), "b_bleu=40.2");
        let plain = serde_json::json!({"metrics": metrics});
        assert_eq!(headline_metric(&plain), "a_bleu=30.5");
        let missing = serde_json::json!({"metrics": metrics, "headline_metric": "c"});
        assert_eq!(headline_metric(&missing), "a_bleu=30.5");
    }

    #[test]
    fn info_shows_the_cards_use_data_and_limits() {
        let card = "# m\n\nA sentiment model\nfor reviews.\n\n## Architecture\nx\n\n## Intended use\nReviews.\n\n## Limitations\nNo sarcasm.\n";
        let (summary, sections) = card_summary(card);
        assert_eq!(summary, "A sentiment model for reviews.");
        let titles: Vec<&str> = sections.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(titles, ["Intended use", "Limitations"]);
        assert_eq!(sections[1].1, "No sarcasm.");
    }
}
