//! Reading request bodies within a size limit and a deadline. Shared by the JSON extractor
//! and the partner signature check (which must hash the body before the handler sees it,
//! so it buffers bodies of requests not yet authenticated: those draw on a [`Budget`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut};
use actix_web::HttpRequest;

use crate::error::{ApiError, Code};

/// Bodies of not-yet-authenticated requests buffered at once, at most, counted in body
/// limits: 16 MiB together with the default 1 MiB limit. A signed partner request can only
/// be checked once its whole body is in; without this bound, 300 connections that name a
/// known partner and stall after 1 MB each held 470 MB.
pub const UNAUTHENTICATED_BODIES_MAX: usize = 16;

/// How much of a body may be read, and how long reading it may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub limit_bytes: usize,
    /// From the first poll of the body to its end: a client that stalls or drips is
    /// answered 408 and its connection closed, whatever it still sends.
    pub deadline: Duration,
}

impl Limits {
    pub fn from_config(server: &crate::config::Server) -> Limits {
        Limits {
            limit_bytes: server.body_limit_bytes,
            deadline: Duration::from_millis(server.body_read_deadline_ms),
        }
    }
}

/// Bytes that requests not yet authenticated may buffer together. While less than half of
/// it is held anyone may take more; beyond half, a client (an IP address) may hold at most
/// `max_bytes / PEER_SHARE_DIVISOR`. So one client's stalled uploads fill at most half of
/// it, and the other half stays for everyone else (each up to that share).
#[derive(Debug)]
pub struct Budget {
    max_bytes: usize,
    held: Mutex<Holders>,
}

/// What is held now: in all, and per client (an entry only while it holds some).
#[derive(Debug, Default)]
struct Holders {
    total_bytes: usize,
    peers: HashMap<Option<IpAddr>, usize>,
}

/// Beyond half of the budget, the share one client may hold: a quarter of the budget.
pub const PEER_SHARE_DIVISOR: usize = 4;

impl Budget {
    pub fn new(max_bytes: usize) -> Budget {
        Budget {
            max_bytes,
            held: Mutex::new(Holders::default()),
        }
    }

    /// The budget for bodies of `limit_bytes`: [`UNAUTHENTICATED_BODIES_MAX`] of them.
    pub fn for_bodies(limit_bytes: usize) -> Budget {
        Budget::new(limit_bytes.saturating_mul(UNAUTHENTICATED_BODIES_MAX))
    }

    /// Bytes held now by every request together.
    pub fn used_bytes(&self) -> usize {
        self.held().total_bytes
    }

    /// What is held, even if a panic poisoned the lock (the figures stay consistent: each
    /// change is made whole under it).
    fn held(&self) -> std::sync::MutexGuard<'_, Holders> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes `bytes` for `peer` if they fit.
    fn take(&self, peer: Option<IpAddr>, bytes: usize) -> bool {
        let mut held = self.held();
        let own_before = held.peers.get(&peer).copied().unwrap_or(0);
        let (Some(total), Some(own)) = (held.total_bytes.checked_add(bytes), own_before.checked_add(bytes)) else {
            return false;
        };
        let fits =
            total <= self.max_bytes && (total <= self.max_bytes / 2 || own <= self.max_bytes / PEER_SHARE_DIVISOR);
        if fits {
            held.peers.insert(peer, own);
            held.total_bytes = total;
        }
        fits
    }

    fn give_back(&self, peer: Option<IpAddr>, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let mut held = self.held();
        match held.peers.get(&peer).copied() {
            Some(own) if own > bytes => {
                held.peers.insert(peer, own - bytes);
            }
            _ => {
                held.peers.remove(&peer);
            }
        }
        held.total_bytes = held.total_bytes.saturating_sub(bytes);
    }
}

/// Bytes taken from a [`Budget`]; given back when dropped (the request was authenticated,
/// refused, or its connection went away).
#[derive(Debug)]
pub struct Held<'a> {
    budget: &'a Budget,
    peer: Option<IpAddr>,
    bytes: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.peer, self.bytes);
    }
}

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

fn too_slow(deadline: Duration) -> ApiError {
    ApiError::new(
        Code::RequestTimeout,
        format!("the body did not arrive within {} ms", deadline.as_millis()),
    )
}

/// The declared Content-Length, when it is readable.
pub fn declared_len(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads the whole body of an authenticated request: 413 as soon as it passes the limit,
/// 408 when it is not in by the deadline.
pub async fn read(req: &HttpRequest, payload: &mut Payload, limits: Limits) -> Result<Bytes, ApiError> {
    read_admitting(req, payload, limits, |_| Ok(())).await
}

/// Reads the whole body of a request that is not authenticated yet, holding its bytes in
/// `budget` until the returned [`Held`] is dropped: 503 `overloaded` (retry) as soon as
/// the budget cannot hold them, besides the 413 and 408 of [`read`].
pub async fn read_unauthenticated<'a>(
    req: &HttpRequest,
    payload: &mut Payload,
    limits: Limits,
    budget: &'a Budget,
) -> Result<(Bytes, Held<'a>), ApiError> {
    let peer = req.peer_addr().map(|a| a.ip());
    let mut held = Held { budget, peer, bytes: 0 };
    let body = read_admitting(req, payload, limits, |bytes| {
        if !budget.take(peer, bytes) {
            return Err(ApiError::new(
                Code::Overloaded,
                "too many bodies of unauthenticated requests are in transit; retry shortly",
            ));
        }
        held.bytes += bytes;
        Ok(())
    })
    .await?;
    Ok((body, held))
}

