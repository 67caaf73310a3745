//! Configuration: TOML with unknown keys refused, embedded defaults, and the named limits.
//!
//! Every error found after parsing names the file, the line and the key (`stockd.toml:31:
//! \`tokens[1].sha256\`: …`): the checks name keys as paths and [`Source`] finds their line.

use std::collections::{BTreeMap, HashMap};
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
/// A request body must have arrived whole within this, in milliseconds, by default
/// (`[server] body_read_deadline_ms`): a client that stalls or drips is answered 408.
pub const BODY_READ_DEADLINE_MS_DEFAULT: u64 = 10_000;
/// No body read deadline may be set above this, in milliseconds.
pub const BODY_READ_DEADLINE_MS_MAX: u64 = 600_000;
/// Shortest partner secret accepted, in bytes: an HMAC key that can be guessed is no key.
pub const SECRET_BYTES_MIN: usize = 16;

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
    /// Outbound sinks (issue 13, docs/outbound.md).
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    #[serde(default)]
    pub nats: Option<NatsConfig>,
    /// Where the config was read from, to name file and line in errors.
    #[serde(skip)]
    pub source: Source,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    #[serde(default = "listen_default")]
    pub listen: String,
    #[serde(default = "body_limit_default")]
    pub body_limit_bytes: usize,
    #[serde(default = "body_read_deadline_default")]
    pub body_read_deadline_ms: u64,
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
            body_read_deadline_ms: body_read_deadline_default(),
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

fn body_read_deadline_default() -> u64 {
    BODY_READ_DEADLINE_MS_DEFAULT
}

/// Longest `[storage] commit_interval_ms`: what the open transaction holds in memory is
/// bounded by the lines it has too, but a second of writes is enough to share a commit.
pub const COMMIT_INTERVAL_MS_MAX: u64 = 1_000;

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
    /// Answered writes wait this long in the open transaction before it is committed to the
    /// data file (no fsync: the log made them durable); a read asks for the commit at once.
    #[serde(default = "commit_interval_ms_default")]
    pub commit_interval_ms: u64,
}

fn commit_interval_ms_default() -> u64 {
    crate::store::COMMIT_INTERVAL_MS_DEFAULT
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
            commit_interval_ms: self.commit_interval_ms,
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
            commit_interval_ms: commit_interval_ms_default(),
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

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    pub id: String,
    pub secrets: Vec<String>,
    pub scopes: Vec<String>,
    pub warehouses: Option<Vec<String>>,
    #[serde(default)]
    pub legacy_signature: bool,
}

/// Never the secrets (like [`Source`]): a `{config:?}` must not put them in a log.
impl std::fmt::Debug for PartnerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerConfig")
            .field("id", &self.id)
            .field("secrets", &format_args!("[{} redacted]", self.secrets.len()))
            .field("scopes", &self.scopes)
            .field("warehouses", &self.warehouses)
            .field("legacy_signature", &self.legacy_signature)
            .finish()
    }
}

/// `[[webhooks]]`: an endpoint that receives the journal's events, signed (Standard Webhooks).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub id: String,
    pub url: String,
    /// `whsec_<base64>`: the first signs; a second (rotation) signs too.
    pub secrets: Vec<String>,
    /// Event types delivered; default: all.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Only events of these warehouses; default: all.
    #[serde(default)]
    pub warehouses: Option<Vec<String>>,
    /// Retry pauses (see [`Backoff`]).
    #[serde(default = "backoff_initial_default")]
    pub backoff_initial_ms: u64,
    #[serde(default = "backoff_max_default")]
    pub backoff_max_ms: u64,
}

/// Never the secrets: a `{config:?}` must not put them in a log.
impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secrets", &format_args!("[{} redacted]", self.secrets.len()))
            .field("events", &self.events)
            .field("warehouses", &self.warehouses)
            .finish()
    }
}

/// Retry pauses of a sink: exponential from `backoff_initial_ms` up to `backoff_max_ms`,
/// with jitter (API.md: 1 s up to 1 h; tests shorten them).
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial_ms: u64,
    pub max_ms: u64,
}

impl WebhookConfig {
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial_ms: self.backoff_initial_ms,
            max_ms: self.backoff_max_ms,
        }
    }
}

