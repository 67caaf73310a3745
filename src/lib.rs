//! stockd: one binary that keeps a shop's stock — an append-only journal of movements and
//! the materialized levels of every product in every warehouse, in one redb file, behind
//! the native HTTP API and the seed dialects.

pub mod auth;
pub mod body;
pub mod bulk;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod http;
pub mod ledger;
pub mod notify;
pub mod sinks;
pub mod store;
pub mod telemetry;
pub mod tls;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpServer};

use crate::auth::Authenticator;
use crate::config::Config;
use crate::http::AppState;
use crate::store::Store;

/// Lowercase hex, without a `format!` per byte (this runs on every movement answer).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Why the daemon could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is unusable (exit 2).
    Config(String),
    /// The data file or the socket (exit 1).
    Runtime(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(m) | StartError::Runtime(m) => f.write_str(m),
        }
    }
}

/// A started daemon: the server future to await, its address and its store.
pub struct Daemon {
    pub server: actix_web::dev::Server,
    pub addr: SocketAddr,
    /// `https` with `[server.tls]`, else `http`.
    pub scheme: &'static str,
    pub store: Store,
    /// Stops the backup schedule when dropped.
    _backups: Option<std::sync::mpsc::Sender<()>>,
    /// Stops the reservation sweep when dropped.
    _sweeper: Option<std::sync::mpsc::Sender<()>>,
    /// Stops the outbound sinks when dropped.
    _sinks: sinks::Running,
}

/// Opens the store and binds the socket. Must run inside an actix/tokio runtime.
pub fn start(config: &Config) -> Result<Daemon, StartError> {
    let addr: SocketAddr =
        config.server.listen.parse().map_err(|_| {
            StartError::Config(format!("`server.listen`: `{}` is not an address", config.server.listen))
        })?;
    if config.is_open() && !addr.ip().is_loopback() {
        let why = format!(
            "refusing to listen on {addr} without credentials: configure [[tokens]] or [[partners]], or listen on 127.0.0.1"
        );
        return Err(StartError::Config(config.error_at("server.listen", &why).0));
    }
    // Configuration problems first (exit 2), before the data file is touched. The data
    // file's directory first: the backup dir may lie under it and would create it.
    config.check_storage_dir().map_err(|e| StartError::Config(e.0))?;
    let certificates = config
        .server
        .tls
        .as_ref()
        .map(tls::Certificates::load)
        .transpose()
        .map_err(|e| StartError::Config(config.error_at("server.tls", &e).0))?;
    let stale = store::snapshot::prepare_dir(&config.backup_dir())
        .map_err(|e| StartError::Config(config.error_at("backup.dir", &e.to_string()).0))?;
    for p in stale {
        tracing::info!(file = %p.display(), "removed a snapshot a crash left half-written");
    }
    let store = Store::open_with_options(
        &config.storage.path,
        config.rules(),
        &config.inventory.default_warehouse,
        config.storage.options(),
    )
    .map_err(|e| StartError::Runtime(e.to_string()))?;
    let sinks = sinks::start(config, &store).map_err(StartError::Runtime)?;
    let listener = TcpListener::bind(addr).map_err(|e| StartError::Runtime(format!("cannot listen on {addr}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| StartError::Runtime(e.to_string()))?;
    let state = web::Data::new(AppState {
        store: store.clone(),
        default_warehouse: config.inventory.default_warehouse.clone(),
        body_limits: body::Limits::from_config(&config.server),
        in_flight: http::write::InFlight::default(),
        backup_dir: config.backup_dir(),
        backup_keep: config.backup_keep(),
        trust_forwarded: config.server.trust_forwarded,
        sinks: sinks.sinks.clone(),
    });
    let backups = schedule_backups(config, &store);
    let sweeper = sweep_reservations(&store);
    let auth = Arc::new(Authenticator::from_config(config, Some(store.clone())));
    let workers = config
        .server
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    telemetry::prometheus();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(http::refuse_bad_encoding))
            .wrap(actix_web::middleware::from_fn(telemetry::observe))
            // Outermost: also a request refused by a middleware gets its unread body closed.
            .wrap(actix_web::middleware::from_fn(body::close_unread_bodies))
            .configure(|cfg| http::configure(cfg, state.clone(), auth.clone()))
    })
    .workers(workers)
    .keep_alive(Duration::from_secs(config::KEEP_ALIVE_SECONDS))
    .client_request_timeout(Duration::from_millis(config::CLIENT_REQUEST_TIMEOUT_MS))
    .tls_handshake_timeout(Duration::from_millis(tls::TLS_HANDSHAKE_TIMEOUT_MS))
    .max_connections(config::CONNECTIONS_PER_WORKER_MAX)
    .shutdown_timeout(30);
    let server = match &certificates {
        Some(c) => {
            let tls_config = c.server_config().map_err(StartError::Config)?;
            server.listen_rustls_0_23(listener, tls_config)
        }
        None => server.listen(listener),
    }
    .map_err(|e| StartError::Runtime(e.to_string()))?
    .run();
    tls::reload_on_sighup(certificates.clone()).map_err(StartError::Runtime)?;
    Ok(Daemon {
        server,
        addr,
        scheme: if certificates.is_some() { "https" } else { "http" },
        store,
        _backups: backups,
        _sweeper: sweeper,
        _sinks: sinks,
    })
}

