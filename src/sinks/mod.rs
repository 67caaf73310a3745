//! Outbound sinks (issue 13, API.md "Outbound"): the journal is the outbox. Each sink —
//! every `[[webhooks]]` entry and `[nats]` — has a durable position (the last journal seq it
//! delivered, in the data file) and one task that reads the journal after it in pages,
//! turns entries into events and delivers them one at a time, in seq order: the next only
//! after the last was acknowledged, retried with exponential backoff and jitter for as long
//! as it takes, never dropped.
//!
//! All sinks run on one thread of their own (an actix system: its HTTP client is
//! thread-local), never on the writer or the HTTP workers; a sink only reads the store and,
//! every [`POSITION_SAVE_INTERVAL_MS`] at most, records its position through the writer, so
//! a slow or dead endpoint slows neither writes nor other sinks.

pub mod event;
pub mod nats;
pub mod webhook;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

pub use event::EventType;
use event::{Event, Filter};

use crate::config::{Backoff, Config};
use crate::store::{SinkRecord, Store, StoreError};

/// First retry pause of a failed delivery, in milliseconds (API.md: 1 s) …
pub const BACKOFF_INITIAL_MS_DEFAULT: u64 = 1_000;
/// … doubling up to this (1 h), with jitter.
pub const BACKOFF_MAX_MS_DEFAULT: u64 = 3_600_000;
/// Journal entries one read turns into events: what a sink far behind holds in memory.
pub const PAGE_ENTRIES: u64 = 100;
/// A sink records its position at most this often while it delivers (and whenever it has
/// caught up): a crash repeats at most this much, never skips.
pub const POSITION_SAVE_INTERVAL_MS: u64 = 200;
/// Commands (pause, resume, position) waiting for one sink; more answer 503.
pub const CONTROL_QUEUE_MAX: usize = 8;
/// Longest an admin command waits for its sink, in milliseconds.
pub const CONTROL_TIMEOUT_MS: u64 = 5_000;
/// Longest `last_error` kept and logged, in characters.
pub const ERROR_CHARS_MAX: usize = 300;
/// Longest sink id, in bytes.
pub const ID_BYTES_MAX: usize = 64;
/// Pause before reading the journal again after a read failed, in milliseconds.
const READ_RETRY_MS: u64 = 1_000;
/// At a clean stop, how long the sinks may take to record their positions, in milliseconds.
const STOP_SAVE_TIMEOUT_MS: u64 = 2_000;

pub const LAG: &str = "stockd_sink_lag";
pub const DELIVERIES: &str = "stockd_sink_deliveries_total";

/// Why a sink id cannot be used (API.md: `[a-z0-9_-]{1,64}`).
pub fn id_refusal(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= ID_BYTES_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    (!ok).then(|| "expected 1 to 64 of a-z, 0-9, `_` and `-`".to_string())
}

/// One failed attempt: the endpoint's status (webhooks) and what went wrong.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: Option<u16>,
    pub error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Webhook,
    Nats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Retrying,
    Paused,
}

/// A sink as `GET /admin/sinks` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub id: String,
    #[schema(value_type = String)]
    pub kind: Kind,
    /// The webhook URL, or the NATS server and stream (never credentials).
    pub target: String,
    /// The last journal seq delivered (or skipped by the filters).
    pub position: u64,
    /// Journal entries after `position`.
    pub lag: u64,
    #[schema(value_type = String)]
    pub state: State,
    /// Failed attempts of the event being delivered (0 once it is acknowledged).
    pub attempts: u64,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<String>,
}

impl Status {
    /// A sink before its start: at position 0 (read from the data file at start), ok.
    fn new(id: &str, kind: Kind, target: String) -> Status {
        Status {
            id: id.to_string(),
            kind,
            target,
            position: 0,
            lag: 0,
            state: State::Ok,
            attempts: 0,
            last_error: None,
            last_attempt_at: None,
        }
    }
}

/// What an admin asks of a sink.
#[derive(Debug, Clone, Copy)]
pub enum Command {
    Pause,
    Resume,
    /// Deliver what follows this seq next (replay from seq+1, or skip ahead).
    Position(u64),
}