impl NatsConfig {
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial_ms: self.backoff_initial_ms,
            max_ms: self.backoff_max_ms,
        }
    }
}

fn backoff_initial_default() -> u64 {
    crate::sinks::BACKOFF_INITIAL_MS_DEFAULT
}

fn backoff_max_default() -> u64 {
    crate::sinks::BACKOFF_MAX_MS_DEFAULT
}

/// `[nats]`: publish every event to a JetStream stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// The sink's id in `/admin/sinks` and metrics (unique among sinks).
    #[serde(default = "nats_id_default")]
    pub id: String,
    pub url: String,
    #[serde(default = "nats_stream_default")]
    pub stream: String,
    #[serde(default = "nats_prefix_default")]
    pub subject_prefix: String,
    /// A NATS credentials file (`.creds`: JWT and nkey seed).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// Retry pauses (see [`Backoff`]).
    #[serde(default = "backoff_initial_default")]
    pub backoff_initial_ms: u64,
    #[serde(default = "backoff_max_default")]
    pub backoff_max_ms: u64,
}

fn nats_id_default() -> String {
    "nats".to_string()
}

fn nats_stream_default() -> String {
    "STOCKD".to_string()
}

fn nats_prefix_default() -> String {
    "stockd".to_string()
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

/// The text a config was parsed from, and its file: what errors point into.
#[derive(Clone, Default)]
pub struct Source {
    pub file: Option<PathBuf>,
    text: String,
    /// Keys set by a flag or the environment instead of the file, with where from.
    overridden: Vec<(&'static str, &'static str)>,
}

/// Never the text: it holds partner secrets.
impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// Records that `key` comes from `origin` (a flag or variable), not from the file.
    pub fn set_by(&mut self, key: &'static str, origin: &'static str) {
        self.overridden.push((key, origin));
    }

    /// Where `key` (a path like `tokens[1].sha256`) is set: `FILE:LINE`, `line LINE` without
    /// a file, the flag that set it, or just the file when the key is not in it (a default).
    pub fn locate(&self, key: &str) -> Option<String> {
        if let Some((_, origin)) = self.overridden.iter().find(|(k, _)| *k == key) {
            return Some((*origin).to_string());
        }
        match (&self.file, self.line(key)) {
            (Some(file), Some(line)) => Some(format!("{}:{line}", file.display())),
            (Some(file), None) => Some(file.display().to_string()),
            (None, Some(line)) => Some(format!("line {line}")),
            (None, None) => None,
        }
    }

    /// The line where `key` is set in the file, if it is.
    pub fn line(&self, key: &str) -> Option<usize> {
        key_offset(&self.text, key).map(|at| line_of(&self.text, at))
    }
}

/// The byte offset where `key` is set in `text`, or where its nearest enclosing table or
/// array entry is. Keys are dotted paths with indexes: `partners[0].secrets[1]`.
fn key_offset(text: &str, key: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut found = None;
    for part in key.split('.') {
        let mut pieces = part.split('[');
        let name = pieces.next().unwrap_or_default();
        let Some(next) = item.as_table_like().and_then(|t| t.get(name)) else {
            break;
        };
        item = next;
        found = item.span().map(|s| s.start).or(found);
        for index in pieces {
            let Some(next) = index
                .trim_end_matches(']')
                .parse::<usize>()
                .ok()
                .and_then(|i| item.get(i))
            else {
                return found;
            };
            item = next;
            found = item.span().map(|s| s.start).or(found);
        }
    }
    found
}

