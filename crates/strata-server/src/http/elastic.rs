//! The Elasticsearch API that shippers use: the handshake (`GET /`,
//! `HEAD /`, `/_cluster/health`, empty answers for the template, lifecycle
//! and pipeline calls Filebeat and Logstash make) and `_bulk`, whose
//! documents are Elastic Common Schema mapped onto the contract
//! (`translate::ecs`). Every answer carries `X-Elastic-Product:
//! Elasticsearch`, which Elastic's own clients require.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value, json};
use strata_ingest::block::lines;

use super::ingest::ingest;
use super::{App, Refusal, Right, authorize, json_error};
use crate::accept::{Accepted, accept_objects};
use crate::translate::contract::ContractEvent;
use crate::translate::ecs;
use crate::translate::flat::FlatDoc;

/// The Elasticsearch version announced: clients pick their API by its major.
const VERSION: &str = "8.17.0";

/// The index of a document whose action and URL name none.
const DEFAULT_INDEX: &str = "strata";

/// How long `?refresh=wait_for` waits for the commit.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(60);

/// Marks a response as Elasticsearch's, in the content type the client asked for.
fn elastic(headers: &HeaderMap, status: StatusCode, body: &impl Serialize) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let content_type = match accept.find("compatible-with=") {
        Some(at) if accept.contains("vnd.elasticsearch") => {
            let major = &accept[at + 16..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>();
            format!("application/vnd.elasticsearch+json;compatible-with={major}")
        }
        _ => "application/json".to_string(),
    };
    let body = serde_json::to_vec(body).expect("answers serialize");
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).expect("ascii"),
    );
    headers.insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

/// A refused token in Elasticsearch's error shape (a `security_exception`,
/// what its clients parse), with the status and headers of the refusal.
fn refused(refusal: Refusal, headers: &HeaderMap) -> Response {
    let reason = refusal.message();
    let plain = refusal.into_response();
    let status = plain.status();
    let exception = json!({"type": "security_exception", "reason": reason});
    let body = json!({
        "error": {"root_cause": [exception], "type": "security_exception", "reason": reason},
        "status": status.as_u16()
    });
    let mut response = elastic(headers, status, &body);
    if let Some(challenge) = plain.headers().get(header::WWW_AUTHENTICATE) {
        (response.headers_mut()).insert(header::WWW_AUTHENTICATE, challenge.clone());
    }
    response
}

/// `GET /` and `HEAD /`: who this is, for the version check.
pub(super) async fn info(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorize(&app.shared, &headers, Right::Ingest) {
        return refused(refusal, &headers);
    }
    let body = json!({
        "name": app.shared.options.node_id,
        "cluster_name": "strata",
        "cluster_uuid": "strata",
        "version": {
            "number": VERSION,
            "build_flavor": "default",
            "build_type": "strata",
            "lucene_version": "9.12.0",
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0"
        },
        "tagline": "You Know, for Search"
    });
    elastic(&headers, StatusCode::OK, &body)
}

/// `GET /_cluster/health`: always green (a health check, not a cluster).
pub(super) async fn cluster_health(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorize(&app.shared, &headers, Right::Ingest) {
        return refused(refusal, &headers);
    }
    let body = json!({
        "cluster_name": "strata", "status": "green", "timed_out": false,
        "number_of_nodes": 1, "number_of_data_nodes": 1, "active_shards": 1,
        "unassigned_shards": 0, "active_shards_percent_as_number": 100.0
    });
    elastic(&headers, StatusCode::OK, &body)
}

/// Template, lifecycle, pipeline, license and node calls: answered `{}`,
/// so that shippers which install them before sending go on sending.
pub(super) async fn empty(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorize(&app.shared, &headers, Right::Ingest) {
        return refused(refusal, &headers);
    }
    elastic(&headers, StatusCode::OK, &json!({}))
}

/// `POST /_bulk` (and `PUT`).
pub(super) async fn bulk(
    State(app): State<App>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    bulk_into(app, None, params, headers, body).await
}

/// `POST /{index}/_bulk` (and `PUT`).
pub(super) async fn bulk_index(
    State(app): State<App>,
    Path(index): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    bulk_into(app, Some(index), params, headers, body).await
}

