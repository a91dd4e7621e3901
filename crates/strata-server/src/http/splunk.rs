//! Splunk HTTP Event Collector: `/services/collector[/event]` (JSON
//! events, concatenated or in arrays), `/services/collector/raw` (a line
//! per event), `/services/collector/health`, and indexer acknowledgement:
//! a request sent on a channel (`X-Splunk-Request-Channel`) is answered
//! with an `ackId`, which `/services/collector/ack` reports true once its
//! events are committed to the archive. Answers use HEC's `{"text","code"}`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::ingest::{Stored, ingest};
use super::{App, Refusal, Right, authorize};
use crate::accept::accept_objects;
use crate::translate::hec;

/// Acknowledgements kept per channel; past it the oldest are forgotten
/// (a client polling them then hears `false` and resends, as HEC allows).
const ACKS_PER_CHANNEL: usize = 10_000;

/// Channels tracked at once; past it, the least recently used one goes.
const CHANNELS: usize = 10_000;

/// The pending acknowledgements of every channel.
#[derive(Debug, Default)]
pub struct Acks {
    channels: Mutex<HashMap<String, Channel>>,
    /// Orders channels by last use.
    clock: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct Channel {
    next_id: u64,
    /// Ack id → the write-ahead segment holding its events.
    pending: BTreeMap<u64, u64>,
    used: u64,
}

impl Acks {
    /// A new ack id on `channel` for events in segment `seq`.
    fn issue(&self, channel: &str, seq: u64) -> u64 {
        let mut channels = self.channels.lock().expect("acks lock");
        if channels.len() >= CHANNELS && !channels.contains_key(channel) {
            let oldest = channels
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone());
            channels.remove(&oldest.expect("not empty"));
        }
        let state = channels.entry(channel.to_string()).or_default();
        state.used = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = state.next_id;
        state.next_id += 1;
        state.pending.insert(id, seq);
        while state.pending.len() > ACKS_PER_CHANNEL {
            state.pending.pop_first();
        }
        id
    }

    /// Whether each of `ids` on `channel` is committed, given the last
    /// committed segment; those reported true are forgotten.
    fn query(&self, channel: &str, ids: &[u64], committed: u64) -> (Map<String, Value>, bool) {
        let mut channels = self.channels.lock().expect("acks lock");
        let state = channels.entry(channel.to_string()).or_default();
        let mut answer = Map::new();
        let mut waiting = false;
        for id in ids {
            let done = state.pending.get(id).is_some_and(|&seq| seq <= committed);
            if done {
                state.pending.remove(id);
            }
            waiting |= state.pending.contains_key(id);
            answer.insert(id.to_string(), Value::from(done));
        }
        (answer, waiting)
    }
}

/// A HEC answer.
fn reply(status: StatusCode, code: u32, text: &str) -> Response {
    (status, axum::Json(json!({"text": text, "code": code}))).into_response()
}

/// A refused token in HEC's words.
fn refused(refusal: Refusal, headers: &HeaderMap) -> Response {
    match refusal {
        _ if headers.get(header::AUTHORIZATION).is_none() => {
            reply(StatusCode::UNAUTHORIZED, 2, "Token is required")
        }
        Refusal::Unauthenticated(why) => reply(
            StatusCode::UNAUTHORIZED,
            3,
            &format!("Invalid authorization: {why}"),
        ),
        Refusal::InvalidToken => reply(StatusCode::FORBIDDEN, 4, "Invalid token"),
        Refusal::Forbidden(why) => reply(StatusCode::FORBIDDEN, 4, &why),
    }
}

/// The channel a request names, if any.
fn channel(headers: &HeaderMap, params: &HashMap<String, String>) -> Option<String> {
    let header = headers
        .get("x-splunk-request-channel")
        .and_then(|v| v.to_str().ok());
    header
        .map(str::to_string)
        .or_else(|| params.get("channel").cloned())
}

/// `GET /services/collector/health`.
pub(super) async fn health() -> Response {
    reply(StatusCode::OK, 17, "HEC is healthy")
}

/// `POST /services/collector`, `/services/collector/event`: JSON events.
pub(super) async fn event(
    State(app): State<App>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    collect(app, params, headers, body, hec::split_events).await
}

