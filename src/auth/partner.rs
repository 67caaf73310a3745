//! HMAC-signed partner requests: the v1 signature (timestamp + nonce + body hash) and,
//! for partners configured with `legacy_signature = true`, the original platform's form.
//!
//! The header checks that need no secret (timestamp window, nonce shape) run before the
//! body is read; then the body is read under the size limit and the deadline, drawing on
//! the budget of bytes that unauthenticated requests may buffer, its hash checked by the
//! signature, and the nonce claimed durably (a replay is refused, also after a restart).
//! An unknown partner goes through the same steps and gets the same answer as a bad
//! signature, so the answer does not tell which partner ids exist. The body is left in the
//! request for the handler's JSON extractor.

use actix_web::dev::Payload;
use actix_web::{HttpMessage, HttpRequest};

use super::signature::{self, LEGACY_REPLAY_TTL_SECONDS, NONCE_LEN_MAX, TIMESTAMP_SKEW_SECONDS_MAX};
use super::{unauth, Authenticator, Identity};
use crate::body::{self, Buffered};
use crate::error::ApiError;
use crate::store::{NonceClaim, StoreError};

pub const PARTNER_HEADER: &str = "partner-id";
pub const SIGNATURE_HEADER: &str = "secret";
pub const TIMESTAMP_HEADER: &str = "timestamp";
pub const NONCE_HEADER: &str = "nonce";

/// The one answer to an unknown partner and to a signature that does not verify.
pub const REJECTED_DETAIL: &str = "unknown partner or bad signature";

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

/// The v1 headers of a request, checked at `now_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Headers<'a> {
    pub timestamp: &'a str,
    pub nonce: &'a str,
    /// Until when the nonce must be remembered (from the timestamp, not from now).
    pub nonce_expires_ms: i64,
}

/// The checks of the v1 headers that need no secret: the timestamp is within
/// [`TIMESTAMP_SKEW_SECONDS_MAX`] of `now_ms` and the nonce has the allowed length.
pub fn check_v1_headers<'a>(now_ms: i64, timestamp: &'a str, nonce: &'a str) -> Result<V1Headers<'a>, ApiError> {
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| unauth("malformed", "`timestamp` must be unix seconds"))?;
    if !signature::timestamp_acceptable(now_ms, ts) {
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
    Ok(V1Headers {
        timestamp,
        nonce,
        nonce_expires_ms: signature::nonce_expires_ms(ts),
    })
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
    let presented = header(req, SIGNATURE_HEADER)?
        .ok_or_else(|| unauth("missing_credentials", "the `secret` header (the signature) is missing"))?;
    let now_ms = crate::clock::now_ms();
    let v1 = match (header(req, TIMESTAMP_HEADER)?, header(req, NONCE_HEADER)?) {
        (Some(timestamp), Some(nonce)) => Some(check_v1_headers(now_ms, timestamp, nonce)?),
        (None, None) => None,
        _ => {
            return Err(unauth(
                "malformed",
                "a v1 signature needs both the `timestamp` and `nonce` headers",
            ))
        }
    };
    let (body, _held) =
        body::read_unauthenticated(req, &mut payload, auth.body_limits, &auth.unauthenticated_bodies).await?;
    let partner = auth.partner(id);
    let path_and_query = req.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let verified = match &v1 {
        Some(v) => {
            let message = signature::v1_message(req.method().as_str(), path_and_query, v.timestamp, v.nonce, &body);
            verifies(partner, message.as_bytes(), presented)
        }
        None => {
            let legacy = partner.filter(|p| p.legacy);
            verifies(legacy, &signature::legacy_message(path_and_query, &body), presented)
        }
    };
    let Some(partner) = partner.filter(|_| verified) else {
        return Err(rejected(partner.is_none(), v1.is_none()));
    };
    let mut identity = partner.identity.clone();
    match v1 {
        Some(v) => claim_nonce(auth, id, &v, now_ms).await?,
        None => {
            identity.replay = Some(super::Replay {
                key: legacy_replay_key(id, presented),
                ttl_ms: LEGACY_REPLAY_TTL_SECONDS * 1000,
            });
        }
    }
    req.extensions_mut().insert(Buffered(body.clone()));
    // The handler may not read a body at all; then nobody listens, which is fine.
    let _ = body_tx.send(body);
    Ok(identity)
}

/// Signs for nobody: an unknown partner's message is checked against it all the same.
const NOBODY_SECRET: &str = "stockd: no partner has this secret";

