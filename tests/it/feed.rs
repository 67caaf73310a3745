//! The change feed under a warehouse-restricted credential (issue 10, item 1): bounded
//! answers whose `next_after` moves past what the caller may not see, a long poll that
//! does not rescan, and a gap-free feed for an unrestricted reader.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Client, Server};

const ADMIN: &str = "tok-feed-admin-0123456789";
const ONLY_W1: &str = "tok-feed-w1-0123456789";

fn config() -> String {
    format!(
        "[[tokens]]\nname = \"admin\"\nsha256 = \"{}\"\nscopes = [\"admin\"]\n\
         [[tokens]]\nname = \"w1-reader\"\nsha256 = \"{}\"\nscopes = [\"inventory:read\"]\nwarehouses = [\"w1\"]\n",
        stockd::auth::sha256_hex(ADMIN.as_bytes()),
        stockd::auth::sha256_hex(ONLY_W1.as_bytes()),
    )
}

/// `(seqs, next_after, hasMore)` of one feed answer.
#[track_caller]
fn feed(client: &Client, query: &str) -> (Vec<u64>, u64, bool) {
    let res = client.get(&format!("/api/inventory/changes?{query}"));
    res.expect(200);
    let v: Value = res.json();
    let seqs = v["data"]
        .as_array()
        .expect("data is a list")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect();
    let next = v["meta"]["next_after"].as_u64().expect("next_after");
    (seqs, next, v["meta"]["hasMore"].as_bool().expect("hasMore"))
}

/// w1 gets seq 1 and the last entry; the `w2_entries` between are w2's.
fn journal_mostly_in_w2(server: &Server, w2_entries: usize) -> u64 {
    server.product("p");
    server.warehouse("w1");
    server.warehouse("w2");
    let first = server.stock("p", "w1", 1)["seq"].as_u64().expect("seq");
    assert_eq!(first, 1);
    for _ in 0..w2_entries {
        server.stock("p", "w2", 1);
    }
    server.stock("p", "w1", 1)["seq"].as_u64().expect("seq")
}

#[test]
fn a_restricted_feed_answers_bounded_pages_that_advance_past_foreign_entries() {
    let server = Server::start_with_token(&config(), Some(ADMIN));
    let last = journal_mostly_in_w2(&server, 200);
    let w1 = server.client.with_token(Some(ONLY_W1));

    let (seqs, next, more) = feed(&w1, "after=0&limit=1");
    assert_eq!((seqs, next, more), (vec![1], 1, true));
    // The next w1 entry comes straight after 200 foreign ones, in one answer.
    let (seqs, next, more) = feed(&w1, &format!("after={next}&limit=5"));
    assert_eq!((seqs, next, more), (vec![last], last, false));
    // Caught up: nothing, and the position stays at the end.
    let (seqs, next, _) = feed(&w1, &format!("after={last}"));
    assert_eq!((seqs.len(), next), (0, last));

    // More foreign entries: an empty answer still moves `next_after` past them.
    for _ in 0..5 {
        server.stock("p", "w2", 1);
    }
    let (seqs, next, more) = feed(&w1, &format!("after={last}"));
    assert_eq!((seqs.len(), next, more), (0, last + 5, false));

    // The admin feed is gap-free, page by page.
    let mut after = 0;
    let mut all = Vec::new();
    loop {
        let (seqs, next, more) = feed(&server.client, &format!("after={after}&limit=7"));
        all.extend(seqs);
        after = next;
        if !more {
            break;
        }
    }
    assert_eq!(all, (1..=last + 5).collect::<Vec<_>>());
}

#[test]
fn a_restricted_long_poll_waits_through_foreign_commits_for_its_own() {
    let server = Server::start_with_token(&config(), Some(ADMIN));
    let last = journal_mostly_in_w2(&server, 3);
    let w1 = server.client.with_token(Some(ONLY_W1));

    // Only foreign commits until the deadline: empty, positioned after them.
    let writer = {
        let client = server.client.clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                client.stock("p", "w2", 1);
            }
        })
    };
    let (seqs, _, _) = feed(&w1, &format!("after={last}&wait=1"));
    writer.join().expect("writer");
    assert!(seqs.is_empty(), "a w1 reader saw {seqs:?}");
    let (seqs, next, _) = feed(&w1, &format!("after={last}&wait=0"));
    assert_eq!((seqs.len(), next), (0, last + 20));

    // Foreign commits, then one of its own: the poll answers with exactly that one.
    let writer = {
        let client = server.client.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            for _ in 0..20 {
                client.stock("p", "w2", 1);
            }
            client.stock("p", "w1", 1)["seq"].as_u64().expect("seq")
        })
    };
    let started = Instant::now();
    let (seqs, next, _) = feed(&w1, &format!("after={}&wait=30", last + 20));
    let mine = writer.join().expect("writer");
    assert_eq!((seqs, next), (vec![mine], mine));
    assert!(started.elapsed() < Duration::from_secs(25), "woken by its commit");
}
