//! Reading request bodies within a limit. Shared by the JSON extractor and the partner
//! signature check (which must hash the body before the handler sees it).

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::HttpRequest;

use crate::error::{ApiError, Code};

/// A body already read (by the signature check), kept for the request's fingerprint.
#[derive(Clone)]
pub struct Buffered(pub Bytes);

/// The body the signature check is reading. Actix polls a handler's extractors side by
/// side, so the JSON extractor waits on this instead of the (already taken) payload.
pub struct PendingBody(pub tokio::sync::oneshot::Receiver<Bytes>);

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!("the body is larger than the limit of {limit} bytes"),
    )
}

/// The declared Content-Length, when it is readable.
pub fn declared_len(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads the whole body, refusing (413) as soon as it passes `limit` bytes.
pub async fn read(req: &HttpRequest, payload: &mut Payload, limit: usize) -> Result<Bytes, ApiError> {
    use futures_util::StreamExt;
    if declared_len(req).is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
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