/// One action of a bulk request, in request order.
#[derive(Debug)]
struct Item {
    /// `index` or `create` (echoed as the item's key), or the refused action.
    action: String,
    index: String,
    id: Option<String>,
    /// Why the action was refused before parsing its document.
    refused: Option<(StatusCode, &'static str, String)>,
}

async fn bulk_into(
    app: App,
    path_index: Option<String>,
    params: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let parse =
        move |body: &Bytes, sender: &_, at| -> Result<(Vec<Item>, Accepted), Box<Response>> {
            let (items, events) = parse_bulk(body, path_index.as_deref().unwrap_or(DEFAULT_INDEX))
                .map_err(|why| Box::new(json_error(StatusCode::BAD_REQUEST, &why)))?;
            Ok((items, accept_objects(events, sender, at)))
        };
    let stored = match ingest(&app, &headers, body, "elasticsearch", refused, parse).await {
        Ok(stored) => stored,
        Err(response) => return response,
    };
    let refresh = params.get("refresh").map(String::as_str);
    if let (Some("" | "true" | "wait_for"), Some(seq)) = (refresh, stored.segment)
        && !app.shared.committed_through(seq, REFRESH_TIMEOUT).await
    {
        return json_error(
            StatusCode::GATEWAY_TIMEOUT,
            "the events are durable, but were not committed to the archive within 60 s (refresh=wait_for)",
        );
    }
    let rejected: HashMap<u64, (&str, bool)> = stored
        .accepted
        .rejected
        .iter()
        .map(|r| (r.line, (r.reason.as_str(), r.tenant.is_some())))
        .collect();
    let mut errors = false;
    let items: Vec<ItemAnswer> = stored
        .extra
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let error = match (&item.refused, rejected.get(&(i as u64 + 1))) {
                (Some((status, kind, reason)), _) => Some((*status, *kind, reason.as_str())),
                (None, Some((reason, true))) => {
                    Some((StatusCode::FORBIDDEN, "security_exception", *reason))
                }
                (None, Some((reason, false))) => Some((
                    StatusCode::BAD_REQUEST,
                    "document_parsing_exception",
                    *reason,
                )),
                (None, None) => None,
            };
            errors |= error.is_some();
            let id = match &item.id {
                Some(id) => Cow::Borrowed(id.as_str()),
                None => Cow::Owned(format!("{}-{i}", stored.segment.unwrap_or_default())),
            };
            let answer = match error {
                Some((status, kind, reason)) => ItemResult {
                    error: Some(ItemError { kind, reason }),
                    ..ItemResult::new(&item.index, id, status.as_u16())
                },
                None => ItemResult::created(&item.index, id),
            };
            ItemAnswer {
                action: &item.action,
                answer,
            }
        })
        .collect();
    let took = started.elapsed().as_millis() as u64;
    let body = BulkAnswer {
        took,
        errors,
        items,
    };
    elastic(&headers, StatusCode::OK, &body)
}

/// The answer to a bulk request. Typed rather than built as a JSON tree:
/// with thousands of items per request, the tree took a tenth of the CPU.
#[derive(Serialize)]
struct BulkAnswer<'a> {
    took: u64,
    errors: bool,
    items: Vec<ItemAnswer<'a>>,
}

/// One item of the answer: `{"<action>": {...}}`.
struct ItemAnswer<'a> {
    action: &'a str,
    answer: ItemResult<'a>,
}

impl Serialize for ItemAnswer<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.action, &self.answer)?;
        map.end()
    }
}

/// What happened to one action: created, or refused with an error (and
/// then without the fields of a created document).
#[derive(Serialize)]
struct ItemResult<'a> {
    #[serde(rename = "_index")]
    index: &'a str,
    #[serde(rename = "_id")]
    id: Cow<'a, str>,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ItemError<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'static str>,
    #[serde(rename = "_version", skip_serializing_if = "Option::is_none")]
    version: Option<u8>,
    #[serde(rename = "_seq_no", skip_serializing_if = "Option::is_none")]
    seq_no: Option<u8>,
    #[serde(rename = "_primary_term", skip_serializing_if = "Option::is_none")]
    primary_term: Option<u8>,
    #[serde(rename = "_shards", skip_serializing_if = "Option::is_none")]
    shards: Option<Shards>,
}

impl<'a> ItemResult<'a> {
    /// The fields every item has.
    fn new(index: &'a str, id: Cow<'a, str>, status: u16) -> Self {
        ItemResult {
            index,
            id,
            status,
            error: None,
            result: None,
            version: None,
            seq_no: None,
            primary_term: None,
            shards: None,
        }
    }

    fn created(index: &'a str, id: Cow<'a, str>) -> Self {
        ItemResult {
            result: Some("created"),
            version: Some(1),
            seq_no: Some(0),
            primary_term: Some(1),
            shards: Some(Shards {
                total: 1,
                successful: 1,
                failed: 0,
            }),
            ..ItemResult::new(index, id, 201)
        }
    }
}

#[derive(Serialize)]
struct ItemError<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    reason: &'a str,
}

#[derive(Serialize)]
struct Shards {
    total: u8,
    successful: u8,
    failed: u8,
}

/// A bulk request's documents as contract objects, one per action (`None`
/// for a refused one).
type Documents = Vec<Option<ContractEvent>>;

