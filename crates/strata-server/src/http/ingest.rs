//! What every ingest protocol does with a request: authenticate, refuse
//! under memory pressure, read and decompress the body within the limit,
//! let the protocol turn it into accepted events (on a blocking thread),
//! and wait until those are durable. Each protocol only translates.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use strata_access::Authenticated;

use super::body;
use super::{App, Refusal, Right, authorize, busy, json_error};
use crate::accept::Accepted;
use crate::group;
use crate::server::Shared;

/// A request's events, once durable.
pub struct Stored<T> {
    /// What the protocol kept of the request besides the events.
    pub extra: T,
    /// The events accepted and rejected.
    pub accepted: Accepted,
    /// The write-ahead segment holding them (none if nothing was accepted).
    pub segment: Option<u64>,
}

/// What a protocol does with a request's decompressed body, on a blocking
/// thread: given the sender and the `ingested_at` to stamp, the events it
/// accepted and rejected, and whatever else it needs to answer; or the
/// response refusing the request whole (boxed: it crosses threads).
pub trait Parse<T>:
    FnOnce(&Bytes, &Authenticated, i64) -> Result<(T, Accepted), Box<Response>> + Send + 'static
{
}

impl<T, F> Parse<T> for F where
    F: FnOnce(&Bytes, &Authenticated, i64) -> Result<(T, Accepted), Box<Response>> + Send + 'static
{
}

/// How a protocol answers a token it refuses (in the shape its clients
/// parse).
pub type Refuse = fn(Refusal, &HeaderMap) -> Response;

/// A refused token as Strata's own JSON error.
pub fn plain_refusal(refusal: Refusal, _: &HeaderMap) -> Response {
    refusal.into_response()
}

/// Runs `parse` on the decompressed body of a request of `protocol` from
/// a sender allowed to ingest (others answered by `refuse`), and waits
/// until the accepted events are durable. An error is the response
/// refusing the request whole.
pub async fn ingest<T, F>(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    protocol: &'static str,
    refuse: Refuse,
    parse: F,
) -> Result<Stored<T>, Response>
where
    T: Send + 'static,
    F: Parse<T>,
{
    let received = Instant::now();
    let result = receive(app, headers, body, protocol, refuse, parse).await;
    let metrics = &app.shared.metrics;
    match &result {
        Ok(stored) if stored.segment.is_some() => metrics.acknowledged(received.elapsed()),
        Ok(_) => {}
        Err(_) => metrics.refused_request(),
    }
    result
}

async fn receive<T, F>(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    protocol: &'static str,
    refuse: Refuse,
    parse: F,
) -> Result<Stored<T>, Response>
where
    T: Send + 'static,
    F: Parse<T>,
{
    let shared = &app.shared;
    let sender = authorize(shared, headers, Right::Ingest).map_err(|r| refuse(r, headers))?;
    if shared.under_pressure() {
        let mut response = busy("the server is writing out buffered events; retry shortly");
        // What an Elasticsearch node answers when its queues are full, and
        // what Beats and Logstash back off on.
        if protocol == "elasticsearch" {
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        }
        return Err(response);
    }
    let encoding = body::encoding(headers).map_err(IntoResponse::into_response)?;
    let limit = shared.options.max_body_bytes;
    let raw = body::read(body, limit)
        .await
        .map_err(IntoResponse::into_response)?;
    shared.metrics.bytes(protocol, raw.len());
    let _held = InFlight::hold(shared, raw.len());
    let ingested_at = chrono::Utc::now().timestamp_micros();
    let parse_sender = sender.clone();
    let (extra, mut accepted) = tokio::task::spawn_blocking(move || {
        let decoded: Bytes =
            body::decode(raw, encoding, limit).map_err(|e| Box::new(e.into_response()))?;
        parse(&decoded, &parse_sender, ingested_at)
    })
    .await
    .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?
    .map_err(|refused| *refused)?;
    let rejected: Vec<Option<String>> =
        accepted.rejected.iter().map(|r| r.tenant.clone()).collect();
    let segment = group::submit(&app.submit, &sender.name, ingested_at, &mut accepted, false)
        .await
        .map_err(|why| busy(&format!("the events were not stored: {why}; retry")))?;
    shared
        .metrics
        .events(protocol, &accepted.per_tenant, &rejected);
    Ok(Stored {
        extra,
        accepted,
        segment,
    })
}

/// Counts a request's bytes as memory in use while it is handled.
struct InFlight<'a> {
    shared: &'a Shared,
    bytes: usize,
}

impl<'a> InFlight<'a> {
    fn hold(shared: &'a Shared, bytes: usize) -> Self {
        shared.in_flight.fetch_add(bytes, Ordering::Relaxed);
        InFlight { shared, bytes }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.shared
            .in_flight
            .fetch_sub(self.bytes, Ordering::Relaxed);
    }
}