/// Whether any secret of `partner` signed `message`. For an unknown partner (or one that
/// may not use the form) the same HMAC is computed with a key nobody has, so the time of
/// the answer does not tell an unknown partner from a bad signature either.
fn verifies(partner: Option<&PartnerEntry>, message: &[u8], presented: &str) -> bool {
    match partner {
        Some(p) => p.secrets.iter().any(|s| signature::verify(s, message, presented)),
        None => {
            std::hint::black_box(signature::verify(NOBODY_SECRET, message, presented));
            false
        }
    }
}

/// The same 401 for an unknown partner and a bad signature; only the metric tells them
/// apart. Without `timestamp` and `nonce` the answer says what v1 needs, whoever asks.
fn rejected(unknown: bool, unversioned: bool) -> ApiError {
    let reason = if unknown { "unknown_partner" } else { "bad_signature" };
    if unversioned {
        return unauth(
            reason,
            &format!(
                "{REJECTED_DETAIL} (without `timestamp` and `nonce`, only a partner configured for \
                 the legacy form can sign)"
            ),
        );
    }
    unauth(reason, REJECTED_DETAIL)
}

/// Remembers the nonce durably; 401 when it was used before.
async fn claim_nonce(auth: &Authenticator, partner: &str, v: &V1Headers<'_>, now_ms: i64) -> Result<(), ApiError> {
    let store = auth
        .store
        .as_ref()
        .ok_or_else(|| unauth("no_store", "signatures are not accepted here"))?;
    store
        .claim_nonce(NonceClaim {
            partner: partner.to_string(),
            nonce: v.nonce.to_string(),
            now_ms,
            expires_ms: v.nonce_expires_ms,
        })
        .await
        .inspect_err(|e| {
            if *e == StoreError::NonceReused {
                crate::telemetry::auth_failure("nonce_replayed");
            }
        })
        .map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_767_225_600_123;

    /// Whether the store still refuses the nonce at `at_ms` (it refuses while
    /// `expires_ms > now_ms`, see `claim_nonce` in the store's writer).
    fn remembered(v: &V1Headers<'_>, at_ms: i64) -> bool {
        v.nonce_expires_ms > at_ms
    }

    /// The audit's case: signed at now+300 s, used at once, replayed 600.02 s later. The
    /// timestamp is still acceptable then (300 s in whole seconds), so the nonce must be too.
    #[test]
    fn a_nonce_outlives_every_moment_its_timestamp_is_accepted() {
        let ahead = (NOW_MS / 1000 + TIMESTAMP_SKEW_SECONDS_MAX).to_string();
        let first = check_v1_headers(NOW_MS, &ahead, "n1").unwrap_or_else(|e| panic!("{e}"));
        let replay_ms = NOW_MS + 600_020;
        assert!(
            check_v1_headers(replay_ms, &ahead, "n1").is_ok(),
            "the replay passes the window"
        );
        assert!(remembered(&first, replay_ms), "so the nonce must still be remembered");

        // Every timestamp the window accepts at NOW_MS, every later moment it is accepted at.
        let now_s = NOW_MS / 1000;
        for offset_s in -TIMESTAMP_SKEW_SECONDS_MAX..=TIMESTAMP_SKEW_SECONDS_MAX {
            let ts = (now_s + offset_s).to_string();
            let v = check_v1_headers(NOW_MS, &ts, "n").unwrap_or_else(|e| panic!("{ts}: {e}"));
            let last_accepted_ms = (now_s + offset_s + TIMESTAMP_SKEW_SECONDS_MAX + 1) * 1000 - 1;
            assert!(check_v1_headers(last_accepted_ms, &ts, "n").is_ok(), "{ts}");
            assert!(check_v1_headers(last_accepted_ms + 1, &ts, "n").is_err(), "{ts}");
            let margin_ms = signature::NONCE_KEEP_MARGIN_SECONDS * 1000;
            assert!(
                remembered(&v, last_accepted_ms + margin_ms),
                "{ts}: forgotten before the window closed plus the margin"
            );
        }
    }

    #[test]
    fn the_window_is_inclusive_and_refuses_nonsense() {
        let now_s = NOW_MS / 1000;
        for ts in [now_s - 300, now_s + 300] {
            assert!(check_v1_headers(NOW_MS, &ts.to_string(), "n").is_ok(), "{ts}");
        }
        for ts in [now_s - 301, now_s + 301, i64::MIN, i64::MAX] {
            assert!(check_v1_headers(NOW_MS, &ts.to_string(), "n").is_err(), "{ts}");
        }
        assert!(check_v1_headers(NOW_MS, "soon", "n").is_err());
        let ts = now_s.to_string();
        assert!(check_v1_headers(NOW_MS, &ts, "").is_err());
        assert!(check_v1_headers(NOW_MS, &ts, &"x".repeat(NONCE_LEN_MAX + 1)).is_err());
    }
}
