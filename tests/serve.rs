//! `zoo serve` on 127.0.0.1 (a free port): every endpoint, every error
//! status, results equal to the CLI's, batching across concurrent clients,
//! a full queue, a timeout, and a graceful drain on SIGTERM. Loopback only;
//! every loop is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ZOO: &str = env!("CARGO_BIN_EXE_zoo");

struct Server {
    child: Child,
    addr: String,
    grpc: String,
}

impl Server {
    fn start(args: &[&str]) -> Server {
        Self::start_with_stderr(args, Stdio::null())
    }

    fn start_with_stderr(args: &[&str], stderr: Stdio) -> Server {
        let mut child = Command::new(ZOO)
            .arg("serve")
            .args(["--port", "0", "--grpc-port", "0"])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        // Two lines: where HTTP and where gRPC listen.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut at = |scheme: &str| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix(&format!("listening on {scheme}://"))
                .unwrap_or_else(|| panic!("{scheme} line: {line:?}"))
                .to_string()
        };
        let addr = at("http");
        let grpc = at("grpc");
        Server { child, addr, grpc }
    }

    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String, String) {
        http(&self.addr, method, path, body)
    }

    fn terminate(&mut self) {
        unsafe_kill(self.child.id());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32) {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
}

/// One HTTP/1.1 request with `Connection: close`: (status, headers, body).
fn http(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, String, String) {
    let (status, head, body) = http_raw(addr, method, path, "", body);
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// The same with extra header lines (each ending in \r\n) and a body of
/// bytes both ways.
fn http_raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&String::from_utf8_lossy(body)).into_bytes()
    } else {
        body.to_vec()
    };
    (status, head, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn cli_json(args: &[&str], stdin: &str) -> Vec<serde_json::Value> {
    let mut child = Command::new(ZOO)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(json)
        .collect()
}

#[test]
fn every_endpoint_answers_and_equals_the_cli() {
    let s = Server::start(&["--model", "sentiment-lstm", "--model", "ner-bilstm-crf"]);
    assert_eq!(s.request("GET", "/v2/health/live", b"").0, 200);
    assert_eq!(s.request("GET", "/v2/health/ready", b"").0, 200);
    let (st, _, b) = s.request("GET", "/v2/models/sentiment-lstm", b"");
    assert_eq!(st, 200);
    let meta = json(&b);
    assert_eq!(meta["inputs"][0]["name"], "text");
    assert_eq!(meta["inputs"][0]["datatype"], "BYTES");
    assert_eq!(
        s.request("GET", "/v2/models/ner-bilstm-crf/ready", b"").0,
        200
    );

    let texts = [
        "a gripping, beautiful film",
        "I wanted to like it, but it's a dull mess.",
        "",
    ];
    let cli = cli_json(&["run", "sentiment", "--json"], &(texts.join("\n") + "\n"));
    let body = serde_json::json!({ "texts": texts }).to_string();
    let (st, head, b) = s.request("POST", "/v1/sentiment", body.as_bytes());
    assert_eq!(st, 200, "{b}");
    assert!(head.to_ascii_lowercase().contains("application/x-ndjson"));
    let served: Vec<serde_json::Value> = b.lines().map(json).collect();
    assert_eq!(served, cli, "the server's records are the CLI's");

    let (st, _, b) = s.request(
        "POST",
        "/v1/ner",
        br#"{"text": "Angela Merkel visited Paris."}"#,
    );
    assert_eq!(st, 200);
    let cli = cli_json(&["run", "ner", "--json"], "Angela Merkel visited Paris.\n");
    assert_eq!(json(&b), cli[0]);
    let (st, _, b) = s.request(
        "POST",
        "/v1/models/ner-bilstm-crf:predict",
        b"{\"text\": \"Berlin\"}\n{\"text\": \"Paris\"}\n",
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(b.lines().count(), 2);

    let req = serde_json::json!({"id": "r1", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": [texts[0], texts[1]]}]});
    let (st, _, b) = s.request(
        "POST",
        "/v2/models/sentiment-lstm/infer",
        req.to_string().as_bytes(),
    );
    assert_eq!(st, 200, "{b}");
    let r = json(&b);
    assert_eq!(r["id"], "r1");
    assert_eq!(r["outputs"][0]["name"], "label");
    assert_eq!(
        r["outputs"][0]["data"],
        serde_json::json!(["positive", "negative"])
    );
    assert_eq!(r["outputs"][2]["shape"], serde_json::json!([2, 2]));

    let (st, _, b) = s.request("GET", "/metrics", b"");
    assert_eq!(st, 200);
    for m in [
        "zoo_requests_total",
        "zoo_request_duration_seconds_bucket",
        "zoo_batch_size_bucket",
        "zoo_queue_depth",
    ] {
        assert!(b.contains(m), "{m} missing from /metrics");
    }
    assert!(b.contains("endpoint=\"/v2/models/{name}/infer\""), "{b}");
}

#[test]
fn bad_requests_get_their_status_and_a_json_error() {
    let s = Server::start(&[
        "--model",
        "sentiment-lstm",
        "--max-body-bytes",
        "4096",
        "--max-text-chars",
        "100",
    ]);
    let long = serde_json::json!({"text": "x".repeat(101)}).to_string();
    let huge = serde_json::json!({"text": "x".repeat(5000)}).to_string();
    let wrong_shape =
        br#"{"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3], "data": ["a"]}]}"#;
    let cases: [(&str, &str, &[u8], u16, &str); 8] = [
        ("POST", "/v1/sentiment", b"{not json", 400, "malformed JSON"),
        ("POST", "/v1/sentiment", br#"{"txt": 1}"#, 400, "`text`"),
        (
            "POST",
            "/v2/models/sentiment-lstm/infer",
            wrong_shape,
            400,
            "shape [3] but 1 strings",
        ),
        (
            "POST",
            "/v2/models/nope/infer",
            b"{}",
            404,
            "no model `nope`",
        ),
        ("GET", "/v2/models/nope", b"", 404, "no model `nope`"),
        ("POST", "/v1/ner", br#"{"text": "x"}"#, 404, "no ner model"),
        ("POST", "/v1/sentiment", long.as_bytes(), 413, "at most 100"),
        ("POST", "/v1/sentiment", huge.as_bytes(), 413, "too large"),
    ];
    for (method, path, body, status, needle) in cases {
        let (st, _, b) = s.request(method, path, body);
        assert_eq!(st, status, "{method} {path}: {b}");
        let e = json(&b);
        assert!(e["error"].as_str().unwrap().contains(needle), "{path}: {b}");
    }
    // One bad request does not affect the next good one.
    let (st, _, _) = s.request("POST", "/v1/sentiment", br#"{"text": "fine"}"#);
    assert_eq!(st, 200);
}

#[test]
fn concurrent_clients_share_batches_and_all_get_their_answer() {
    let s = Server::start(&["--model", "sentiment-lstm", "--max-wait-ms", "20"]);
    let addr = s.addr.clone();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                (0..5)
                    .map(|k| {
                        let text = if (i + k) % 2 == 0 {
                            "a wonderful film"
                        } else {
                            "an awful film"
                        };
                        let (st, _, b) = http(
                            &addr,
                            "POST",
                            "/v1/sentiment",
                            serde_json::json!({"text": text}).to_string().as_bytes(),
                        );
                        assert_eq!(st, 200, "{b}");
                        let want = if (i + k) % 2 == 0 {
                            "positive"
                        } else {
                            "negative"
                        };
                        assert_eq!(json(&b)["label"], want);
                    })
                    .count()
            })
        })
        .collect();
    let answered: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(answered, 80);
    let (_, _, m) = s.request("GET", "/metrics", b"");
    let count = |name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let passes = count("zoo_batch_size_count");
    assert!(
        passes > 0.0 && passes < 80.0,
        "80 requests in {passes} forward passes"
    );
}

/// About 2,000 source tokens: seconds of beam search on this machine.
fn long_english() -> String {
    "A man in a blue shirt is riding a bicycle down the street while a dog runs after him. "
        .repeat(110)
}

#[test]
fn a_full_queue_answers_429_and_a_slow_request_504() {
    let s = Server::start(&[
        "--model",
        "translate-en-fr",
        "--queue",
        "1",
        "--max-batch",
        "1",
        "--max-text-chars",
        "100000",
    ]);
    let long = serde_json::json!({"text": long_english()}).to_string();
    let addr = s.addr.clone();
    let busy = {
        let (addr, long) = (addr.clone(), long.clone());
        std::thread::spawn(move || http(&addr, "POST", "/v1/translate", long.as_bytes()).0)
    };
    std::thread::sleep(Duration::from_millis(400)); // the worker has taken it
    let queued = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            http(
                &addr,
                "POST",
                "/v1/translate",
                br#"{"text": "A dog runs."}"#,
            )
            .0
        })
    };
    std::thread::sleep(Duration::from_millis(200)); // it waits in the queue of 1
    let (st, head, b) = s.request("POST", "/v1/translate", br#"{"text": "A cat sleeps."}"#);
    assert_eq!(st, 429, "{b}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    assert_eq!(busy.join().unwrap(), 200);
    assert_eq!(queued.join().unwrap(), 200);

    let t = Server::start(&[
        "--model",
        "translate-en-fr",
        "--timeout-ms",
        "100",
        "--max-text-chars",
        "100000",
    ]);
    let (st, _, b) = t.request("POST", "/v1/translate", long.as_bytes());
    assert_eq!(st, 504, "{b}");
    // The server is still fine afterwards.
    let (st, _, _) = t.request("GET", "/v2/health/ready", b"");
    assert_eq!(st, 200);
}

#[test]
fn sigterm_drains_requests_in_flight_then_exits() {
    let mut s = Server::start(&[
        "--model",
        "translate-en-fr",
        "--max-batch",
        "1",
        "--max-text-chars",
        "100000",
    ]);
    let body = serde_json::json!({"text": long_english()[..4000].to_string()}).to_string();
    let inflight: Vec<_> = (0..3)
        .map(|_| {
            let (addr, body) = (s.addr.clone(), body.clone());
            std::thread::spawn(move || http(&addr, "POST", "/v1/translate", body.as_bytes()).0)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    s.terminate();
    for t in inflight {
        assert_eq!(
            t.join().unwrap(),
            200,
            "a request in flight at SIGTERM completes"
        );
    }
    let status = s.child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(TcpStream::connect(&s.addr).is_err(), "no longer accepting");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// `clients` threads each send `per_client` requests; every answer is
/// checked. Returns (requests/s, p50 ms, p99 ms).
fn load(
    addr: &str,
    path: &str,
    bodies: &[(String, String)],
    clients: usize,
    per_client: usize,
) -> (f64, f64, f64) {
    let t0 = std::time::Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let addr = addr.to_string();
            let path = path.to_string();
            let bodies = bodies.to_vec();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(per_client);
                for k in 0..per_client {
                    let (body, want) = &bodies[(c + k) % bodies.len()];
                    let t = std::time::Instant::now();
                    let (st, _, b) = http(&addr, "POST", &path, body.as_bytes());
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                    assert_eq!(st, 200, "{b}");
                    assert!(b.contains(want.as_str()), "{b}");
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    (lat.len() as f64 / secs, pct(0.5), pct(0.99))
}

/// The load figures in README (run by hand, training paused):
/// `cargo test --release --test serve -- --ignored --nocapture`.
/// ZOO_LOAD_REQUESTS sets requests per client (default 100).
#[test]
#[ignore]
fn load_figures_batched_against_one_at_a_time() {
    let per: usize = std::env::var("ZOO_LOAD_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let sentiment: Vec<(String, String)> = [
        ("a gripping, beautiful film", "positive"),
        ("I wanted to like it, but it's a dull mess.", "negative"),
        ("the acting is superb and the story moving", "positive"),
        ("a tedious, overlong bore", "negative"),
    ]
    .iter()
    .map(|(t, l)| {
        (
            serde_json::json!({"text": t}).to_string(),
            format!("\"label\":\"{l}\""),
        )
    })
    .collect();
    let ner: Vec<(String, String)> = [
        (
            "Angela Merkel met Emmanuel Macron in Paris on Tuesday.",
            "Emmanuel Macron",
        ),
        (
            "Shares in Deutsche Bank fell after the U.S. Federal Reserve's decision.",
            "Deutsche Bank",
        ),
    ]
    .iter()
    .map(|(t, e)| (serde_json::json!({"text": t}).to_string(), e.to_string()))
    .collect();
    println!("| model | server | clients | requests | requests/s | p50 ms | p99 ms | RSS before → after (MiB) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (model, path, bodies) in [
        ("sentiment-lstm", "/v1/sentiment", &sentiment),
        ("ner-bilstm-crf", "/v1/ner", &ner),
    ] {
        for (label, extra) in [
            ("batched (max-batch 64, max-wait 0)", vec![]),
            (
                "batched (max-batch 64, max-wait 5 ms)",
                vec!["--max-wait-ms", "5"],
            ),
            ("one at a time (max-batch 1)", vec!["--max-batch", "1"]),
        ] {
            let mut args = vec!["--model", model, "--queue", "1024"];
            args.extend(extra.iter());
            let s = Server::start(&args);
            load(&s.addr, path, bodies, 4, 10); // warm up
            for clients in [1usize, 8, 64] {
                let before = rss_kib(s.child.id());
                let (rps, p50, p99) = load(&s.addr, path, bodies, clients, per);
                let after = rss_kib(s.child.id());
                println!(
                    "| {model} | {label} | {clients} | {} | {rps:.0} | {p50:.1} | {p99:.1} | {:.0} → {:.0} |",
                    clients * per,
                    before as f64 / 1024.0,
                    after as f64 / 1024.0
                );
            }
        }
    }
}

#[test]
fn a_fault_mix_leaves_every_good_request_answered() {
    let s = Server::start(&["--model", "sentiment-lstm", "--max-body-bytes", "20000"]);
    let addr = s.addr.clone();
    let threads: Vec<_> = (0..8)
        .map(|c| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut good = 0;
                for k in 0..20 {
                    match (c * 20 + k) % 10 {
                        0 => {
                            let (st, _, _) = http(&addr, "POST", "/v1/sentiment", b"{malformed");
                            assert_eq!(st, 400);
                        }
                        1 => {
                            let big = vec![b'x'; 30_000];
                            let (st, _, _) = http(&addr, "POST", "/v1/sentiment", &big);
                            assert_eq!(st, 413);
                        }
                        2 => {
                            // A client that sends its request and goes away.
                            let mut t = TcpStream::connect(&addr).unwrap();
                            let body = br#"{"text": "abandoned"}"#;
                            let _ = write!(t, "POST /v1/sentiment HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
                            let _ = t.write_all(body);
                            drop(t);
                        }
                        _ => {
                            let (st, _, b) = http(&addr, "POST", "/v1/sentiment", br#"{"text": "a wonderful film"}"#);
                            assert_eq!(st, 200, "{b}");
                            assert_eq!(json(&b)["label"], "positive");
                            good += 1;
                        }
                    }
                }
                good
            })
        })
        .collect();
    let good: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(good, 8 * 20 * 7 / 10);
}

/// `zoo import` of a fixture with its vocabulary and labels into a temp folder.
fn imported_text_model(model: &str, vocab: &str, labels: &str, tag: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("zoo-serve-{tag}-{}", std::process::id()));
    let o = Command::new(ZOO)
        .args(["import", root.join(model).to_str().unwrap(), "--out"])
        .arg(&out)
        .args([
            "--tokenizer",
            root.join(vocab).to_str().unwrap(),
            "--labels",
            labels,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn imported_graph_models_are_served_as_run_classify_and_tag_run_them() {
    let cls = imported_text_model(
        "docs/walkthrough/m.keras",
        "docs/walkthrough/vocab.txt",
        "negative,positive",
        "cls",
    );
    let tag = imported_text_model(
        "tests/fixtures/graph/text_tag/model.keras",
        "tests/fixtures/graph/text_tag/vocab.txt",
        "O,B-X,I-X,B-Y",
        "tag",
    );
    let s = Server::start(&[
        "--model",
        cls.to_str().unwrap(),
        "--model",
        tag.to_str().unwrap(),
    ]);
    // Served under config.json's name (the imported file's stem).
    let name = |d: &std::path::Path| {
        let cfg = json(&std::fs::read_to_string(d.join("config.json")).unwrap());
        cfg["name"].as_str().unwrap().to_string()
    };
    let texts = ["a fine film", "boring and far too long", ""];
    let cli = cli_json(
        &[
            "run",
            "classify",
            "--model",
            cls.to_str().unwrap(),
            "--json",
        ],
        &(texts.join("\n") + "\n"),
    );
    let body = serde_json::json!({ "texts": texts }).to_string();
    let (st, _, b) = s.request(
        "POST",
        &format!("/v1/models/{}:predict", name(&cls)),
        body.as_bytes(),
    );
    assert_eq!(st, 200, "{b}");
    let served: Vec<serde_json::Value> = b.lines().map(json).collect();
    assert_eq!(served, cli, "the server's records are the CLI's");
    // KServe v2: label, score and every label's score.
    let v2 = serde_json::json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a fine film"]}]});
    let (st, _, b) = s.request(
        "POST",
        &format!("/v2/models/{}/infer", name(&cls)),
        v2.to_string().as_bytes(),
    );
    assert_eq!(st, 200, "{b}");
    let out = json(&b);
    assert_eq!(out["outputs"][0]["data"][0], "positive");
    assert_eq!(out["outputs"][2]["shape"], serde_json::json!([1, 2]));
    // The tagger: each text's tokens with their labels.
    let (st, _, meta) = s.request("GET", &format!("/v2/models/{}", name(&tag)), b"");
    assert_eq!(st, 200);
    assert_eq!(json(&meta)["outputs"][0]["name"], "tokens");
    let cli = cli_json(
        &["run", "tag", "--model", tag.to_str().unwrap(), "--json"],
        "the movie was great\n",
    );
    let (st, _, b) = s.request(
        "POST",
        &format!("/v1/models/{}:predict", name(&tag)),
        br#"{"text": "the movie was great"}"#,
    );
    assert_eq!(st, 200, "{b}");
    assert_eq!(json(&b), cli[0]);
    let _ = std::fs::remove_dir_all(cls);
    let _ = std::fs::remove_dir_all(tag);
}

#[test]
fn a_stalled_log_reader_never_stalls_the_server() {
    // stderr is a pipe nobody reads: it fills after a few thousand lines.
    let mut server = Server::start_with_stderr(&["--model", "sentiment-lstm"], Stdio::piped());
    let _unread = server.child.stderr.take().unwrap();
    let addr = server.addr.clone();
    // Each log line is ~40 bytes: 6,000 of them overfill a 64 KiB pipe.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                (0..1500)
                    .filter(|_| http(&addr, "GET", "/v2/health/ready", b"").0 == 200)
                    .count()
            })
        })
        .collect();
    let answered: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(answered, 6000, "every request is answered");
    assert_eq!(http(&addr, "GET", "/v2/health/live", b"").0, 200);
    let (_, _, m) = http(&addr, "GET", "/metrics", b"");
    let dropped: f64 = m
        .lines()
        .find(|l| l.starts_with("zoo_log_lines_dropped "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("the dropped-lines metric");
    assert!(
        dropped > 0.0,
        "lines past the full pipe are dropped and counted"
    );
}

/// Length-prefixed BYTES elements, as Triton's binary tensor data has them.
fn triton_bytes(items: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in items {
        out.extend_from_slice(&(t.len() as u32).to_le_bytes());
        out.extend_from_slice(t.as_bytes());
    }
    out
}

/// A binary answer's JSON (the first Inference-Header-Content-Length
/// bytes) and the tensor data after it.
fn json_and_binary<'a>(head: &str, body: &'a [u8]) -> (serde_json::Value, &'a [u8]) {
    let n: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("inference-header-content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a binary answer says where its JSON ends");
    (serde_json::from_slice(&body[..n]).unwrap(), &body[n..])
}

#[test]
fn triton_binary_tensor_data_metadata_config_and_index_work_as_tritonclient_sends_them() {
    let s = Server::start(&["--model", "sentiment-lstm"]);
    let (st, _, b) = s.request("GET", "/v2", b"");
    assert_eq!(st, 200, "{b}");
    let meta = json(&b);
    assert_eq!(meta["name"], "zoo");
    assert!(meta["extensions"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("binary_tensor_data")));
    let (st, _, b) = s.request("POST", "/v2/repository/index", b"");
    assert_eq!(st, 200, "{b}");
    assert_eq!(json(&b)[0]["name"], "sentiment-lstm");
    assert_eq!(json(&b)[0]["state"], "READY");
    let (st, _, b) = s.request("GET", "/v2/models/sentiment-lstm/config", b"");
    assert_eq!(st, 200, "{b}");
    assert_eq!(json(&b)["input"][0]["data_type"], "TYPE_STRING");
    assert_eq!(json(&b)["output"][2]["dims"], serde_json::json!([-1, 2]));
    assert_eq!(
        s.request("GET", "/v2/models/sentiment-lstm/versions/1", b"")
            .0,
        200
    );
    assert_eq!(
        s.request("GET", "/v2/models/sentiment-lstm/versions/7", b"")
            .0,
        404
    );

    // The texts as binary data; label as binary, probs as JSON.
    let texts = ["a gripping, beautiful film", "a dull mess", ""];
    let data = triton_bytes(&texts);
    let head = serde_json::json!({
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [3, 1],
                    "parameters": {"binary_data_size": data.len()}}],
        "outputs": [{"name": "label", "parameters": {"binary_data": true}},
                    {"name": "probs", "parameters": {"binary_data": false}}],
    })
    .to_string();
    let mut body = head.clone().into_bytes();
    body.extend(&data);
    let (st, h, b) = http_raw(
        &s.addr,
        "POST",
        "/v2/models/sentiment-lstm/versions/1/infer",
        &format!("Inference-Header-Content-Length: {}\r\n", head.len()),
        &body,
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    let (r, raw) = json_and_binary(&h, &b);
    assert_eq!(r["outputs"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["outputs"][0]["name"], "label");
    let size = r["outputs"][0]["parameters"]["binary_data_size"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(raw.len(), size);
    assert_eq!(raw, triton_bytes(&["positive", "negative", ""]));
    assert_eq!(r["outputs"][1]["shape"], serde_json::json!([3, 2]));

    // Every output binary when asked for none by name (the client's default).
    let head = serde_json::json!({
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                    "parameters": {"binary_data_size": 15}}],
        "parameters": {"binary_data_output": true},
    })
    .to_string();
    let mut body = head.clone().into_bytes();
    body.extend(triton_bytes(&["a dull mess"]));
    let (st, h, b) = http_raw(
        &s.addr,
        "POST",
        "/v2/models/sentiment-lstm/infer",
        &format!("Inference-Header-Content-Length: {}\r\n", head.len()),
        &body,
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    let (r, raw) = json_and_binary(&h, &b);
    let sizes: Vec<u64> = r["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["parameters"]["binary_data_size"].as_u64().unwrap())
        .collect();
    // label "negative" (4 + 8 bytes), score (4), probs (2 x 4).
    assert_eq!(sizes, [12, 4, 8], "{r}");
    assert_eq!(raw.len(), 24);

    // A cut element and invalid UTF-8 are 400s that say so.
    for (raw, says) in [
        (vec![9u8, 0, 0, 0, b'a'], "says 9 bytes but 1 are left"),
        (vec![2u8, 0, 0, 0, 0xff, 0xfe], "not UTF-8"),
    ] {
        let head = serde_json::json!({
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1],
                        "parameters": {"binary_data_size": raw.len()}}],
        })
        .to_string();
        let mut body = head.clone().into_bytes();
        body.extend(&raw);
        let (st, _, b) = http_raw(
            &s.addr,
            "POST",
            "/v2/models/sentiment-lstm/infer",
            &format!("Inference-Header-Content-Length: {}\r\n", head.len()),
            &body,
        );
        let b = String::from_utf8_lossy(&b);
        assert_eq!(st, 400, "{b}");
        assert!(b.contains(says), "{b}");
    }
}

/// The Python with `tritonclient` for the official-client check: ZOO_PYTHON,
/// else the repository's venv, else python3.
fn python_with_tritonclient() -> Option<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let candidates = [
        std::env::var("ZOO_PYTHON").unwrap_or_default(),
        format!("{root}/venv/bin/python"),
        "python3".to_string(),
    ];
    candidates.into_iter().filter(|p| !p.is_empty()).find(|p| {
        Command::new(p)
            .args(["-c", "import tritonclient.http, numpy"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[test]
fn tritonclient_with_its_defaults_gets_metadata_config_and_answers() {
    // Triton's own client, when installed (pip install "tritonclient[http,grpc]"):
    // HTTP, and gRPC where its grpc part is there too.
    let Some(python) = python_with_tritonclient() else {
        eprintln!("tritonclient is not installed: the official-client check is skipped");
        return;
    };
    let s = Server::start(&["--model", "sentiment-lstm", "--model", "ner-bilstm-crf"]);
    let grpc = Command::new(&python)
        .args(["-c", "import tritonclient.grpc"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|st| st.success());
    let mut args = vec!["--url", s.addr.as_str()];
    if grpc {
        args.extend(["--grpc-url", s.grpc.as_str()]);
    }
    let o = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/check_triton_client.py"
        ))
        .args(&args)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("\"done\": true"), "{out}");
    assert!(out.contains("\"label\": [\"positive\""), "{out}");
}
