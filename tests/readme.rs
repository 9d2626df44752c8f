//! Every ```console block in README.md is run, and its output must be what
//! the README shows: docs and tool cannot drift apart. A block is a
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

#[test]
fn readme_console_examples_print_what_the_readme_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let examples = examples(&readme);
    assert!(examples.len() >= 8, "README has its examples");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_zoo")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
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
                "README.md:{}: $ {}\n--- README shows:\n{}--- zoo printed (status {:?}):\n{}{}",
                e.line,
                e.command,
                e.expected,
                o.status.code(),
                got,
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
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
