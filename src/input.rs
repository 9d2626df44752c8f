//! Reading one text per line from arguments, files or stdin, without letting
//! one bad line (invalid UTF-8, CRLF, a BOM, a huge line) take the others
//! down, and handing them on as soon as they arrive.

use std::collections::VecDeque;
use std::io::BufRead;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::error::usage;

/// One input: its number (1-based line or argument number) and its text,
/// or why it could not be read.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: usize,
    pub text: std::result::Result<String, String>,
}

/// Iterates the lines of `reader`, stripping `\n` / `\r\n` and a UTF-8 byte
/// order mark at the start. Invalid UTF-8 is an error for that line only.
pub struct Lines<R> {
    reader: R,
    number: usize,
    buf: Vec<u8>,
    /// Bytes consumed so far, for progress bars.
    pub bytes_read: u64,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            number: 0,
            buf: Vec::new(),
            bytes_read: 0,
        }
    }
}

const BOM: &[u8] = b"\xef\xbb\xbf";

impl<R: BufRead> Iterator for Lines<R> {
    type Item = Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(n) => {
                self.bytes_read += n as u64;
                self.number += 1;
                let mut bytes = &self.buf[..];
                if self.number == 1 {
                    bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
                }
                if bytes.last() == Some(&b'\n') {
                    bytes = &bytes[..bytes.len() - 1];
                }
                if bytes.last() == Some(&b'\r') {
                    bytes = &bytes[..bytes.len() - 1];
                }
                let text = match std::str::from_utf8(bytes) {
                    Ok(s) => Ok(s.to_string()),
                    Err(e) => Err(format!(
                        "not valid UTF-8 (bad byte at column {}): save the file as UTF-8",
                        e.valid_up_to() + 1
                    )),
                };
                Some(Ok(Line {
                    number: self.number,
                    text,
                }))
            }
            Err(e) => Some(Err(e).context(format!("reading line {}", self.number + 1))),
        }
    }
}

/// A readable input stream and its size when known.
pub type Reader = (Box<dyn BufRead + Send>, Option<u64>);

/// Opens `path` (`-` = stdin) for line reading, with its size when known.
/// A missing file or a folder is a usage error.
pub fn open(path: &str) -> Result<Reader> {
    if path == "-" {
        return Ok((Box::new(std::io::BufReader::new(std::io::stdin())), None));
    }
    let meta = std::fs::metadata(path).map_err(|e| usage(format!("cannot open {path}: {e}")))?;
    if meta.is_dir() {
        return Err(usage(format!(
            "{path} is a folder: give a text file, one input per line"
        )));
    }
    let f = std::fs::File::open(path).map_err(|e| usage(format!("cannot open {path}: {e}")))?;
    Ok((
        Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
        Some(meta.len()),
    ))
}

/// Where one command-line input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The text itself: one input.
    Text(String),
    /// A file (`-` = stdin): one input per line.
    File(String),
}

/// File name endings that mark an argument as a file of texts even when no
/// such file exists: `zoo run ner notes.txt` with a typo in the name must
/// not tag the words "notes.txt".
const TEXT_FILE_EXTENSIONS: &[&str] = &["txt", "tsv", "csv", "jsonl", "conll"];

impl Source {
    /// What a positional argument is: an existing file is a file of texts
    /// (one per line); a folder, or a missing file named like a text file
    /// (`notes.txt`, no spaces), is a usage error; anything else is a text.
    pub fn from_arg(arg: &str) -> Result<Source> {
        match std::fs::metadata(arg) {
            Ok(m) if m.is_dir() => Err(usage(format!(
                "{arg} is a folder: give a text file (one input per line), or pass the words with --text"
            ))),
            Ok(_) => Ok(Source::File(arg.to_string())),
            Err(_) if Self::named_like_a_file(arg) => Err(usage(format!(
                "no such file: {arg} (to run the words themselves, pass --text \"{arg}\")"
            ))),
            Err(_) => Ok(Source::Text(arg.to_string())),
        }
    }

    fn named_like_a_file(arg: &str) -> bool {
        !arg.chars().any(char::is_whitespace)
            && std::path::Path::new(arg)
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| TEXT_FILE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
    }
}

