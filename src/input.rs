//! Reading one text per line from files or stdin, without letting one bad
//! line (invalid UTF-8, CRLF, a huge line) take the others down.

use std::io::BufRead;

use anyhow::{Context, Result};

/// One input line: its number (1-based) and its text, or why it could not
/// be read.
#[derive(Debug, Clone)]
pub struct Line {
    pub number: usize,
    pub text: std::result::Result<String, String>,
}

/// Iterates the lines of `reader`, stripping `\n` / `\r\n`. Invalid UTF-8
/// gives an error for that line only.
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
                if bytes.last() == Some(&b'\n') {
                    bytes = &bytes[..bytes.len() - 1];
                }
                if bytes.last() == Some(&b'\r') {
                    bytes = &bytes[..bytes.len() - 1];
                }
                let text = match std::str::from_utf8(bytes) {
                    Ok(s) => Ok(s.to_string()),
                    Err(e) => Err(format!(
                        "line {} is not valid UTF-8 (bad byte at column {}): save the file as UTF-8",
                        self.number,
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

/// Opens `path` (`-` = stdin) for line reading, with its size when known.
pub fn open(path: &str) -> Result<(Box<dyn BufRead>, Option<u64>)> {
    if path == "-" {
        return Ok((Box::new(std::io::BufReader::new(std::io::stdin())), None));
    }
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
    let size = f.metadata().ok().map(|m| m.len());
    Ok((
        Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
        size,
    ))
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
        assert!(lines[1]
            .text
            .as_ref()
            .unwrap_err()
            .contains("line 2 is not valid UTF-8"));
        assert_eq!(lines[2].text.as_deref(), Ok(""));
        assert_eq!(lines[3].text.as_deref(), Ok("last"));
        assert_eq!(lines[3].number, 4);
    }
}
