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
pub mod store;
pub mod telemetry;

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
    pub store: Store,
    /// Stops the backup schedule when dropped.
    _backups: Option<std::sync::mpsc::Sender<()>>,
    /// Stops the reservation sweep when dropped.
    _sweeper: Option<std::sync::mpsc::Sender<()>>,
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
    config.check_storage_dir().map_err(|e| StartError::Config(e.0))?;
    let store = Store::open(
        &config.storage.path,
        config.rules(),
        &config.inventory.default_warehouse,
    )
    .map_err(|e| StartError::Runtime(e.to_string()))?;
    store.set_quick_repair(config.storage.quick_repair);
    let listener = TcpListener::bind(addr).map_err(|e| StartError::Runtime(format!("cannot listen on {addr}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| StartError::Runtime(e.to_string()))?;
    let state = web::Data::new(AppState {
        store: store.clone(),
        default_warehouse: config.inventory.default_warehouse.clone(),
        body_limits: body::Limits::from_config(&config.server),
        in_flight: http::write::InFlight::default(),
        backup_dir: config.backup_dir(),
        backup_keep: config.backup_keep(),
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
            .wrap(actix_web::middleware::from_fn(telemetry::observe))
            .configure(|cfg| http::configure(cfg, state.clone(), auth.clone()))
    })
    .workers(workers)
    .keep_alive(Duration::from_secs(config::KEEP_ALIVE_SECONDS))
    .client_request_timeout(Duration::from_millis(config::CLIENT_REQUEST_TIMEOUT_MS))
    .max_connections(config::CONNECTIONS_PER_WORKER_MAX)
    .shutdown_timeout(30)
    .listen(listener)
    .map_err(|e| StartError::Runtime(e.to_string()))?
    .run();
    Ok(Daemon {
        server,
        addr,
        store,
        _backups: backups,
        _sweeper: sweeper,
    })
}

/// How often expired reservations are looked for.
pub const RESERVATION_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Expired reservations released per sweep command.
const RESERVATION_SWEEP_BATCH: usize = 256;

/// Releases reservations whose time ran out, on a thread of its own, until the returned
/// sender is dropped. It reads first and writes only when something is due, so an idle
/// daemon does not commit every second.
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
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(RESERVATION_SWEEP_INTERVAL)
            {
                let due = store
                    .reader()
                    .and_then(|r| r.expired_reservations(clock::now_ms(), RESERVATION_SWEEP_BATCH));
                match due {
                    Ok(ids) if !ids.is_empty() => {
                        let ctx = store::WriteCtx {
                            actor: "system".into(),
                            ..store::WriteCtx::default()
                        };
                        let cmd = ledger::Command::ExpireReservations { ids };
                        if let Err(e) = runtime.block_on(store.execute(cmd, ctx)) {
                            tracing::warn!(error = %e, "releasing expired reservations failed; retrying");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot look for expired reservations"),
                }
            }
        });
    spawned.ok().map(|_| stop)
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
                match store.backup(&dir, keep) {
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