/// `message` with every string value it quotes (serde's `string "…"`) left out: the value
/// may be a partner secret in the wrong shape (`secrets = "…"`), and config errors go to
/// the journal. The line and the expected shape are enough to fix it.
fn redact_strings(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(QUOTED) {
        out.push_str(&rest[..start]);
        out.push_str("a string");
        let value = &rest[start + QUOTED.len()..];
        // The closing quote: the first one not escaped (serde quotes with Debug escapes).
        let mut escaped = false;
        let end = value.char_indices().find_map(|(i, c)| match c {
            '\\' if !escaped => {
                escaped = true;
                None
            }
            '"' if !escaped => Some(i + 1),
            _ => {
                escaped = false;
                None
            }
        });
        rest = &value[end.unwrap_or(value.len())..];
    }
    out.push_str(rest);
    out
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

impl Config {
    /// Reads and checks a config file; errors name the file, line and key.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Config::from_source(Source {
            file: Some(path.to_path_buf()),
            text,
            overridden: Vec::new(),
        })
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_source(Source {
            file: None,
            text: text.to_string(),
            overridden: Vec::new(),
        })
    }

    fn from_source(source: Source) -> Result<Config, ConfigError> {
        let mut config = Config::deserialize(&source)?;
        config.source = source;
        config.check()?;
        Ok(config)
    }

    /// TOML syntax and shape only; a syntax error names its line too.
    fn deserialize(source: &Source) -> Result<Config, ConfigError> {
        toml::from_str(&source.text).map_err(|e| {
            let line = e.span().map(|s| line_of(&source.text, s.start));
            let at = match (&source.file, line) {
                (Some(file), Some(line)) => format!("{}:{line}: ", file.display()),
                (Some(file), None) => format!("{}: ", file.display()),
                (None, Some(line)) => format!("line {line}: "),
                (None, None) => String::new(),
            };
            ConfigError(format!("{at}{}", redact_strings(e.message().trim_end())))
        })
    }

    /// An error about `key`, naming where it is set.
    pub fn error_at(&self, key: &str, why: &str) -> ConfigError {
        match self.source.locate(key) {
            Some(at) => ConfigError(format!("{at}: `{key}`: {why}")),
            None => ConfigError(format!("`{key}`: {why}")),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(self.error_at(key, why));
        if self.server.listen.parse::<SocketAddr>().is_err() {
            return bad("server.listen", "expected an address like 127.0.0.1:8080");
        }
        if self.server.body_limit_bytes == 0 || self.server.body_limit_bytes > BODY_LIMIT_BYTES_MAX {
            return bad("server.body_limit_bytes", "must be between 1 and 67108864");
        }
        if self.server.body_read_deadline_ms == 0 || self.server.body_read_deadline_ms > BODY_READ_DEADLINE_MS_MAX {
            return bad("server.body_read_deadline_ms", "must be between 1 and 600000");
        }
        if self.server.workers == Some(0) {
            return bad("server.workers", "must be at least 1");
        }
        if !(1..=COMMIT_INTERVAL_MS_MAX).contains(&self.storage.commit_interval_ms) {
            return bad("storage.commit_interval_ms", "must be between 1 and 1000");
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
        self.check_tokens(&mut Principals::default())?;
        self.check_sinks()
    }

    /// Sink ids are `[a-z0-9_-]{1,64}` and unique; webhooks have an http(s) URL, one or two
    /// `whsec_` secrets, known event types; `[nats]` a nats:// URL and valid names.
    fn check_sinks(&self) -> Result<(), ConfigError> {
        let mut ids: HashMap<String, String> = HashMap::new();
        let mut check_id = |key: String, id: &str| -> Result<(), ConfigError> {
            if let Some(why) = crate::sinks::id_refusal(id) {
                return Err(self.error_at(&key, &why));
            }
            if let Some(first) = ids.insert(id.to_string(), key.clone()) {
                return Err(self.error_at(
                    &key,
                    &format!("`{id}` is already the id of `{first}`: sink ids are unique"),
                ));
            }
            Ok(())
        };
        for (i, w) in self.webhooks.iter().enumerate() {
            let key = format!("webhooks[{i}]");
            check_id(format!("{key}.id"), &w.id)?;
            self.check_webhook(&key, w)?;
        }
        if let Some(n) = &self.nats {
            check_id("nats.id".into(), &n.id)?;
            let refused = crate::sinks::nats::config_refusal(n);
            if let Some((field, why)) = refused {
                return Err(self.error_at(&format!("nats.{field}"), &why));
            }
            self.check_backoff("nats", &n.backoff())?;
        }
        Ok(())
    }

    fn check_webhook(&self, key: &str, w: &WebhookConfig) -> Result<(), ConfigError> {
        if let Some(why) = crate::sinks::webhook::url_refusal(&w.url) {
            return Err(self.error_at(&format!("{key}.url"), &why));
        }
        if w.secrets.is_empty() || w.secrets.len() > 2 {
            return Err(self.error_at(&format!("{key}.secrets"), "one secret, or two during a rotation"));
        }
        for (j, secret) in w.secrets.iter().enumerate() {
            if let Err(why) = crate::sinks::webhook::secret_key(secret) {
                return Err(self.error_at(&format!("{key}.secrets[{j}]"), &why));
            }
        }
        if let Some(events) = &w.events {
            if events.is_empty() {
                return Err(self.error_at(&format!("{key}.events"), "names no event (leave it out for all)"));
            }
            for e in events {
                if crate::sinks::EventType::parse(e).is_none() {
                    return Err(self.error_at(
                        &format!("{key}.events"),
                        &format!("unknown event type `{e}` ({})", crate::sinks::EventType::NAMES),
                    ));
                }
            }
        }
        if let Some(ws) = &w.warehouses {
            if ws.is_empty() || ws.iter().any(|w| w.is_empty()) {
                return Err(self.error_at(
                    &format!("{key}.warehouses"),
                    "names no warehouse (leave it out for all)",
                ));
            }
        }
        self.check_backoff(key, &w.backoff())
    }

    fn check_backoff(&self, key: &str, b: &Backoff) -> Result<(), ConfigError> {
        if b.initial_ms == 0 || b.initial_ms > b.max_ms {
            return Err(self.error_at(
                &format!("{key}.backoff_initial_ms"),
                "must be at least 1 and at most backoff_max_ms",
            ));
        }
        if b.max_ms > crate::sinks::BACKOFF_MAX_MS_DEFAULT {
            return Err(self.error_at(&format!("{key}.backoff_max_ms"), "must be at most 3600000 (1 h)"));
        }
        Ok(())
    }

    /// Token hashes are 64 hex digits, none published, none twice; then the partners.
    fn check_tokens(&self, names: &mut Principals) -> Result<(), ConfigError> {
        let mut hashes: HashMap<String, String> = HashMap::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let key = format!("tokens[{i}]");
            self.check_name(names, &format!("{key}.name"), &t.name)?;
            let hash_key = format!("{key}.sha256");
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(self.error_at(&hash_key, "expected 64 hex digits (the SHA-256 of the token)"));
            }
            let hash = t.sha256.to_ascii_lowercase();
            if crate::auth::published::is_published_hash(&hash) {
                return Err(self.error_at(
                    &hash_key,
                    "this hash is printed in stockd's own docs or examples, so anyone can use its token: \
                     make a token of your own with `stockd token new`",
                ));
            }
            if let Some(first) = hashes.get(&hash) {
                return Err(self.error_at(
                    &hash_key,
                    &format!(
                        "the same hash as `{first}`{}: one token would be two principals",
                        self.also_at(first)
                    ),
                ));
            }
            hashes.insert(hash, hash_key);
            self.check_scopes(&key, &t.scopes)?;
        }
        self.check_partners(names)
    }

    /// Partner secrets are 1 or 2, each at least 16 bytes and not published.
    fn check_partners(&self, names: &mut Principals) -> Result<(), ConfigError> {
        for (i, p) in self.partners.iter().enumerate() {
            let key = format!("partners[{i}]");
            self.check_name(names, &format!("{key}.id"), &p.id)?;
            if p.secrets.is_empty() || p.secrets.len() > 2 {
                return Err(self.error_at(&format!("{key}.secrets"), "one secret, or two during a rotation"));
            }
            for (j, secret) in p.secrets.iter().enumerate() {
                if let Some(why) = secret_refusal(secret) {
                    return Err(self.error_at(&format!("{key}.secrets[{j}]"), &why));
                }
            }
            self.check_scopes(&key, &p.scopes)?;
        }
        Ok(())
    }

    /// Token names and partner ids share one namespace: each names the actor of a write
    /// and scopes its `Idempotency-Key`s, so two principals with one name would share them.
    fn check_name(&self, names: &mut Principals, key: &str, name: &str) -> Result<(), ConfigError> {
        if name.is_empty() {
            return Err(self.error_at(key, "must not be empty"));
        }
        if let Some(first) = names.0.get(name) {
            return Err(self.error_at(
                key,
                &format!(
                    "`{name}` is already the name of `{first}`{}: token names and partner ids \
                     share one namespace",
                    self.also_at(first)
                ),
            ));
        }
        names.0.insert(name.to_string(), key.to_string());
        Ok(())
    }

    /// ` (line N)` where `key` is set, for an error that names a second place.
    fn also_at(&self, key: &str) -> String {
        self.source
            .line(key)
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default()
    }

    fn check_scopes(&self, key: &str, scopes: &[String]) -> Result<(), ConfigError> {
        for s in scopes {
            if Scope::parse(s).is_none() {
                return Err(self.error_at(
                    &format!("{key}.scopes"),
                    &format!("unknown scope `{s}` (inventory:read, inventory:write, catalog:write, admin)"),
                ));
            }
        }
        Ok(())
    }

    /// The data file's directory must exist: the daemon creates the file, not directories.
    /// Checked at start (after flags), not at parse: it looks at the file system.
    pub fn check_storage_dir(&self) -> Result<(), ConfigError> {
        let dir = match self.storage.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => return Ok(()),
        };
        if dir.is_dir() {
            return Ok(());
        }
        Err(self.error_at(
            "storage.path",
            &format!(
                "a directory is missing: `{}` does not exist (create it, or choose another path)",
                dir.display()
            ),
        ))
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

