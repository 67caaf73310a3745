//! The production path as a new user meets it: `stockd init`, HTTPS with a certificate
//! reloaded on SIGHUP, the backup directory checked at start, backups one at a time,
//! half-written snapshots removed at start, and owner-only files.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{run_bin, Binary, Output, Request, Server, IO_TIMEOUT};

fn stockd(args: &[&OsStr]) -> Output {
    run_bin(args, Duration::from_secs(120))
}

/// `stockd init --dir DIR`.
fn init(dir: &Path) -> Output {
    stockd(&["init".as_ref(), "--dir".as_ref(), dir.as_os_str()])
}

/// The token `stockd init` printed (the one word starting `stk_` on its own line).
fn printed_token(out: &Output) -> String {
    let token = out
        .stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("stk_") && !l.contains(' '));
    token
        .unwrap_or_else(|| panic!("no token printed:\n{}", out.stdout))
        .to_string()
}

/// `stockd serve --config FILE --listen 127.0.0.1:0`.
fn serve(config: &Path, data: &Path) -> Binary {
    let args: [&OsStr; 5] = [
        "serve".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ];
    Binary::start_args(&args, data, &[])
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn init_writes_a_config_whose_token_works_and_never_overwrites() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("shop");
    let out = init(&dir);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let token = printed_token(&out);
    let config = dir.join("stockd.toml");
    let text = std::fs::read_to_string(&config).expect("config written");
    assert!(!text.contains(&token), "the token itself is in the config:\n{text}");
    assert_eq!(mode(&config), 0o600, "the config is owner-only");

    let bin = serve(&config, &dir.join("stockd.redb"));
    let client = bin.client.with_token(Some(&token));
    client.get("/admin/verify").expect(200);
    client
        .put("/api/products/p1", json!({"sku": "S1", "name": "One"}))
        .expect(201);
    client
        .post(
            "/api/inventory/movements",
            json!({"product_id": "p1", "movement_type": "in", "quantity": 3}),
        )
        .expect(201);
    let backup = client.post("/admin/backup", json!({}));
    backup.expect(201);
    let file = PathBuf::from(backup.data()["file"].as_str().expect("file"));
    assert_eq!(file.parent(), Some(dir.join("backups").as_path()), "{}", backup.body);
    bin.client
        .with_token(None)
        .get("/admin/verify")
        .expect_error(401, "unauthenticated");
    bin.client
        .with_token(Some("stk_not-the-token"))
        .get("/admin/verify")
        .expect_error(401, "unauthenticated");
    drop(bin);

    let again = init(&dir);
    assert_eq!(again.code, Some(2), "{}{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert!(!again.stdout.contains("stk_"), "a refused init printed a token");
    assert_eq!(
        std::fs::read_to_string(&config).expect("config"),
        text,
        "init overwrote the config"
    );
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

/// A fresh self-signed certificate for `localhost`: (certificate PEM, key PEM, DER).
fn self_signed() -> (String, String, Vec<u8>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
    (
        generated.cert.pem(),
        generated.signing_key.serialize_pem(),
        generated.cert.der().to_vec(),
    )
}

fn tls_config(dir: &Path, cert: &Path, key: &Path, token_hash: &str) -> PathBuf {
    let config = dir.join("tls.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ncert_file = {cert:?}\nkey_file = {key:?}\n\
         [storage]\npath = {data:?}\n\
         [[tokens]]\nname = \"ops\"\nsha256 = \"{token_hash}\"\nscopes = [\"admin\"]\n",
        data = dir.join("d.redb"),
    );
    std::fs::write(&config, text).expect("write config");
    config
}

/// One HTTPS request to `addr` from a client that trusts only `trusted` (DER); the TLS
/// error when the daemon presents another certificate.
fn https_get(addr: SocketAddr, trusted: &[u8], path: &str, token: &str) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(trusted.to_vec()))
        .map_err(|e| e.to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let head =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n");
    tls.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // A peer that closes without close_notify ends the read with an error; what was read
    // before it is the answer.
    let read = tls.read_to_end(&mut raw);
    if raw.is_empty() {
        return Err(read
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| "empty answer".into()));
    }
    Ok(String::from_utf8_lossy(&raw).into_owned())
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    stockd::hex(&sha2::Sha256::digest(text.as_bytes()))
}

