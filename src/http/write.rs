//! The one way handlers write: the request's replay protection (Idempotency-Key, or a
//! legacy signature) goes with the command to the writer, which stores the outcome as data
//! beside the write; the answer is rendered here, from the outcome, by the route's `Render`
//! — for a repeat, from the stored outcome, so it answers the same bytes again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use actix_web::http::{header, StatusCode};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::State;
use crate::auth::Identity;
use crate::error::{error_headers, ApiError, Code, PROBLEM_CONTENT_TYPE};
use crate::ledger::Command;
use crate::store::{Answer, Applied, BatchHeader, ReplayClaim, StoreError, WriteCtx};

/// Renders the answer of a write from its outcome alone (plus what the handler captured
/// before writing): a function of the outcome, so a repeat answers identically.
pub type Render = Arc<dyn Fn(Result<&Applied, &ApiError>) -> Answer + Send + Sync>;

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Idempotency keys are 1–255 characters (API.md).
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;
/// How long an Idempotency-Key is remembered, in milliseconds (API.md: 24 h).
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// SHA-256 of the raw body, left by the body reader when a write may need a fingerprint.
#[derive(Clone, Copy)]
pub struct BodyDigest(pub [u8; 32]);

/// Whether the body reader should leave a [`BodyDigest`] for this request.
pub fn wants_digest(req: &HttpRequest) -> bool {
    req.headers().contains_key(IDEMPOTENCY_KEY_HEADER)
}

/// Replay keys of writes queued but not yet answered (409 `idempotency_key_in_flight`).
#[derive(Default)]
pub struct InFlight(Mutex<HashSet<String>>);

struct InFlightGuard<'a> {
    set: &'a InFlight,
    key: String,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.0.lock() {
            set.remove(&self.key);
        }
    }
}

impl InFlight {
    fn enter(&self, key: &str) -> Option<InFlightGuard<'_>> {
        let mut set = self.0.lock().ok()?;
        if !set.insert(key.to_string()) {
            return None;
        }
        Some(InFlightGuard {
            set: self,
            key: key.to_string(),
        })
    }
}

fn fingerprint(req: &HttpRequest) -> [u8; 32] {
    let body: [u8; 32] = {
        let ext = req.extensions();
        match (ext.get::<BodyDigest>(), ext.get::<crate::body::Buffered>()) {
            (Some(d), _) => d.0,
            (None, Some(b)) => Sha256::digest(&b.0).into(),
            (None, None) => Sha256::digest(b"").into(),
        }
    };
    let mut h = Sha256::new();
    h.update(req.method().as_str());
    h.update([0]);
    h.update(req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    h.update([0]);
    h.update(body);
    h.finalize().into()
}

/// The replay claim of this request, if it has one.
fn replay_claim(req: &HttpRequest, identity: &Identity) -> Result<Option<ReplayClaim>, ApiError> {
    if let Some(replay) = &identity.replay {
        return Ok(Some(ReplayClaim {
            key: replay.key.clone(),
            fingerprint: fingerprint(req),
            ttl_ms: replay.ttl_ms,
        }));
    }
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_LEN_MAX)
        .ok_or_else(|| ApiError::invalid("Idempotency-Key", "must be 1 to 255 visible ASCII characters"))?;
    Ok(Some(ReplayClaim {
        key: format!("idem\u{0}{}\u{0}{key}", identity.name),
        fingerprint: fingerprint(req),
        ttl_ms: IDEMPOTENCY_TTL_MS,
    }))
}

/// Runs `cmd` for `identity` and answers with `render`.
pub async fn write(
    req: &HttpRequest,
    state: &State,
    identity: &Identity,
    cmd: Command,
    render: Render,
) -> HttpResponse {
    write_batch(req, state, identity, cmd, None, render).await
}

