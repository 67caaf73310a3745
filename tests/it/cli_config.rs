//! The real binary refusing configs it cannot run safely (exit 2, naming file:line:key),
//! and `stockd token new` / `partner new` output meant for `>> stockd.toml`.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use crate::common::{run_bin, Output, Server};

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn hash(token: &str) -> String {
    stockd::auth::sha256_hex(token.as_bytes())
}

/// `stockd serve --config FILE` on `text` (listening on :0, data in the temp dir unless the
/// text names storage), which must refuse to start.
fn refused(dir: &Path, text: &str) -> Output {
    let path = dir.join("stockd.toml");
    let storage = if text.contains("[storage]") {
        String::new()
    } else {
        format!("[storage]\npath = {:?}\n", dir.join("stockd.redb"))
    };
    std::fs::write(&path, format!("{storage}{text}")).expect("write config");
    let out = run_bin(
        &[
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--config"),
            path.as_os_str(),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(out.code, Some(2), "stdout: {}\nstderr: {}", out.stdout, out.stderr);
    out
}

/// The 1-based line of `text` (as `refused` writes it) that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).expect("needle in text") + 1
}

/// Asserts `out` names `file:line: `key`` and says `why`.
#[track_caller]
fn names(out: &Output, dir: &Path, line: usize, key: &str, why: &str) {
    let at = format!("{}:{line}: `{key}`: ", dir.join("stockd.toml").display());
    assert!(out.stderr.contains(&at), "expected `{at}` in:\n{}", out.stderr);
    assert!(out.stderr.contains(why), "expected `{why}` in:\n{}", out.stderr);
}

fn token(name: &str, sha256: &str) -> String {
    format!("[[tokens]]\nname = {name:?}\nsha256 = {sha256:?}\nscopes = [\"admin\"]\n")
}

fn partner(id: &str, secrets: &str) -> String {
    format!("[[partners]]\nid = {id:?}\nsecrets = {secrets}\nscopes = [\"inventory:read\"]\n")
}

/// Storage takes the first 2 lines `refused` writes.
const STORAGE_LINES: usize = 2;

#[test]
fn weak_secrets_and_malformed_hashes_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ok = token("admin", &hash("an admin token of mine"));
    let cases = [
        (partner("p", r#"[""]"#), "partners[0].secrets[0]", "is empty"),
        (
            partner("p", r#"["fifteen-bytes.."]"#),
            "partners[0].secrets[0]",
            "is 15 bytes",
        ),
        (
            partner("p", r#"["a-good-long-secret-1", "short"]"#),
            "partners[0].secrets[1]",
            "is 5 bytes",
        ),
        (token("t", "not-a-hash"), "tokens[1].sha256", "64 hex digits"),
        (
            token("t", &format!("{}g", &hash("x")[1..])),
            "tokens[1].sha256",
            "64 hex digits",
        ),
        (token("t", &hash("x")[1..]), "tokens[1].sha256", "64 hex digits"),
    ];
    for (section, key, why) in cases {
        let text = format!("{ok}{section}");
        let out = refused(dir.path(), &text);
        let last = key.rsplit('.').next().unwrap_or(key).split('[').next().unwrap_or(key);
        let line = STORAGE_LINES
            + text
                .lines()
                .collect::<Vec<_>>()
                .iter()
                .rposition(|l| l.starts_with(last))
                .unwrap_or(0)
            + 1;
        names(&out, dir.path(), line, key, why);
    }
    // A 16-byte secret is enough.
    let text = format!("{ok}{}", partner("p", r#"["sixteen-bytes..."]"#));
    let config = stockd::config::Config::parse(&text);
    assert!(config.is_ok(), "{:?}", config.err());
}

#[test]
fn principal_names_share_one_namespace_and_hashes_are_unique() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = r#"["a-good-long-secret-1"]"#;
    let cases = [
        (
            format!("{}{}", token("ops", &hash("a")), partner("ops", secret)),
            "partners[0].id",
            "`ops` is already the name of `tokens[0].name` (line 4)",
        ),
        (
            format!("{}{}", token("ops", &hash("a")), token("ops", &hash("b"))),
            "tokens[1].name",
            "already the name of `tokens[0].name`",
        ),
        (
            format!(
                "{}{}",
                partner("mp", secret),
                partner("mp", r#"["another-long-secret-2"]"#)
            ),
            "partners[1].id",
            "already the name of `partners[0].id`",
        ),
        (
            format!(
                "{}{}",
                token("a", &hash("same")),
                token("b", &hash("same").to_uppercase())
            ),
            "tokens[1].sha256",
            "the same hash as `tokens[0].sha256` (line 5)",
        ),
        (token("", &hash("a")), "tokens[0].name", "must not be empty"),
    ];
    for (text, key, why) in cases {
        let out = refused(dir.path(), &text);
        let field = key.rsplit('.').next().unwrap_or(key);
        let line = STORAGE_LINES
            + text
                .lines()
                .collect::<Vec<_>>()
                .iter()
                .rposition(|l| l.starts_with(field))
                .unwrap_or(0)
            + 1;
        names(&out, dir.path(), line, key, why);
    }
}

#[test]
fn credentials_from_the_docs_are_refused_and_the_example_works_nowhere() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The admin token `test2` of the old config.example.toml, and the example's placeholders.
    let out = refused(dir.path(), &token("ops", &hash("test2")));
    names(&out, dir.path(), 5, "tokens[0].sha256", "stockd token new");
    let placeholder = r#"["replace-with-the-secret-from-stockd-partner-new"]"#;
    let out = refused(dir.path(), &partner("mp", placeholder));
    names(&out, dir.path(), 5, "partners[0].secrets[0]", "stockd partner new");

    // The example itself, installed as-is, does not start.
    let example = include_str!("../../config.example.toml");
    let storage = format!("[storage]\npath = {:?}\n", dir.path().join("stockd.redb"));
    let text = example.replacen("[storage]\npath = \"stockd.redb\"\n", &storage, 1);
    assert_ne!(text, example, "the example's [storage] section moved");
    let out = refused(dir.path(), &text);
    names(
        &out,
        dir.path(),
        line_of(&text, "sha256"),
        "tokens[0].sha256",
        "stockd's own docs",
    );
}

#[test]
fn every_config_error_names_file_line_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let admin = token("admin", &hash("an admin token of mine"));
    // Checks after parsing.
    let cases = [
        ("[backup]\ndir = \"b\"\nkeep = 0\n", 5, "backup.keep", "at least 1"),
        ("[server]\nworkers = 0\n", 4, "server.workers", "at least 1"),
        (
            "[server]\nbody_read_deadline_ms = 0\n",
            4,
            "server.body_read_deadline_ms",
            "between",
        ),
        (
            "[storage]\ncommit_interval_ms = 0\n",
            2,
            "storage.commit_interval_ms",
            "between",
        ),
        (
            "[inventory]\ndefault_warehouse = \"\"\n",
            4,
            "inventory.default_warehouse",
            "empty",
        ),
    ];
    for (text, line, key, why) in cases {
        let out = refused(dir.path(), &format!("{text}{admin}"));
        names(&out, dir.path(), line, key, why);
    }
    let out = refused(dir.path(), &admin.replace("\"admin\"]", "\"admin\", \"root\"]"));
    names(&out, dir.path(), 6, "tokens[0].scopes", "unknown scope `root`");
    // A syntax or shape error names its line too.
    let out = refused(dir.path(), "[server]\nlisten_typo = 1\n");
    let at = format!("{}:4: ", dir.path().join("stockd.toml").display());
    assert!(
        out.stderr.contains(&at) && out.stderr.contains("listen_typo"),
        "{}",
        out.stderr
    );

    // The data file's directory is missing: said so, with where the path was set.
    let missing = dir.path().join("no-such-dir").join("stockd.redb");
    let out = refused(dir.path(), &format!("[storage]\npath = {missing:?}\n{admin}"));
    names(&out, dir.path(), 2, "storage.path", "a directory is missing");
    assert!(!missing.parent().is_some_and(Path::exists), "nothing was created");
    let config = dir.path().join("stockd.toml");
    std::fs::write(&config, &admin).expect("write config");
    let out = run_bin(
        &[
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--config"),
            config.as_os_str(),
            OsStr::new("--data"),
            missing.as_os_str(),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--data (or STOCKD_DATA): `storage.path`: a directory is missing"),
        "{}",
        out.stderr
    );
}

/// `stockd token new … >> stockd.toml`: only config lines on stdout, the token on stderr;
/// the appended lines make a config on which the token works.
#[test]
fn token_new_keeps_the_token_out_of_the_config_lines() {
    let out = run_bin(
        &[
            OsStr::new("token"),
            OsStr::new("new"),
            OsStr::new("--name"),
            OsStr::new("pos"),
            OsStr::new("--scopes"),
            OsStr::new("inventory:read"),
            OsStr::new("--warehouses"),
            OsStr::new("default"),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let token = out
        .stderr
        .lines()
        .find(|l| l.starts_with("stk_"))
        .unwrap_or_else(|| panic!("no token on stderr: {}", out.stderr))
        .trim()
        .to_string();
    assert!(
        !out.stdout.contains(&token),
        "the token is in the config lines:\n{}",
        out.stdout
    );
    assert!(out.stdout.contains(&hash(&token)), "{}", out.stdout);
    assert!(out.stdout.starts_with("[[tokens]]"), "{}", out.stdout);

    let server = Server::start_with_token(&out.stdout, Some(&token));
    server.get("/api/inventory?warehouse_id=default").expect(200);
}

/// `stockd partner new … >> stockd.toml`: the config must hold the secret (the daemon
/// checks signatures with it), so stdout has it; stderr repeats it for the partner.
#[test]
fn partner_new_prints_config_lines_and_the_secret_for_the_partner() {
    let out = run_bin(
        &[
            OsStr::new("partner"),
            OsStr::new("new"),
            OsStr::new("--id"),
            OsStr::new("mp"),
            OsStr::new("--scopes"),
            OsStr::new("inventory:write"),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let config = stockd::config::Config::parse(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", out.stdout));
    let secret = config.partners[0].secrets[0].clone();
    assert!(secret.len() >= 32, "{secret}");
    assert!(out.stderr.contains(&secret), "{}", out.stderr);
    let help = run_bin(
        &[OsStr::new("partner"), OsStr::new("new"), OsStr::new("--help")],
        RUN_TIMEOUT,
    );
    assert!(help.stdout.contains("hold the secret itself"), "{}", help.stdout);
}

/// A config error never prints a value the file holds as a string: a secret given in the
/// wrong shape (`secrets = "…"`) would otherwise land in the journal.
#[test]
fn a_misshapen_secret_is_not_echoed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = "a-partner-secret-nobody-may-read";
    let text = format!(
        "{}{}",
        token("admin", &hash("an admin token of mine")),
        partner("p", &format!("{secret:?}"))
    );
    let out = refused(dir.path(), &text);
    assert!(!out.stderr.contains(secret), "the secret in:\n{}", out.stderr);
    let at = format!(
        "{}:{}: ",
        dir.path().join("stockd.toml").display(),
        STORAGE_LINES + line_of(&text, "secrets")
    );
    assert!(out.stderr.contains(&at), "expected `{at}` in:\n{}", out.stderr);
    assert!(out.stderr.contains("expected a sequence"), "{}", out.stderr);
}
