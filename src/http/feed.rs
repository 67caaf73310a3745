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

pub const LIMIT_DEFAULT: u64 = 100;
/// A page is at most what one request may examine of the journal.
pub const LIMIT_MAX: u64 = crate::store::FEED_SCAN_ENTRIES_MAX;
/// Longest long poll, in seconds (API.md).
pub const WAIT_SECONDS_MAX: u64 = 30;

pub fn config_feed_api(cfg: &mut web::ServiceConfig, paths: super::Paths) {
    paths.on(cfg).route("/api/inventory/changes", web::get().to(changes));
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
    /// Pass as `after` for the next call: the last seq this answer accounts for — past
    /// entries the caller may not see, so it advances even when `data` is empty.
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

async fn changes(g: Guard<ReadInventory>, state: State, q: Query<FeedQuery>) -> Result<HttpResponse, ApiError> {
    let after = int_param("after", &q.0.after, 0, u64::MAX)?.unwrap_or(0);
    let limit = int_param("limit", &q.0.limit, 1, LIMIT_MAX)?.unwrap_or(LIMIT_DEFAULT);
    let wait = int_param("wait", &q.0.wait, 0, WAIT_SECONDS_MAX)?.unwrap_or(0);
    let mut commits = state.store.commits();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    // Each read is bounded (the store examines at most `limit` entries, through the
    // warehouse index for a restricted credential) and starts where the last one stopped:
    // a long poll woken by commits it may not see reads only what is new.
    let mut position = after;
    let page = loop {
        let page = state.store.reader().await?.feed(position, limit, g.warehouses())?;
        if !page.rows.is_empty() || wait == 0 {
            break page;
        }
        position = page.position;
        // Nothing (visible) yet: sleep until the next commit or the deadline.
        match tokio::time::timeout_at(deadline, commits.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return Err(ApiError::new(Code::StorageUnavailable, "the store is shutting down")),
            Err(_) => break page,
        }
    };
    let out = Out {
        data: page.rows.iter().map(|m| render::movement(m, None, None)).collect(),
        meta: Meta {
            after,
            next_after: page.position.max(after),
            limit,
            has_more: page.has_more,
        },
    };
    let body = serde_json::to_vec(&out).map_err(|e| ApiError::new(Code::Internal, e.to_string()))?;
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}
