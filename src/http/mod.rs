//! HTTP: the app, shared extractors, and one module per API (native, health/admin).

pub mod adjustments;
pub mod depot;
pub mod feed;
pub mod health;
pub mod metrics;
pub mod movement_log;
pub mod native;
pub mod numbers;
pub mod openapi;
pub mod partner;
pub mod render;
pub mod reservations;
pub mod sinks;
pub mod ui;
pub mod write;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;

use crate::auth::Authenticator;
use crate::error::{ApiError, Code};
use crate::store::Store;

/// What every handler shares.
pub struct AppState {
    pub store: Store,
    pub default_warehouse: String,
    pub body_limits: crate::body::Limits,
    pub in_flight: write::InFlight,
    pub backup_dir: std::path::PathBuf,
    pub backup_keep: usize,
    /// `[server] trust_forwarded`: links may follow `X-Forwarded-Host`/`-Proto`.
    pub trust_forwarded: bool,
    /// The outbound sinks (`/admin/sinks`).
    pub sinks: Arc<crate::sinks::Sinks>,
}

pub type State = web::Data<AppState>;

/// Every API's registration, in the order its routes are tried within a pass.
const APIS: [fn(&mut web::ServiceConfig, Paths); 12] = [
    health::config_health_api,
    native::config_native_api,
    metrics::config_metrics_api,
    sinks::config_sinks_api,
    feed::config_feed_api,
    reservations::config_reservations_api,
    partner::config_partner_api,
    movement_log::config_movement_log_api,
    adjustments::config_adjustments_api,
    depot::config_depot_api,
    openapi::config_openapi_api,
    ui::config_ui,
];

/// Registers every API on an app.
pub fn configure(cfg: &mut web::ServiceConfig, state: State, auth: Arc<Authenticator>) {
    cfg.app_data(state).app_data(web::Data::new(auth));
    // actix tries resources in registration order and matches a path with parameters by a
    // regex, a static one by comparing strings: every API's static paths go first, so no
    // request to one (the hot writes and reads of every dialect) runs a regex. Within a
    // pass the probes come first (load balancers poll them; `/healthz` is the load bench's
    // HTTP floor), then the hottest API.
    for paths in [Paths::Static, Paths::WithParams] {
        for config_api in APIS {
            config_api(cfg, paths);
        }
    }
    // After every route: it only sees the requests none of them took.
    openapi::config_method_not_allowed(cfg);
    cfg.default_service(web::to(not_found));
}

/// Which of an API's routes one registration pass adds (see `configure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paths {
    /// Paths without parameters.
    Static,
    /// Paths with `{parameters}`.
    WithParams,
}

impl Paths {
    pub fn of(path: &str) -> Paths {
        if path.contains('{') {
            Paths::WithParams
        } else {
            Paths::Static
        }
    }

    /// The routes of `cfg` this pass adds.
    pub fn on(self, cfg: &mut web::ServiceConfig) -> Routes<'_> {
        Routes { cfg, paths: self }
    }
}

/// A `ServiceConfig` that adds only the routes of one pass.
pub struct Routes<'c> {
    cfg: &'c mut web::ServiceConfig,
    paths: Paths,
}

impl Routes<'_> {
    pub fn route(&mut self, path: &str, route: actix_web::Route) -> &mut Self {
        if Paths::of(path) == self.paths {
            self.cfg.route(path, route);
        }
        self
    }
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        Code::RouteNotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// Refuses a request whose path or query string holds a `%` not followed by two hex digits,
/// or escapes that do not decode to UTF-8: the router and the query parser would put U+FFFD
/// in their place, and an id with U+FFFD is not the id the client sent (issue 10, item 8).
pub async fn refuse_bad_encoding(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let refusal = [("path", req.path()), ("query", req.query_string())]
        .into_iter()
        .find(|(_, text)| !percent_decodes_to_utf8(text));
    if let Some((field, _)) = refusal {
        let err = ApiError::invalid(
            field,
            "has invalid percent-encoding (`%` then two hex digits, decoding to UTF-8)",
        );
        let res = actix_web::ResponseError::error_response(&err);
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Whether every `%` in `text` starts a two-hex-digit escape and the decoded bytes are UTF-8.
pub fn percent_decodes_to_utf8(text: &str) -> bool {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'%') {
        return true;
    }
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            decoded.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = match bytes.get(i + 1..i + 3) {
            Some(h) if h.iter().all(u8::is_ascii_hexdigit) => h,
            _ => return false,
        };
        let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
        decoded.push(digit(hex[0]) << 4 | digit(hex[1]));
        i += 3;
    }
    std::str::from_utf8(&decoded).is_ok()
}

/// A JSON body read within the configured limit and parsed into `T`: 413 beyond the
/// limit, 400 `invalid_json` for bad syntax, 422 `invalid_field` for wrong shapes.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move { parse_json(&body.await?).map(Json) })
    }
}

