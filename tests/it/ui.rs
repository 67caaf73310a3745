//! The dashboard's HTTP side (issue 14): the static shell (no credential, CSP, versioned
//! assets with ETag and gzip, `/` redirect), and the API routes it reads that no other
//! client had: transfers in transit, active reservations, backups, whoami — each with the
//! same auth, scopes and warehouse visibility as the rest of the API. The pages themselves
//! are tested in headless Chromium: tests/ui/test_dashboard.py.

use serde_json::{json, Value};

use crate::common::{token_toml, Request, Server};

const ADMIN: &str = "ui-admin-0123456789";
/// inventory:read, every warehouse.
const READER: &str = "ui-reader-0123456789";
/// inventory:write, restricted to w1.
const W1: &str = "ui-w1-writer-0123456789";
/// catalog:write only (no inventory:read).
const CATALOG: &str = "ui-catalog-0123456789";

fn server() -> Server {
    let toml = [
        token_toml("admin", ADMIN, &["admin"], None),
        token_toml("reader", READER, &["inventory:read"], None),
        token_toml("w1", W1, &["inventory:write"], Some(&["w1"])),
        token_toml("catalog", CATALOG, &["catalog:write"], None),
    ]
    .concat();
    let server = Server::start_with_token(&toml, Some(ADMIN));
    for w in ["w1", "w2"] {
        server.warehouse(w);
    }
    server.product("p1");
    for w in ["w1", "w2"] {
        server.stock("p1", w, 50);
    }
    server
}

/// The raw answer to `HEAD path`.
fn head_request(s: &Server, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = s.client().addr;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(crate::common::IO_TIMEOUT))
        .expect("timeout");
    write!(
        stream,
        "HEAD {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    raw
}

/// The `/ui/{version}/{file}` URL the page names for `file`.
fn asset_url(page: &str, file: &str) -> String {
    let end = page.find(&format!("/{file}\"")).expect("the page names the file");
    let start = page[..end].rfind("\"/ui/").expect("a /ui/ URL") + 1;
    page[start..end + file.len() + 1].to_string()
}

#[test]
fn the_root_redirects_to_the_dashboard() {
    let s = server();
    let c = s.client().with_token(None);
    for path in ["/", "/ui"] {
        let r = c.get(path);
        assert_eq!(r.status, 302, "{path}");
        assert_eq!(r.header("location"), Some("/ui/"), "{path}");
    }
}

#[test]
fn the_shell_needs_no_credential_and_carries_the_csp() {
    let s = server();
    let c = s.client().with_token(None);
    let page = c.get("/ui/");
    page.expect(200);
    assert!(page.header("content-type").unwrap_or_default().starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    // No external reference, no inline script.
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<script type=\"module\" src=\"/ui/"));
    // HEAD: the same head, no body (by hand: the harness's client reads a body by its length).
    let head = head_request(&s, "/ui/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let etag = page.header("etag").unwrap_or("?");
    assert!(head.to_ascii_lowercase().contains(&format!("etag: {etag}")), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "a body after the head: {head}");
    // The data still needs a token.
    c.get("/api/inventory").expect_error(401, "unauthenticated");
    c.get("/api/whoami").expect_error(401, "unauthenticated");
}

#[test]
fn assets_are_versioned_cached_revalidated_and_gzipped() {
    let s = server();
    let c = s.client().with_token(None);
    let page = c.get("/ui/").body;
    let js = asset_url(&page, "app.js");
    let r = c.get(&js);
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/javascript"));
    assert!(r.header("content-security-policy").is_some());
    let etag = r.header("etag").expect("an ETag").to_string();
    // Revalidation: 304 without a body.
    let again = c.raw(Request::new("GET", &js).header("If-None-Match", &etag));
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    // gzip where it pays: the stylesheet is text well over a kilobyte.
    let css = asset_url(&page, "app.css");
    let plain = c.get(&css);
    let packed = c.raw(Request::new("GET", &css).header("Accept-Encoding", "gzip, deflate"));
    assert_eq!(packed.header("content-encoding"), Some("gzip"));
    assert_eq!(packed.header("vary"), Some("Accept-Encoding"));
    assert!(packed.body.len() < plain.body.len());
    let refused = c.raw(Request::new("GET", &css).header("Accept-Encoding", "gzip;q=0"));
    assert_eq!(refused.header("content-encoding"), None);
    assert_eq!(refused.body, plain.body);
    // Another build's version, or a file that is not there: 404, never today's bytes.
    let other = js.replace("/ui/", "/ui/0");
    c.get(&other).expect_error(404, "route_not_found");
    c.get(&js.replace("app.js", "secrets.toml"))
        .expect_error(404, "route_not_found");
    c.get("/ui/x/../../stockd.toml").expect(404);
}

#[test]
fn whoami_names_scopes_warehouses_and_the_feed_position() {
    let s = server();
    let c = s.client();
    let me = c.get_as(Some(W1), "/api/whoami");
    me.expect(200);
    let me = me.data();
    assert_eq!(me["name"], "w1");
    assert_eq!(me["scopes"], json!(["inventory:write"]));
    assert_eq!(me["warehouses"], json!(["w1"]));
    assert_eq!(me["feed_position"].as_u64(), Some(c.journal_len()));
    let admin = c.get("/api/whoami").data();
    assert_eq!(admin["warehouses"], Value::Null);
    // It needs inventory:read, like every page's data.
    c.get_as(Some(CATALOG), "/api/whoami").expect_error(403, "forbidden");
}

