//! `GET /api/inventory/changes?after=<seq>&limit=&wait=<seconds ≤ 30>`: the journal in seq
//! order after a position — a gap-free feed for channel sync. With nothing new and `wait`,
//! it long-polls: it answers as soon as a commit brings something, or empty at the deadline.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use super::render::{self, MovementOut};
use super::{int_param, Query, State};
use crate::auth::{Guard, ReadInventory};
use crate::error::{ApiError, Code};
use crate::ledger::Movement;

pub const LIMIT_DEFAULT: u64 = 100;
pub const LIMIT_MAX: u64 = 1000;
/// Longest long poll, in seconds (API.md).
pub const WAIT_SECONDS_MAX: u64 = 30;

pub fn config_feed_api(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/inventory/changes", web::get().to(changes));
}

#[derive(Deserialize)]
struct FeedQuery {
    after: Option<String>,
    limit: Option<String>,
    wait: Option<String>,
}

#[derive(Serialize)]
struct Meta {
    after: u64,
    /// Pass as `after` for the next call: the last seq answered (or `after` when none).
    next_after: u64,
    limit: u64,
    #[serde(rename = "hasMore")]
    has_more: bool,
}

#[derive(Serialize)]
struct Out<'a> {
    data: Vec<MovementOut<'a>>,
    meta: Meta,
}

/// Movements `after+1 ..` (at most `limit`), and whether more follow.
async fn read(
    state: &State,
    g: &Guard<ReadInventory>,
    after: u64,
    limit: u64,
) -> Result<(Vec<Movement>, bool, u64), ApiError> {
    let reader = state.store.reader().await?;
    let last = reader.seq_last()?;
    let mut rows = Vec::new();
    let mut seq = after.saturating_add(1);
    // A restricted credential sees only its warehouses; the position still advances past
    // what it may not see, so the feed never stalls on a foreign movement.
    let mut position = after;
    while seq <= last && (rows.len() as u64) < limit {
        if let Some(m) = reader.movement(seq)? {
            if g.may_use(&m.draft.warehouse) {
                rows.push(m);
            }
        }
        position = seq;
        seq += 1;
    }
    Ok((rows, position < last, position))
}

async fn changes(g: Guard<ReadInventory>, state: State, q: Query<FeedQuery>) -> Result<HttpResponse, ApiError> {
    let after = int_param("after", &q.0.after, 0, u64::MAX)?.unwrap_or(0);
    let limit = int_param("limit", &q.0.limit, 1, LIMIT_MAX)?.unwrap_or(LIMIT_DEFAULT);
    let wait = int_param("wait", &q.0.wait, 0, WAIT_SECONDS_MAX)?.unwrap_or(0);
    let mut commits = state.store.commits();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let (rows, has_more, position) = loop {
        let (rows, has_more, position) = read(&state, &g, after, limit).await?;
        if !rows.is_empty() || wait == 0 {
            break (rows, has_more, position);
        }
        // Nothing (visible) yet: sleep until the next commit or the deadline.
        match tokio::time::timeout_at(deadline, commits.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return Err(ApiError::new(Code::StorageUnavailable, "the store is shutting down")),
            Err(_) => break (rows, has_more, position),
        }
    };
    let out = Out {
        data: rows.iter().map(|m| render::movement(m, None, None)).collect(),
        meta: Meta {
            after,
            next_after: position.max(after),
            limit,
            has_more,
        },
    };
    let body = serde_json::to_vec(&out).map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}
