//! Bounds on the work and memory of requests: what one reply may hold, what
//! all replies together may hold at once, and how many requests one caller
//! may have in flight.
//!
//! - **One reply** holds at most the cache's `max-reply-bytes` (8 MiB by
//!   default) of JSON: [`encode_within`] serialises into a buffer that
//!   refuses to grow past it (413 `reply_too_large`). The values behind it
//!   are bounded by the same budget in the component and the store.
//! - **All replies** together hold at most [`ReplyMemory`]'s capacity (64 MiB
//!   by default): a reply reserves its worst case before reading, trims the
//!   reservation to what it really holds, and keeps it until its body has
//!   been sent. A request that cannot reserve within a short wait gets 503
//!   with `Retry-After`, so that many callers together cannot do what one
//!   cannot.
//! - **One caller** (an API token, a session, or an address for requests with
//!   neither) has at most [`PerCaller`]'s limit of requests in flight (128 by
//!   default), and one client address 8 times that whatever credentials it
//!   sends (they are not checked yet at this point); beyond it, 429 with
//!   `Retry-After`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use super::extract::SESSION_COOKIE;

/// How long a reply waits for room among the replies in flight.
const RESERVE_WAIT: Duration = Duration::from_secs(2);

/// The bytes every reply in flight may hold together.
#[derive(Debug, Clone)]
pub struct ReplyMemory {
    permits: Arc<Semaphore>,
    capacity: u32,
}

/// Bytes held for one reply; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    memory: ReplyMemory,
    held: Option<OwnedSemaphorePermit>,
}

impl ReplyMemory {
    /// Room for `capacity` bytes of replies at once.
    pub fn new(capacity: usize) -> ReplyMemory {
        let capacity = u32::try_from(capacity).unwrap_or(u32::MAX).max(1);
        ReplyMemory {
            permits: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }

    /// Bytes free now (for tests and metrics).
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Hold `bytes` (at most the whole capacity), waiting a little for room.
    pub async fn reserve(&self, bytes: u64) -> Result<Reservation, ApiError> {
        let mut reservation = Reservation {
            memory: self.clone(),
            held: None,
        };
        reservation.resize(bytes).await?;
        Ok(reservation)
    }
}

impl Reservation {
    /// Hold exactly `bytes` from now on (at most the whole capacity): give
    /// back what is no longer needed, or wait a little for more.
    pub async fn resize(&mut self, bytes: u64) -> Result<(), ApiError> {
        let wanted = u32::try_from(bytes)
            .unwrap_or(u32::MAX)
            .min(self.memory.capacity);
        let held = self.held.as_ref().map_or(0, |p| p.num_permits() as u32);
        if wanted < held {
            if let Some(permit) = self.held.as_mut() {
                drop(permit.split((held - wanted) as usize));
            }
            return Ok(());
        }
        if wanted == held {
            return Ok(());
        }
        let more = self
            .memory
            .permits
            .clone()
            .acquire_many_owned(wanted - held);
        let more = tokio::time::timeout(RESERVE_WAIT, more)
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        match self.held.as_mut() {
            Some(permit) => permit.merge(more),
            None => self.held = Some(more),
        }
        Ok(())
    }
}

fn busy() -> ApiError {
    ApiError {
        retry_after: Some(Duration::from_secs(1)),
        ..ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many large replies in flight; try again shortly",
        )
    }
}

