//! Configuration: TOML with unknown keys refused, embedded defaults, and the named limits.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::auth::Scope;

/// Default request body limit (API.md), in bytes.
pub const BODY_LIMIT_BYTES_DEFAULT: usize = 1024 * 1024;
/// No body limit may be set above this, in bytes.
pub const BODY_LIMIT_BYTES_MAX: usize = 64 * 1024 * 1024;
pub const LISTEN_DEFAULT: &str = "127.0.0.1:8080";
pub const DATA_DEFAULT: &str = "stockd.redb";
/// Idle keep-alive connections are closed after this, in seconds.
pub const KEEP_ALIVE_SECONDS: u64 = 75;
/// A client must send its request head within this, in milliseconds (slow-loris guard).
pub const CLIENT_REQUEST_TIMEOUT_MS: u64 = 5_000;
/// Most concurrent connections per worker.
pub const CONNECTIONS_PER_WORKER_MAX: usize = 25_000;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub inventory: Inventory,
    #[serde(default)]
    pub backup: Option<Backup>,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    #[serde(default)]
    pub partners: Vec<PartnerConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    #[serde(default = "listen_default")]
    pub listen: String,
    #[serde(default = "body_limit_default")]
    pub body_limit_bytes: usize,
    /// HTTP worker threads; default: one per core.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Serve HTTPS with this certificate (docs/operations.md "HTTPS").
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Believe `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto` when building links
    /// (seed 000's `links`): only behind a proxy that sets them, since any client can send them.
    #[serde(default)]
    pub trust_forwarded: bool,
}

/// `[server.tls]`: PEM files, read at start (a missing or bad file is a config error) and
/// again on SIGHUP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain, leaf first (certbot's `fullchain.pem`).
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1; certbot's `privkey.pem`).
    pub key_file: PathBuf,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: listen_default(),
            body_limit_bytes: body_limit_default(),
            workers: None,
            tls: None,
            trust_forwarded: false,
        }
    }
}

fn listen_default() -> String {
    LISTEN_DEFAULT.to_string()
}

fn body_limit_default() -> usize {
    BODY_LIMIT_BYTES_DEFAULT
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    #[serde(default = "data_default")]
    pub path: PathBuf,
    /// Record redb's allocator state in every commit, so a restart after a crash is
    /// immediate (true), or commit faster and walk the whole file after a crash (false).
    #[serde(default = "quick_repair_default")]
    pub quick_repair: bool,
    /// A durable checkpoint of the data file at least this often while writes come, after
    /// which the redo log starts over.
    #[serde(default = "checkpoint_interval_ms_default")]
    pub checkpoint_interval_ms: u64,
    /// … and after this much redo log; the log file is preallocated to twice this.
    #[serde(default = "checkpoint_log_bytes_default")]
    pub checkpoint_log_bytes: u64,
}

fn checkpoint_interval_ms_default() -> u64 {
    crate::store::CHECKPOINT_INTERVAL_MS_DEFAULT
}

fn checkpoint_log_bytes_default() -> u64 {
    crate::store::CHECKPOINT_LOG_BYTES_DEFAULT
}

impl Storage {
    /// The store's options from this section.
    pub fn options(&self) -> crate::store::Options {
        crate::store::Options {
            quick_repair: self.quick_repair,
            checkpoint_interval_ms: self.checkpoint_interval_ms,
            checkpoint_log_bytes: self.checkpoint_log_bytes,
        }
    }
}

fn quick_repair_default() -> bool {
    true
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            path: data_default(),
            quick_repair: quick_repair_default(),
            checkpoint_interval_ms: checkpoint_interval_ms_default(),
            checkpoint_log_bytes: checkpoint_log_bytes_default(),
        }
    }
}

fn data_default() -> PathBuf {
    PathBuf::from(DATA_DEFAULT)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[serde(default = "default_warehouse")]
    pub default_warehouse: String,
    #[serde(default)]
    pub allow_negative: bool,
    #[serde(default)]
    pub warehouses: BTreeMap<String, WarehousePolicy>,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory {
            default_warehouse: default_warehouse(),
            allow_negative: false,
            warehouses: BTreeMap::new(),
        }
    }
}