#[test]
fn https_serves_the_certificate_and_sighup_presents_a_renewed_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (cert_path, key_path) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let (cert_a, key_a, der_a) = self_signed();
    std::fs::write(&cert_path, &cert_a).expect("cert");
    std::fs::write(&key_path, &key_a).expect("key");
    let token = "stk_tls-test-token-0123456789";
    let config = tls_config(tmp.path(), &cert_path, &key_path, &sha256_hex(token));
    let bin = serve(&config, &tmp.path().join("d.redb"));
    let addr = bin.client.addr;

    let answer = https_get(addr, &der_a, "/admin/verify", token).expect("HTTPS with certificate A");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"ok\":true"), "{answer}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = crate::common::send(addr, &Request::new("GET", "/healthz"));
    assert!(
        plain.map_or(true, |r| r.status != 200),
        "plain HTTP answered on the TLS port"
    );

    // certbot renews: new files, then SIGHUP.
    let (cert_b, key_b, der_b) = self_signed();
    std::fs::write(&cert_path, &cert_b).expect("cert");
    std::fs::write(&key_path, &key_b).expect("key");
    assert!(
        https_get(addr, &der_a, "/healthz", token).is_ok(),
        "reloaded before SIGHUP"
    );
    bin.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while https_get(addr, &der_b, "/healthz", token).is_err() {
        assert!(Instant::now() < deadline, "certificate B not presented after SIGHUP");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(https_get(addr, &der_a, "/healthz", token).is_err(), "A still presented");

    // A broken renewal keeps the certificate in use, and says so.
    std::fs::write(&key_path, &key_a).expect("key"); // A's key with B's certificate
    bin.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bin.stderr().contains("not reloaded") {
        assert!(Instant::now() < deadline, "no error logged:\n{}", bin.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    let answer = https_get(addr, &der_b, "/healthz", token).expect("B still presented");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(bin.stderr().contains("does not go with"), "{}", bin.stderr());
}

#[test]
fn a_missing_or_bad_certificate_is_a_config_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (cert_path, key_path) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let config = tls_config(tmp.path(), &cert_path, &key_path, &"ab".repeat(32));
    let run = || stockd(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);

    let out = run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("server.tls.cert_file"), "{}", out.stderr);

    let (cert, _, _) = self_signed();
    std::fs::write(&cert_path, cert).expect("cert");
    std::fs::write(&key_path, "not a key").expect("key");
    let out = run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("server.tls.key_file"), "{}", out.stderr);
    assert!(
        !tmp.path().join("d.redb").exists(),
        "the data file was created before the config was checked"
    );
}

// ---------------------------------------------------------------------------------------
// Backups
// ---------------------------------------------------------------------------------------

#[test]
fn a_backup_dir_the_daemon_cannot_write_is_a_config_error() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").expect("file");
    let config = tmp.path().join("c.toml");
    let write_config = |backup_dir: &Path| {
        let text = format!(
            "[storage]\npath = {:?}\n[backup]\ndir = {:?}\n",
            tmp.path().join("d.redb"),
            backup_dir
        );
        std::fs::write(&config, text).expect("config");
    };
    // A daemon that starts anyway is killed after this (the test then fails).
    let run = || {
        let args: [&OsStr; 5] = [
            "serve".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
        ];
        run_bin(&args, Duration::from_secs(20))
    };

    write_config(&file.join("backups"));
    let out = run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("backup.dir"), "{}", out.stderr);

    // A directory without write permission (meaningless as root, who may write anyway).
    let locked = tmp.path().join("locked");
    std::fs::create_dir(&locked).expect("dir");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).expect("chmod");
    if std::fs::write(locked.join("probe"), "").is_err() {
        write_config(&locked);
        let out = run();
        assert_eq!(out.code, Some(2), "{}", out.stderr);
        assert!(out.stderr.contains("not writable"), "{}", out.stderr);
    }
    let _ = std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700));
}

