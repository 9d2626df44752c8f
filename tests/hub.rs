//! `--model owner/name[@rev]` against a Hub stand-in on 127.0.0.1: the
//! endpoints hf-hub calls (`GET {endpoint}/{repo}/resolve/{rev}/{file}`
//! with Range, ETag and X-Repo-Commit), serving a repo made from the
//! shipped NER model folder (and a two-file translator ensemble).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// repo id -> revision -> (commit, file -> bytes)
type Repos = HashMap<String, HashMap<String, (String, HashMap<String, Vec<u8>>)>>;

struct Hub {
    addr: String,
    repos: Arc<Mutex<Repos>>,
    fail_500: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hub {
    fn start() -> Hub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let repos: Arc<Mutex<Repos>> = Arc::default();
        let fail_500 = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, f, s) = (repos.clone(), fail_500.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: the server stops with the test, or after 120 s.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while !s.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &r, f.load(Ordering::SeqCst)),
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Hub {
            addr,
            repos,
            fail_500,
            stop,
            thread: Some(thread),
        }
    }

    fn add(&self, repo: &str, rev: &str, commit: &str, files: HashMap<String, Vec<u8>>) {
        self.repos
            .lock()
            .unwrap()
            .entry(repo.into())
            .or_default()
            .insert(rev.into(), (commit.into(), files));
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(mut stream: TcpStream, repos: &Mutex<Repos>, fail_500: bool) {
    stream.set_nonblocking(false).ok();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut range: Option<(usize, Option<usize>)> = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            let (a, b) = v.trim().split_once('-').unwrap();
            range = Some((a.parse().unwrap(), b.parse().ok()));
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let respond =
        |stream: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]| {
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        };
    if fail_500 {
        return respond(&mut stream, "500 Internal Server Error", &[], b"boom");
    }
    // /{owner}/{name}/resolve/{rev}/{file}
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    let found = (parts.len() == 5 && parts[2] == "resolve")
        .then(|| {
            let repos = repos.lock().unwrap();
            let (commit, files) = repos
                .get(&format!("{}/{}", parts[0], parts[1]))?
                .get(parts[3])?;
            Some((commit.clone(), files.get(parts[4])?.clone()))
        })
        .flatten();
    let Some((commit, body)) = found else {
        return respond(&mut stream, "404 Not Found", &[], b"not found");
    };
    let etag = format!(
        "\"{:x}-{}\"",
        body.iter()
            .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(b as u64)),
        body.len()
    );
    let mut headers = vec![
        ("ETag".to_string(), etag),
        ("X-Repo-Commit".to_string(), commit),
    ];
    match range {
        Some((a, b)) => {
            let end = b
                .unwrap_or(body.len().saturating_sub(1))
                .min(body.len().saturating_sub(1));
            headers.push((
                "Content-Range".into(),
                format!("bytes {a}-{end}/{}", body.len()),
            ));
            respond(
                &mut stream,
                "206 Partial Content",
                &headers,
                &body[a.min(body.len())..=end],
            );
        }
        None => respond(&mut stream, "200 OK", &headers, &body),
    }
    let mut sink = Vec::new();
    let _ = reader.read_to_end(&mut sink);
}

fn shipped_folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ner-bilstm-crf")
}

