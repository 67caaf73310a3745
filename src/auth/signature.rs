//! HMAC partner signatures (API.md "HMAC partner signature"). Pure functions: the
//! extractor feeds them the request's parts; tests and docs/partners.md use them as vectors.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// How far a v1 `timestamp` may be from the server clock, in seconds.
pub const TIMESTAMP_SKEW_SECONDS_MAX: i64 = 300;
/// How long a (partner, nonce) is remembered after the last moment its timestamp is still
/// accepted, in seconds: a margin against the server clock being stepped back.
pub const NONCE_KEEP_MARGIN_SECONDS: i64 = 300;
/// Nonce length bounds, in bytes.
pub const NONCE_LEN_MAX: usize = 64;
/// How long a legacy-signed write is answered from memory instead of applied, in seconds.
pub const LEGACY_REPLAY_TTL_SECONDS: i64 = 24 * 3600;

/// Until when (ms) a nonce sent with `timestamp_s` must be remembered: past the last
/// millisecond at which that timestamp is within the window (`now_s - timestamp_s <= skew`,
/// in whole seconds), plus the margin. Counted from the timestamp, not from now: a request
/// signed 300 s ahead stays acceptable for 600 s after its first use.
pub fn nonce_expires_ms(timestamp_s: i64) -> i64 {
    timestamp_s
        .saturating_add(TIMESTAMP_SKEW_SECONDS_MAX + 1 + NONCE_KEEP_MARGIN_SECONDS)
        .saturating_mul(1000)
}

/// Whether a v1 `timestamp` (unix seconds) is within the window at `now_ms`.
pub fn timestamp_acceptable(now_ms: i64, timestamp_s: i64) -> bool {
    now_ms.div_euclid(1000).abs_diff(timestamp_s) <= TIMESTAMP_SKEW_SECONDS_MAX.unsigned_abs()
}

/// The v1 string to sign: `v1\nMETHOD\npath?query\ntimestamp\nnonce\nhex(sha256(body))`.
pub fn v1_message(method: &str, path_and_query: &str, timestamp: &str, nonce: &str, body: &[u8]) -> String {
    let body_hash = crate::hex(&Sha256::digest(body));
    format!("v1\n{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body_hash}")
}

fn mac(secret: &str) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

/// base64(HMAC-SHA256(secret, message)).
pub fn sign(secret: &str, message: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(message);
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

/// The legacy form: base64(HMAC-SHA256(secret, path-and-query + raw body)).
pub fn legacy_message(path_and_query: &str, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(path_and_query.len() + body.len());
    message.extend_from_slice(path_and_query.as_bytes());
    message.extend_from_slice(body);
    message
}

/// Checks `presented` (base64) against HMAC-SHA256(secret, message) in constant time.
pub fn verify(secret: &str, message: &[u8], presented: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(presented.trim()) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(message);
    m.verify_slice(&tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] =
        br#"{"sku":"sku1","warehouse":"default","available_stock":100,"buffer_stock":0,"channel_stock":[]}"#;
    const PATH: &str = "/v1/partner/inventory/updatestocks";

    /// The vectors published in docs/partners.md (computed there with Python's hmac too).
    #[test]
    fn documented_v1_vector() {
        let message = v1_message("POST", PATH, "1767225600", "5f2b7c1e9a", BODY);
        assert_eq!(
            message,
            "v1\nPOST\n/v1/partner/inventory/updatestocks\n1767225600\n5f2b7c1e9a\n\
             31305301b710c86bfc2ba849cef9c33ec113d0b303da816b3570e8b683199b31"
        );
        let sig = sign("s3cr3t", message.as_bytes());
        assert_eq!(sig, "sHROaYnCO98nocOn+tvVho2LThVPRb31ObHv7zmCL4g=");
        assert!(verify("s3cr3t", message.as_bytes(), &sig));
        assert!(!verify("other", message.as_bytes(), &sig));
        assert!(!verify("s3cr3t", message.as_bytes(), "not base64!"));
    }

    #[test]
    fn documented_legacy_vector() {
        let sig = sign("s3cr3t", &legacy_message(PATH, BODY));
        assert_eq!(sig, "FYdQCxc1pFUf+amB4kY70jVfyIZsxi3WyCTo63+uX6U=");
    }
}
