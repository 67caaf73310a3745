//! Authentication and authorization: who is calling, and may they?
//!
//! [`Guard<P>`] is an actix extractor: a handler that takes `Guard<WriteInventory>` as its
//! first argument cannot run without that scope, and the check happens on the headers,
//! before the body is read. Token hashes are compared in constant time; no secret is
//! ever logged or echoed.

use std::future::{ready, Future, Ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::Either;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::error::{ApiError, Code};

pub mod partner;
pub mod published;
pub mod signature;

/// Longest `Authorization` value we look at, in bytes.
pub const AUTHORIZATION_LEN_MAX: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
    Catalog,
    Admin,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "inventory:read" | "com.read_inventories" => Some(Scope::Read),
            "inventory:write" | "com.write_inventories" => Some(Scope::Write),
            "catalog:write" => Some(Scope::Catalog),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "inventory:read",
            Scope::Write => "inventory:write",
            Scope::Catalog => "catalog:write",
            Scope::Admin => "admin",
        }
    }
}

/// A write that must be answered, not applied, when it comes again (legacy signatures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub key: String,
    pub ttl_ms: i64,
}

/// The caller, once authenticated.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    scopes: Vec<Scope>,
    /// `None` = every warehouse.
    warehouses: Option<Vec<String>>,
    /// Set for legacy-signed requests, which carry no nonce.
    pub replay: Option<Replay>,
}

impl Identity {
    /// The identity of every request when no credentials are configured.
    pub fn open() -> Identity {
        Identity {
            name: "anonymous".into(),
            scopes: vec![Scope::Admin],
            warehouses: None,
            replay: None,
        }
    }

    /// `inventory:write` implies read; `admin` implies everything.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes
            .iter()
            .any(|&s| s == scope || s == Scope::Admin || (s == Scope::Write && scope == Scope::Read))
    }

    pub fn may_use(&self, warehouse: &str) -> bool {
        self.warehouses
            .as_ref()
            .is_none_or(|ws| ws.iter().any(|w| w == warehouse))
    }

    /// 403 unless this identity may touch `warehouse`.
    pub fn check_warehouse(&self, warehouse: &str) -> Result<(), ApiError> {
        if self.may_use(warehouse) {
            return Ok(());
        }
        Err(ApiError::new(
            Code::Forbidden,
            format!("`{}` may not use warehouse `{warehouse}`", self.name),
        ))
    }

    /// 403 for a credential restricted to warehouses: creating or renaming a warehouse
    /// changes the list every credential chooses from, which is not a restricted one's to do.
    pub fn check_unrestricted(&self, action: &str) -> Result<(), ApiError> {
        if self.warehouses.is_none() {
            return Ok(());
        }
        Err(ApiError::new(
            Code::Forbidden,
            format!("`{}` is restricted to warehouses and may not {action}", self.name),
        ))
    }

    /// The scopes as configured, by their API.md names.
    pub fn scope_names(&self) -> Vec<&'static str> {
        self.scopes.iter().map(|s| s.name()).collect()
    }

    /// The warehouses this identity is restricted to, if any.
    pub fn warehouses(&self) -> Option<&[String]> {
        self.warehouses.as_deref()
    }
}

struct TokenEntry {
    hash: [u8; 32],
    identity: Identity,
}

/// The credentials of the running daemon (from config).
pub struct Authenticator {
    open: bool,
    tokens: Vec<TokenEntry>,
    partners: std::collections::HashMap<String, partner::PartnerEntry>,
    /// Where signed requests record their nonces.
    store: Option<crate::store::Store>,
    body_limits: crate::body::Limits,
    /// What bodies of signed requests may buffer before their signature is checked.
    unauthenticated_bodies: crate::body::Budget,
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

pub fn sha256_hex(data: &[u8]) -> String {
    crate::hex(&Sha256::digest(data))
}

impl Authenticator {
    pub fn from_config(config: &Config, store: Option<crate::store::Store>) -> Authenticator {
        let tokens = config
            .tokens
            .iter()
            .filter_map(|t| {
                Some(TokenEntry {
                    hash: decode_hex32(&t.sha256.to_ascii_lowercase())?,
                    identity: Identity {
                        name: t.name.clone(),
                        scopes: t.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                        warehouses: t.warehouses.clone(),
                        replay: None,
                    },
                })
            })
            .collect();
        let partners = config
            .partners
            .iter()
            .map(|p| {
                let entry = partner::PartnerEntry {
                    secrets: p.secrets.clone(),
                    identity: Identity {
                        name: p.id.clone(),
                        scopes: p.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                        warehouses: p.warehouses.clone(),
                        replay: None,
                    },
                    legacy: p.legacy_signature,
                };
                (p.id.clone(), entry)
            })
            .collect();
        Authenticator {
            open: config.is_open(),
            tokens,
            partners,
            store,
            body_limits: crate::body::Limits::from_config(&config.server),
            unauthenticated_bodies: crate::body::Budget::for_bodies(config.server.body_limit_bytes),
        }
    }

    fn partner(&self, id: &str) -> Option<&partner::PartnerEntry> {
        self.partners.get(id)
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Finds the token whose hash matches, comparing against every entry in constant time.
    fn token(&self, token: &str) -> Option<&Identity> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for entry in &self.tokens {
            if bool::from(entry.hash.ct_eq(&presented)) {
                found = Some(&entry.identity);
            }
        }
        found
    }