/// Principal names seen so far, each with the key that named it first.
#[derive(Default)]
struct Principals(HashMap<String, String>);

/// Why a partner secret cannot be used, if it cannot.
pub fn secret_refusal(secret: &str) -> Option<String> {
    if secret.is_empty() {
        return Some("is empty: a request signed with an empty key would pass".to_string());
    }
    if secret.len() < SECRET_BYTES_MIN {
        return Some(format!(
            "is {} bytes: at least {SECRET_BYTES_MIN} (`stockd partner new` makes one of 43)",
            secret.len()
        ));
    }
    if crate::auth::published::is_published_secret(secret) {
        return Some(
            "this secret is printed in stockd's own docs or examples, so anyone can sign with it: \
             make one of your own with `stockd partner new`"
                .to_string(),
        );
    }
    None
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
    fn debug_output_holds_no_secret() {
        let text = "[[partners]]\nid = \"p\"\nsecrets = [\"a-secret-nobody-reads\"]\nscopes = []\n";
        let config = Config::parse(text).unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{config:?}");
        assert!(shown.contains("\"p\""), "{shown}");
        assert!(!shown.contains("a-secret-nobody-reads"), "{shown}");
    }

    #[test]
    fn quoted_strings_are_left_out_of_messages() {
        let cases = [
            (
                r#"invalid type: string "s3cr3t", expected a sequence"#,
                "invalid type: a string, expected a sequence",
            ),
            (r#"string "a\"b" and string "c""#, "a string and a string"),
            ("expected a string", "expected a string"),
            (r#"cut string "abc"#, "cut a string"),
        ];
        for (message, redacted) in cases {
            assert_eq!(redact_strings(message), redacted, "{message}");
        }
    }

    /// The example parses and passes every check but one: its credentials are
    /// placeholders, refused at start; with real ones in their place it is a working config.
    #[test]
    fn the_example_file_parses_but_its_credentials_are_refused() {
        let text = include_str!("../config.example.toml");
        let msg = Config::parse(text).err().map(|e| e.0).unwrap_or_default();
        assert!(msg.contains("`tokens[0].sha256`") && msg.contains("docs"), "{msg}");
        let line = text.lines().position(|l| l.starts_with("sha256")).unwrap_or_default() + 1;
        assert!(msg.starts_with(&format!("line {line}: ")), "{msg}");

        let mut text = text.to_string();
        for (placeholder, real) in [
            ("0".repeat(64), crate::auth::sha256_hex(b"a token of my own")),
            ("1".repeat(64), crate::auth::sha256_hex(b"another token of mine")),
            (
                "replace-with-the-secret-from-stockd-partner-new".to_string(),
                "a secret nobody has read".to_string(),
            ),
            (
                "whsec_cmVwbGFjZS13aXRoLXN0b2NrZC13ZWJob29rLW5ldyE=".to_string(),
                "whsec_YSB3ZWJob29rIGtleSBub2JvZHkgaGFzIHJlYWQ=".to_string(),
            ),
        ] {
            assert!(text.contains(&placeholder), "{placeholder}");
            text = text.replace(&placeholder, &real);
        }
        if let Err(e) = Config::parse(&text) {
            panic!("config.example.toml with real credentials: {e}");
        }
    }
}