fn default_warehouse() -> String {
    crate::ledger::DEFAULT_WAREHOUSE.to_string()
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WarehousePolicy {
    pub allow_negative: Option<bool>,
}

/// Snapshot backups kept when the config names none: this many.
pub const BACKUP_KEEP_DEFAULT: usize = 24;
/// Shortest schedule accepted, in seconds (a snapshot copies the whole file).
pub const BACKUP_INTERVAL_SECONDS_MIN: u64 = 60;

/// Snapshot backups (`POST /admin/backup`, and on a schedule; see docs/operations.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    pub dir: PathBuf,
    /// 0 or absent: on demand only.
    #[serde(default)]
    pub interval_seconds: u64,
    /// Snapshots kept in `dir`; older ones are deleted after each new one.
    #[serde(default)]
    pub keep: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    /// Lowercase hex SHA-256 of the token; the token itself is never stored.
    pub sha256: String,
    pub scopes: Vec<String>,
    pub warehouses: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    pub id: String,
    pub secrets: Vec<String>,
    pub scopes: Vec<String>,
    pub warehouses: Option<Vec<String>>,
    #[serde(default)]
    pub legacy_signature: bool,
}

/// A configuration that cannot be used; the CLI prints it and exits 2.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks a config file; errors name the file, line and key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Config::parse(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError(e.to_string().trim_end().to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("`{key}`: {why}")));
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return bad("server.listen", "expected an address like 127.0.0.1:8080");
        }
        if self.server.body_limit_bytes == 0 || self.server.body_limit_bytes > BODY_LIMIT_BYTES_MAX {
            return bad("server.body_limit_bytes", "must be between 1 and 67108864");
        }
        if self.server.workers == Some(0) {
            return bad("server.workers", "must be at least 1");
        }
        if let Some(b) = &self.backup {
            if b.interval_seconds != 0 && b.interval_seconds < BACKUP_INTERVAL_SECONDS_MIN {
                return bad("backup.interval_seconds", "must be 0 (on demand only) or at least 60");
            }
            if b.keep == Some(0) {
                return bad("backup.keep", "must be at least 1");
            }
        }
        if self.inventory.default_warehouse.is_empty() {
            return bad("inventory.default_warehouse", "must not be empty");
        }
        for (i, t) in self.tokens.iter().enumerate() {
            let key = format!("tokens[{i}]");
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return bad(
                    &format!("{key}.sha256"),
                    "expected 64 hex digits (the SHA-256 of the token)",
                );
            }
            check_scopes(&key, &t.scopes)?;
        }
        for (i, p) in self.partners.iter().enumerate() {
            let key = format!("partners[{i}]");
            if p.secrets.is_empty() || p.secrets.len() > 2 {
                return bad(&format!("{key}.secrets"), "one secret, or two during a rotation");
            }
            check_scopes(&key, &p.scopes)?;
        }
        Ok(())
    }

    /// Where snapshots go: `[backup] dir`, else `backups/` beside the data file.
    pub fn backup_dir(&self) -> PathBuf {
        match &self.backup {
            Some(b) => b.dir.clone(),
            None => self
                .storage
                .path
                .parent()
                .map(|p| p.join("backups"))
                .unwrap_or_else(|| PathBuf::from("backups")),
        }
    }

    pub fn backup_keep(&self) -> usize {
        self.backup.as_ref().and_then(|b| b.keep).unwrap_or(BACKUP_KEEP_DEFAULT)
    }

    /// No credentials at all: the daemon runs open, on loopback only.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty() && self.partners.is_empty()
    }

    pub fn rules(&self) -> crate::ledger::Rules {
        crate::ledger::Rules {
            allow_negative: self.inventory.allow_negative,
            allow_negative_in: self
                .inventory
                .warehouses
                .iter()
                .filter_map(|(w, p)| p.allow_negative.map(|a| (w.clone(), a)))
                .collect(),
        }
    }
}

fn check_scopes(key: &str, scopes: &[String]) -> Result<(), ConfigError> {
    for s in scopes {
        if Scope::parse(s).is_none() {
            return Err(ConfigError(format!(
                "`{key}.scopes`: unknown scope `{s}` (inventory:read, inventory:write, catalog:write, admin)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nlisten_typo = 3\n").err();
        let msg = err.map(|e| e.0).unwrap_or_default();
        assert!(msg.contains("listen_typo"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../config.example.toml");
        if let Err(e) = Config::parse(text) {
            panic!("config.example.toml: {e}");
        }
    }
}