/// Reads chunks under the limit and the deadline; `admit` sees each chunk's size before it
/// is kept.
async fn read_admitting(
    req: &HttpRequest,
    payload: &mut Payload,
    limits: Limits,
    mut admit: impl FnMut(usize) -> Result<(), ApiError>,
) -> Result<Bytes, ApiError> {
    use futures_util::StreamExt;
    let limit = limits.limit_bytes;
    if declared_len(req).is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    // The chunks are kept as they came and joined once at the end: a growing buffer would
    // hold up to twice the bytes admitted (its doubling), so a stalled body would hold
    // more memory than the budget counts.
    let reading = async {
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut len = 0usize;
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::new(Code::InvalidJson, format!("reading the body: {e}")))?;
            if len + chunk.len() > limit {
                return Err(too_large(limit));
            }
            admit(chunk.len())?;
            len += chunk.len();
            chunks.push(chunk);
        }
        Ok(join(chunks, len))
    };
    // A body refused half-read is left unread: [`close_unread_bodies`] closes its connection.
    tokio::time::timeout(limits.deadline, reading)
        .await
        .unwrap_or_else(|_| Err(too_slow(limits.deadline)))
}

/// One buffer of `len` bytes from `chunks` (no copy for a body that came in one chunk).
fn join(mut chunks: Vec<Bytes>, len: usize) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    let mut body = BytesMut::with_capacity(len);
    for chunk in chunks {
        body.extend_from_slice(&chunk);
    }
    body.freeze()
}

/// How long the payload of a body refused half-read is kept, in milliseconds: longer than
/// actix takes to send the answer (it decides to close as it finishes sending).
const REFUSED_BODY_HOLD_MS: u64 = 2_000;

/// Keeps the payload of a body not read to its end (refused half-read: too slow, too large,
/// over the budget; or never read: a 401, an unknown route) alive, unread, while actix sends the answer: actix closes the connection after an
/// answer only while the payload is unread and alive. Once it is dropped, actix drains a
/// chunked body for as long as the client trickles it, with no deadline. Unread, it
/// buffers at most actix's 32 KiB before it stops reading the socket.
fn close_after_answer(payload: Payload) {
    actix_web::rt::spawn(async move {
        let _payload = payload;
        tokio::time::sleep(Duration::from_millis(REFUSED_BODY_HOLD_MS)).await;
    });
}

/// A request body as the handler sees it: the connection's payload, kept by
/// [`close_unread_bodies`] so it outlives the handler; notes when it was read to its end.
struct Watched {
    payload: std::rc::Rc<std::cell::RefCell<Payload>>,
    finished: std::rc::Rc<std::cell::Cell<bool>>,
}

impl futures_util::Stream for Watched {
    type Item = Result<Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let polled = std::pin::Pin::new(&mut *self.payload.borrow_mut()).poll_next(cx);
        if let std::task::Poll::Ready(None) = polled {
            self.finished.set(true);
        }
        polled
    }
}

/// Middleware: a request answered before its body was read to the end (refused by the
/// auth guard, an unknown route, a bad path) gets its connection closed after the answer.
/// Dropped unread, a chunked body would be drained by actix for as long as the client
/// trickles it, with no deadline: any client, with no credential, could hold connections
/// open forever. Kept alive unread, actix answers with `Connection: close` instead.
pub async fn close_unread_bodies(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    use actix_web::HttpMessage;
    let payload = req.take_payload();
    if let Payload::None = payload {
        return next.call(req).await;
    }
    let payload = std::rc::Rc::new(std::cell::RefCell::new(payload));
    let finished = std::rc::Rc::new(std::cell::Cell::new(false));
    let watched = Watched {
        payload: payload.clone(),
        finished: finished.clone(),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(watched),
    });
    let res = next.call(req).await;
    if !finished.get() {
        close_after_answer(payload.replace(Payload::None));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_holds_what_fits_and_gets_it_back() {
        let budget = Budget::new(16);
        let (a, b, c) = (peer(1), peer(2), peer(3));
        assert!(budget.take(a, 4));
        assert!(budget.take(b, 4));
        assert!(budget.take(c, 4));
        assert!(!budget.take(a, 1), "past half, a holds its share (4) already");
        assert!(budget.take(peer(4), 4));
        assert!(!budget.take(peer(5), 1), "16 of 16 held");
        let held = Held {
            budget: &budget,
            peer: a,
            bytes: 4,
        };
        drop(held);
        assert_eq!(budget.used_bytes(), 12);
        assert!(budget.take(peer(5), 4), "a's bytes came back");
        assert!(!budget.take(b, usize::MAX), "no overflow");
    }

    /// One client's stalled bodies fill at most half of the budget; others still get in.
    #[test]
    fn one_client_cannot_take_the_whole_budget() {
        let budget = Budget::new(16);
        let greedy = peer(1);
        let taken = (0..16).filter(|_| budget.take(greedy, 1)).count();
        assert_eq!(taken, 8, "half, which is above its share of 4");
        assert!(budget.take(peer(2), 4), "another client gets its share");
        assert!(!budget.take(peer(2), 1), "but no more once past half");
        assert!(budget.take(None, 4), "a client without an address is one more client");
        assert_eq!(budget.used_bytes(), 16);
        budget.give_back(greedy, 8);
        assert_eq!(budget.used_bytes(), 8);
        assert!(
            !budget.held().peers.contains_key(&greedy),
            "no entry is kept for a client that holds nothing"
        );
    }

    fn peer(n: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, n]))
    }

    #[test]
    fn chunks_are_joined_in_order() {
        let chunks = vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")];
        assert_eq!(join(chunks, 3), Bytes::from_static(b"abc"));
        assert_eq!(join(vec![Bytes::from_static(b"x")], 1), Bytes::from_static(b"x"));
        assert_eq!(join(Vec::new(), 0), Bytes::new());
    }
}
