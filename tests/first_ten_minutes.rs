//! The three commands the project exists for, run literally as a newcomer
//! types them: `zoo run sentiment "text"`, `zoo run ner file.txt` (a real
//! file, from another working folder) and a bare `zoo run translate`, in a
//! terminal (a pseudo-terminal) and in a pipe.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{zoo, zoo_in, ZOO};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh folder outside the checkout.
fn elsewhere(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("zoo-first-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn zoo_run_sentiment_text_classifies_the_text() {
    let o = zoo(&["run", "sentiment", "a gripping, beautiful film"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("positive\t")
            && stdout(&o).ends_with("\ta gripping, beautiful film\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn zoo_run_ner_file_txt_tags_each_line_of_the_file() {
    let dir = elsewhere("ner");
    std::fs::write(
        dir.join("file.txt"),
        "Angela Merkel visited Paris.\n\nBerlin is big.\n",
    )
    .unwrap();
    let o = zoo_in(&dir, &[], &["run", "ner", "file.txt"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "[Angela Merkel](PER) visited [Paris](LOC).\n\n[Berlin](LOC) is big.\n"
    );
}

#[test]
fn a_file_and_a_text_are_read_in_the_order_given() {
    let dir = elsewhere("mixed");
    std::fs::write(
        dir.join("reviews.txt"),
        "a wonderful film\na dull, boring mess\n",
    )
    .unwrap();
    let o = zoo_in(
        &dir,
        &[],
        &[
            "run",
            "sentiment",
            "--json",
            "reviews.txt",
            "and one more text",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let recs: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(u64, &str)> = recs
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (1, "a wonderful film"),
            (2, "a dull, boring mess"),
            (3, "and one more text")
        ]
    );
    assert_eq!(recs[0]["label"], "positive");
    assert_eq!(recs[1]["label"], "negative");
}

#[test]
fn a_missing_text_file_or_a_folder_is_a_usage_error_naming_it() {
    let dir = elsewhere("missing");
    std::fs::create_dir_all(dir.join("some_folder")).unwrap();
    for (arg, what) in [
        ("notes.txt", "no such file: notes.txt"),
        ("some_folder", "some_folder is a folder"),
    ] {
        for task in ["ner", "sentiment", "translate"] {
            let o = zoo_in(&dir, &[], &["run", task, arg], b"");
            assert_eq!(o.status.code(), Some(2), "{task} {arg}: {}", stderr(&o));
            assert!(stdout(&o).is_empty(), "{task} {arg}: {}", stdout(&o));
            let err = stderr(&o);
            assert!(
                err.contains(what) && err.lines().count() == 1,
                "{task} {arg}: {err}"
            );
        }
    }
}

#[test]
fn text_flag_is_always_a_text() {
    let dir = elsewhere("textflag");
    std::fs::write(dir.join("notes.txt"), "Berlin is big.\n").unwrap();
    let o = zoo_in(
        &dir,
        &[],
        &[
            "run",
            "ner",
            "--text",
            "notes.txt",
            "--text",
            "either/or.txt is fine",
        ],
        b"",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "notes.txt\neither/or.txt is fine\n");
    // The same words as a positional argument are a text too: they hold spaces.
    let o = zoo_in(&dir, &[], &["run", "ner", "either/or.txt is fine"], b"");
    assert_eq!(stdout(&o), "either/or.txt is fine\n", "{}", stderr(&o));
}

#[test]
fn every_sentence_of_a_paragraph_is_translated_once_in_order() {
    let sentences = [
        "I like cats.",
        "She likes dogs.",
        "We went home after the game.",
        "The weather was cold.",
        "Tom is my friend.",
    ];
    let paragraph = sentences.join(" ");
    let mut args = vec!["run", "translate", "--beam", "1"];
    args.extend(sentences);
    args.push(&paragraph);
    let o = zoo(&args, b"");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines[..5].iter().all(|l| !l.is_empty()), "{out}");
    // The paragraph's translation is each sentence's, in order, once.
    assert_eq!(lines[5], lines[..5].join(" "), "{out}");
}

#[test]
fn a_bare_translate_in_a_pipe_translates_each_line() {
    let o = zoo(
        &["run", "translate", "--beam", "1"],
        b"I like cats.\nShe likes dogs.\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(!stderr(&o).contains("Type a text"), "no prompt in a pipe");
}

/// A child process on a pseudo-terminal, read on a thread.
struct Terminal {
    child: std::process::Child,
    master: std::fs::File,
    seen: mpsc::Receiver<Vec<u8>>,
    screen: String,
    /// Where the next `expect` starts looking: after the last match.
    cursor: usize,
}

impl Terminal {
    fn spawn(args: &[&str]) -> Terminal {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two fresh descriptors, owned below.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: both descriptors are open and owned by nothing else.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let child = Command::new(ZOO)
            .args(args)
            .current_dir(common::root())
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().unwrap();
        let (tx, seen) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            child,
            master,
            seen,
            screen: String::new(),
            cursor: 0,
        }
    }

    /// Waits until the screen shows `text` after the last match.
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(at) = self.screen[self.cursor..].find(text) {
                self.cursor += at + text.len();
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.seen.recv_timeout(left) {
                Ok(b) => self.screen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => panic!("no {text:?} on the terminal; it shows:\n{}", self.screen),
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
    }
}

#[test]
fn a_bare_translate_in_a_terminal_asks_and_answers_each_line() {
    let mut t = Terminal::spawn(&["run", "translate", "--beam", "1"]);
    t.expect("Type a text and press Enter to translate it; Ctrl-D ends.");
    t.expect("> ");
    t.type_line("I like cats.");
    t.expect("Katzen");
    t.expect("> ");
    t.type_line("She likes dogs.");
    t.expect("Hunde");
    t.expect("> ");
    t.master.write_all(&[4]).unwrap(); // Ctrl-D: end of input
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = t.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "zoo did not end at Ctrl-D:\n{}",
            t.screen
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{}", t.screen);
}