    /// Authenticates a request from its headers alone. `bare_token_ok` accepts
    /// `Authorization: <token>` without the `Bearer` word (seed 004's route).
    pub fn authenticate(&self, req: &HttpRequest, bare_token_ok: bool) -> Result<Identity, ApiError> {
        if self.open {
            return Ok(Identity::open());
        }
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            return Err(unauth(
                "missing_credentials",
                "send `Authorization: Bearer <token>` or a partner signature",
            ));
        };
        let value = value
            .to_str()
            .ok()
            .filter(|v| v.len() <= AUTHORIZATION_LEN_MAX)
            .ok_or_else(|| unauth("malformed", "unreadable Authorization header"))?;
        let token = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            None if bare_token_ok => value.trim(),
            _ => return Err(unauth("malformed", "expected `Authorization: Bearer <token>`")),
        };
        self.token(token)
            .cloned()
            .ok_or_else(|| unauth("unknown_token", "unknown token"))
    }
}

/// A scope a route requires, as a type.
pub trait Policy {
    const SCOPE: Scope;
    /// Whether the bare `Authorization: <token>` form is accepted.
    const BARE_TOKEN: bool = false;
}

pub struct ReadInventory;
pub struct WriteInventory;
pub struct WriteCatalog;
pub struct Admin;
/// Seed 004's route: read scope, bare token accepted.
pub struct DepotRead;

impl Policy for ReadInventory {
    const SCOPE: Scope = Scope::Read;
}
impl Policy for WriteInventory {
    const SCOPE: Scope = Scope::Write;
}
impl Policy for WriteCatalog {
    const SCOPE: Scope = Scope::Catalog;
}
impl Policy for Admin {
    const SCOPE: Scope = Scope::Admin;
}
impl Policy for DepotRead {
    const SCOPE: Scope = Scope::Read;
    const BARE_TOKEN: bool = true;
}

/// An authenticated caller holding scope `P::SCOPE`.
pub struct Guard<P: Policy> {
    pub identity: Identity,
    _policy: PhantomData<P>,
}

impl<P: Policy> std::ops::Deref for Guard<P> {
    type Target = Identity;
    fn deref(&self) -> &Identity {
        &self.identity
    }
}

type SignedFuture<P> = Pin<Box<dyn Future<Output = Result<Guard<P>, ApiError>>>>;

impl<P: Policy + 'static> FromRequest for Guard<P> {
    type Error = ApiError;
    type Future = Either<Ready<Result<Self, ApiError>>, SignedFuture<P>>;

    /// Bearer tokens are checked right here, from the headers. A signed partner request
    /// is checked on its headers first, then its body is read and hashed (see `partner`).
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let auth = match req.app_data::<web::Data<Arc<Authenticator>>>() {
            Some(a) => a.clone(),
            None => return Either::Left(ready(Err(ApiError::new(Code::Internal, "authenticator missing")))),
        };
        if auth.open || !req.headers().contains_key(partner::PARTNER_HEADER) {
            let result = auth.authenticate(req, P::BARE_TOKEN);
            return Either::Left(ready(observed(req, result).and_then(scoped::<P>)));
        }
        let (body_tx, body_rx) = tokio::sync::oneshot::channel();
        req.extensions_mut().insert(crate::body::PendingBody(body_rx));
        let req = req.clone();
        let payload = payload.take();
        Either::Right(Box::pin(async move {
            let result = partner::authenticate(&auth, &req, payload, body_tx).await;
            observed(&req, result).and_then(scoped::<P>)
        }))
    }
}

/// Names the caller for the request log.
fn observed(req: &HttpRequest, result: Result<Identity, ApiError>) -> Result<Identity, ApiError> {
    if let Ok(identity) = &result {
        req.extensions_mut()
            .insert(crate::telemetry::Actor(identity.name.clone()));
    }
    result
}

/// A 401, counted by `reason` (a short fixed label: never anything the client sent).
pub fn unauth(reason: &'static str, detail: &str) -> ApiError {
    crate::telemetry::auth_failure(reason);
    ApiError::new(Code::Unauthenticated, detail.to_string())
}

fn scoped<P: Policy>(identity: Identity) -> Result<Guard<P>, ApiError> {
    if !identity.has(P::SCOPE) {
        return Err(ApiError::new(
            Code::Forbidden,
            format!("`{}` lacks the `{}` scope", identity.name, P::SCOPE.name()),
        ));
    }
    Ok(Guard {
        identity,
        _policy: PhantomData,
    })
}

/// A fresh random partner secret: 32 bytes from the OS, URL-safe base64.
pub fn new_secret() -> Result<String, String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| e.to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A fresh random token (32 bytes from the OS, URL-safe base64) and its SHA-256 hex.
pub fn new_token() -> Result<(String, String), String> {
    let token = format!("stk_{}", new_secret()?);
    let hash = sha256_hex(token.as_bytes());
    Ok((token, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_imply() {
        let id = Identity {
            name: "t".into(),
            scopes: vec![Scope::Write],
            warehouses: Some(vec!["a".into()]),
            replay: None,
        };
        assert!(id.has(Scope::Read));
        assert!(!id.has(Scope::Catalog));
        assert!(id.may_use("a") && !id.may_use("b"));
        assert!(Identity::open().has(Scope::Catalog));
    }

    #[test]
    fn new_tokens_hash_to_their_config_line() {
        let (token, hash) = new_token().unwrap_or_default();
        assert_eq!(sha256_hex(token.as_bytes()), hash);
        assert_eq!(decode_hex32(&hash).map(|h| h.len()), Some(32));
    }
}
