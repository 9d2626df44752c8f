//! `zoo probe`: what each memory cell of a character model holds, over a
//! whole corpus (see `zoo::probe`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use candle_core::{DType, Device};

use zoo::catalog::TaskKind;
use zoo::probe::{self, Report, UnitFinding};
use zoo::tasks::charlm::CharLm;

use super::{resolve_model, usage};

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// The model: a character model such as `char-lstm` (catalogue name, folder or Hub repo id).
    pub model: String,
    /// The text to read (UTF-8).
    #[arg(long, short)]
    pub file: PathBuf,
    /// Read at most this many characters of the file.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_chars: usize,
    /// The text is read as this many parallel slices (each from a zero state).
    #[arg(long, default_value_t = 16)]
    pub streams: usize,
    /// Units listed in the table (most selective first); --json lists all.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Every unit as JSON Lines, after a summary line.
    #[arg(long)]
    pub json: bool,
    /// Also write an HTML page: what each unit holds, with passages coloured by its activation.
    #[arg(long, value_name = "PAGE")]
    pub html: Option<PathBuf>,
    /// Seed of the shifts that measure chance.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Word-level models: the recurrent layer to probe [default: the last].
    #[arg(long)]
    pub layer: Option<usize>,
    /// Word-level models: forward or backward (bidirectional layers).
    #[arg(long, default_value = "forward")]
    pub direction: String,
}