struct Control {
    command: Command,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

struct Handle {
    status: Arc<Mutex<Status>>,
    control: mpsc::Sender<Control>,
}

/// Every configured sink, for the admin routes.
#[derive(Default)]
pub struct Sinks {
    handles: Vec<Handle>,
}

impl Sinks {
    /// Every sink, lag counted against `seq_last`.
    pub fn list(&self, seq_last: u64) -> Vec<Status> {
        self.handles
            .iter()
            .filter_map(|h| snapshot(&h.status, seq_last))
            .collect()
    }

    /// One sink, `None` when no sink has this id.
    pub fn get(&self, id: &str, seq_last: u64) -> Option<Status> {
        self.handle(id).and_then(|h| snapshot(&h.status, seq_last))
    }

    fn handle(&self, id: &str) -> Option<&Handle> {
        self.handles.iter().find(|h| lock(&h.status).id == id)
    }

    /// Hands `command` to the sink and waits until it took effect (recorded durably);
    /// `Ok(false)` when no sink has this id.
    pub async fn command(&self, id: &str, command: Command) -> Result<bool, StoreError> {
        let Some(handle) = self.handle(id) else {
            return Ok(false);
        };
        let (reply, answer) = oneshot::channel();
        handle
            .control
            .try_send(Control { command, reply })
            .map_err(|_| StoreError::Overloaded)?;
        match tokio::time::timeout(Duration::from_millis(CONTROL_TIMEOUT_MS), answer).await {
            Ok(Ok(done)) => done.map(|()| true),
            _ => Err(StoreError::unavailable("the sink did not answer in time")),
        }
    }
}

/// A sink's status, even when a panic left its lock poisoned (the status is still worth
/// showing, and the sink starts again).
fn lock(status: &Mutex<Status>) -> std::sync::MutexGuard<'_, Status> {
    status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn snapshot(status: &Mutex<Status>, seq_last: u64) -> Option<Status> {
    let mut s = lock(status).clone();
    s.lag = seq_last.saturating_sub(s.position);
    Some(s)
}

/// The running sinks; dropping it stops their thread and waits for it (it holds the
/// store, and the file must be free when the daemon is done).
pub struct Running {
    pub sinks: Arc<Sinks>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How one sink delivers.
enum Transport {
    Webhook(webhook::Webhook),
    Nats(Box<nats::Nats>),
    /// Tests: records what it was given, after panicking as many times as asked.
    #[cfg(test)]
    Scripted(tests::Scripted),
}

impl Transport {
    async fn deliver(&mut self, event: &Event) -> Result<(), Failure> {
        match self {
            Transport::Webhook(w) => w.deliver(event).await,
            Transport::Nats(n) => n.deliver(event).await,
            #[cfg(test)]
            Transport::Scripted(s) => s.deliver(event),
        }
    }
}

/// What the thread needs to build one sink's runner (the transport is made there).
struct Plan {
    status: Arc<Mutex<Status>>,
    control: mpsc::Receiver<Control>,
    filter: Filter,
    backoff: Backoff,
}

impl Plan {
    /// Reads the sink's stored position and pause flag before the daemon takes writes. A
    /// sink seen for the first time starts at the end of the journal, recorded before
    /// anything is written after it (so a crash can neither skip nor invent a start).
    fn start_at(&mut self, store: &Store) -> Result<(), String> {
        let id = self.status.lock().map(|s| s.id.clone()).map_err(|e| e.to_string())?;
        let stored = store
            .reader_blocking()
            .and_then(|r| r.sink(&id))
            .map_err(|e| format!("sink `{id}`: cannot read its position: {e}"))?;
        let (position, paused) = match stored {
            Some(found) => found,
            None => {
                let position = store.seq_last();
                let record = SinkRecord {
                    sink: id.clone(),
                    position,
                    paused: false,
                };
                store
                    .set_sink_blocking(record)
                    .map_err(|e| format!("sink `{id}`: cannot record its position: {e}"))?;
                (position, false)
            }
        };
        if let Ok(mut s) = self.status.lock() {
            s.position = position;
            s.state = if paused { State::Paused } else { State::Ok };
        }
        tracing::info!(sink = %id, position, paused, "sink starts");
        Ok(())
    }
}

/// Builds a transport on the sinks' thread (the HTTP client is thread-local).
type MakeTransport = Box<dyn FnOnce(Arc<rustls::ClientConfig>) -> Transport + Send>;

/// Starts every configured sink on a thread of its own; with none, starts nothing.
pub fn start(config: &Config, store: &Store) -> Result<Running, String> {
    let mut handles = Vec::new();
    let mut plans = Vec::new();
    let mut add = |id: &str, kind, target: String, filter, backoff, make| {
        let status = Arc::new(Mutex::new(Status::new(id, kind, target)));
        let (tx, rx) = mpsc::channel(CONTROL_QUEUE_MAX);
        handles.push(Handle {
            status: status.clone(),
            control: tx,
        });
        let plan = Plan {
            status,
            control: rx,
            filter,
            backoff,
        };
        plans.push((plan, make));
    };
    for w in &config.webhooks {
        let (url, secrets) = (w.url.clone(), w.secrets.clone());
        let filter = Filter::new(w.events.as_deref(), w.warehouses.as_deref());
        let make: MakeTransport = Box::new(move |tls| Transport::Webhook(webhook::Webhook::new(&url, &secrets, tls)));
        add(
            &w.id,
            Kind::Webhook,
            webhook::display_url(&w.url),
            filter,
            w.backoff(),
            make,
        );
    }
    if let Some(n) = &config.nats {
        let nats_config = n.clone();
        let make: MakeTransport = Box::new(move |_| Transport::Nats(Box::new(nats::Nats::new(nats_config))));
        add(
            &n.id,
            Kind::Nats,
            nats::Nats::target(n),
            Filter::default(),
            n.backoff(),
            make,
        );
    }
    for (plan, _) in &mut plans {
        plan.start_at(store)?;
    }
    let sinks = Arc::new(Sinks { handles });
    if plans.is_empty() {
        return Ok(Running {
            sinks,
            stop: None,
            thread: None,
        });
    }
    for h in &sinks.handles {
        if let Ok(s) = h.status.lock() {
            metrics::gauge!(LAG, "sink" => s.id.clone()).set(0.0);
            for outcome in ["ok", "failed"] {
                metrics::counter!(DELIVERIES, "sink" => s.id.clone(), "outcome" => outcome).increment(0);
            }
        }
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let store = store.clone();
    let thread = std::thread::Builder::new()
        .name("stockd-sinks".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let tls = webhook::tls_config();
                let (halt, halted) = tokio::sync::watch::channel(false);
                let mut tasks = Vec::new();
                for (plan, make) in plans {
                    let transport = make(tls.clone());
                    let runner = Runner::new(plan, transport, store.clone());
                    tasks.push(actix_web::rt::spawn(runner.run(halted.clone())));
                }
                let _ = stopped.await;
                // Each sink records where it is: a clean restart repeats at most the event
                // that was in flight (its attempt is abandoned here).
                let _ = halt.send(true);
                let deadline = tokio::time::Instant::now() + Duration::from_millis(STOP_SAVE_TIMEOUT_MS);
                for task in tasks {
                    let _ = tokio::time::timeout_at(deadline, task).await;
                }
            });
        })
        .map_err(|e| format!("cannot start the sinks' thread: {e}"))?;
    Ok(Running {
        sinks,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// The journal entries read but not yet delivered: per seq, the events still to go.
struct Pending {
    seq: u64,
    events: VecDeque<Event>,
}

/// One sink's loop.
struct Runner {
    id: String,
    store: Store,
    transport: Transport,
    filter: Filter,
    backoff: Backoff,
    status: Arc<Mutex<Status>>,
    control: mpsc::Receiver<Control>,
    /// Everything up to here was delivered (in memory; recorded every so often).
    position: u64,
    saved: u64,
    saved_at: Instant,
    paused: bool,
    /// Read from the journal up to here (into `pending`).
    read_to: u64,
    pending: VecDeque<Pending>,
    attempts: u64,
}

impl Runner {
    fn new(plan: Plan, transport: Transport, store: Store) -> Runner {
        let (id, position, paused) = plan
            .status
            .lock()
            .map(|s| (s.id.clone(), s.position, s.state == State::Paused))
            .unwrap_or_default();
        Runner {
            id,
            store,
            transport,
            filter: plan.filter,
            backoff: plan.backoff,
            status: plan.status,
            control: plan.control,
            position,
            saved: position,
            saved_at: Instant::now(),
            paused,
            read_to: position,
            pending: VecDeque::new(),
            attempts: 0,
        }
    }

    /// Delivers until `halt` turns true, then records the position. A panic while
    /// delivering (a bug: in the transport, or in turning an entry into events) does not
    /// end the sink: like a failed attempt it is counted, logged and retried with backoff,
    /// from the last delivered position (at least once, as after a restart). One that
    /// panics on the same entry every time shows as `retrying` with its error, where
    /// `/admin/sinks` can move the position past it.
    async fn run(mut self, mut halt: tokio::sync::watch::Receiver<bool>) {
        loop {
            let panicked = tokio::select! {
                r = AssertUnwindSafe(self.deliver_forever()).catch_unwind() => r.is_err(),
                _ = halt.wait_for(|h| *h) => false,
            };
            if !panicked {
                break;
            }
            let halted = tokio::select! {
                () = self.after_panic() => false,
                _ = halt.wait_for(|h| *h) => true,
            };
            if halted {
                break;
            }
        }
        self.save_if_behind().await;
    }

    /// Forgets what was read after the last delivered position, then pauses as after a
    /// failed attempt.
    async fn after_panic(&mut self) {
        self.pending.clear();
        self.read_to = self.position;
        let seq = self.position + 1;
        self.failed_with(
            seq,
            "-",
            Failure {
                status: None,
                error: "internal error: the sink's task panicked (see the log); it starts again from its position"
                    .into(),
            },
        )
        .await;
    }

    async fn deliver_forever(&mut self) {
        let mut commits = self.store.commits();
        loop {
            self.show_lag();
            if self.paused {
                self.save_if_behind().await;
                match self.control.recv().await {
                    Some(c) => self.obey(c).await,
                    None => return,
                }
                continue;
            }
            if self.pending.is_empty() && !self.refill().await {
                // Caught up: sleep until a commit, a command, or the time to record the
                // position (at most every POSITION_SAVE_INTERVAL_MS, so a sink that keeps
                // up with a busy journal does not add a write per event).
                commits.borrow_and_update();
                if self.read_to < self.store.seq_last() {
                    continue;
                }
                let save_at = self.saved_at + Duration::from_millis(POSITION_SAVE_INTERVAL_MS);
                let behind = self.saved != self.position;
                tokio::select! {
                    changed = commits.changed() => if changed.is_err() { return },
                    c = self.control.recv() => match c {
                        Some(c) => self.obey(c).await,
                        None => return,
                    },
                    _ = tokio::time::sleep_until(save_at.into()), if behind => {
                        let _ = self.save().await;
                    }
                }
                continue;
            }
            self.deliver_next().await;
        }
    }

    /// Reads the next page of the journal into `pending`; false when there was nothing new.
    async fn refill(&mut self) -> bool {
        let read = async {
            let reader = self.store.reader().await?;
            let page = reader.feed(self.read_to, PAGE_ENTRIES, self.filter.warehouses.as_deref())?;
            let mut pending = Vec::with_capacity(page.rows.len() + 1);
            for m in &page.rows {
                let events = event::derive(&reader, m, &self.filter)?;
                pending.push(Pending {
                    seq: m.seq,
                    events: events.into(),
                });
            }
            // Entries of other warehouses: the position moves past them too.
            if pending.last().is_none_or(|p| p.seq < page.position) && page.position > self.read_to {
                pending.push(Pending {
                    seq: page.position,
                    events: VecDeque::new(),
                });
            }
            Ok::<_, StoreError>((pending, page.position))
        };
        match read.await {
            Ok((pending, read_to)) => {
                let any = !pending.is_empty();
                self.pending.extend(pending);
                self.read_to = self.read_to.max(read_to);
                any
            }
            Err(e) => {
                tracing::warn!(sink = %self.id, error = %e, "cannot read the journal; retrying");
                self.sleep_or_obey(Duration::from_millis(READ_RETRY_MS)).await;
                false
            }
        }
    }

    /// Delivers the first pending event (or moves past an entry that has none).
    async fn deliver_next(&mut self) {
        let Some(front) = self.pending.front() else { return };
        let Some(event) = front.events.front().cloned() else {
            let seq = front.seq;
            self.pending.pop_front();
            self.advance(seq).await;
            return;
        };
        self.update(|s| s.last_attempt_at = Some(crate::clock::rfc3339_ms(crate::clock::now_ms())));
        let outcome = tokio::select! {
            outcome = self.transport.deliver(&event) => outcome,
            // A command cancels the attempt: the event goes again (same id and body) unless
            // the command moved the position past it.
            c = self.control.recv() => {
                if let Some(c) = c {
                    self.obey(c).await;
                }
                return;
            }
        };
        match outcome {
            Ok(()) => {
                metrics::counter!(DELIVERIES, "sink" => self.id.clone(), "outcome" => "ok").increment(1);
                self.attempts = 0;
                self.update(|s| {
                    s.attempts = 0;
                    s.state = State::Ok;
                });
                let done = self.pending.front_mut().map(|p| {
                    p.events.pop_front();
                    p.events.is_empty().then_some(p.seq)
                });
                if let Some(Some(seq)) = done {
                    self.pending.pop_front();
                    self.advance(seq).await;
                }
            }
            Err(failure) => self.failed(&event, failure).await,
        }
    }

    async fn failed(&mut self, event: &Event, failure: Failure) {
        self.failed_with(event.seq, &event.id, failure).await;
    }

    async fn failed_with(&mut self, seq: u64, event: &str, failure: Failure) {
        metrics::counter!(DELIVERIES, "sink" => self.id.clone(), "outcome" => "failed").increment(1);
        self.attempts += 1;
        let error: String = failure.error.chars().take(ERROR_CHARS_MAX).collect();
        let pause = backoff_ms(&self.backoff, self.attempts, jitter());
        // Never the body or a secret: the sink, the event and what went wrong.
        tracing::warn!(
            sink = %self.id, seq, event = %event, status = failure.status,
            error = %error, attempts = self.attempts, retry_in_ms = pause,
            "delivery failed; retrying"
        );
        let attempts = self.attempts;
        self.update(|s| {
            s.attempts = attempts;
            s.state = State::Retrying;
            s.last_error = Some(error);
        });
        self.sleep_or_obey(Duration::from_millis(pause)).await;
    }

    /// Sleeps, unless a command comes first (then it is obeyed and the sleep ends).
    async fn sleep_or_obey(&mut self, pause: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            c = self.control.recv() => if let Some(c) = c { self.obey(c).await },
        }
    }

    /// Everything up to `seq` is delivered; recorded if the last record is old enough.
    async fn advance(&mut self, seq: u64) {
        self.position = self.position.max(seq);
        self.update(|s| s.position = seq);
        if self.saved_at.elapsed() >= Duration::from_millis(POSITION_SAVE_INTERVAL_MS) {
            self.save_if_behind().await;
        }
    }

    async fn save_if_behind(&mut self) {
        if self.saved != self.position {
            let _ = self.save().await;
        }
    }

    /// Records position and pause flag through the writer.
    async fn save(&mut self) -> Result<(), StoreError> {
        let record = SinkRecord {
            sink: self.id.clone(),
            position: self.position,
            paused: self.paused,
        };
        self.saved_at = Instant::now();
        match self.store.set_sink(record).await {
            Ok(()) => {
                self.saved = self.position;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(sink = %self.id, error = %e, "cannot record the sink's position; will retry");
                Err(e)
            }
        }
    }

    async fn obey(&mut self, control: Control) {
        let result = self.apply(control.command).await;
        let _ = control.reply.send(result);
    }

    async fn apply(&mut self, command: Command) -> Result<(), StoreError> {
        let (position, paused) = match command {
            Command::Pause => (self.position, true),
            Command::Resume => (self.position, false),
            Command::Position(seq) => (seq, self.paused),
        };
        let before = (self.position, self.paused);
        self.position = position;
        self.paused = paused;
        if let Err(e) = self.save().await {
            (self.position, self.paused) = before;
            return Err(e);
        }
        if matches!(command, Command::Position(_)) {
            self.pending.clear();
            self.read_to = position;
        }
        self.attempts = 0;
        self.update(|s| {
            s.position = position;
            s.attempts = 0;
            s.state = if paused { State::Paused } else { State::Ok };
        });
        tracing::info!(sink = %self.id, ?command, "sink command applied");
        Ok(())
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut lock(&self.status));
    }

    fn show_lag(&self) {
        let lag = self.store.seq_last().saturating_sub(self.position);
        metrics::gauge!(LAG, "sink" => self.id.clone()).set(lag as f64);
    }
}

/// The pause before attempt `attempts + 1`: `initial · 2^(attempts−1)`, at most `max`,
/// scaled by `jitter` in [0.5, 1] so sinks that failed together do not retry together.
pub fn backoff_ms(b: &Backoff, attempts: u64, jitter: f64) -> u64 {
    let shift = attempts.saturating_sub(1).min(32) as u32;
    let full = b.initial_ms.saturating_mul(1u64 << shift).min(b.max_ms);
    ((full as f64) * jitter.clamp(0.5, 1.0)) as u64
}

/// A factor in [0.5, 1] from the OS CSPRNG.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = getrandom::getrandom(&mut b);
    0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_pause_up_to_the_max() {
        let b = Backoff {
            initial_ms: 1_000,
            max_ms: 3_600_000,
        };
        assert_eq!(backoff_ms(&b, 1, 1.0), 1_000);
        assert_eq!(backoff_ms(&b, 2, 1.0), 2_000);
        assert_eq!(backoff_ms(&b, 13, 1.0), 3_600_000);
        assert_eq!(backoff_ms(&b, 1_000, 1.0), 3_600_000);
        assert_eq!(backoff_ms(&b, 1, 0.5), 500);
    }

