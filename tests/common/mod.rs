//! Helpers the integration tests share: running the `zoo` binary.

#![allow(dead_code)] // each test file uses its own subset

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const ZOO: &str = env!("CARGO_BIN_EXE_zoo");

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `zoo ARGS` in `dir` with extra environment and `stdin` piped in.
pub fn zoo_in(dir: &Path, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(ZOO)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that exits early closes its stdin; that is not a failure here.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// Runs `zoo ARGS` in the checkout with `stdin` piped in.
pub fn zoo(args: &[&str], stdin: &[u8]) -> Output {
    zoo_in(root(), &[], args, stdin)
}
