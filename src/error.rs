//! The one table of error codes: every code once, with its HTTP status and title.
//!
//! Ledger, store and auth errors map into [`ApiError`]; native routes write it as
//! `application/problem+json` in exactly one place ([`ApiError::error_response`]).
//! Dialect modules render the same [`ApiError`] in their document's own shape.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::ledger::LedgerError;

/// How long a client should wait before retrying after a 503, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 1;

macro_rules! error_codes {
    ($($variant:ident = $name:literal, $status:literal, $title:literal;)*) => {
        /// Every error code the daemon answers with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable snake_case name clients match on.
            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => $name),* }
            }

            pub fn status(self) -> StatusCode {
                let status = match self { $(Code::$variant => $status),* };
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }

            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title),* }
            }
        }
    };
}

error_codes! {
    InvalidJson = "invalid_json", 400, "Malformed JSON";
    InvalidField = "invalid_field", 422, "Invalid field";
    PayloadTooLarge = "payload_too_large", 413, "Payload too large";
    RequestTimeout = "request_timeout", 408, "Request timeout";
    Unauthenticated = "unauthenticated", 401, "Unauthenticated";
    Forbidden = "forbidden", 403, "Forbidden";
    RouteNotFound = "route_not_found", 404, "No such route";
    MethodNotAllowed = "method_not_allowed", 405, "Method not allowed";
    ProductNotFound = "product_not_found", 404, "Product not found";
    WarehouseNotFound = "warehouse_not_found", 404, "Warehouse not found";
    MovementNotFound = "movement_not_found", 404, "Movement not found";
    TransferNotFound = "transfer_not_found", 404, "Transfer not found";
    ReservationNotFound = "reservation_not_found", 404, "Reservation not found";
    SinkNotFound = "sink_not_found", 404, "Sink not found";
    ReservationNotActive = "reservation_not_active", 409, "Reservation not active";
    InsufficientStock = "insufficient_stock", 409, "Insufficient stock";
    QuantityMismatch = "quantity_mismatch", 409, "Quantity mismatch";
    AlreadyReceived = "already_received", 409, "Transfer already received";
    SkuTaken = "sku_taken", 409, "SKU already taken";
    NumberTaken = "number_taken", 409, "Number already taken";
    AmbiguousWarehouse = "ambiguous_warehouse", 422, "Ambiguous warehouse name";
    TooManyItems = "too_many_items", 422, "Too many items";
    QuantityOverflow = "quantity_overflow", 422, "Quantity overflow";
    IdempotencyKeyReused = "idempotency_key_reused", 422, "Idempotency key reused";
    IdempotencyKeyInFlight = "idempotency_key_in_flight", 409, "Idempotency key in flight";
    Overloaded = "overloaded", 503, "Overloaded";
    StorageUnavailable = "storage_unavailable", 503, "Storage unavailable";
    Internal = "internal", 500, "Internal error";
}

impl Code {
    /// The problem+json `type`: a stable URI naming the code.
    pub fn type_uri(self) -> String {
        format!("https://stockd.dev/errors/{}", self.name())
    }
}

/// An error as a client sees it: a code and a sentence about this occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub detail: String,
}

impl ApiError {
    pub fn new(code: Code, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            detail: detail.into(),
        }
    }

    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> ApiError {
        ApiError::new(Code::InvalidField, format!("`{field}`: {reason}"))
    }

    /// A JSON body that did not parse: syntax is 400, shape and types are 422.
    pub fn from_json(err: &serde_json::Error) -> ApiError {
        use serde_json::error::Category;
        match err.classify() {
            Category::Data => ApiError::new(Code::InvalidField, err.to_string()),
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(Code::InvalidJson, err.to_string()),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.detail)
    }
}

impl From<LedgerError> for ApiError {
    fn from(err: LedgerError) -> ApiError {
        let code = match err.root() {
            LedgerError::ProductNotFound(_) => Code::ProductNotFound,
            LedgerError::WarehouseNotFound(_) => Code::WarehouseNotFound,
            LedgerError::TransferNotFound(_) => Code::TransferNotFound,
            LedgerError::InsufficientStock { .. } => Code::InsufficientStock,
            LedgerError::QuantityMismatch { .. } => Code::QuantityMismatch,
            LedgerError::Overflow { .. } => Code::QuantityOverflow,
            LedgerError::AlreadyReceived(_) => Code::AlreadyReceived,
            LedgerError::ReservationNotFound(_) => Code::ReservationNotFound,
            LedgerError::ReservationClosed { .. } => Code::ReservationNotActive,
            LedgerError::SkuTaken { .. } => Code::SkuTaken,
            LedgerError::NumberTaken { .. } => Code::NumberTaken,
            LedgerError::Invalid { .. } => Code::InvalidField,
            LedgerError::TooManyItems { .. } => Code::TooManyItems,
            LedgerError::Storage(_) => Code::StorageUnavailable,
            LedgerError::Line(..) => Code::Internal, // root() never returns a Line
        };
        ApiError::new(code, err.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> ApiError {
        use crate::store::StoreError;
        match err {
            StoreError::Refused(e) => ApiError::from(e),
            StoreError::Stored { code, detail } => {
                // A code this version does not know (a newer file) answers as `internal`.
                let code = Code::ALL
                    .iter()
                    .copied()
                    .find(|c| c.name() == code)
                    .unwrap_or(Code::Internal);
                ApiError::new(code, detail)
            }
            StoreError::KeyReused => ApiError::new(Code::IdempotencyKeyReused, err.to_string()),
            StoreError::NonceReused => ApiError::new(Code::Unauthenticated, err.to_string()),
            StoreError::BadCursor => ApiError::invalid("cursor", "is not a cursor this list gave out"),
            StoreError::Overloaded => ApiError::new(Code::Overloaded, err.to_string()),
            StoreError::Unavailable(why) => ApiError::new(Code::StorageUnavailable, why),
            StoreError::Internal(why) => ApiError::new(Code::Internal, why),
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    type_uri: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    code: &'static str,
    /// The request's id (also in the `x-request-id` header), when rendered while serving it.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

impl ApiError {
    /// The problem+json body: the one place it is written.
    pub fn problem_body(&self) -> Vec<u8> {
        let body = Problem {
            type_uri: self.code.type_uri(),
            title: self.code.title(),
            status: self.code.status().as_u16(),
            detail: &self.detail,
            code: self.code.name(),
            request_id: crate::telemetry::request_id(),
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// Headers every error answer of this status carries, whatever its body's shape.
pub fn error_headers(res: &mut actix_web::HttpResponseBuilder, status: StatusCode) {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string()));
    }
    if status == StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"stockd\""));
    }
    // A body that did not arrive by its deadline: whatever the client still sends on this
    // connection is not read (actix would otherwise drain a chunked body for as long as it
    // trickles).
    if status == StatusCode::REQUEST_TIMEOUT {
        res.force_close();
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.code.status();
        let mut res = HttpResponse::build(status);
        res.insert_header((header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE));
        error_headers(&mut res, status);
        res.body(self.problem_body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../docs/api.md");
        for code in Code::ALL {
            let row = format!("| `{}` | {} |", code.name(), code.status().as_u16());
            assert!(doc.contains(&row), "docs/api.md lacks the row {row}");
        }
    }

    #[test]
    fn every_code_has_a_distinct_name_and_a_real_status() {
        let mut names = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(names.insert(code.name()), "duplicate {}", code.name());
            if *code != Code::Internal {
                assert_ne!(code.status(), StatusCode::INTERNAL_SERVER_ERROR, "{}", code.name());
            }
        }
    }
}
