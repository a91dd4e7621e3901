//! `POST /v1/events`: event-contract NDJSON, acknowledged once durable.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use strata_access::Authenticated;
use tokio::sync::oneshot;

use super::body::{self, BodyError};
use super::{App, Right, authorize, busy, json_error};
use crate::accept::{Accepted, Rejection, accept_lines};
use crate::group::Submission;
use crate::server::Shared;
use strata_wal::Record;

/// Rejections listed in a response; the count covers them all.
const LISTED_REJECTIONS: usize = 1000;

/// The answer to a batch of events.
#[derive(Debug, Serialize)]
struct Outcome<'a> {
    accepted: u64,
    rejected: usize,
    /// The first [`LISTED_REJECTIONS`] rejected lines.
    errors: &'a [Rejection],
    /// Whether `errors` lists fewer than `rejected`.
    errors_truncated: bool,
}

pub(super) async fn post_events(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = Instant::now();
    let response = ingest(&app, &headers, body, "ndjson").await;
    match response {
        Ok(accepted) => {
            if accepted.events() > 0 {
                app.shared.metrics.acknowledged(received.elapsed());
            }
            let status = if accepted.events() == 0 && !accepted.rejected.is_empty() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            let listed = accepted.rejected.len().min(LISTED_REJECTIONS);
            let outcome = Outcome {
                accepted: accepted.events(),
                rejected: accepted.rejected.len(),
                errors: &accepted.rejected[..listed],
                errors_truncated: listed < accepted.rejected.len(),
            };
            (status, axum::Json(outcome)).into_response()
        }
        Err(response) => {
            app.shared.metrics.refused_request();
            response
        }
    }
}

/// Authenticates, reads and parses the NDJSON body of `protocol`, and
/// returns once the accepted events are durable; an error is the
/// response refusing the request whole.
async fn ingest(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    protocol: &'static str,
) -> Result<Accepted, Response> {
    let shared = &app.shared;
    let sender = authorize(shared, headers, Right::Ingest).map_err(IntoResponse::into_response)?;
    if shared.under_pressure() {
        return Err(busy(
            "the server is writing out buffered events; retry shortly",
        ));
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
    let accepted = tokio::task::spawn_blocking(move || {
        let lines = body::decode(raw, encoding, limit)?;
        Ok::<_, BodyError>(accept_lines(&lines, &parse_sender, ingested_at))
    })
    .await
    .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?
    .map_err(IntoResponse::into_response)?;
    let rejected: Vec<Option<String>> =
        accepted.rejected.iter().map(|r| r.tenant.clone()).collect();
    let accepted = durable(app, &sender, ingested_at, accepted).await?;
    shared
        .metrics
        .events(protocol, &accepted.per_tenant, &rejected);
    Ok(accepted)
}

/// Waits until `accepted`'s events are in a stored write-ahead segment.
async fn durable(
    app: &App,
    sender: &Authenticated,
    ingested_at: i64,
    mut accepted: Accepted,
) -> Result<Accepted, Response> {
    if accepted.events() == 0 {
        return Ok(accepted);
    }
    let (done, stored) = oneshot::channel();
    let submission = Submission {
        record: Record {
            ingested_at,
            principal: sender.name.clone(),
            lines: std::mem::take(&mut accepted.lines),
        },
        partitions: std::mem::take(&mut accepted.partitions),
        done,
    };
    let unavailable = |why: &str| busy(&format!("the events were not stored: {why}; retry"));
    app.submit
        .send(submission)
        .await
        .map_err(|_| unavailable("the server is stopping"))?;
    match stored.await {
        Ok(Ok(_seq)) => Ok(accepted),
        Ok(Err(why)) => Err(unavailable(&why)),
        Err(_) => Err(unavailable("the server is stopping")),
    }
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
