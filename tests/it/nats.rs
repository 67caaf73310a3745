//! Publishing the journal to NATS JetStream (issue 13) against a real `nats-server`.
//!
//! `.ci/run` starts one with JetStream on a loopback port and sets `STOCKD_TEST_NATS_URL`;
//! without it (a local run with no server) these tests say so and pass without running.
//! The stop/start test runs a server of its own (`nats-server` on the PATH, as `.ci/run`
//! installs it), since stopping the shared one would disturb the other tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::{json, Value};

use crate::common::{Binary, Client, Server};

/// The variable `.ci/run` sets to its nats-server's URL.
const URL_VAR: &str = "STOCKD_TEST_NATS_URL";
/// Longest a test waits for the stream (a hang guard, not a performance assertion).
const STREAM_TIMEOUT: Duration = Duration::from_secs(60);

fn nats_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("SKIPPED {test}: {URL_VAR} is not set (.ci/run starts nats-server with JetStream and sets it)");
            None
        }
    }
}

/// A stream name and subject prefix no other test uses (the server is shared).
fn unique(tag: &str) -> (String, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let n = format!("{}_{nanos}", std::process::id());
    (format!("T_{tag}_{n}"), format!("t_{tag}_{n}"))
}

fn nats_toml(url: &str, stream: &str, prefix: &str) -> String {
    format!(
        "[nats]\nurl = {url:?}\nstream = {stream:?}\nsubject_prefix = {prefix:?}\nbackoff_initial_ms = 20\nbackoff_max_ms = 500\n"
    )
}

/// One message of the stream.
#[derive(Debug, Clone)]
struct Msg {
    subject: String,
    id: String,
    body: Value,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Every message of `stream`, in stream order; empty while the stream does not exist.
fn read_stream(url: &str, stream: &str) -> Vec<Msg> {
    runtime().block_on(async {
        let client = async_nats::connect(url).await.expect("connect to nats");
        let js = jetstream::new(client);
        let Ok(mut s) = js.get_stream(stream).await else {
            return Vec::new();
        };
        let state = s.info().await.expect("stream info").state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            let m = s.get_raw_message(seq).await.expect("message");
            let id = m
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .map(|v| v.as_str().to_string())
                .unwrap_or_default();
            out.push(Msg {
                subject: m.subject.to_string(),
                id,
                body: serde_json::from_slice(&m.payload).expect("JSON body"),
            });
        }
        out
    })
}

