//! Errors by kind, so that callers (the CLI, a server) map them to exit
//! codes or HTTP statuses without reading messages.

/// What went wrong, as a caller needs to know it. Library functions return
/// `anyhow::Result`; where the kind matters, one of these is in the chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong: an unknown model, device or option
    /// value, a model of the wrong task, an input file that cannot be read.
    #[error("{0}")]
    Usage(String),
    /// One input text could not be processed; other inputs are unaffected.
    #[error("{0}")]
    Input(String),
}

/// Which kind of failure an error chain holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Usage,
    Input,
    /// Anything else: a broken model file, the Hub, the network, a bug.
    Runtime,
}

impl Kind {
    pub fn of(e: &anyhow::Error) -> Kind {
        match e.chain().find_map(|c| c.downcast_ref::<Error>()) {
            Some(Error::Usage(_)) => Kind::Usage,
            Some(Error::Input(_)) => Kind::Input,
            None => Kind::Runtime,
        }
    }
}

/// A usage error, for `?`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Error::Usage(msg.into()))
}

/// An error chain on one line: `what failed: why`.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string().replace(['\n', '\r'], " ");
        // A wrapper that repeats its cause adds nothing.
        if parts.last().is_some_and(|p| p.ends_with(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

/// True when the chain holds a closed pipe (`zoo … | head`): the reader
/// has what it wanted, which is not a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_found_through_context() {
        use anyhow::Context;
        let e = Err::<(), _>(usage("unknown model `x`"))
            .context("loading")
            .unwrap_err();
        assert_eq!(Kind::of(&e), Kind::Usage);
        assert_eq!(Kind::of(&anyhow::anyhow!("corrupt")), Kind::Runtime);
    }

    #[test]
    fn broken_pipe_is_recognised_under_context() {
        use anyhow::Context;
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let e = Err::<(), _>(io).context("writing").unwrap_err();
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
