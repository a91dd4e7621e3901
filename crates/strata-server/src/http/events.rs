//! `POST /v1/events`: event-contract NDJSON, acknowledged once durable.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use super::App;
use super::ingest::{ingest, plain_refusal};
use crate::accept::{Rejection, accept_lines};

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
    let parse = |lines: &Bytes, sender: &_, at| {
        Ok::<_, Box<Response>>(((), accept_lines(lines, sender, at)))
    };
    let stored = match ingest(&app, &headers, body, "ndjson", plain_refusal, parse).await {
        Ok(stored) => stored,
        Err(response) => return response,
    };
    let accepted = &stored.accepted;
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