fn snapshot_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("backup dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn concurrent_backups_run_one_at_a_time_and_keep_the_newest() {
    let backups = tempfile::tempdir().expect("tmp");
    let server = Server::start(&format!("[backup]\ndir = {:?}\nkeep = 5\n", backups.path()));
    server.product("p");
    server.stock("p", "default", 5);
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let client = server.client();
            std::thread::spawn(move || client.post("/admin/backup", json!({})))
        })
        .collect();
    let mut answered: Vec<String> = threads
        .into_iter()
        .map(|t| {
            let r = t.join().expect("thread");
            r.expect(201);
            let file = r.data()["file"].as_str().expect("file").to_string();
            Path::new(&file)
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string()
        })
        .collect();
    answered.sort();
    answered.dedup();
    assert_eq!(answered.len(), 10, "two answers named the same file: {answered:?}");
    // The directory holds exactly the five newest answers: no answer named a file that an
    // older backup had pruned, and no temp file is left.
    assert_eq!(snapshot_names(backups.path()), answered[5..].to_vec());
}

#[test]
fn a_snapshot_left_half_written_by_a_crash_is_removed_at_start() {
    let backups = tempfile::tempdir().expect("tmp");
    let stale = ".stockd-20260101T000000000Z-seq7.redb.tmp-4242";
    let kept = ["stockd-20260101T000000000Z-seq3.redb", "notes.txt"];
    std::fs::write(backups.path().join(stale), vec![0u8; 4096]).expect("stale");
    for k in kept {
        std::fs::write(backups.path().join(k), "x").expect("kept");
    }
    let server = Server::start(&format!("[backup]\ndir = {:?}\n", backups.path()));
    assert_eq!(snapshot_names(backups.path()), ["notes.txt", kept[0]]);
    server.post("/admin/backup", json!({})).expect(201);
}

#[test]
fn the_data_file_and_backups_are_owner_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Whatever umask the test runs under: the daemon's files are its user's only.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data = tmp.path().join("d.redb");
    let bin = Binary::start(&data);
    let r = bin.client.post("/admin/backup", json!({}));
    r.expect(201);
    let snapshot = PathBuf::from(r.data()["file"].as_str().expect("file"));
    let backups = tmp.path().join("backups");
    bin.kill9();
    for (path, want) in [(&data, 0o600), (&snapshot, 0o600), (&backups, 0o700)] {
        assert_eq!(mode(path), want, "{}: mode {:o}", path.display(), mode(path));
    }
}

#[test]
fn sighup_without_tls_does_not_end_the_daemon() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bin = Binary::start(&tmp.path().join("d.redb"));
    bin.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bin.stderr().contains("SIGHUP") {
        assert!(Instant::now() < deadline, "SIGHUP not logged:\n{}", bin.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
    bin.client.get("/healthz").expect(200);
}

#[test]
fn the_unit_and_the_operations_guide_install_alike() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("deploy/stockd.service")).expect("unit");
    let guide = std::fs::read_to_string(root.join("docs/operations.md")).expect("guide");
    // The unit's header comment is its install recipe: every line of it is in the guide.
    let recipe: Vec<&str> = unit
        .lines()
        .take_while(|l| l.starts_with('#'))
        .skip(1)
        .filter_map(|l| l.strip_prefix("#   "))
        .map(|l| l.split("  #").next().unwrap_or(l).trim())
        .collect();
    assert!(recipe.len() >= 5, "no install recipe in the unit: {recipe:?}");
    for line in recipe {
        assert!(guide.contains(line), "docs/operations.md lacks the unit's `{line}`");
    }
    // What the unit's Documentation= points at is installed by the recipe.
    let doc = unit
        .lines()
        .find_map(|l| l.strip_prefix("Documentation=file://"))
        .expect("Documentation=");
    assert!(
        unit.contains(&format!("docs/operations.md {doc}")),
        "nothing installs {doc}"
    );
    let directives: Vec<&str> = unit.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(directives.contains(&"RestartPreventExitStatus=2"));
    assert!(
        !directives
            .iter()
            .any(|l| l.contains("STOCKD_DATA") || l.contains("STOCKD_LISTEN")),
        "the unit overrides the config's [storage] path or [server] listen"
    );
}