/// A source ready to read: a text, or an open file.
pub enum Opened {
    Text(String),
    Lines(Reader),
}

impl Source {
    /// Opens a file source (a missing or unreadable file is a usage error).
    pub fn open(self) -> Result<Opened> {
        Ok(match self {
            Source::Text(t) => Opened::Text(t),
            Source::File(p) => Opened::Lines(open(&p)?),
        })
    }
}

/// Inputs handed on in chunks of what has arrived: a pipe or `tail -f`
/// gets each line's result as soon as that line is in, while a file fills
/// whole chunks (and so whole batches). Reading runs on its own thread, a
/// bounded number of lines ahead, so memory stays flat.
pub struct Chunks {
    inner: Inner,
    bytes: Arc<AtomicU64>,
    total: Option<u64>,
}

enum Inner {
    Texts(VecDeque<Line>),
    Stream(Receiver<Result<Line>>),
}

/// Lines read ahead of the driver at most.
const READ_AHEAD: usize = 8192;

impl Chunks {
    /// Command-line texts: each argument is one input, whatever it holds
    /// (a line break inside becomes a space, so that one argument is one
    /// result line and character offsets stay the same).
    pub fn from_texts(texts: Vec<String>) -> Self {
        let lines = texts
            .into_iter()
            .enumerate()
            .map(|(i, t)| Line {
                number: i + 1,
                text: Ok(t.replace(['\n', '\r'], " ")),
            })
            .collect();
        Self {
            inner: Inner::Texts(lines),
            bytes: Arc::default(),
            total: None,
        }
    }

    /// One input per line of `reader`.
    pub fn from_reader(reader: Reader) -> Self {
        Self::from_sources(vec![Opened::Lines(reader)])
    }

