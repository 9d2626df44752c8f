//! `zoo inspect … --out report.html`: one self-contained page with the
//! answer, the layer diagram, heatmaps, top units and (translator) the
//! attention; small enough to mail. scripts/check_inspect_html.sh renders
//! the same pages in headless Chromium.

use std::process::Command;

fn report(args: &[&str]) -> String {
    let out = std::env::temp_dir().join(format!(
        "zoo-report-{}-{}.html",
        std::process::id(),
        args.join("_").len()
    ));
    let o = Command::new(env!("CARGO_BIN_EXE_zoo"))
        .arg("inspect")
        .args(args)
        .arg("--out")
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).ok();
    html
}

fn self_contained(html: &str) {
    for bad in ["http://", "https://", "<link", "src=", "@import"] {
        assert!(!html.contains(bad), "the page fetches something: {bad}");
    }
    // url(…) only for the page's own fragments (arrow markers).
    assert!(html
        .match_indices("url(")
        .all(|(i, _)| html[i..].starts_with("url(#")));
}

#[test]
fn a_sentiment_report_shows_the_answer_the_shapes_and_the_units() {
    let text = "This movie is not bad at all, and the actors, the music and the story are a real joy to watch from start to end.";
    let html = report(&["sentiment-lstm", text, "--layer", "1"]);
    self_contained(&html);
    assert!(html.len() < 2 << 20, "{} bytes", html.len());
    assert!(
        html.contains(r#"<p class="answer">positive (p = "#),
        "the answer comes first"
    );
    assert!(html.contains(r#"id="diagram""#) && html.contains("units = 150"));
    assert!(
        html.contains("[1, 300]") || html.contains(", 300]"),
        "the layer's input is the lower layer's 2×150"
    );
    assert!(html.contains(r#"class="heat""#) && html.contains("forget gate f"));
    assert!(html.contains("pushes towards positive") || html.contains("pushes towards negative"));
    assert!(html.contains("what it tracks") && html.contains("high after “"));
    assert!(html.contains(r#"id="step""#), "the step-through slider");
    let backward = report(&["sentiment-lstm", "not bad", "--direction", "backward"]);
    assert!(backward.contains("right to left"));
}

#[test]
fn an_ner_report_shows_the_tagged_sentence() {
    let html = report(&[
        "ner-bilstm-crf",
        "Angela Merkel met Emmanuel Macron in Paris.",
    ]);
    self_contained(&html);
    assert!(
        html.contains("[Angela Merkel](PER)"),
        "the tagged sentence is the answer"
    );
    assert!(html.contains("pushes towards an entity tag") || html.contains("pushes towards O"));
}

#[test]
fn a_translator_report_shows_the_translation_and_the_attention_by_word() {
    let html = report(&[
        "translate-en-de",
        "A man is riding a bicycle.",
        "--part",
        "decoder",
    ]);
    self_contained(&html);
    assert!(html.contains(r#"id="attention""#));
    assert!(html.contains("Ein Mann"), "the translation is the answer");
    assert!(!html.contains("\u{2581}"), "subword markers are not shown");
}
