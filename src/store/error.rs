//! The store's own errors: what went wrong in terms of stock and storage. The edge maps
//! them onto the one table of error codes (`crate::error`, `impl From<StoreError> for
//! ApiError`); the store knows no HTTP.

use crate::ledger::LedgerError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The ledger refused the command: nothing was written.
    Refused(LedgerError),
    /// A repeat of a request that was refused the first time, as it was stored: the code
    /// name of the first refusal and its detail.
    Stored { code: String, detail: String },
    /// An Idempotency-Key (or a legacy signature) came back with another request.
    KeyReused,
    /// A v1 signature's nonce was used before, within its lifetime.
    NonceReused,
    /// A list cursor this store did not give out.
    BadCursor,
    /// The write queue is full: retry shortly.
    Overloaded,
    /// The data file or the log cannot be used now (disk full, I/O error, reopening,
    /// stopping): retry shortly.
    Unavailable(String),
    /// A bug: an undecodable row, a gap in the journal, a panicking job.
    Internal(String),
}

impl StoreError {
    pub fn unavailable(why: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable(why.to_string())
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Refused(e) => e.fmt(f),
            StoreError::Stored { code, detail } => write!(f, "{code}: {detail}"),
            StoreError::KeyReused => f.write_str("this Idempotency-Key was used with another request"),
            StoreError::NonceReused => f.write_str("this nonce was already used"),
            StoreError::BadCursor => f.write_str("`cursor`: is not a cursor this list gave out"),
            StoreError::Overloaded => f.write_str("the write queue is full; retry shortly"),
            StoreError::Unavailable(why) => f.write_str(why),
            StoreError::Internal(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<LedgerError> for StoreError {
    fn from(e: LedgerError) -> StoreError {
        match e.root() {
            LedgerError::Storage(why) => StoreError::Unavailable(format!("storage: {why}")),
            _ => StoreError::Refused(e),
        }
    }
}