/// How often the sweep looks for expired reservations while it has caught up.
pub const RESERVATION_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Expired reservations released per sweep command (one journal batch, within the ledger's
/// `BATCH_LINES_MAX`). A full batch means more may be due: the sweep goes again at once, so
/// a burst of expiries drains at the writer's pace, not one batch per interval.
pub const RESERVATION_SWEEP_BATCH: usize = ledger::BATCH_LINES_MAX;

/// Releases reservations whose time ran out, on a thread of its own, until the returned
/// sender is dropped. It reads first and writes only when something is due, so an idle
/// daemon does not commit every second. (Reads and commits already treat a reservation as
/// expired from `expires_at` on; the sweep gives its stock back and journals it.)
fn sweep_reservations(store: &Store) -> Option<std::sync::mpsc::Sender<()>> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let store = store.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .ok()?;
    let spawned = std::thread::Builder::new()
        .name("stockd-reservations".into())
        .spawn(move || {
            let mut wait = RESERVATION_SWEEP_INTERVAL;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                wait = match sweep_once(&store, &runtime) {
                    Some(n) if n == RESERVATION_SWEEP_BATCH => Duration::ZERO,
                    _ => RESERVATION_SWEEP_INTERVAL,
                };
            }
        });
    spawned.ok().map(|_| stop)
}

/// Releases up to one batch of due reservations: how many it released, `None` on failure
/// (then the sweep waits an interval before it tries again). Counting releases rather than
/// ids read keeps the sweep from spinning should the index ever list a closed one.
fn sweep_once(store: &Store, runtime: &tokio::runtime::Runtime) -> Option<usize> {
    let due = store
        .reader_blocking()
        .and_then(|r| r.expired_reservations(clock::now_ms(), RESERVATION_SWEEP_BATCH));
    let ids = match due {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "cannot look for expired reservations");
            return None;
        }
    };
    if ids.is_empty() {
        return Some(0);
    }
    let ctx = store::WriteCtx {
        actor: "system".into(),
        ..store::WriteCtx::default()
    };
    match runtime.block_on(store.execute(ledger::Command::ExpireReservations { ids }, ctx)) {
        Ok(applied) => Some(applied.movements.len()),
        Err(e) => {
            tracing::warn!(error = %e, "releasing expired reservations failed; retrying");
            None
        }
    }
}

/// Takes a snapshot every `[backup] interval_seconds` on a thread of its own, until the
/// returned sender is dropped (with the daemon).
fn schedule_backups(config: &Config, store: &Store) -> Option<std::sync::mpsc::Sender<()>> {
    let interval = config.backup.as_ref().map(|b| b.interval_seconds).filter(|&s| s > 0)?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (store, dir, keep) = (store.clone(), config.backup_dir(), config.backup_keep());
    let spawned = std::thread::Builder::new()
        .name("stockd-backups".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_secs(interval))
            {
                let taken = {
                    let _turn = store::snapshot::turn();
                    store.backup(&dir, keep)
                };
                match taken {
                    Ok(s) => tracing::info!(file = %s.file, seq = s.seq, bytes = s.bytes, "scheduled snapshot taken"),
                    Err(e) => tracing::error!(error = %e, "scheduled snapshot failed"),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the backup schedule");
        return None;
    }
    Some(stop)
}