pub fn probe(a: &ProbeArgs) -> Result<ExitCode> {
    let dir = resolve_model(Some(&a.model), None, false)?;
    let bytes = std::fs::read(&a.file)
        .map_err(|e| usage(format!("cannot read {}: {e}", a.file.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| usage(format!("{} is not UTF-8 text ({e})", a.file.display())))?;
    let text: String = text.chars().take(a.max_chars).collect();
    if dir.header.task != TaskKind::Generate {
        return word_probe(&dir, a, &text);
    }
    let model = CharLm::load(&dir, &Device::Cpu, DType::F32)?;
    let n = text.chars().count() as u64;
    let bar = super::progress(Some(n));
    let t0 = std::time::Instant::now();
    let states = model.states(&text, a.streams, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let read_secs = t0.elapsed().as_secs_f64();
    let features = probe::char_features_of(states.slices.iter().map(String::as_str));
    let text = states.slices.concat();
    let types = probe::char_pair_types(&model.encode(&text), model.vocab_size());
    let units = states.units;
    let report = probe::probe(
        vec![
            probe::Quantity {
                name: "c".into(),
                units,
                values: states.c,
            },
            probe::Quantity {
                name: "h".into(),
                units,
                values: states.h,
            },
        ],
        &types,
        &features,
        a.seed,
    )?;
    let secs = t0.elapsed().as_secs_f64();
    let mut out = super::stdout();
    if a.json {
        let mut summary = summary_json(&model.config.name, units, &report, secs);
        summary["paper_cells"] = serde_json::json!(paper_cells(&report));
        writeln!(out, "{summary}")?;
        for u in report.ranked() {
            writeln!(out, "{}", unit_json(&report, u))?;
        }
    } else {
        let name = &model.config.name;
        write_table(
            &mut out,
            name,
            units,
            "characters",
            &report,
            a.top,
            read_secs,
            secs,
        )?;
        writeln!(out, "\nThe cells of Karpathy, Johnson and Fei-Fei (2015):")?;
        for line in paper_cells(&report) {
            writeln!(out, "- {line}")?;
        }
    }
    out.flush()?;
    if let Some(page) = &a.html {
        let html = page_html(&model, &report, &states.slices[0])?;
        std::fs::write(page, html).with_context(|| format!("cannot write {}", page.display()))?;
        eprintln!("wrote {}", page.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// A word-level model (sentiment, NER, a translator's encoder), one line
/// of the file per text: each line's tokens are traced from a zero state,
/// and each token gets the features of the line up to its last character.
fn word_probe(dir: &zoo::model::ModelDir, a: &ProbeArgs, text: &str) -> Result<ExitCode> {
    use zoo::inspect::Inspection;
    let dev = Device::Cpu;
    let d = match a.direction.as_str() {
        "forward" => 0,
        "backward" => 1,
        other => {
            return Err(usage(format!(
                "unknown --direction `{other}`: forward or backward"
            )))
        }
    };
    type Tracer<'a> = Box<dyn Fn(&str, usize) -> Result<Inspection> + 'a>;
    let (trace, layers): (Tracer, usize) = match dir.header.task {
        TaskKind::Sentiment => {
            let m = zoo::tasks::sentiment::SentimentModel::load(dir, &dev, DType::F32)?;
            let n = m.rnn().config().num_layers;
            (Box::new(move |t, l| m.inspect(t, l, d)), n)
        }
        TaskKind::Ner => {
            let m = zoo::tasks::ner::NerModel::load(dir, &dev, DType::F32)?;
            let n = m.config.num_layers;
            (Box::new(move |t, l| m.inspect(t, l, d)), n)
        }
        TaskKind::Translate => {
            let m = zoo::tasks::translate::Translator::load(dir, &dev, DType::F32)?;
            let n = m.encoder().config().num_layers;
            (Box::new(move |t, l| m.inspect(t, "encoder", l, d)), n)
        }
        other => {
            return Err(usage(format!(
                "zoo probe reads character, sentiment, NER and translation models; {} is a {other} model",
                dir.header.name
            )))
        }
    };
    let layer = a.layer.unwrap_or(layers.saturating_sub(1));
    let t0 = std::time::Instant::now();
    let (mut types, mut vocab) = (Vec::new(), std::collections::HashMap::new());
    let mut features: Vec<probe::Feature> = Vec::new();
    let mut values: Vec<(String, Vec<f32>)> = Vec::new();
    let mut units = 0;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let bar = super::progress(Some(lines.len() as u64));
    for (i, line) in lines.iter().enumerate() {
        bar.set_position(i as u64);
        let ins = trace(line, layer)?;
        units = ins.trace.units;
        let ends = token_ends(line, &ins.tokens);
        let line_features = probe::char_features(line);
        if features.is_empty() {
            features = line_features
                .iter()
                .map(|f| probe::Feature {
                    values: Vec::new(),
                    ..f.clone()
                })
                .collect();
        }
        for (f, lf) in features.iter_mut().zip(&line_features) {
            f.values.extend(ends.iter().map(|&e| lf.values[e]));
        }
        for tok in &ins.tokens {
            let next = vocab.len() as u32;
            types.push(*vocab.entry(tok.clone()).or_insert(next));
        }
        for (name, v) in &ins.trace.quantities {
            if name != "cell c" && name != "hidden h" {
                continue;
            }
            match values.iter_mut().find(|(n, _)| n == name) {
                Some((_, acc)) => acc.extend_from_slice(v),
                None => values.push((name.clone(), v.clone())),
            }
        }
    }
    bar.finish_and_clear();
    let quantities = values
        .into_iter()
        .map(|(name, values)| probe::Quantity {
            name: if name == "cell c" {
                "c".into()
            } else {
                "h".into()
            },
            units,
            values,
        })
        .collect();
    let report = probe::probe(quantities, &types, &features, a.seed)?;
    let secs = t0.elapsed().as_secs_f64();
    let name = format!("{} (layer {layer}, {})", dir.header.name, a.direction);
    let mut out = super::stdout();
    if a.json {
        writeln!(out, "{}", summary_json(&name, units, &report, secs))?;
        for u in report.ranked() {
            writeln!(out, "{}", unit_json(&report, u))?;
        }
    } else {
        write_table(&mut out, &name, units, "tokens", &report, a.top, secs, secs)?;
    }
    out.flush()?;
    if a.html.is_some() {
        eprintln!("note: --html draws character models' passages; for word models see `zoo inspect MODEL TEXT --out page.html`");
    }
    Ok(ExitCode::SUCCESS)
}

/// The character index of each token's last character in `line` (tokens
/// found left to right, case-insensitively; subword markers and a token
/// not found keep the previous position).
fn token_ends(line: &str, tokens: &[String]) -> Vec<usize> {
    let lower: Vec<char> = line.chars().flat_map(char::to_lowercase).collect();
    let same_length = lower.len() == line.chars().count();
    let mut at = 0;
    let mut last = 0;
    tokens
        .iter()
        .map(|t| {
            let t: Vec<char> = t
                .trim_start_matches(['▁', 'Ġ', '#'])
                .chars()
                .flat_map(char::to_lowercase)
                .collect();
            if same_length && !t.is_empty() {
                if let Some(p) = (at..lower.len().saturating_sub(t.len() - 1))
                    .find(|&p| lower[p..p + t.len()] == t[..])
                {
                    last = p + t.len() - 1;
                    at = p + t.len();
                }
            }
            last
        })
        .collect()
}

fn summary_json(name: &str, units: usize, r: &Report, secs: f64) -> serde_json::Value {
    let counts = |q: &str| {
        let [one, several, nothing] = r.counts(q);
        serde_json::json!({"one_thing": one, "mixes_several": several, "nothing_named": nothing})
    };
    serde_json::json!({
        "model": name,
        "tokens": r.tokens,
        "units": units,
        "features": r.features.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "c": counts("c"),
        "h": counts("h"),
        "min_r": probe::MIN_R,
        "chance_factor": probe::CHANCE_FACTOR,
        "seconds": (secs * 10.0).round() / 10.0,
    })
}

fn unit_json(r: &Report, u: &UnitFinding) -> serde_json::Value {
    let name = |i: usize| r.features[i].0.clone();
    serde_json::json!({
        "quantity": u.quantity,
        "unit": u.unit,
        "verdict": u.verdict,
        "best": name(u.best),
        "best_r": round4(u.r[u.best]),
        "second": name(u.second),
        "second_r": round4(u.r[u.second]),
        "chance": round4(u.chance),
        "selectivity": round4(u.selectivity),
        "tracks": u.tracks.iter().map(|&i| name(i)).collect::<Vec<_>>(),
        "r": r.features.iter().zip(&u.r).map(|(f, &x)| (f.0.clone(), serde_json::json!(round4(x)))).collect::<serde_json::Map<_, _>>(),
    })
}

fn round4(x: f32) -> f64 {
    (x as f64 * 10_000.0).round() / 10_000.0
}

#[allow(clippy::too_many_arguments)]
fn write_table(
    out: &mut dyn Write,
    name: &str,
    units: usize,
    what: &str,
    r: &Report,
    top: usize,
    read_secs: f64,
    secs: f64,
) -> Result<()> {
    writeln!(
        out,
        "{name}: {} {what} read in {read_secs:.1} s, probed in {secs:.1} s; {units} units",
        r.tokens
    )?;
    for q in ["c", "h"] {
        let [one, several, nothing] = r.counts(q);
        if one + several + nothing == 0 {
            continue;
        }
        writeln!(
            out,
            "{q}: {one} hold one thing, {several} mix several, {nothing} track nothing named"
        )?;
    }
    writeln!(
        out,
        "(tracking: |r| ≥ {} and ≥ {}× the unit's chance level; r is measured on what a unit holds beyond the tokens it just read)",
        probe::MIN_R,
        probe::CHANCE_FACTOR
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<7} {:<18} {:>6}  {:<18} {:>6}  {:>6}  verdict",
        "unit", "best feature", "r", "second", "r", "chance"
    )?;
    for u in r.ranked().into_iter().take(top) {
        writeln!(
            out,
            "{:<7} {:<18} {:>6.3}  {:<18} {:>6.3}  {:>6.3}  {}",
            format!("{} {}", u.quantity, u.unit),
            r.features[u.best].0,
            u.r[u.best],
            r.features[u.second].0,
            u.r[u.second],
            u.chance,
            u.verdict.as_str()
        )?;
    }
    Ok(())
}

/// The cells Karpathy, Johnson and Fei-Fei (2015) found in character
/// LSTMs, as the probe's features name them.
const PAPER_CELLS: [(&str, &str); 3] = [
    ("in quotes", "a quote cell"),
    ("in brackets", "a bracket cell"),
    ("line position", "a line-length cell"),
];

/// For each of the paper's cells: the unit that tracks that feature most
/// strongly as its one thing, or the best unit for it if none does.
fn paper_cells(r: &Report) -> Vec<String> {
    PAPER_CELLS
        .iter()
        .filter_map(|(feature, cell)| {
            let f = r.features.iter().position(|x| x.0 == *feature)?;
            let found = r
                .units
                .iter()
                .filter(|u| u.best == f && u.tracks.first() == Some(&f))
                .filter(|u| u.verdict == probe::Verdict::OneThing)
                .max_by(|a, b| a.r[f].abs().total_cmp(&b.r[f].abs()));
            let best = r
                .units
                .iter()
                .max_by(|a, b| a.r[f].abs().total_cmp(&b.r[f].abs()))?;
            Some(match found {
                Some(u) => format!(
                    "{cell}: found, {} {} (r = {:.2}, chance {:.2})",
                    u.quantity, u.unit, u.r[f], u.chance
                ),
                None => format!(
                    "{cell}: not found; the unit closest to one is {} {} (r = {:.2} with {feature}, {})",
                    best.quantity,
                    best.unit,
                    best.r[f],
                    best.verdict.as_str()
                ),
            })
        })
        .collect()
}

/// Characters of context read before a passage, so that its colours show
/// the state the unit has in the middle of a text, not from zero.
const WARM_UP: usize = 300;
const PASSAGE: usize = 360;

/// A standalone page: "What each unit holds", the most selective units
/// first, each with a passage coloured by its activation.
fn page_html(model: &CharLm, r: &Report, text: &str) -> Result<String> {
    let chars: Vec<char> = text.chars().collect();
    let features = probe::char_features(text);
    let mut sections = String::new();
    for u in r
        .ranked()
        .into_iter()
        .filter(|u| !u.tracks.is_empty())
        .take(16)
    {
        let start = passage_start(&features[u.best].values, chars.len());
        let from = start.saturating_sub(WARM_UP);
        let end = (start + PASSAGE).min(chars.len());
        let slice: String = chars[from..end].iter().collect();
        let st = model.states(&slice, 1, |_| {})?;
        let vals = if u.quantity == "c" { &st.c } else { &st.h };
        let units = st.units;
        let span: Vec<f32> = (start - from..end - from)
            .map(|t| vals[t * units + u.unit])
            .collect();
        let max = span.iter().fold(1e-6f32, |m, &v| m.max(v.abs()));
        let mut body = String::new();
        for (k, &v) in span.iter().enumerate() {
            let x = (v / max).clamp(-1.0, 1.0);
            let (rr, gg, bb) = if x >= 0.0 {
                (255, (255.0 * (1.0 - x)) as u8, (255.0 * (1.0 - x)) as u8)
            } else {
                ((255.0 * (1.0 + x)) as u8, (255.0 * (1.0 + x)) as u8, 255)
            };
            let ch = chars[start + k];
            let shown = match ch {
                '\n' => "↵<br>".to_string(),
                '<' => "&lt;".into(),
                '>' => "&gt;".into(),
                '&' => "&amp;".into(),
                c => c.to_string(),
            };
            body.push_str(&format!(
                "<span style=\"background:rgb({rr},{gg},{bb})\" title=\"{v:.3}\">{shown}</span>"
            ));
        }
        sections.push_str(&format!(
            "<section><h3>{} {} — {} (r = {:.2}; second: {} {:.2}; chance {:.2}) · {}</h3><p class=\"about\">{}</p><p class=\"text\">{body}</p></section>\n",
            u.quantity,
            u.unit,
            r.features[u.best].0,
            u.r[u.best],
            r.features[u.second].0,
            u.r[u.second],
            u.chance,
            u.verdict.as_str(),
            r.features[u.best].1,
        ));
    }
    let counts = |q: &str| {
        let [a, b, c] = r.counts(q);
        format!("{q}: {a} hold one thing, {b} mix several, {c} track nothing named")
    };
    Ok(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>What each unit holds: {name}</title>\
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}.text{{font-family:monospace;line-height:1.6}}.about{{color:#555}}</style></head><body>\
<h1>What each unit holds</h1><p>{name}, {tokens} characters. {c}. {h}.</p>\
<h2>The 2015 paper's cells</h2><ul>{paper}</ul>\
<h2>The most selective units</h2><p>Red: the unit is high, blue: low (each passage scaled to its own largest value; hover for the value).</p>{sections}</body></html>\n",
        name = model.config.name,
        paper = paper_cells(r).iter().map(|l| format!("<li>{l}</li>")).collect::<String>(),
        tokens = r.tokens,
        c = counts("c"),
        h = counts("h"),
    ))
}

/// Where a passage shows the feature changing most: the window of the first
/// 200,000 characters with the most changes of the feature's value.
fn passage_start(values: &[f32], n: usize) -> usize {
    let limit = n.min(200_000);
    if limit <= PASSAGE {
        return 0;
    }
    let changes: Vec<u32> = (0..limit)
        .map(|t| (t > 0 && values[t] != values[t - 1]) as u32)
        .collect();
    let mut best = (0, 0);
    let mut sum: u32 = changes[..PASSAGE].iter().sum();
    for s in 1..=limit - PASSAGE {
        sum = sum + changes[s + PASSAGE - 1] - changes[s - 1];
        if sum > best.1 {
            best = (s, sum);
        }
    }
    best.0
}
