//! HMAC-signed partner requests: the v1 signature (timestamp + nonce + body hash) and,
//! for partners configured with `legacy_signature = true`, the original platform's form.
//!
//! The header checks (partner, timestamp window, nonce shape) run before the body is read;
//! then the body is read within the limit, its hash checked by the signature, and the
//! nonce claimed durably (a replay is refused, also after a restart). The body is left in
//! the request for the handler's JSON extractor.

use actix_web::dev::Payload;
use actix_web::{HttpMessage, HttpRequest};

use super::signature::{self, LEGACY_REPLAY_TTL_SECONDS, NONCE_LEN_MAX, NONCE_TTL_SECONDS, TIMESTAMP_SKEW_SECONDS_MAX};
use super::{unauth, Authenticator, Identity};
use crate::body::{self, Buffered};
use crate::error::{ApiError, Code};
use crate::store::NonceClaim;

pub const PARTNER_HEADER: &str = "partner-id";
pub const SIGNATURE_HEADER: &str = "secret";
pub const TIMESTAMP_HEADER: &str = "timestamp";
pub const NONCE_HEADER: &str = "nonce";

/// A configured partner.
pub struct PartnerEntry {
    pub secrets: Vec<String>,
    pub identity: Identity,
    pub legacy: bool,
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, ApiError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| unauth("malformed", &format!("unreadable `{name}` header"))),
    }
}

/// What the replay protection of a legacy-signed write is keyed on.
pub fn legacy_replay_key(partner: &str, signature: &str) -> String {
    format!("legacy\u{0}{partner}\u{0}{signature}")
}

/// Authenticates a request that carries a `partner-id` header.
/// On success the body goes to `body_tx`, for the handler's JSON extractor.
pub async fn authenticate(
    auth: &Authenticator,
    req: &HttpRequest,
    mut payload: Payload,
    body_tx: tokio::sync::oneshot::Sender<actix_web::web::Bytes>,
) -> Result<Identity, ApiError> {
    let id = header(req, PARTNER_HEADER)?.unwrap_or_default();
    let partner = auth
        .partner(id)
        .ok_or_else(|| unauth("unknown_partner", "unknown partner"))?;
    let presented = header(req, SIGNATURE_HEADER)?
        .ok_or_else(|| unauth("missing_credentials", "the `secret` header (the signature) is missing"))?;
    let path_and_query = req.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let timestamp = header(req, TIMESTAMP_HEADER)?;
    let nonce = header(req, NONCE_HEADER)?;
    let now_ms = crate::clock::now_ms();
    let mut identity = partner.identity.clone();
    let body = match (timestamp, nonce) {
        (Some(timestamp), Some(nonce)) => {
            let ts: i64 = timestamp
                .parse()
                .map_err(|_| unauth("malformed", "`timestamp` must be unix seconds"))?;
            if (now_ms / 1000 - ts).abs() > TIMESTAMP_SKEW_SECONDS_MAX {
                return Err(unauth(
                    "clock_skew",
                    &format!("`timestamp` is more than {TIMESTAMP_SKEW_SECONDS_MAX} s from the server clock"),
                ));
            }
            if nonce.is_empty() || nonce.len() > NONCE_LEN_MAX {
                return Err(unauth(
                    "malformed",
                    &format!("`nonce` must be 1 to {NONCE_LEN_MAX} characters"),
                ));
            }
            let body = body::read(req, &mut payload, auth.body_limit_bytes).await?;
            let message = signature::v1_message(req.method().as_str(), path_and_query, timestamp, nonce, &body);
            if !partner
                .secrets
                .iter()
                .any(|s| signature::verify(s, message.as_bytes(), presented))
            {
                return Err(unauth("bad_signature", "bad signature"));
            }
            let store = auth
                .store
                .as_ref()
                .ok_or_else(|| unauth("no_store", "signatures are not accepted here"))?;
            store
                .claim_nonce(NonceClaim {
                    partner: id.to_string(),
                    nonce: nonce.to_string(),
                    now_ms,
                    expires_ms: now_ms + NONCE_TTL_SECONDS * 1000,
                })
                .await
                .inspect_err(|e| {
                    if e.code == Code::Unauthenticated {
                        metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => "nonce_replayed").increment(1);
                    }
                })?;
            body
        }
        (None, None) if partner.legacy => {
            let body = body::read(req, &mut payload, auth.body_limit_bytes).await?;
            let message = signature::legacy_message(path_and_query, &body);
            if !partner
                .secrets
                .iter()
                .any(|s| signature::verify(s, &message, presented))
            {
                return Err(unauth("bad_signature", "bad signature"));
            }
            identity.replay = Some(super::Replay {
                key: legacy_replay_key(id, presented),
                ttl_ms: LEGACY_REPLAY_TTL_SECONDS * 1000,
            });
            body
        }
        _ => {
            return Err(unauth(
                "malformed",
                "a v1 signature needs the `timestamp` and `nonce` headers",
            ))
        }
    };
    req.extensions_mut().insert(Buffered(body.clone()));
    // The handler may not read a body at all; then nobody listens, which is fine.
    let _ = body_tx.send(body);
    Ok(identity)
}