/// Waits until the stream holds `n` messages.
fn wait_stream(url: &str, stream: &str, n: usize) -> Vec<Msg> {
    let deadline = Instant::now() + STREAM_TIMEOUT;
    loop {
        let got = read_stream(url, stream);
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "{} of {n} messages in {stream}", got.len());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sink(c: &Client) -> Value {
    let list = c.get("/admin/sinks").expect(200).data();
    list.as_array()
        .and_then(|l| l.iter().find(|s| s["id"] == "nats").cloned())
        .unwrap_or_else(|| panic!("no nats sink in {list}"))
}

fn wait_caught_up(c: &Client) -> Value {
    let deadline = Instant::now() + STREAM_TIMEOUT;
    loop {
        let s = sink(c);
        if s["lag"] == 0 && s["state"] == "ok" {
            return s;
        }
        assert!(Instant::now() < deadline, "the nats sink never caught up: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every message id once, and exactly the ids `msg_1..=msg_n`.
fn assert_each_seq_once(msgs: &[Msg], n: u64) {
    let mut ids: Vec<&str> = msgs.iter().map(|m| m.id.as_str()).collect();
    let len = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), len, "a message id twice in the stream");
    let mut seqs: Vec<u64> = msgs
        .iter()
        .map(|m| m.body["data"]["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in seq order: {seqs:?}");
    seqs.dedup();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "every seq exactly once");
}

#[test]
fn the_stream_is_created_and_every_event_published_in_order() {
    let Some(url) = nats_url("the_stream_is_created_and_every_event_published_in_order") else {
        return;
    };
    let (stream, prefix) = unique("create");
    assert!(read_stream(&url, &stream).is_empty(), "the stream does not exist yet");
    let s = Server::start(&nats_toml(&url, &stream, &prefix));
    s.warehouse("w.2");
    s.product("p1");
    s.movement("p1", "default", "in", 3);
    s.movement("p1", "w.2", "in", 1);
    s.movement("p1", "default", "out", 3); // out of stock: two events of seq 3
    let got = wait_stream(&url, &stream, 4);
    let seen: Vec<(&str, &str)> = got.iter().map(|m| (m.subject.as_str(), m.id.as_str())).collect();
    assert_eq!(
        seen,
        [
            (format!("{prefix}.default.movement.created").as_str(), "msg_1"),
            (format!("{prefix}.w_2.movement.created").as_str(), "msg_2"),
            (
                format!("{prefix}.default.movement.created").as_str(),
                "msg_3_movement.created"
            ),
            (
                format!("{prefix}.default.level.out_of_stock").as_str(),
                "msg_3_level.out_of_stock"
            ),
        ]
    );
    assert_eq!(
        got[1].body["data"]["movement"]["warehouse_id"], "w.2",
        "the body has the real id"
    );
    assert_eq!(got[3].body["type"], "level.out_of_stock");
    let st = wait_caught_up(&s);
    assert_eq!(st["kind"], "nats");
    assert_eq!(st["position"], 3);
    assert!(st["target"].as_str().is_some_and(|t| t.contains(&stream)), "{st}");
}

#[test]
fn kill_9_mid_publishing_leaves_every_seq_exactly_once_in_the_stream() {
    let Some(url) = nats_url("kill_9_mid_publishing_leaves_every_seq_exactly_once_in_the_stream") else {
        return;
    };
    let (stream, prefix) = unique("kill");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("stockd.redb");
    let config = dir.path().join("stockd.toml");
    std::fs::write(&config, nats_toml(&url, &stream, &prefix)).expect("config");
    let b = Binary::start_config(&data, &config);
    b.product("p1");
    const N: u64 = 400;
    const KILL_AT: u64 = 320;
    // Written by 16 connections at once: faster than the sink publishes (one message at a
    // time, each waiting for its ack), so it is behind, publishing, at the kill.
    std::thread::scope(|s| {
        for _ in 0..16 {
            let c = b.client.clone();
            s.spawn(move || {
                for _ in 0..KILL_AT / 16 {
                    c.movement("p1", "default", "in", 1);
                }
            });
        }
    });
    b.kill9();
    let before = read_stream(&url, &stream).len();
    let b = Binary::start_config(&data, &config);
    for _ in KILL_AT..N {
        b.movement("p1", "default", "in", 1);
    }
    wait_caught_up(&b);
    let got = wait_stream(&url, &stream, N as usize);
    assert_each_seq_once(&got, N);
    eprintln!("{before} of {KILL_AT} messages were in the stream at the kill");
}

/// A nats-server of this test's own, with JetStream, on a free loopback port.
struct OwnServer {
    child: Child,
}

impl OwnServer {
    fn start(port: u16, store: &std::path::Path) -> OwnServer {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on the PATH (.ci/run installs it)");
        let deadline = Instant::now() + STREAM_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnServer { child }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn stockd_keeps_working_and_catches_up_when_nats_is_stopped_and_started() {
    if nats_url("stockd_keeps_working_and_catches_up_when_nats_is_stopped_and_started").is_none() {
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let store_dir = tempfile::tempdir().expect("temp dir");
    let url = format!("nats://127.0.0.1:{port}");
    let nats = OwnServer::start(port, store_dir.path());
    let (stream, prefix) = unique("restart");
    let s = Server::start(&nats_toml(&url, &stream, &prefix));
    s.product("p1");
    for _ in 0..5 {
        s.movement("p1", "default", "in", 1);
    }
    wait_stream(&url, &stream, 5);
    wait_caught_up(&s);
    drop(nats); // stopped
    let started = Instant::now();
    for _ in 0..10 {
        s.movement("p1", "default", "in", 1);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "writes do not wait for NATS ({:?})",
        started.elapsed()
    );
    let deadline = Instant::now() + STREAM_TIMEOUT;
    loop {
        let st = sink(&s);
        if st["state"] == "retrying" {
            assert!(st["last_error"].is_string(), "{st}");
            assert_eq!(st["lag"], 10);
            break;
        }
        assert!(Instant::now() < deadline, "never retrying: {st}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _nats = OwnServer::start(port, store_dir.path()); // the same store: the stream is kept
    let got = wait_stream(&url, &stream, 15);
    wait_caught_up(&s);
    assert_each_seq_once(&got, 15);
    s.post("/admin/sinks/nats/pause", json!({})).expect(200);
}
