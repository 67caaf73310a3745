//! Webhook delivery per Standard Webhooks (<https://www.standardwebhooks.com>): headers
//! `webhook-id`, `webhook-timestamp`, `webhook-signature`; a 2xx within the timeout is an
//! acknowledgement, anything else (redirects included) a failure to retry.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::event::Event;
use super::Failure;

/// A delivery that has no answer within this is a failure (API.md), in milliseconds.
pub const WEBHOOK_TIMEOUT_MS: u64 = 10_000;
/// Longest URL accepted, in bytes.
pub const URL_BYTES_MAX: usize = 2048;
/// Bounds of a secret's key, in bytes (API.md: base64 of 24–64 random bytes).
pub const SECRET_KEY_BYTES_MIN: usize = 24;
pub const SECRET_KEY_BYTES_MAX: usize = 64;
/// Key bytes `stockd webhook new` generates.
pub const SECRET_KEY_BYTES_NEW: usize = 32;
const SECRET_PREFIX: &str = "whsec_";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Why a webhook URL cannot be used, if it cannot.
pub fn url_refusal(url: &str) -> Option<String> {
    if url.len() > URL_BYTES_MAX {
        return Some(format!("longer than {URL_BYTES_MAX} bytes"));
    }
    let Ok(uri) = url.parse::<awc::http::Uri>() else {
        return Some("not a URL".into());
    };
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Some("expected an http:// or https:// URL".into());
    }
    if uri.host().is_none_or(str::is_empty) {
        return Some("the URL names no host".into());
    }
    None
}

/// The URL as `/admin/sinks` shows it: without user info, and with the query elided (either
/// may hold a credential of the endpoint's).
pub fn display_url(url: &str) -> String {
    let Ok(uri) = url.parse::<awc::http::Uri>() else {
        return String::new();
    };
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    let query = if uri.query().is_some() { "?…" } else { "" };
    format!(
        "{}://{}{port}{}{query}",
        uri.scheme_str().unwrap_or_default(),
        uri.host().unwrap_or_default(),
        uri.path()
    )
}

/// The HMAC key of a `whsec_<base64>` secret, or why it is refused (never echoing it).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    let Some(encoded) = secret.strip_prefix(SECRET_PREFIX) else {
        return Err("expected `whsec_` and the base64 of the key (`stockd webhook new` makes one)".into());
    };
    let key = B64
        .decode(encoded)
        .map_err(|_| "the part after `whsec_` is not base64".to_string())?;
    if !(SECRET_KEY_BYTES_MIN..=SECRET_KEY_BYTES_MAX).contains(&key.len()) {
        return Err(format!(
            "the key is {} bytes: expected {SECRET_KEY_BYTES_MIN} to {SECRET_KEY_BYTES_MAX}",
            key.len()
        ));
    }
    if crate::auth::published::is_published_secret(secret) {
        return Err(
            "this secret is printed in stockd's own docs or examples: make one with `stockd webhook new`".into(),
        );
    }
    Ok(key)
}

/// A fresh secret from the OS CSPRNG.
pub fn new_secret() -> Result<String, getrandom::Error> {
    let mut key = [0u8; SECRET_KEY_BYTES_NEW];
    getrandom::getrandom(&mut key)?;
    Ok(format!("{SECRET_PREFIX}{}", B64.encode(key)))
}

/// `v1,<base64>` per key, space-separated: HMAC-SHA256 over `id.timestamp.body`.
pub fn signature(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut out = String::new();
    for key in keys {
        // HMAC takes keys of any length.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            continue;
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("v1,");
        out.push_str(&B64.encode(mac.finalize().into_bytes()));
    }
    out
}

/// TLS for https:// endpoints: the system's root certificates, ring like the server side.
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match rustls_native_certs::load_native_certs() {
        Ok(certs) => {
            let (added, _ignored) = roots.add_parsable_certificates(certs);
            if added == 0 {
                tracing::warn!("no system root certificates found: https:// webhooks will fail to verify");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the system root certificates: https:// webhooks will fail"),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| rustls::ClientConfig::builder_with_protocol_versions(rustls::DEFAULT_VERSIONS));
    let mut config = builder.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// One webhook endpoint: its client (on the sinks' thread), URL and keys.
pub struct Webhook {
    client: awc::Client,
    url: String,
    keys: Vec<Vec<u8>>,
}

impl Webhook {
    /// `secrets` were checked at start.
    pub fn new(url: &str, secrets: &[String], tls: Arc<rustls::ClientConfig>) -> Webhook {
        let timeout = Duration::from_millis(WEBHOOK_TIMEOUT_MS);
        let connector = awc::Connector::new().rustls_0_23(tls).timeout(timeout);
        let client = awc::Client::builder()
            .connector(connector)
            .timeout(timeout)
            .disable_redirects()
            .add_default_header(("user-agent", concat!("stockd/", env!("CARGO_PKG_VERSION"))))
            .finish();
        Webhook {
            client,
            url: url.to_string(),
            keys: secrets.iter().filter_map(|s| secret_key(s).ok()).collect(),
        }
    }

    /// One attempt: `Ok` on a 2xx.
    pub async fn deliver(&self, event: &Event) -> Result<(), Failure> {
        let timestamp = crate::clock::now_ms() / 1000;
        let signature = signature(&self.keys, &event.id, timestamp, &event.body);
        let sent = self
            .client
            .post(&self.url)
            .insert_header(("content-type", "application/json"))
            .insert_header(("webhook-id", event.id.as_str()))
            .insert_header(("webhook-timestamp", timestamp.to_string()))
            .insert_header(("webhook-signature", signature))
            .send_body(event.body.clone())
            .await;
        match sent {
            Ok(res) if res.status().is_success() => Ok(()),
            Ok(res) => Err(Failure {
                status: Some(res.status().as_u16()),
                error: format!("answered {}", res.status()),
            }),
            Err(e) => Err(Failure {
                status: None,
                error: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_like_the_reference_implementation() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("key");
        let body = br#"{"test": 2432232314}"#;
        let sig = signature(&[key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn refuses_bad_secrets_and_urls() {
        assert!(secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(secret_key("whsec_!!").is_err());
        assert!(secret_key("whsec_c2hvcnQ=").is_err(), "5 bytes");
        assert!(url_refusal("ftp://x/").is_some());
        assert!(url_refusal("http:///x").is_some());
        assert!(url_refusal("https://erp.example.com/hooks").is_none());
        assert_eq!(
            display_url("https://user:pw@erp.example.com:8443/hooks?key=k"),
            "https://erp.example.com:8443/hooks?…"
        );
        let fresh = new_secret().expect("secret");
        assert_eq!(secret_key(&fresh).map(|k| k.len()), Ok(SECRET_KEY_BYTES_NEW));
    }
}