/// The `key` of every row of a list answer, in order.
fn ids_of(list: &Value, key: &str) -> Vec<String> {
    list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|row| row[key].as_str().map(str::to_string))
        .collect()
}

/// A transfer from `from` to `to` of `qty` p1, in transit; its id.
fn send(s: &Server, from: &str, to: &str, qty: i64) -> String {
    let r = s.client().post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "warehouse_id": from, "movement_type": "transfer", "quantity": qty,
               "to_warehouse_id": to, "in_transit": true}),
    );
    r.expect(201);
    r.data()["transfer_id"].as_str().unwrap_or_default().to_string()
}

#[test]
fn transfers_in_transit_are_listed_newest_first_and_leave_once_received() {
    let s = server();
    let c = s.client();
    let first = send(&s, "w1", "w2", 1);
    let second = send(&s, "w2", "w1", 2);
    // Not in transit: never listed.
    c.post(
        "/api/inventory/movements",
        json!({"product_id": "p1", "warehouse_id": "w1", "movement_type": "transfer", "quantity": 1, "to_warehouse_id": "w2"}),
    )
    .expect(201);
    let list = c.get("/api/inventory/transfers");
    list.expect(200);
    let ids = ids_of(&list.json(), "transfer_id");
    assert_eq!(ids, [second.clone(), first.clone()]);
    assert_eq!(list.json()["meta"]["hasMore"], false);
    // `limit` and `warehouse_id`.
    let one = c.get("/api/inventory/transfers?limit=1").json();
    assert_eq!(one["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["meta"]["hasMore"], true);
    c.post(&format!("/api/inventory/transfers/{first}/receive"), json!({}))
        .expect(200);
    let left = c
        .get("/api/inventory/transfers?status=in_transit&warehouse_id=w2")
        .json();
    assert_eq!(left["data"][0]["transfer_id"], second.as_str());
    assert_eq!(left["data"].as_array().map(Vec::len), Some(1));
    // Bad parameters: 422 naming them.
    for q in ["status=received", "limit=0", "limit=501", "limit=x"] {
        c.get(&format!("/api/inventory/transfers?{q}"))
            .expect_error(422, "invalid_field");
    }
}

#[test]
fn a_restricted_token_lists_only_transfers_touching_its_warehouses_with_its_own_legs() {
    let s = server();
    s.warehouse("w3");
    s.stock("p1", "w3", 10);
    send(&s, "w2", "w3", 1); // foreign on both sides
    let mine = send(&s, "w2", "w1", 3);
    let c = s.client();
    let list = c.get_as(Some(W1), "/api/inventory/transfers").json();
    let rows = list["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["transfer_id"], mine.as_str());
    // Its out leg lies in w2: not shown to a w1 credential (as GET /api/inventory/transfers/{id}).
    assert_eq!(rows[0]["legs"], json!([]));
    c.get_as(Some(W1), "/api/inventory/transfers?warehouse_id=w2")
        .expect_error(403, "forbidden");
}

fn reserve(s: &Server, warehouse: &str, qty: i64, ttl_seconds: i64) -> String {
    let r = s.client().post(
        "/api/inventory/reservations",
        json!({"product_id": "p1", "warehouse_id": warehouse, "quantity": qty, "ttl_seconds": ttl_seconds}),
    );
    r.expect(201);
    r.data()["id"].as_str().unwrap_or_default().to_string()
}

#[test]
fn active_reservations_are_listed_soonest_expiry_first_with_visibility() {
    let s = server();
    let c = s.client();
    let later = reserve(&s, "w1", 1, 3600);
    let sooner = reserve(&s, "w2", 2, 600);
    let closed = reserve(&s, "w1", 1, 3600);
    c.delete(&format!("/api/inventory/reservations/{closed}")).expect(200);
    let list = c.get("/api/inventory/reservations");
    list.expect(200);
    let ids = ids_of(&list.json(), "id");
    assert_eq!(ids, [sooner, later.clone()]);
    assert_eq!(list.json()["data"][0]["status"], "active");
    let w1 = c.get_as(Some(W1), "/api/inventory/reservations").json();
    assert_eq!(w1["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(w1["data"][0]["id"], later.as_str());
    c.get_as(Some(W1), "/api/inventory/reservations?warehouse_id=w2")
        .expect_error(403, "forbidden");
    let p = c
        .get("/api/inventory/reservations?product_id=p1&warehouse_id=w2&status=active")
        .json();
    assert_eq!(p["data"].as_array().map(Vec::len), Some(1));
    for q in ["status=expired", "limit=0", "limit=501", "bogus=1"] {
        c.get(&format!("/api/inventory/reservations?{q}"))
            .expect_error(422, "invalid_field");
    }
}

#[test]
fn backups_are_listed_newest_first_for_admin_only() {
    let s = server();
    let c = s.client();
    assert_eq!(c.get("/admin/backups").data(), json!([]));
    let taken = c.post("/admin/backup", json!({}));
    taken.expect(201);
    let file = taken.data()["file"].as_str().unwrap_or_default().to_string();
    let list = c.get("/admin/backups").data();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert!(file.ends_with(list[0]["name"].as_str().unwrap_or("?")), "{list}");
    assert_eq!(list[0]["bytes"], taken.data()["bytes"]);
    c.get_as(Some(READER), "/admin/backups").expect_error(403, "forbidden");
    c.get_as(None, "/admin/backups").expect_error(401, "unauthenticated");
}
