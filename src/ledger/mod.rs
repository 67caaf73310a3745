//! The pure domain: commands, levels, rules and the fold. No I/O here.

pub mod command;
pub mod fold;
pub mod model;
pub mod rules;

pub use command::{
    Command, CountLine, Meta, MoveCmd, Op, PatchLevel, ReserveCmd, SetStockLine, TransferCmd, BATCH_LINES_MAX,
    CHANNELS_MAX, RESERVATION_TTL_MS_MAX,
};
pub use model::*;
pub use rules::{apply, Effects, Fault, LedgerError, NewTransfer, Rules, State};