/// `POST /services/collector/raw`: each line an event, the envelope's
/// fields from the query (`host`, `source`, `sourcetype`, `index`).
pub(super) async fn raw(
    State(app): State<App>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let envelope: Map<String, Value> = ["host", "source", "sourcetype", "index"]
        .iter()
        .filter_map(|k| Some((k.to_string(), Value::from(params.get(*k)?.clone()))))
        .collect();
    let split = move |body: &[u8]| {
        String::from_utf8_lossy(body)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let mut event = envelope.clone();
                event.insert("event".into(), Value::from(line));
                Ok(event)
            })
            .collect()
    };
    collect(app, params, headers, body, split).await
}

/// Takes the events `split` finds in the body; answers with an ack id when
/// the request names a channel.
async fn collect(
    app: App,
    params: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
    split: impl FnOnce(&[u8]) -> Vec<Result<Map<String, Value>, String>> + Send + 'static,
) -> Response {
    let parse = move |body: &Bytes, sender: &_, at| {
        let mut refusals = Vec::new();
        let events = split(body);
        if events.is_empty() {
            return Err(Box::new(reply(StatusCode::BAD_REQUEST, 5, "No data")));
        }
        let mut objects = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            match event.and_then(|event| hec::to_contract(event, at / 1000)) {
                Ok(event) => objects.push(Some(event)),
                Err(why) => {
                    refusals.push((i as u64 + 1, why));
                    objects.push(None);
                }
            }
        }
        Ok((refusals, accept_objects(objects, sender, at)))
    };
    let stored = match ingest(&app, &headers, body, "splunk_hec", refused, parse).await {
        Ok(stored) => stored,
        Err(response) => return response,
    };
    answer(&app, &headers, &params, stored)
}

fn answer(
    app: &App,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    stored: Stored<Vec<(u64, String)>>,
) -> Response {
    let mut rejected: Vec<(u64, String)> = stored.extra;
    rejected.extend(
        stored
            .accepted
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.clone())),
    );
    rejected.sort();
    let errors: Vec<Value> = rejected
        .iter()
        .map(|(n, why)| json!({"event": n - 1, "reason": why}))
        .collect();
    let Some(seq) = stored.segment else {
        let first = rejected.first().map_or(0, |(n, _)| n - 1);
        let body = json!({
            "text": "Invalid data format", "code": 6,
            "invalid-event-number": first, "rejected": errors
        });
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    };
    let mut body = json!({"text": "Success", "code": 0});
    if let Some(channel) = channel(headers, params) {
        body["ackId"] = Value::from(app.acks.issue(&channel, seq));
    }
    if !errors.is_empty() {
        body["rejected"] = Value::from(errors);
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `POST /services/collector/ack` `{"acks":[ids]}`: which are committed.
pub(super) async fn ack(
    State(app): State<App>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refusal) = authorize(&app.shared, &headers, Right::Ingest) {
        return refused(refusal, &headers);
    }
    let Some(channel) = channel(&headers, &params) else {
        return reply(StatusCode::BAD_REQUEST, 10, "Data channel is missing");
    };
    let ids: Option<Vec<u64>> = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| serde_json::from_value(v.get("acks")?.clone()).ok());
    let Some(ids) = ids else {
        return reply(
            StatusCode::BAD_REQUEST,
            6,
            "Invalid data format: expected {\"acks\":[ids]}",
        );
    };
    let committed = *app.shared.committed.borrow();
    let (acks, waiting) = app.acks.query(&channel, &ids, committed);
    if waiting {
        // Acknowledgement is asked for: commit now rather than at the age limit.
        app.shared.write_out_now.notify_one();
    }
    (StatusCode::OK, axum::Json(json!({ "acks": acks }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_turn_true_once_their_segment_is_committed_then_are_forgotten() {
        let acks = Acks::default();
        assert_eq!(acks.issue("c1", 5), 0);
        assert_eq!(acks.issue("c1", 6), 1);
        assert_eq!(acks.issue("c2", 6), 0);
        let (answer, waiting) = acks.query("c1", &[0, 1, 7], 5);
        assert_eq!(
            Value::Object(answer),
            json!({"0": true, "1": false, "7": false})
        );
        assert!(waiting);
        let (answer, waiting) = acks.query("c1", &[0, 1], 6);
        assert_eq!(Value::Object(answer), json!({"0": false, "1": true}));
        assert!(!waiting);
    }
}
