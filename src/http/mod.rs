//! HTTP: the app, shared extractors, and one module per API (native, health/admin).

pub mod health;
pub mod native;
pub mod render;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;

use crate::auth::Authenticator;
use crate::error::{ApiError, Code};
use crate::store::Store;

/// What every handler shares.
pub struct AppState {
    pub store: Store,
    pub default_warehouse: String,
    pub body_limit_bytes: usize,
}

pub type State = web::Data<AppState>;

/// Registers every API on an app.
pub fn configure(cfg: &mut web::ServiceConfig, state: State, auth: Arc<Authenticator>) {
    cfg.app_data(state)
        .app_data(web::Data::new(auth))
        .configure(health::config_health_api)
        .configure(native::config_native_api)
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        Code::RouteNotFound,
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

/// A JSON body read within the configured limit and parsed into `T`: 413 beyond the
/// limit, 400 `invalid_json` for bad syntax, 422 `invalid_field` for wrong shapes.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<State>()
            .map(|s| s.body_limit_bytes)
            .unwrap_or(crate::config::BODY_LIMIT_BYTES_DEFAULT);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large(limit));
            }
            let body = read_body(&mut payload, limit).await?;
            serde_json::from_slice(&body)
                .map(Json)
                .map_err(|e| ApiError::from_json(&e))
        })
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("the body is larger than the limit of {limit} bytes"),
    )
}

async fn read_body(payload: &mut Payload, limit: usize) -> Result<Bytes, ApiError> {
    use futures_util::StreamExt;
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(Code::InvalidJson, format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Query parameters parsed into `T`; a wrong type is 422 `invalid_field`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = serde_urlencoded::from_str::<T>(req.query_string())
            .map(Query)
            .map_err(|e| ApiError::new(Code::InvalidField, format!("query: {e}")));
        std::future::ready(parsed)
    }
}

/// `{"data": ...}` with a status.
pub fn data<T: serde::Serialize>(status: actix_web::http::StatusCode, value: &T) -> HttpResponse {
    #[derive(serde::Serialize)]
    struct Data<'a, T> {
        data: &'a T,
    }
    match serde_json::to_vec(&Data { data: value }) {
        Ok(body) => HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(body),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::new(Code::Internal, e.to_string())),
    }
}
