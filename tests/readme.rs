//! Every ```console block in README.md and in the book's chapters
//! (`docs/src/*.md`) is run, and its output must be what the page shows:
//! docs and tool cannot drift apart. A block is a
//! sequence of `$ command` lines, each followed by its exact stdout.

use std::path::Path;
use std::process::Command;

struct Example {
    line: usize,
    command: String,
    expected: String,
}

fn examples(readme: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut in_block = false;
    for (i, l) in readme.lines().enumerate() {
        if l.trim_start().starts_with("```") {
            in_block = !in_block && l.trim() == "```console";
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(cmd) = l.strip_prefix("$ ") {
            out.push(Example {
                line: i + 1,
                command: cmd.to_string(),
                expected: String::new(),
            });
        } else if let Some(e) = out.last_mut() {
            e.expected.push_str(l);
            e.expected.push('\n');
        }
    }
    out
}

/// README.md and every chapter of the book.
fn pages(root: &Path) -> Vec<std::path::PathBuf> {
    let mut pages = vec![root.join("README.md")];
    let mut chapters: Vec<_> = std::fs::read_dir(root.join("docs/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    chapters.sort();
    pages.extend(chapters);
    pages
}

#[test]
fn console_examples_print_what_the_readme_and_book_show() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_zoo")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    let mut total = 0;
    for page in pages(root) {
        let text = std::fs::read_to_string(&page).unwrap();
        let name = page.strip_prefix(root).unwrap().display().to_string();
        let examples = examples(&text);
        total += examples.len();
        for e in &examples {
            let o = Command::new("sh")
                .args(["-c", &e.command])
                .current_dir(root)
                .env("PATH", &path)
                .env_remove("ZOO_MODELS")
                .output()
                .unwrap();
            let got = String::from_utf8_lossy(&o.stdout);
            if !o.status.success() || got != e.expected {
                failures.push(format!(
                    "{name}:{}: $ {}\n--- the page shows:\n{}--- zoo printed (status {:?}):\n{}{}",
                    e.line,
                    e.command,
                    e.expected,
                    o.status.code(),
                    got,
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
        }
    }
    assert!(total >= 20, "the README and the book have their examples");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_readme_fits_a_newcomers_three_screens() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.lines().count() <= 250,
        "README.md is for the first ten minutes; move detail to docs/src/"
    );
    // Every chapter the book's summary names exists, and every chapter is named.
    let summary = std::fs::read_to_string(root.join("docs/src/SUMMARY.md")).unwrap();
    for page in pages(root).into_iter().skip(1) {
        let file = page.file_name().unwrap().to_str().unwrap();
        assert!(
            file == "SUMMARY.md" || summary.contains(&format!("({file})")),
            "{file} is not in SUMMARY.md"
        );
    }
}

#[test]
fn the_example_parser_reads_commands_and_their_output() {
    let md = "text\n```console\n$ zoo a\none\ntwo\n$ zoo b\n```\n```sh\n$ not this\n```\n";
    let ex = examples(md);
    assert_eq!(ex.len(), 2);
    assert_eq!(
        (ex[0].command.as_str(), ex[0].expected.as_str()),
        ("zoo a", "one\ntwo\n")
    );
    assert_eq!((ex[1].line, ex[1].expected.as_str()), (6, ""));
}
