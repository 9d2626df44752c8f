//! Heatmap pictures (SVG, PNG) for `zoo inspect --out`, drawn with plotters:
//! behind the `plot` feature, so the library compiles without it.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;

use crate::inspect::{colour, range, short, value, Inspection};

fn load_font() -> Result<&'static [u8]> {
    use std::sync::OnceLock;
    static DONE: OnceLock<std::result::Result<&'static [u8], String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let mut candidates: Vec<String> = std::env::var("ZOO_FONT").ok().into_iter().collect();
        candidates.extend(
            [
                "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/TTF/DejaVuSans.ttf",
                "/usr/share/fonts/dejavu/DejaVuSans.ttf",
                "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
                "/System/Library/Fonts/Supplemental/Arial.ttf",
                "/Library/Fonts/Arial.ttf",
                "C:\\Windows\\Fonts\\arial.ttf",
            ]
            .map(String::from),
        );
        for c in candidates {
            if let Ok(bytes) = std::fs::read(&c) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(bytes);
                }
            }
        }
        Err(
            "no TrueType font found for the picture's labels: set ZOO_FONT=/path/to/font.ttf"
                .to_string(),
        )
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// Heatmaps (units × tokens, one panel per quantity, colour scale on the
/// right) to `.svg` or `.png`.
pub fn render_plot(ins: &Inspection, units: &[usize], qs: &[&str], path: &Path) -> Result<()> {
    let font = load_font()?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let steps = ins
        .tokens
        .len()
        .max(ins.attention.as_ref().map_or(0, |a| a.source.len()));
    let cell = 26u32;
    let width = (200 + cell * steps as u32 + 120).max(640);
    let panel_h = 50 + label_height(ins) as u32 + cell * units.len() as u32;
    let att_h = ins
        .attention
        .as_ref()
        .map_or(0, |a| 120 + cell * a.target.len() as u32);
    let height = panel_h * qs.len() as u32 + att_h + 40;
    match ext.as_str() {
        "svg" => draw(
            SVGBackend::new(path, (width, height)).into_drawing_area(),
            &Labels { glyphs: None },
            ins,
            units,
            qs,
            panel_h,
            cell,
        ),
        "png" => {
            draw(
                BitMapBackend::new(path, (width, height)).into_drawing_area(),
                &Labels {
                    glyphs: Some(ab_glyph::FontRef::try_from_slice(font).map_err(|e| {
                        anyhow!("unreadable font for the labels ({e}): set ZOO_FONT")
                    })?),
                },
                ins,
                units,
                qs,
                panel_h,
                cell,
            )
        }
        _ => bail!("--out must end in .svg or .png, got {}", path.display()),
    }
}

/// How labels are drawn. plotters' bitmap text drops each glyph's left
/// bearing, so letters overlap ("all" reads "al"): bitmaps get their labels
/// placed glyph by glyph with the font's own metrics.
struct Labels {
    glyphs: Option<ab_glyph::FontRef<'static>>,
}

/// Draws `text` with its top-left at `pos`, reading upwards if `rotated`.
fn label<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    labels: &Labels,
    text: &str,
    pos: (i32, i32),
    size: u32,
    rotated: bool,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    use ab_glyph::{Font, ScaleFont};
    let mut style = ("sans-serif", size).into_font();
    if rotated {
        style = style.transform(FontTransform::Rotate270);
    }
    let style = style.color(&BLACK);
    let Some(font) = &labels.glyphs else {
        return root.draw(&Text::new(text.to_string(), pos, style));
    };
    let scaled = font.as_scaled(size as f32);
    let (mut pen, mut prev) = (0f32, None);
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        prev = Some(id);
        if let Some(g) = scaled.outline_glyph(scaled.scaled_glyph(c)) {
            let o = (pen + g.px_bounds().min.x).round() as i32;
            let at = if rotated {
                (pos.0, pos.1 - o)
            } else {
                (pos.0 + o, pos.1)
            };
            root.draw(&Text::new(c.to_string(), at, style.clone()))?;
        }
        pen += scaled.h_advance(id);
    }
    Ok(())
}

/// Tokens as rotated column labels above a grid starting at `x0`.
fn column_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    labels: &Labels,
    tokens: &[String],
    x0: i32,
    grid_top: i32,
    cell: u32,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for (t, tok) in tokens.iter().enumerate() {
        let x = x0 + (t as u32 * cell) as i32 + cell as i32 / 2;
        label(
            root,
            labels,
            &short(&tok.replace('\u{2581}', ""), 12),
            (x - 6, grid_top - 4),
            13,
            true,
        )?;
    }
    Ok(())
}