/// Like [`Json`], but an empty body (or only whitespace) is `T::default()`: for a document
/// whose every body part is optional (seed 004).
pub struct JsonOrDefault<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for JsonOrDefault<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            let body = body.await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(JsonOrDefault(T::default()));
            }
            parse_json(&body).map(JsonOrDefault)
        })
    }
}

/// The request body, read within the configured limit (or as the signature check read it).
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> Pin<Box<dyn Future<Output = Result<actix_web::web::Bytes, ApiError>>>> {
    let limits = req
        .app_data::<State>()
        .map(|s| s.body_limits)
        .unwrap_or_else(|| crate::body::Limits::from_config(&crate::config::Server::default()));
    let pending = req.extensions_mut().remove::<crate::body::PendingBody>();
    let req = req.clone();
    let mut payload = payload.take();
    Box::pin(async move {
        let body = match pending {
            Some(p) => {
                p.0.await
                    .map_err(|_| ApiError::new(Code::Unauthenticated, "the signature check did not pass"))?
            }
            None => crate::body::read(&req, &mut payload, limits).await?,
        };
        if write::wants_digest(&req) {
            use sha2::Digest;
            req.extensions_mut()
                .insert(write::BodyDigest(sha2::Sha256::digest(&body).into()));
        }
        Ok(body)
    })
}

/// Parses a body: 400 `invalid_json` when it is not JSON at all — even when a shape error
/// comes first in it — else 422 `invalid_field` for a wrong shape.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Most bodies are well formed: parse without tracking the path (the tracking wraps
    // every value; a 1000-line count spent ~4k instructions a line on it). A body that
    // fails is parsed again with the path, which fails at the same place and names it.
    let mut de = serde_json::Deserializer::from_slice(body);
    if let Ok(value) = T::deserialize(&mut de) {
        if de.end().is_ok() {
            return Ok(value);
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    Ok(_) if path == "." => ApiError::from_json(&inner),
                    Ok(_) => ApiError::invalid(&path, inner),
                    Err(syntax) => ApiError::from_json(&syntax),
                },
                _ => ApiError::from_json(&inner),
            });
        }
    };
    de.end().map_err(|e| ApiError::from_json(&e))?;
    Ok(value)
}

/// A whole-number query parameter in `min..=max`, `None` when absent: 422 naming the field
/// otherwise, never clamped (API.md). Every route's `limit`, `page`, `offset`… go through it.
pub fn int_param(field: &str, value: &Option<String>, min: u64, max: u64) -> Result<Option<u64>, ApiError> {
    let Some(text) = value else { return Ok(None) };
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ApiError::invalid(
            field,
            format!("must be an integer from {min} to {max}"),
        )),
    }
}

/// The id a dialect's id field names: a string's content, or a JSON number's digits taken
/// as they are written (the seeds show 39-digit ids; never through a float).
pub fn raw_id(field: &str, raw: &serde_json::value::RawValue) -> Result<String, ApiError> {
    let text = raw.get();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(text.to_string());
    }
    serde_json::from_str::<String>(text).map_err(|_| ApiError::invalid(field, "must be a string or a whole number"))
}

/// Query parameters parsed into `T`; a wrong type is 422 `invalid_field`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

/// Query parameters parsed into `T`, an empty one (`warehouse_id=`, what form builders and
/// `requests` send for an unset field) counting as absent; a wrong type is 422.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let bad = |e: &dyn std::fmt::Display| ApiError::new(Code::InvalidField, format!("query: {e}"));
    if !query
        .split('&')
        .any(|pair| pair.is_empty() || pair.ends_with('=') || !pair.contains('='))
    {
        return serde_urlencoded::from_str::<T>(query).map_err(|e| bad(&e));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|e| bad(&e))?;
    let kept: Vec<(String, String)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let text = serde_urlencoded::to_string(&kept).map_err(|e| bad(&e))?;
    serde_urlencoded::from_str::<T>(&text).map_err(|e| bad(&e))
}

/// The native envelope of single objects.
#[derive(serde::Serialize)]
pub struct Data<'a, T> {
    pub data: &'a T,
}

/// `{"data": ...}` with a status.
pub fn data<T: serde::Serialize>(status: actix_web::http::StatusCode, value: &T) -> HttpResponse {
    match serde_json::to_vec(&Data { data: value }) {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(body),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::new(Code::Internal, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decodes_to_utf8;

    #[test]
    fn percent_encoding_must_decode_to_utf8() {
        for ok in ["", "/api/products/p1", "caf%C3%A9", "a%20b", "%25", "x=%e2%82%ac&y=1"] {
            assert!(percent_decodes_to_utf8(ok), "{ok}");
        }
        for bad in ["%FF", "caf%C3", "%C3%28", "%zz", "%", "a%2", "%+1", "%e2%82"] {
            assert!(!percent_decodes_to_utf8(bad), "{bad}");
        }
    }
}