/// A `Vec` that refuses to grow past its limit: serialising into it stops
/// at the budget instead of allocating a reply that will be refused.
struct Bounded {
    bytes: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.limit {
            return Err(std::io::Error::other("over budget"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `reply` as JSON, if it fits in `budget` bytes; 413 `reply_too_large`
/// otherwise (JSON escaping can make a value six times its size).
pub fn encode_within<T: Serialize>(reply: &T, budget: u64) -> Result<Vec<u8>, ApiError> {
    let limit = usize::try_from(budget).unwrap_or(usize::MAX);
    let mut out = Bounded {
        bytes: Vec::new(),
        limit,
    };
    match serde_json::to_writer(&mut out, reply) {
        Ok(()) => Ok(out.bytes),
        Err(e) if e.is_io() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "reply_too_large",
            format!("the reply would be more than {budget} bytes of JSON; ask for fewer keys"),
        )),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// A JSON reply whose body keeps its [`Reservation`] until it has been sent.
pub fn held_json(bytes: Vec<u8>, reservation: Reservation) -> Response {
    let body = HeldBody {
        bytes: Some(Bytes::from(bytes)),
        _reservation: reservation,
    };
    let mut response = Response::new(Body::new(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Bytes handed to hyper at a time. Hyper asks for the next piece only when
/// its write buffer has room, and drops the body once it has queued the last
/// one: so the reservation lives until all but this much has been sent.
const CHUNK: usize = 64 << 10;

/// A reply's bytes, handed out in [`CHUNK`]s, and the reservation that
/// accounts for them.
struct HeldBody {
    bytes: Option<Bytes>,
    _reservation: Reservation,
}

impl HttpBody for HeldBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let Some(bytes) = self.bytes.as_mut() else {
            return Poll::Ready(None);
        };
        let chunk = bytes.split_to(bytes.len().min(CHUNK));
        if bytes.is_empty() {
            self.bytes = None;
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// How many requests one caller may have in flight.
#[derive(Debug, Clone)]
pub struct PerCaller {
    limit: usize,
    trusted_proxies: usize,
    callers: Arc<Mutex<HashMap<[u8; 32], Arc<Semaphore>>>>,
}

/// How many callers' limits one client address holds together: credentials
/// are not checked before this limit applies, so made-up ones from one
/// address must not each get a fresh allowance.
const CALLERS_PER_ADDRESS: usize = 8;

impl PerCaller {
    /// At most `limit` requests in flight per caller, and
    /// `limit × 8` per client address (as [`client_address`] sees it with
    /// `trusted_proxies` hops) whatever the credentials.
    ///
    /// [`client_address`]: super::extract::client_address
    pub fn new(limit: usize, trusted_proxies: usize) -> PerCaller {
        PerCaller {
            limit: limit.max(1),
            trusted_proxies,
            callers: Default::default(),
        }
    }

    /// A slot for `key` among `limit`, if one is free.
    fn slot(&self, key: [u8; 32], limit: usize) -> Option<OwnedSemaphorePermit> {
        let mut callers = self.callers.lock().unwrap_or_else(|p| p.into_inner());
        if callers.len() > 10_000 {
            // Forget callers with nothing in flight.
            callers.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() == 0);
        }
        let slots = callers
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(limit)))
            .clone();
        slots.try_acquire_owned().ok()
    }

    /// Slots for the request's address and its caller, if both are free.
    fn admit(&self, request: &Request) -> Option<[OwnedSemaphorePermit; 2]> {
        let address = super::extract::request_address(
            request.headers(),
            request.extensions(),
            self.trusted_proxies,
        );
        // IPv6 by /64: one client gets a whole /64 to rotate through.
        let address = crate::auth::address_group(address);
        let by_address = self.slot(
            hash_of(b"address:", address.to_string().as_bytes()),
            self.limit.saturating_mul(CALLERS_PER_ADDRESS),
        )?;
        let by_caller = self.slot(caller_of(request, address), self.limit)?;
        Some([by_address, by_caller])
    }
}

/// SHA-256 of `tag` then `bytes`: the key of one limit.
fn hash_of(tag: &[u8], bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(tag);
    hash.update(bytes);
    hash.finalize().into()
}

/// Who a request comes from, for [`PerCaller`]: its credential (bearer token
/// or session cookie), hashed, or else its client `address`.
fn caller_of(request: &Request, address: std::net::IpAddr) -> [u8; 32] {
    let headers = request.headers();
    let credential = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec())
        .or_else(|| {
            headers.get_all(header::COOKIE).iter().find_map(|v| {
                let text = v.to_str().ok()?;
                text.split(';')
                    .map(str::trim)
                    .find(|c| {
                        c.split_once('=')
                            .is_some_and(|(n, _)| n.ends_with(SESSION_COOKIE))
                    })
                    .map(|c| c.as_bytes().to_vec())
            })
        });
    match credential {
        Some(credential) => hash_of(b"", &credential),
        None => hash_of(b"peer:", address.to_string().as_bytes()),
    }
}

/// Middleware: refuse a request beyond its caller's limit with 429.
pub async fn per_caller(State(limit): State<PerCaller>, request: Request, next: Next) -> Response {
    let Some(slot) = limit.admit(&request) else {
        return ApiError {
            retry_after: Some(Duration::from_secs(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!(
                    "more than {} requests in flight for this caller (or {} for its address); \
                     wait for some to finish",
                    limit.limit,
                    limit.limit.saturating_mul(CALLERS_PER_ADDRESS)
                ),
            )
        }
        .into_response();
    };
    let response = next.run(request).await;
    drop(slot);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_share_the_capacity_and_give_it_back() {
        let memory = ReplyMemory::new(100);
        let mut a = memory.reserve(60).await.unwrap();
        assert_eq!(memory.available(), 40);
        assert!(memory.reserve(50).await.is_err(), "no room within the wait");
        a.resize(10).await.unwrap();
        assert_eq!(memory.available(), 90);
        a.resize(30).await.unwrap();
        assert_eq!(memory.available(), 70, "grown again");
        drop(a);
        let b = memory.reserve(1_000).await.unwrap();
        assert_eq!(memory.available(), 0, "at most the whole capacity");
        drop(b);
        assert_eq!(memory.available(), 100);
    }

    #[tokio::test]
    async fn a_reply_keeps_its_reservation_until_its_last_piece_is_taken() {
        use http_body_util::BodyExt;
        let memory = ReplyMemory::new(1 << 20);
        let reservation = memory.reserve(300_000).await.unwrap();
        let bytes: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut body = HeldBody {
            bytes: Some(Bytes::from(bytes.clone())),
            _reservation: reservation,
        };
        let mut sent = Vec::new();
        while let Some(frame) = body.frame().await {
            let chunk = frame.unwrap().into_data().unwrap();
            assert!(chunk.len() <= CHUNK, "handed out in pieces");
            sent.extend_from_slice(&chunk);
            assert_eq!(
                memory.available(),
                (1 << 20) - 300_000,
                "still held while sending"
            );
        }
        assert_eq!(sent, bytes);
        drop(body);
        assert_eq!(memory.available(), 1 << 20);
    }

    #[tokio::test]
    async fn a_caller_beyond_its_limit_gets_429_while_others_go_on() {
        use axum::Router;
        use axum::routing::get;
        use tower::ServiceExt;
        let gate = Arc::new(tokio::sync::Notify::new());
        let held = gate.clone();
        let app = Router::new()
            .route(
                "/",
                get(move || {
                    let gate = held.clone();
                    async move {
                        gate.notified().await;
                        "done"
                    }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(
                PerCaller::new(2, 0),
                per_caller,
            ));
        let request = |token: &str| {
            Request::builder()
                .uri("/")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .expect("request")
        };
        let a1 = tokio::spawn(app.clone().oneshot(request("a")));
        let a2 = tokio::spawn(app.clone().oneshot(request("a")));
        let b1 = tokio::spawn(app.clone().oneshot(request("b")));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let a3 = app.clone().oneshot(request("a")).await.expect("infallible");
        assert_eq!(a3.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(a3.headers().contains_key(header::RETRY_AFTER));
        gate.notify_waiters();
        for held in [a1, a2, b1] {
            let response = held.await.expect("task").expect("infallible");
            assert_eq!(response.status(), StatusCode::OK, "the others went on");
        }
        let again = app.clone().oneshot(request("a"));
        let again = tokio::spawn(again);
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.notify_waiters();
        let again = again.await.expect("task").expect("infallible");
        assert_eq!(again.status(), StatusCode::OK, "slots come back");

        // Made-up credentials from one address share its allowance (2 × 8):
        // a fresh token per request does not buy a fresh limit.
        let held: Vec<_> = (0..16)
            .map(|i| tokio::spawn(app.clone().oneshot(request(&format!("made-up-{i}")))))
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let one_more = app
            .clone()
            .oneshot(request("made-up-x"))
            .await
            .expect("infallible");
        assert_eq!(one_more.status(), StatusCode::TOO_MANY_REQUESTS);
        gate.notify_waiters();
        for held in held {
            let response = held.await.expect("task").expect("infallible");
            assert_eq!(response.status(), StatusCode::OK);
        }
    }

    #[test]
    fn replies_over_budget_are_refused_before_they_grow() {
        let escaped = "\u{1}".repeat(100);
        let fits = encode_within(&escaped, 602).unwrap();
        assert_eq!(fits.len(), 602, "each byte escapes to six");
        let over = encode_within(&escaped, 601).unwrap_err();
        assert_eq!((over.status.as_u16(), over.code), (413, "reply_too_large"));
    }
}