/// Room for the rotated token labels above a grid.
fn label_height(ins: &Inspection) -> i32 {
    let longest = ins
        .tokens
        .iter()
        .chain(ins.attention.iter().flat_map(|a| a.source.iter()))
        .map(|t| short(t, 12).chars().count())
        .max()
        .unwrap_or(1);
    8 * longest as i32 + 12
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    labels: &Labels,
    ins: &Inspection,
    units: &[usize],
    qs: &[&str],
    panel_h: u32,
    cell: u32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |err: DrawingAreaErrorKind<DB::ErrorType>| anyhow!("drawing failed: {err:?}");
    root.fill(&WHITE).map_err(e)?;
    let title = format!(
        "{} — {}.l{} ({}): {}",
        ins.model,
        ins.layer_name,
        ins.trace.layer,
        ins.trace.direction,
        short(&ins.answer, 90)
    );
    label(&root, labels, &title, (12, 8), 20, false).map_err(e)?;
    let steps = ins.tokens.len();
    let x0 = 90i32;
    for (pi, q) in qs.iter().enumerate() {
        let top = 40 + (pi as u32 * panel_h) as i32;
        let r = range(ins, q, units);
        label(&root, labels, q, (x0, top), 16, false).map_err(e)?;
        let grid_top = top + 24 + label_height(ins);
        column_labels(&root, labels, &ins.tokens, x0, grid_top, cell).map_err(e)?;
        for (row, &u) in units.iter().enumerate() {
            let y = grid_top + (row as u32 * cell) as i32;
            // With a signed effect, the unit's pull on the answer beside it.
            let name = match &ins.importance {
                Some(imp) => format!("unit {u} {:+.2}", imp[u]),
                None => format!("unit {u}"),
            };
            label(&root, labels, &name, (6, y + 6), 12, false).map_err(e)?;
            for t in 0..steps {
                let (r8, g8, b8) = colour(value(ins, q, t, u), r);
                let x = x0 + (t as u32 * cell) as i32;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32 - 1, y + cell as i32 - 1)],
                    RGBColor(r8, g8, b8).filled(),
                ))
                .map_err(e)?;
            }
        }
        // Colour scale.
        let sx = x0 + (steps as u32 * cell) as i32 + 30;
        let sh = (units.len() as u32 * cell).max(60) as i32;
        for i in 0..sh {
            let v = r.1 - (r.1 - r.0) * i as f32 / sh as f32;
            let (r8, g8, b8) = colour(v, r);
            root.draw(&Rectangle::new(
                [(sx, grid_top + i), (sx + 16, grid_top + i + 1)],
                RGBColor(r8, g8, b8).filled(),
            ))
            .map_err(e)?;
        }
        let lab = |v: f32| format!("{v:+.1}");
        label(&root, labels, &lab(r.1), (sx + 22, grid_top), 12, false).map_err(e)?;
        label(
            &root,
            labels,
            &lab(r.0),
            (sx + 22, grid_top + sh - 12),
            12,
            false,
        )
        .map_err(e)?;
    }
    if let Some(a) = &ins.attention {
        let (out, att) = (&a.target, &a.weights);
        let top = 40 + (qs.len() as u32 * panel_h) as i32;
        let heading = "attention (rows: output tokens, columns: source tokens)";
        label(&root, labels, heading, (x0, top), 16, false).map_err(e)?;
        let grid_top = top + 24 + label_height(ins);
        column_labels(&root, labels, &a.source, x0, grid_top, cell).map_err(e)?;
        for (row, (tok, weights)) in out.iter().zip(att).enumerate() {
            let y = grid_top + (row as u32 * cell) as i32;
            label(&root, labels, &short(tok, 12), (8, y + 6), 12, false).map_err(e)?;
            for (t, &w) in weights.iter().enumerate() {
                let (r8, g8, b8) = colour(w, (-1.0, 1.0));
                let x = x0 + (t as u32 * cell) as i32;
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32 - 1, y + cell as i32 - 1)],
                    RGBColor(r8, g8, b8).filled(),
                ))
                .map_err(e)?;
            }
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs of dark pixel columns in a bitmap of `text` drawn by `label`
    /// (`fixed`: glyph by glyph, as PNGs are; else by plotters alone).
    fn strokes(text: &str, size: u32, fixed: bool) -> usize {
        let font = load_font().unwrap();
        let labels = Labels {
            glyphs: Some(ab_glyph::FontRef::try_from_slice(font).unwrap()).filter(|_| fixed),
        };
        let (w, h) = (120u32, 60u32);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            label(&root, &labels, text, (10, 5), size, false).unwrap();
            root.present().unwrap();
        }
        let dark = |x: u32| (0..h).any(|y| buf[((y * w + x) * 3) as usize] < 128);
        (0..w)
            .filter(|&x| dark(x) && (x == 0 || !dark(x - 1)))
            .count()
    }

    #[test]
    fn bitmap_labels_keep_each_glyphs_left_bearing_so_letters_do_not_overlap() {
        // plotters 0.3.7 alone draws "all" at 13 px as two strokes: the
        // l's land on the a's columns.
        for size in 10..=24 {
            for (text, n) in [("all", 3), ("ll", 2), ("ill", 3), ("lil", 3)] {
                assert_eq!(strokes(text, size, true), n, "{text:?} at {size} px");
            }
        }
    }
}