fn folder_files(dir: &Path) -> HashMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn zoo(hub: &str, home: &Path, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zoo"));
    cmd.args(args)
        .env("HF_ENDPOINT", hub)
        .env("HF_HOME", home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN");
    for k in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(k);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The failure contract: one `error:` line, exit status 1, no panic.
fn assert_one_line_error(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

const TEXT: &str = "Angela Merkel met Emmanuel Macron in Paris.";

#[test]
fn hub_download_offline_cache_revision_pin_and_failures() {
    let home = std::env::temp_dir().join(format!("zoo-hub-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let files = folder_files(&shipped_folder());
    let mut hub = Hub::start();
    hub.add(
        "zoo-test/ner",
        "main",
        "1111111111111111111111111111111111111111",
        files.clone(),
    );
    // A pinned revision with its own name, so the run shows which one it used.
    let mut v1 = files.clone();
    let cfg = String::from_utf8(v1["config.json"].clone())
        .unwrap()
        .replace("\"ner-bilstm-crf\"", "\"ner-v1\"");
    v1.insert("config.json".into(), cfg.into_bytes());
    hub.add(
        "zoo-test/ner",
        "v1",
        "2222222222222222222222222222222222222222",
        v1,
    );
    // Broken variants.
    let mut truncated = files.clone();
    let w = truncated["model.safetensors"].clone();
    truncated.insert("model.safetensors".into(), w[..w.len() / 2].to_vec());
    hub.add(
        "zoo-test/truncated",
        "main",
        "3333333333333333333333333333333333333333",
        truncated,
    );
    let mut garbage = files.clone();
    garbage.insert(
        "model.safetensors".into(),
        b"\xff\xff\xff\xff\xff\xff\xff\x7fnot safetensors".to_vec(),
    );
    hub.add(
        "zoo-test/garbage",
        "main",
        "4444444444444444444444444444444444444444",
        garbage,
    );
    let mut mismatch = files.clone();
    let cfg = String::from_utf8(mismatch["config.json"].clone()).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    v["units"] = serde_json::json!(v["units"].as_u64().unwrap() + 1);
    mismatch.insert("config.json".into(), v.to_string().into_bytes());
    hub.add(
        "zoo-test/mismatch",
        "main",
        "5555555555555555555555555555555555555555",
        mismatch,
    );
    let mut no_tok = files.clone();
    no_tok.remove("tokenizer.json");
    hub.add(
        "zoo-test/no-tokenizer",
        "main",
        "6666666666666666666666666666666666666666",
        no_tok,
    );

    // First run downloads into HF_HOME/hub and answers.
    let o = zoo(
        &hub.addr,
        &home,
        &[],
        &["run", "ner", "--text", TEXT, "--model", "zoo-test/ner"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("[Paris](LOC)"));
    let snap =
        home.join("hub/models--zoo-test--ner/snapshots/1111111111111111111111111111111111111111");
    assert!(snap.join("model.safetensors").exists() && snap.join("tokenizer.json").exists());

    // A revision pin fetches that revision.
    let o = zoo(
        &hub.addr,
        &home,
        &[],
        &[
            "run",
            "ner",
            "-v",
            "--text",
            TEXT,
            "--model",
            "zoo-test/ner@v1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("model ner-v1 from")
            && stderr(&o).contains("2222222222222222222222222222222222222222"),
        "{}",
        stderr(&o)
    );

    // Each broken repo is a one-line error.
    let run = |repo: &str| {
        zoo(
            &hub.addr,
            &home,
            &[],
            &["run", "ner", "--text", TEXT, "--model", repo],
        )
    };
    assert_one_line_error(
        &run("zoo-test/missing"),
        "config.json not found in Hub repo zoo-test/missing@main",
    );
    assert_one_line_error(&run("zoo-test/no-tokenizer"), "tokenizer.json not found");
    assert_one_line_error(&run("zoo-test/truncated"), "not a valid safetensors file");
    assert_one_line_error(&run("zoo-test/garbage"), "not a valid safetensors file");
    assert_one_line_error(&run("zoo-test/mismatch"), "expected shape");
    hub.fail_500.store(true, Ordering::SeqCst);
    assert_one_line_error(&run("zoo-test/other"), "HTTP 500");
    hub.fail_500.store(false, Ordering::SeqCst);

    // An ensemble repo (config.json lists two weights files) is fetched whole.
    let mut ens =
        folder_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/translate-en-de"));
    let mut cfg: serde_json::Value = serde_json::from_slice(&ens["config.json"]).unwrap();
    cfg["weights"] = serde_json::json!(["model.safetensors", "model-copy.safetensors"]);
    ens.insert("config.json".into(), cfg.to_string().into_bytes());
    ens.insert(
        "model-copy.safetensors".into(),
        ens["model.safetensors"].clone(),
    );
    hub.add(
        "zoo-test/ensemble",
        "main",
        "7777777777777777777777777777777777777777",
        ens.clone(),
    );
    ens.remove("model-copy.safetensors");
    hub.add(
        "zoo-test/half-ensemble",
        "main",
        "8888888888888888888888888888888888888888",
        ens,
    );
    let translate = |repo: &str| {
        zoo(
            &hub.addr,
            &home,
            &[],
            &["run", "translate", "--text", "A dog runs.", "--model", repo],
        )
    };
    let o = translate("zoo-test/ensemble");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!String::from_utf8_lossy(&o.stdout).trim().is_empty());
    let snap = home
        .join("hub/models--zoo-test--ensemble/snapshots/7777777777777777777777777777777777777777");
    assert!(
        snap.join("model.safetensors").exists() && snap.join("model-copy.safetensors").exists()
    );
    assert_one_line_error(
        &translate("zoo-test/half-ensemble"),
        "model-copy.safetensors not found",
    );

    // Server gone: offline mode answers from the cache ...
    hub.stop();
    let offline = [("HF_HUB_OFFLINE", "1")];
    let o = zoo(
        &hub.addr,
        &home,
        &offline,
        &["run", "ner", "--text", TEXT, "--model", "zoo-test/ner"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("[Paris](LOC)"));
    // ... names what is missing from it ...
    let o = zoo(
        &hub.addr,
        &home,
        &offline,
        &[
            "run",
            "ner",
            "--text",
            TEXT,
            "--model",
            "zoo-test/never-fetched",
        ],
    );
    assert_one_line_error(&o, "HF_HUB_OFFLINE=1 and config.json of zoo-test/never-fetched@main is not in the Hugging Face cache");
    // ... and online without a network is a clear error too.
    let o = zoo(
        &hub.addr,
        &home,
        &[],
        &[
            "run",
            "ner",
            "--text",
            TEXT,
            "--model",
            "zoo-test/never-fetched",
        ],
    );
    assert_one_line_error(&o, "cannot reach the Hub");
    std::fs::remove_dir_all(&home).ok();
}

#[test]
fn a_catalogue_model_is_pulled_from_its_hub_repo_and_then_runs_offline_anywhere() {
    let top = std::env::temp_dir().join(format!("zoo-pull-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    // The binary alone, away from the checkout: no models anywhere yet.
    std::fs::create_dir_all(top.join("bin")).unwrap();
    let bin = top.join("bin/zoo");
    std::fs::copy(env!("CARGO_BIN_EXE_zoo"), &bin).unwrap();
    let repo = zoo::catalog::hub_repo("ner-bilstm-crf").expect("the catalogue names a repo");
    let mut hub = Hub::start();
    hub.add(
        repo,
        "main",
        "7777777777777777777777777777777777777777",
        folder_files(&shipped_folder()),
    );
    let run = |env: &[(&str, &str)], args: &[&str]| {
        Command::new(&bin)
            .args(args)
            .current_dir(&top)
            .env("HOME", &top)
            .env("XDG_DATA_HOME", top.join("data"))
            .env("HF_HOME", top.join("hf"))
            .env_remove("ZOO_MODELS")
            .env_remove("HF_HUB_OFFLINE")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    // A catalogue name found nowhere is fetched from its repo on first use.
    let o = run(&[("HF_ENDPOINT", hub.addr.as_str())], &["run", "ner", TEXT]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("[Paris](LOC)"));
    // `zoo pull` copies it into the user data folder ...
    let o = run(
        &[("HF_ENDPOINT", hub.addr.as_str())],
        &["pull", "ner-bilstm-crf"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let pulled = top.join("data/zoo/models/ner-bilstm-crf");
    assert!(pulled.join("model.safetensors").is_file() && pulled.join("chars.json").is_file());
    hub.stop();
    // ... where it is found with no Hub and no cache.
    std::fs::remove_dir_all(top.join("hf")).unwrap();
    let o = run(&[("HF_HUB_OFFLINE", "1")], &["run", "ner", TEXT]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("[Paris](LOC)"));
    let o = run(&[("HF_HUB_OFFLINE", "1")], &["pull", "no-such-model"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    std::fs::remove_dir_all(&top).ok();
}