/// Splits a bulk body into its actions and their [`Documents`]. A
/// malformed action line refuses the whole request, as Elasticsearch does:
/// what follows it can no longer be told apart.
fn parse_bulk(body: &[u8], default_index: &str) -> Result<(Vec<Item>, Documents), String> {
    let mut items = Vec::new();
    let mut events = Vec::new();
    let mut lines = lines(body)
        .enumerate()
        .map(|(i, (_, l))| (i + 1, l.trim_ascii()))
        .filter(|(_, l)| !l.is_empty());
    while let Some((number, line)) = lines.next() {
        let malformed = |why: &str| format!("malformed action/metadata line [{number}]: {why}");
        let action: Map<String, Value> =
            serde_json::from_slice(line).map_err(|e| malformed(&e.to_string()))?;
        let (name, meta) = match action.iter().next() {
            Some((name, Value::Object(meta))) if action.len() == 1 => (name.clone(), meta),
            _ => {
                return Err(malformed(
                    "expected one action (index, create, update or delete) with its metadata",
                ));
            }
        };
        let text = |key: &str| meta.get(key).and_then(Value::as_str).map(str::to_string);
        let mut item = Item {
            action: name.clone(),
            index: text("_index").unwrap_or_else(|| default_index.to_string()),
            id: text("_id"),
            refused: None,
        };
        let mut event = None;
        match name.as_str() {
            "index" | "create" => {
                let Some((_, doc)) = lines.next() else {
                    return Err(malformed("the action has no document line after it"));
                };
                match serde_json::from_slice::<FlatDoc>(doc) {
                    Ok(FlatDoc(doc)) => {
                        let (index, id) = (Some(item.index.as_str()), item.id.as_deref());
                        event = Some(ecs::flat_to_contract(doc, index, id));
                    }
                    Err(e) => {
                        let reason = format!("the document is not a JSON object: {e}");
                        item.refused = Some((
                            StatusCode::BAD_REQUEST,
                            "document_parsing_exception",
                            reason,
                        ));
                    }
                }
            }
            "update" | "delete" => {
                if name == "update" {
                    lines.next(); // its partial document
                }
                let reason =
                    format!("a strata archive is append-only: `{name}` actions are refused");
                item.refused = Some((
                    StatusCode::BAD_REQUEST,
                    "illegal_argument_exception",
                    reason,
                ));
            }
            other => return Err(malformed(&format!("unknown action `{other}`"))),
        }
        events.push(event);
        items.push(item);
    }
    Ok((items, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_gets_one_document_and_refused_ones_none() {
        let body = br#"{"index":{"_index":"access-logs","_id":"a"}}
{"@timestamp":"2026-03-01T10:00:00Z","event":{"action":"login"}}
{"delete":{"_id":"b"}}
{"create":{}}
not json
{"update":{"_id":"c"}}
{"doc":{"x":1}}
{"create":{"_index":"x"}}
{"message":"hi"}
"#;
        let (items, events) = parse_bulk(body, "fallback").unwrap();
        let actions: Vec<(&str, &str, bool)> = items
            .iter()
            .map(|i| (i.action.as_str(), i.index.as_str(), i.refused.is_some()))
            .collect();
        assert_eq!(
            actions,
            [
                ("index", "access-logs", false),
                ("delete", "fallback", true),
                ("create", "fallback", true),
                ("update", "fallback", true),
                ("create", "x", false),
            ]
        );
        assert_eq!(events.len(), 5);
        let first = events[0].as_ref().unwrap().to_json();
        assert_eq!(
            (&first["family"], &first["event_id"]),
            (&json!("access"), &json!("a"))
        );
        assert!(events[1..4].iter().all(Option::is_none));
        assert_eq!(events[4].as_ref().unwrap().to_json()["message"], "hi");
    }

    #[test]
    fn items_answer_as_elasticsearch_does() {
        let created = ItemAnswer {
            action: "create",
            answer: ItemResult::created("logs", Cow::Borrowed("a")),
        };
        let refused = ItemAnswer {
            action: "delete",
            answer: ItemResult {
                error: Some(ItemError {
                    kind: "illegal_argument_exception",
                    reason: "append-only",
                }),
                ..ItemResult::new("logs", Cow::Borrowed("b"), 400)
            },
        };
        let answer = serde_json::to_value(BulkAnswer {
            took: 3,
            errors: true,
            items: vec![created, refused],
        })
        .unwrap();
        assert_eq!(
            answer,
            json!({"took": 3, "errors": true, "items": [
                {"create": {"_index": "logs", "_id": "a", "status": 201, "result": "created",
                    "_version": 1, "_seq_no": 0, "_primary_term": 1,
                    "_shards": {"total": 1, "successful": 1, "failed": 0}}},
                {"delete": {"_index": "logs", "_id": "b", "status": 400,
                    "error": {"type": "illegal_argument_exception", "reason": "append-only"}}},
            ]})
        );
    }

    #[test]
    fn a_malformed_action_refuses_the_request_with_its_line() {
        let err = parse_bulk(b"{\"index\":{}}\n{}\n{\"index\":1}\n{}\n", "i").unwrap_err();
        assert!(err.contains("[3]"), "{err}");
        let err = parse_bulk(b"{\"index\":{}}\n", "i").unwrap_err();
        assert!(err.contains("no document"), "{err}");
        assert!(
            parse_bulk(b"{\"upsert\":{}}\n{}\n", "i")
                .unwrap_err()
                .contains("unknown action")
        );
    }
}