/// [`write`], naming the batch and keeping the API's header with it.
pub async fn write_batch(
    req: &HttpRequest,
    state: &State,
    identity: &Identity,
    cmd: Command,
    batch: Option<BatchHeader>,
    render: Render,
) -> HttpResponse {
    let claim = match replay_claim(req, identity) {
        Ok(c) => c,
        Err(e) => return respond(render(Err(&e)), false),
    };
    let _in_flight = match &claim {
        Some(c) => match state.in_flight.enter(&c.key) {
            Some(guard) => Some(guard),
            None => {
                let e = ApiError::new(
                    Code::IdempotencyKeyInFlight,
                    "a request with this Idempotency-Key is still being processed",
                );
                return respond(render(Err(&e)), false);
            }
        },
        None => None,
    };
    let ctx = WriteCtx {
        actor: identity.name.clone(),
        idempotency_key: req
            .headers()
            .get(IDEMPOTENCY_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        replay: claim,
        batch,
    };
    let stored = ctx.replay.is_some();
    let outcome = state.store.execute(cmd, ctx).await;
    // An outcome kept for repeats is rendered the same way for the first answer and every
    // repeat: byte for byte, so without the request's id (it is in the header).
    let render_outcome = |outcome: Result<&Applied, &ApiError>| match stored {
        true => crate::telemetry::without_request_id(|| render(outcome)),
        false => render(outcome),
    };
    match outcome {
        // A first answer an older version stored as bytes.
        Ok(Applied {
            answer: Some(answer),
            replayed,
            ..
        }) => respond(answer, replayed),
        Ok(Applied {
            refused: Some(e),
            replayed,
            ..
        }) => respond(render_outcome(Err(&ApiError::from(e))), replayed),
        Ok(applied) => respond(render_outcome(Ok(&applied)), applied.replayed),
        // A refusal is stored like any outcome: its repeats answer the same bytes.
        Err(e @ StoreError::Refused(_)) => respond(render_outcome(Err(&ApiError::from(e))), false),
        // Not stored (the queue was full, the storage failed, the key came with another
        // request): a retry may be applied.
        Err(e) => respond(render(Err(&ApiError::from(e))), false),
    }
}

pub fn respond(answer: Answer, replayed: bool) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, answer.content_type));
    error_headers(&mut res, status);
    if replayed {
        res.insert_header((REPLAYED_HEADER, "true"));
    }
    res.body(answer.body)
}

/// A JSON answer.
pub fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Answer {
    match serde_json::to_vec(value) {
        Ok(body) => Answer {
            status: status.as_u16(),
            content_type: "application/json".into(),
            body,
        },
        Err(e) => problem(&ApiError::new(Code::Internal, e.to_string())),
    }
}

/// A native error answer.
pub fn problem(e: &ApiError) -> Answer {
    Answer {
        status: e.code.status().as_u16(),
        content_type: PROBLEM_CONTENT_TYPE.into(),
        body: e.problem_body(),
    }
}

/// A native `Render`: `{"data": ...}` on success, with the status `status` picks,
/// problem+json on error.
pub fn native<F>(status: fn(&Applied) -> StatusCode, body: F) -> Render
where
    F: Fn(&Applied) -> Result<Vec<u8>, ApiError> + Send + Sync + 'static,
{
    Arc::new(move |outcome| {
        let (applied, data) = match outcome {
            Ok(applied) => (applied, body(applied)),
            Err(e) => return problem(e),
        };
        match data {
            Ok(data) => {
                let mut out = Vec::with_capacity(data.len() + 9);
                out.extend_from_slice(b"{\"data\":");
                out.extend_from_slice(&data);
                out.push(b'}');
                Answer {
                    status: status(applied).as_u16(),
                    content_type: "application/json".into(),
                    body: out,
                }
            }
            Err(e) => problem(&e),
        }
    })
}

/// A `Render` for dialects without the `data` envelope: the body as `body` makes it with
/// `status` on success, problem+json on error.
pub fn native_plain<F>(status: StatusCode, body: F) -> Render
where
    F: Fn(&Applied) -> Result<Vec<u8>, ApiError> + Send + Sync + 'static,
{
    Arc::new(move |outcome| match outcome.map(&body) {
        Ok(Ok(bytes)) => Answer {
            status: status.as_u16(),
            content_type: "application/json".into(),
            body: bytes,
        },
        Ok(Err(e)) => problem(&e),
        Err(e) => problem(e),
    })
}

/// Serializes a value for an answer (exact: decimals stay as written).
pub fn ser<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|e| ApiError::new(Code::Internal, e.to_string()))
}

/// 201 when the write created something, else 200 (PUT of the catalog).
pub fn created_or_ok(applied: &Applied) -> StatusCode {
    if applied.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

pub fn created(_: &Applied) -> StatusCode {
    StatusCode::CREATED
}

pub fn ok(_: &Applied) -> StatusCode {
    StatusCode::OK
}