    /// A transport that panics on its first `panics` attempts, then takes every event.
    pub(super) struct Scripted {
        pub panics: usize,
        pub got: Arc<Mutex<Vec<u64>>>,
    }

    impl Scripted {
        pub fn deliver(&mut self, event: &Event) -> Result<(), Failure> {
            if self.panics > 0 {
                self.panics -= 1;
                panic!("a sink that panics (test)");
            }
            lock_vec(&self.got).push(event.seq);
            Ok(())
        }
    }

    fn lock_vec(v: &Mutex<Vec<u64>>) -> std::sync::MutexGuard<'_, Vec<u64>> {
        v.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A panic in a sink's task is retried like a failed attempt: every entry still goes
    /// out once the sink stops panicking, and the status showed why it waited.
    #[tokio::test(flavor = "current_thread")]
    async fn a_sink_whose_task_panics_starts_again_from_its_position() {
        use crate::store::testing::{ctx, moves, product_p};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("sink.redb"), Default::default(), "default").expect("open");
        product_p(&store).await;
        store.execute(moves("default", 3), ctx()).await.expect("movements");
        let status = Arc::new(Mutex::new(Status::new("s", Kind::Webhook, "test".into())));
        let (_control_tx, control) = mpsc::channel(CONTROL_QUEUE_MAX);
        let plan = Plan {
            status: status.clone(),
            control,
            filter: Filter::default(),
            backoff: Backoff {
                initial_ms: 10,
                max_ms: 10,
            },
        };
        let got = Arc::new(Mutex::new(Vec::new()));
        let transport = Transport::Scripted(Scripted {
            panics: 2,
            got: got.clone(),
        });
        let (halt, halted) = tokio::sync::watch::channel(false);
        // A runner is not Send (the webhook client is thread-local): a local task, as on the
        // sinks' thread.
        let local = tokio::task::LocalSet::new();
        let task = local.spawn_local(Runner::new(plan, transport, store.clone()).run(halted));
        local
            .run_until(async {
                let deadline = Instant::now() + Duration::from_secs(10);
                while lock_vec(&got).len() < 3 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                assert_eq!(*lock_vec(&got), vec![1, 2, 3], "every entry, once, in order");
                let seen = lock(&status).clone();
                assert_eq!(seen.state, State::Ok);
                assert_eq!(seen.position, 3);
                assert!(
                    seen.last_error.as_deref().is_some_and(|e| e.contains("panicked")),
                    "{:?}",
                    seen.last_error
                );
                let _ = halt.send(true);
                task.await.expect("the runner ends when halted");
            })
            .await;
        store.shutdown();
    }

    #[test]
    fn sink_ids_are_short_lowercase_names() {
        assert!(id_refusal("erp_1-a").is_none());
        assert!(id_refusal("").is_some());
        assert!(id_refusal("ERP").is_some());
        assert!(id_refusal(&"a".repeat(65)).is_some());
    }
}
