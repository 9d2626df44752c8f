//! `zoo inspect … --out report.html`: one self-contained page (inline SVG,
//! CSS and JS; no network) that shows a learner what a layer holds: the
//! model's answer, the layer's real shapes, heatmaps of every gate and
//! state, the units that move the answer most and what each tracks, a
//! step-through of the memory over the sentence, and for a translator the
//! attention.

use std::fmt::Write as _;

use serde_json::json;

use zoo::inspect::{Inspection, LayerShape};
use zoo::nn::CellKind;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A token as a reader sees it: subword markers dropped.
fn show_token(t: &str) -> String {
    let t = t.replace('\u{2581}', "");
    if t.is_empty() {
        "·".into()
    } else {
        t
    }
}

/// Subword pieces joined into words: (word, first step, steps). A piece
/// starting with `▁` starts a word; tokens without markers are words.
pub fn words(tokens: &[String]) -> Vec<(String, usize, usize)> {
    let marked = tokens.iter().any(|t| t.starts_with('\u{2581}'));
    let mut out: Vec<(String, usize, usize)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let starts = !marked || t.starts_with('\u{2581}') || out.is_empty();
        let piece = t.replace('\u{2581}', "");
        // Punctuation pieces stand alone even without a marker.
        let punct = !piece.is_empty() && piece.chars().all(|c| c.is_ascii_punctuation());
        if starts || punct {
            out.push((piece, i, 1));
        } else if let Some(w) = out.last_mut() {
            w.0.push_str(&piece);
            w.2 += 1;
        }
    }
    out
}

