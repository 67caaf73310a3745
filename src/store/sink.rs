//! Outbound sinks' durable state (issue 13): each sink's position (the last journal seq it
//! delivered) and whether it is paused, kept in the metadata table under `sink\0<id>` and
//! written through the writer like everything else, so it survives restarts and `kill -9`.

use super::read::Reader;
use super::writer::{SinkRecord, Work};
use super::{storage_error, tables::META, Store, StoreError, WriteCtx};

/// Bytes of a stored record: position u64 LE, paused u8.
const RECORD_BYTES: usize = 9;

/// The metadata key of a sink.
pub(super) fn key(sink: &str) -> String {
    format!("sink\u{0}{sink}")
}

pub(super) fn encode(position: u64, paused: bool) -> [u8; RECORD_BYTES] {
    let mut out = [0u8; RECORD_BYTES];
    out[..8].copy_from_slice(&position.to_le_bytes());
    out[8] = u8::from(paused);
    out
}

fn decode(bytes: &[u8]) -> Option<(u64, bool)> {
    let position = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    Some((position, bytes.get(8).copied()? != 0))
}

impl Reader {
    /// A sink's stored position and pause flag; `None` for a sink never recorded.
    pub fn sink(&self, sink: &str) -> Result<Option<(u64, bool)>, StoreError> {
        let meta = self.txn().open_table(META).map_err(storage_error)?;
        let row = meta.get(key(sink).as_str()).map_err(storage_error)?;
        match row {
            None => Ok(None),
            Some(v) => decode(v.value())
                .map(Some)
                .ok_or_else(|| StoreError::Internal(format!("undecodable position of sink `{sink}`"))),
        }
    }
}

impl Store {
    /// Records a sink's position and pause flag durably (through the writer).
    pub async fn set_sink(&self, record: SinkRecord) -> Result<(), StoreError> {
        self.submit(Work::SetSink(record), WriteCtx::default())
            .await
            .map(|_| ())
    }

    /// [`Store::set_sink`] for code that is not async, or runs inside a runtime it may
    /// not block on (the daemon's start): waits on a thread of its own.
    pub fn set_sink_blocking(&self, record: SinkRecord) -> Result<(), StoreError> {
        let store = self.clone();
        let waited = std::thread::scope(|s| {
            s.spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .map_err(StoreError::unavailable)?;
                runtime.block_on(store.set_sink(record))
            })
            .join()
        });
        waited.unwrap_or_else(|_| Err(StoreError::Internal("recording a sink's position panicked".into())))
    }
}