    /// Texts and files in the order given: a text is one input, a file one
    /// per line. Inputs are numbered 1, 2, … across all of them (a lone
    /// file's numbers are its line numbers). Files must be opened already
    /// (`open`), so that a missing one fails before any output.
    pub fn from_sources(sources: Vec<Opened>) -> Self {
        let total = sources
            .iter()
            .map(|s| match s {
                Opened::Text(_) => Some(0),
                Opened::Lines((_, size)) => *size,
            })
            .sum::<Option<u64>>();
        let (tx, rx) = sync_channel(READ_AHEAD);
        let bytes = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&bytes);
        std::thread::spawn(move || {
            let (mut number, mut done_bytes) = (0, 0);
            for source in sources {
                match source {
                    Opened::Text(t) => {
                        number += 1;
                        let text = Ok(t.replace(['\n', '\r'], " "));
                        if tx.send(Ok(Line { number, text })).is_err() {
                            return;
                        }
                    }
                    Opened::Lines((reader, _)) => {
                        let mut lines = Lines::new(reader);
                        while let Some(l) = lines.next() {
                            seen.store(done_bytes + lines.bytes_read, Ordering::Relaxed);
                            let stop = l.is_err();
                            let l = l.map(|l| {
                                number += 1;
                                Line { number, ..l }
                            });
                            if tx.send(l).is_err() || stop {
                                return; // the driver stopped listening, or reading failed
                            }
                        }
                        done_bytes += lines.bytes_read;
                    }
                }
            }
        });
        Self {
            inner: Inner::Stream(rx),
            bytes,
            total,
        }
    }

    /// The next inputs: waits for one, then takes whatever else has already
    /// arrived, `max` at most. `None` at the end of input.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<Line>>> {
        let max = max.max(1);
        match &mut self.inner {
            Inner::Texts(q) => {
                let n = q.len().min(max);
                Ok((n > 0).then(|| q.drain(..n).collect()))
            }
            Inner::Stream(rx) => {
                let Ok(first) = rx.recv() else {
                    return Ok(None);
                };
                let mut out = vec![first?];
                while out.len() < max {
                    match rx.try_recv() {
                        Ok(l) => out.push(l?),
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                }
                Ok(Some(out))
            }
        }
    }

    /// Bytes read so far and the total when known, for a progress bar.
    pub fn progress(&self) -> (u64, Option<u64>) {
        (self.bytes.load(Ordering::Relaxed), self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_fails_only_its_line() {
        let data: &[u8] = b"good\r\n\xff\xfebad\n\nlast";
        let lines: Vec<Line> = Lines::new(data).map(|l| l.unwrap()).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].text.as_deref(), Ok("good"));
        let err = lines[1].text.as_ref().unwrap_err();
        assert!(err.starts_with("not valid UTF-8"), "{err}");
        assert!(!err.contains("line 2"), "the caller names the line: {err}");
        assert_eq!(lines[2].text.as_deref(), Ok(""));
        assert_eq!(lines[3].text.as_deref(), Ok("last"));
        assert_eq!(lines[3].number, 4);
    }

    #[test]
    fn a_byte_order_mark_is_not_text() {
        let data: &[u8] = b"\xef\xbb\xbfA dog runs.\n\xef\xbb\xbfsecond";
        let lines: Vec<Line> = Lines::new(data).map(|l| l.unwrap()).collect();
        assert_eq!(lines[0].text.as_deref(), Ok("A dog runs."));
        // Only the file's first bytes are a BOM; later it is a character.
        assert_eq!(lines[1].text.as_deref(), Ok("\u{feff}second"));
    }

    #[test]
    fn an_argument_with_a_line_break_is_one_input() {
        let mut c = Chunks::from_texts(vec!["one\ntwo".into(), "three".into()]);
        let chunk = c.next_chunk(10).unwrap().unwrap();
        assert_eq!(chunk.len(), 2);
        assert_eq!(chunk[0].text.as_deref(), Ok("one two"));
        assert!(c.next_chunk(10).unwrap().is_none());
    }

    #[test]
    fn a_stream_hands_on_what_has_arrived_without_waiting_for_the_end() {
        // A pipe that has sent one line and stays open: the chunk comes back.
        let (r, mut w) = std::io::pipe().unwrap();
        std::io::Write::write_all(&mut w, b"first\n").unwrap();
        let mut c = Chunks::from_reader((Box::new(std::io::BufReader::new(r)), None));
        let chunk = c.next_chunk(64).unwrap().unwrap();
        assert_eq!(chunk.len(), 1);
        assert_eq!(chunk[0].text.as_deref(), Ok("first"));
        drop(w);
        assert!(c.next_chunk(64).unwrap().is_none());
    }

    #[test]
    fn an_argument_naming_a_file_is_read_and_others_are_texts() {
        let dir = std::env::temp_dir().join(format!("zoo-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("reviews.txt");
        std::fs::write(&file, "first line\nsecond line\n").unwrap();
        let file = file.to_str().unwrap();
        assert_eq!(Source::from_arg(file).unwrap(), Source::File(file.into()));
        for text in [
            "and one more text",
            "either/or.txt is fine",
            "hello",
            "3.14",
        ] {
            assert_eq!(Source::from_arg(text).unwrap(), Source::Text(text.into()));
        }
        for bad in [
            dir.to_str().unwrap(),
            "missing-notes.txt",
            "data.CSV",
            "x/y.conll",
        ] {
            let e = Source::from_arg(bad).expect_err(bad);
            assert_eq!(
                crate::error::Kind::of(&e),
                crate::error::Kind::Usage,
                "{bad}"
            );
            assert!(e.to_string().contains(bad), "{e}");
        }
        // A file and a text together, numbered in order.
        let opened = [
            Source::File(file.into()),
            Source::Text("and one more".into()),
        ]
        .into_iter()
        .map(|s| s.open().unwrap())
        .collect();
        let mut c = Chunks::from_sources(opened);
        let mut got = Vec::new();
        while let Some(chunk) = c.next_chunk(64).unwrap() {
            got.extend(chunk.into_iter().map(|l| (l.number, l.text.unwrap())));
        }
        let want = [(1, "first line"), (2, "second line"), (3, "and one more")];
        assert_eq!(got, want.map(|(n, t)| (n, t.to_string())));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_folder_or_missing_file_is_a_usage_error() {
        for p in [".", "/no/such/file.txt"] {
            let e = open(p).err().expect("not a readable file");
            assert_eq!(crate::error::Kind::of(&e), crate::error::Kind::Usage, "{p}");
        }
    }
}