/// Blue (low) – white – red (high), as the terminal heatmap.
fn colour(v: f32, lo: f32, hi: f32) -> String {
    let x = ((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 2.0 - 1.0;
    let f = |a: f32| (255.0 * a).round() as u8;
    let (r, g, b) = if x >= 0.0 {
        (255, f(1.0 - x * 0.85), f(1.0 - x * 0.85))
    } else {
        (f(1.0 + x * 0.85), f(1.0 + x * 0.6), 255)
    };
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn value(ins: &Inspection, q: &str, step: usize, unit: usize) -> f32 {
    ins.trace
        .get(q)
        .map_or(f32::NAN, |v| v[step * ins.trace.units + unit])
}

/// Gates live in [0, 1]; states and candidates in [-m, m], m ≥ 1.
fn scale(ins: &Inspection, q: &str, units: &[usize]) -> (f32, f32) {
    if q.contains("gate") {
        return (0.0, 1.0);
    }
    let m = (0..ins.trace.steps)
        .flat_map(|s| units.iter().map(move |&u| value(ins, q, s, u).abs()))
        .fold(1.0f32, f32::max);
    (-m, m)
}

const CELL: usize = 26;
const ROW: usize = 16;
const LEFT: usize = 56;
/// Room above the cells for the rotated token labels.
const TOP: usize = 58;

fn heatmap(ins: &Inspection, q: &str, units: &[usize], labels: &[String]) -> String {
    let steps = ins.trace.steps;
    let (lo, hi) = scale(ins, q, units);
    let w = LEFT + steps * CELL + 40;
    let h = TOP + units.len() * ROW + 4;
    let mut s = format!(
        r##"<svg class="heat" data-q="{}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{} heatmap">"##,
        esc(q),
        esc(q)
    );
    for (t, l) in labels.iter().enumerate() {
        let _ = write!(
            s,
            r##"<text transform="translate({},{}) rotate(-45)" class="tok">{}</text>"##,
            LEFT + t * CELL + CELL / 2 - 2,
            TOP - 4,
            esc(&short(l, 9))
        );
    }
    for (r, &u) in units.iter().enumerate() {
        let y = TOP + r * ROW;
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" class="unit" text-anchor="end">unit {u}</text>"##,
            LEFT - 4,
            y + ROW - 4
        );
        for (t, label) in labels.iter().enumerate().take(steps) {
            let v = value(ins, q, t, u);
            let _ = write!(
                s,
                r##"<rect x="{}" y="{y}" width="{}" height="{}" fill="{}"><title>{} · unit {u} · “{}”: {v:.4}</title></rect>"##,
                LEFT + t * CELL,
                CELL - 1,
                ROW - 1,
                colour(v, lo, hi),
                esc(q),
                esc(label)
            );
        }
    }
    let _ = write!(
        s,
        r##"<rect class="cursor" x="{LEFT}" y="{}" width="{CELL}" height="{}" fill="none" stroke="#111" stroke-width="2"/></svg>"##,
        TOP - 2,
        units.len() * ROW + 3
    );
    s
}

fn short(t: &str, n: usize) -> String {
    let c: Vec<char> = t.chars().collect();
    if c.len() <= n {
        t.to_string()
    } else {
        c[..n].iter().collect::<String>() + "…"
    }
}

fn legend(lo: f32, hi: f32, title: &str) -> String {
    let mut s = format!(
        r##"<svg class="legend" width="260" height="34" role="img" aria-label="colour scale {}"><text x="0" y="10" class="unit">{}</text>"##,
        esc(title),
        esc(title)
    );
    for i in 0..50 {
        let v = lo + (hi - lo) * i as f32 / 49.0;
        let _ = write!(
            s,
            r##"<rect x="{}" y="14" width="4" height="10" fill="{}"/>"##,
            30 + i * 4,
            colour(v, lo, hi)
        );
    }
    let _ = write!(
        s,
        r##"<text x="26" y="33" class="unit" text-anchor="end">{lo:+.1}</text><text x="130" y="33" class="unit" text-anchor="middle">{:+.1}</text><text x="234" y="33" class="unit">{hi:+.1}</text></svg>"##,
        (lo + hi) / 2.0
    );
    s
}

/// A legend for values in [0, m] drawn white to red (attention weights).
fn legend_weights(m: f32, title: &str) -> String {
    let mut s = format!(
        r##"<svg class="legend" width="260" height="34" role="img" aria-label="colour scale {}"><text x="0" y="10" class="unit">{}</text>"##,
        esc(title),
        esc(title)
    );
    for i in 0..50 {
        let v = m * i as f32 / 49.0;
        let _ = write!(
            s,
            r##"<rect x="{}" y="14" width="4" height="10" fill="{}"/>"##,
            30 + i * 4,
            colour(v, -m, m)
        );
    }
    let _ = write!(
        s,
        r##"<text x="26" y="33" class="unit" text-anchor="end">0</text><text x="234" y="33" class="unit">{m:.2}</text></svg>"##
    );
    s
}

fn sparkline(ins: &Inspection, unit: usize) -> String {
    let steps = ins.trace.steps;
    let (w, h) = (steps.max(2) * 14, 36usize);
    let ys: Vec<f32> = (0..steps)
        .map(|t| value(ins, "hidden h", t, unit))
        .collect();
    let m = ys.iter().fold(1.0f32, |a, b| a.max(b.abs()));
    let pts: Vec<String> = ys
        .iter()
        .enumerate()
        .map(|(t, y)| {
            format!(
                "{:.1},{:.1}",
                7.0 + t as f32 * 14.0,
                h as f32 / 2.0 - y / m * (h as f32 / 2.0 - 3.0)
            )
        })
        .collect();
    format!(
        r##"<svg class="spark" width="{w}" height="{h}"><line x1="0" x2="{w}" y1="{}" y2="{}" stroke="#ccc"/><polyline fill="none" stroke="#333" stroke-width="1.5" points="{}"/></svg>"##,
        h / 2,
        h / 2,
        pts.join(" ")
    )
}

/// What a unit tracks, read off its h over the sentence.
pub fn reading(ins: &Inspection, unit: usize, labels: &[String]) -> String {
    let steps = ins.trace.steps;
    let h: Vec<f32> = (0..steps)
        .map(|t| value(ins, "hidden h", t, unit))
        .collect();
    let arg = |better: fn(f32, f32) -> bool| {
        (0..steps).fold(0, |b, t| if better(h[t], h[b]) { t } else { b })
    };
    let (hi, lo) = (arg(|a, b| a > b), arg(|a, b| a < b));
    // A backward direction reads right to left: its previous step is t + 1.
    let backward = ins.trace.direction == "backward";
    let mut jump = (0usize, 0f32);
    for t in 0..steps {
        let prev = match (backward, t) {
            (false, 0) => 0.0,
            (false, _) => h[t - 1],
            (true, _) if t + 1 == steps => 0.0,
            (true, _) => h[t + 1],
        };
        let d = h[t] - prev;
        if d.abs() > jump.1.abs() {
            jump = (t, d);
        }
    }
    let range = h[hi] - h[lo];
    if range < 0.1 {
        return format!("steady near {:+.2} over the whole text", h[hi]);
    }
    format!(
        "high after “{}” ({:+.2}), low after “{}” ({:+.2}); its biggest change, {:+.2}, comes at “{}”",
        labels[hi], h[hi], labels[lo], h[lo], jump.1, labels[jump.0]
    )
}

fn diagram(sh: &LayerShape, steps: usize, layer: usize, backward: bool) -> String {
    let cell = match sh.cell {
        CellKind::Lstm => "LSTM",
        CellKind::Gru => "GRU",
        CellKind::SimpleRnn => "SimpleRNN",
    };
    let out_units = sh.units * sh.directions;
    let state = if sh.cell == CellKind::Lstm {
        format!("h [1, {u}] and c [1, {u}]", u = sh.units)
    } else {
        format!("h [1, {}]", sh.units)
    };
    format!(
        r##"<svg id="diagram" width="760" height="170" viewBox="0 0 760 170" role="img" aria-label="layer diagram">
<defs><marker id="arr" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>
<rect x="10" y="50" width="170" height="60" rx="6" class="box"/><text x="95" y="74" text-anchor="middle">input x</text><text x="95" y="94" text-anchor="middle" class="mono">[1, {steps}, {input}]</text>
<text x="95" y="126" text-anchor="middle" class="note">batch, steps, features</text>
<line x1="180" y1="80" x2="268" y2="80" stroke="#333" marker-end="url(#arr)"/>
<rect x="270" y="40" width="210" height="80" rx="6" class="box cellbox"/><text x="375" y="64" text-anchor="middle">{cell}, units = {units}{bi}</text><text x="375" y="86" text-anchor="middle" class="mono">{state}</text>
<text x="375" y="106" text-anchor="middle" class="note">one cell, {steps} steps{dir}</text>
<path d="M330,40 C330,8 420,8 420,40" fill="none" stroke="#b33" stroke-width="1.5" marker-end="url(#arr)"/><text x="375" y="14" text-anchor="middle" class="note">state carried to the next step</text>
<line x1="480" y1="70" x2="568" y2="55" stroke="#333" marker-end="url(#arr)"/><line x1="480" y1="90" x2="568" y2="115" stroke="#333" marker-end="url(#arr)"/>
<rect x="570" y="30" width="180" height="44" rx="6" class="box {seq_on}"/><text x="660" y="48" text-anchor="middle">return_sequences=True</text><text x="660" y="66" text-anchor="middle" class="mono">[1, {steps}, {out_units}]</text>
<rect x="570" y="96" width="180" height="44" rx="6" class="box {last_on}"/><text x="660" y="114" text-anchor="middle">return_sequences=False</text><text x="660" y="132" text-anchor="middle" class="mono">[1, {out_units}]</text>
<text x="375" y="160" text-anchor="middle" class="note">layer {layer} (from 0) of {layers}; the model uses this layer's {used}</text>
</svg>"##,
        input = sh.input,
        units = sh.units,
        bi = if sh.directions == 2 {
            ", ×2 directions"
        } else {
            ""
        },
        dir = if backward {
            ", reading right to left"
        } else {
            ""
        },
        seq_on = if sh.return_sequences { "on" } else { "off" },
        last_on = if sh.return_sequences { "off" } else { "on" },
        layers = sh.layers,
        used = if sh.return_sequences {
            "output of every step"
        } else {
            "last step's output only"
        },
    )
}

fn attention(ins: &Inspection) -> String {
    let Some(a) = &ins.attention else {
        return String::new();
    };
    let (cw, ch, left, top) = (30usize, 20usize, 90usize, 70usize);
    // White to red over [0, the largest weight], so that the pattern shows.
    let m = a.weights.iter().flatten().fold(0.05f32, |x, &y| x.max(y));
    let (w, h) = (
        left + a.source.len() * cw + 10,
        top + a.target.len() * ch + 10,
    );
    let mut s = format!(
        r##"<h2>Attention: which source words each output word reads</h2><p>Rows: the translation's tokens in order; columns: the English tokens; redder = more weight (each row sums to 1; hover for the value).</p>{}<svg id="attention" width="{w}" height="{h}" role="img" aria-label="attention matrix">"##,
        legend_weights(m, "attention weight")
    );
    for (j, t) in a.source.iter().enumerate() {
        let x = left + j * cw + cw / 2;
        let _ = write!(
            s,
            r##"<text transform="translate({x},{}) rotate(-50)" class="tok">{}</text>"##,
            top - 6,
            esc(&show_token(t))
        );
    }
    for (i, row) in a.weights.iter().enumerate() {
        let y = top + i * ch;
        let tgt = a.target.get(i).map_or(String::new(), |t| show_token(t));
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" class="tok" text-anchor="end">{}</text>"##,
            left - 4,
            y + ch - 6,
            esc(&tgt)
        );
        for (j, &v) in row.iter().enumerate() {
            let _ = write!(
                s,
                r##"<rect x="{}" y="{y}" width="{}" height="{}" fill="{}"><title>“{}” → “{}”: {v:.3}</title></rect>"##,
                left + j * cw,
                cw - 1,
                ch - 1,
                colour(v, -m, m),
                esc(&tgt),
                esc(&show_token(&a.source[j]))
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The whole page.
pub fn render(ins: &Inspection, units: &[usize]) -> String {
    let t = &ins.trace;
    let backward = t.direction == "backward";
    let labels: Vec<String> = ins.tokens.iter().map(|x| show_token(x)).collect();
    let ws = words(&ins.tokens);
    let qs: Vec<&str> = ins
        .trace
        .quantities
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    let mut body = String::new();
    let _ = write!(
        body,
        r##"<h1>Inside <code>{}</code> — {} layer {} ({})</h1>
<section id="answer"><h2>The model's answer</h2><p class="answer">{}</p><p class="note">the layer reads: “{}”</p></section>"##,
        esc(&ins.model),
        esc(&ins.layer_name),
        t.layer,
        esc(t.direction),
        esc(&ins.answer),
        esc(&ws
            .iter()
            .map(|w| w.0.as_str())
            .collect::<Vec<_>>()
            .join(" "))
    );
    let _ = write!(
        body,
        r##"<section><h2>What <code>units</code> means</h2><p><b>units = {u}</b> is the size of the memory: the hidden state h{c} holds {u} numbers, the same {u} numbers updated at every one of the {steps} steps. It is not the number of steps: this text has {steps} tokens, and a longer text would use the same {u} units more times.</p>{}</section>"##,
        diagram(&ins.shape, t.steps, t.layer, backward),
        u = t.units,
        c = if ins.shape.cell == CellKind::Lstm {
            " (and the memory cell c)"
        } else {
            ""
        },
        steps = t.steps,
    );
    // Step-through.
    let _ = write!(
        body,
        r##"<section id="stepper"><h2>The memory over time</h2><p>Move the slider (or use ← →) to step through the text{}; the bars show the chosen units after reading the marked token.</p>
<div class="controls"><button id="prev" type="button">◀</button><input id="step" type="range" min="0" max="{}" value="0" aria-label="step"><button id="next" type="button">▶</button> <span id="steplabel"></span></div>
<div class="words">{}</div><div id="bars"></div></section>"##,
        if backward {
            ", which this backward direction reads right to left"
        } else {
            ""
        },
        t.steps.saturating_sub(1),
        ws.iter()
            .map(|(w, start, n)| format!(
                r##"<span class="word" data-start="{start}" data-n="{n}">{}</span>"##,
                esc(w)
            ))
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Top units.
    if !units.is_empty() {
        let _ = write!(
            body,
            r##"<section id="topunits"><h2>The units that move the answer most</h2><p class="note">Ranked by {}.</p><table><tr><th>unit</th><th>effect</th><th>h over the text</th><th>what it tracks</th></tr>"##,
            esc(if ins.importance_rule.is_empty() {
                "how much h varies over the text"
            } else {
                &ins.importance_rule
            })
        );
        for &u in units.iter().take(8) {
            let effect = match (&ins.importance, &ins.importance_sides) {
                (Some(imp), Some((pos, neg))) => format!(
                    "{:+.3}: pushes towards {}",
                    imp[u],
                    if imp[u] >= 0.0 { pos } else { neg }
                ),
                (Some(imp), None) => format!("{:.3}", imp[u]),
                _ => "—".into(),
            };
            let _ = write!(
                body,
                r##"<tr><td>{u}</td><td>{}</td><td>{}</td><td>{}</td></tr>"##,
                esc(&effect),
                sparkline(ins, u),
                esc(&reading(ins, u, &labels))
            );
        }
        body.push_str("</table></section>");
    }
    // Heatmaps with the shared scales.
    let _ = write!(
        body,
        r##"<section id="heatmaps"><h2>Gates and states, token by token</h2><p>Rows: units; columns: tokens{}. Hover a cell for its exact value. Gates share the 0 … 1 scale; states share a −m … +m scale.</p><div class="legends">{}{}</div>"##,
        if backward {
            " (this direction read them right to left: ←)"
        } else {
            ""
        },
        legend(0.0, 1.0, "gates"),
        {
            let m = qs
                .iter()
                .filter(|q| !q.contains("gate"))
                .map(|q| scale(ins, q, units).1)
                .fold(1.0f32, f32::max);
            legend(-m, m, "states")
        }
    );
    for q in &qs {
        let _ = write!(
            body,
            r##"<h3>{}</h3>{}"##,
            esc(q),
            heatmap(ins, q, units, &labels)
        );
    }
    body.push_str("</section>");
    body.push_str(&attention(ins));
    // Data for the step-through: selected units only.
    let data = json!({
        "tokens": labels,
        "units": units,
        "quantities": qs.iter().map(|q| {
            let vals: Vec<Vec<f32>> = (0..t.steps).map(|s| units.iter().map(|&u| value(ins, q, s, u)).collect()).collect();
            json!({"name": q, "values": vals})
        }).collect::<Vec<_>>(),
    });
    format!(
        r##"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>zoo inspect: {}</title><style>{CSS}</style></head><body>{body}<script id="data" type="application/json">{}</script><script>{JS}</script></body></html>"##,
        esc(&ins.model),
        data.to_string().replace("</", "<\\/")
    )
}

const CSS: &str = r##"
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}h3{font-size:.95em;margin:.8em 0 .2em}
.answer{font-size:1.25em;font-weight:600;background:#f4f7fb;padding:.5em .8em;border-left:4px solid #36c}
.note{color:#666;font-size:.85em}.mono{font-family:ui-monospace,monospace;font-size:13px}
svg text{font-size:11px;fill:#222}.tok{font-family:ui-monospace,monospace}.unit{font-size:10px;fill:#555}
.box{fill:#fff;stroke:#333}.cellbox{fill:#fff4e6}.on{fill:#e8f4e8;stroke:#2a2;stroke-width:2}.off{fill:#f7f7f7;stroke:#bbb}
.heat{display:block;overflow:visible}.legends svg{margin-right:2em}
table{border-collapse:collapse}td,th{border-bottom:1px solid #eee;padding:.3em .6em;text-align:left;vertical-align:middle}
.controls{margin:.5em 0}#step{width:60%}.word{padding:1px 3px;border-radius:3px}.word.now{background:#ffd54f}
#bars .q{display:inline-block;vertical-align:top;margin:0 1.2em .8em 0}#bars .q b{font-size:.85em}
"##;

const JS: &str = r##"
(function(){
var D=JSON.parse(document.getElementById('data').textContent);
var slider=document.getElementById('step'),label=document.getElementById('steplabel'),bars=document.getElementById('bars');
function bar(v,lo,hi){var w=120,x0=lo<0?w/2:0,s=(v-(lo<0?0:lo))/(hi-lo)*w;var x=s<0?x0+s:x0;
return '<svg width="'+w+'" height="10"><rect x="0" y="0" width="'+w+'" height="10" fill="#f1f1f1"/><rect x="'+x.toFixed(1)+'" y="0" width="'+Math.abs(s).toFixed(1)+'" height="10" fill="'+(v<0?'#4a7bd0':'#d04a4a')+'"><title>'+v.toFixed(4)+'</title></rect></svg>';}
function show(t){
 slider.value=t;label.textContent='step '+(t+1)+' of '+D.tokens.length+': “'+D.tokens[t]+'”';
 document.querySelectorAll('.word').forEach(function(w){var s=+w.dataset.start,n=+w.dataset.n;w.classList.toggle('now',t>=s&&t<s+n);});
 document.querySelectorAll('.heat .cursor').forEach(function(c){c.setAttribute('x',56+t*26);});
 var html='';D.quantities.forEach(function(q){var gate=q.name.indexOf('gate')>=0;var m=1;q.values.forEach(function(r){r.forEach(function(v){m=Math.max(m,Math.abs(v));});});
  html+='<div class="q"><b>'+q.name+'</b>';q.values[t].forEach(function(v,i){html+='<div><span class="unit">unit '+D.units[i]+'</span> '+bar(v,gate?0:-m,gate?1:m)+' '+v.toFixed(3)+'</div>';});html+='</div>';});
 bars.innerHTML=html;}
slider.addEventListener('input',function(){show(+slider.value);});
document.getElementById('prev').onclick=function(){show(Math.max(0,+slider.value-1));};
document.getElementById('next').onclick=function(){show(Math.min(D.tokens.length-1,+slider.value+1));};
document.addEventListener('keydown',function(e){if(e.key==='ArrowLeft')show(Math.max(0,+slider.value-1));if(e.key==='ArrowRight')show(Math.min(D.tokens.length-1,+slider.value+1));});
show(0);document.body.dataset.ready='1';
})();
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subword_pieces_join_into_words() {
        let toks: Vec<String> = ["▁Ein", "▁Mann", "▁fähr", "t", "."]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let w = words(&toks);
        let shown: Vec<(&str, usize, usize)> =
            w.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
        assert_eq!(
            shown,
            [("Ein", 0, 1), ("Mann", 1, 1), ("fährt", 2, 2), (".", 4, 1)]
        );
        let plain: Vec<String> = ["not", "bad"].iter().map(|s| s.to_string()).collect();
        assert_eq!(words(&plain).len(), 2);
    }
}
