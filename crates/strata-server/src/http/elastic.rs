//! The Elasticsearch API that shippers use: the handshake (`GET /`,
//! `HEAD /`, `/_cluster/health`, empty answers for the template, lifecycle
//! and pipeline calls Filebeat and Logstash make) and `_bulk`, whose
//! documents are Elastic Common Schema mapped onto the contract
//! (`translate::ecs`). Every answer carries `X-Elastic-Product:
//! Elasticsearch`, which Elastic's own clients require.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::ingest::ingest;
use super::{App, Right, authorize, json_error};
use crate::accept::{Accepted, accept_lines};
use crate::translate::ecs;

/// The Elasticsearch version announced: clients pick their API by its major.
const VERSION: &str = "8.17.0";

/// The index of a document whose action and URL name none.
const DEFAULT_INDEX: &str = "strata";

/// How long `?refresh=wait_for` waits for the commit.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(60);

/// Marks a response as Elasticsearch's, in the content type the client asked for.
fn elastic(headers: &HeaderMap, status: StatusCode, body: Value) -> Response {
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
    let mut response = (status, body.to_string()).into_response();
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

/// `GET /` and `HEAD /`: who this is, for the version check.
pub(super) async fn info(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorize(&app.shared, &headers, Right::Ingest) {
        return refusal.into_response();
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
    elastic(&headers, StatusCode::OK, body)
}

/// `GET /_cluster/health`: always green (a health check, not a cluster).
pub(super) async fn cluster_health(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorize(&app.shared, &headers, Right::Ingest) {
        return refusal.into_response();
    }
    let body = json!({
        "cluster_name": "strata", "status": "green", "timed_out": false,
        "number_of_nodes": 1, "number_of_data_nodes": 1, "active_shards": 1,
        "unassigned_shards": 0, "active_shards_percent_as_number": 100.0
    });
    elastic(&headers, StatusCode::OK, body)
}

/// Template, lifecycle, pipeline, license and node calls: answered `{}`,
/// so that shippers which install them before sending go on sending.
pub(super) async fn empty(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorize(&app.shared, &headers, Right::Ingest) {
        return refusal.into_response();
    }
    elastic(&headers, StatusCode::OK, json!({}))
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
        move |body: &[u8], sender: &_, at| -> Result<(Vec<Item>, Accepted), Box<Response>> {
            let (items, lines) =
                parse_bulk(body, path_index.as_deref().unwrap_or(DEFAULT_INDEX))
                    .map_err(|why| Box::new(json_error(StatusCode::BAD_REQUEST, &why)))?;
            Ok((items, accept_lines(&lines, sender, at)))
        };
    let stored = match ingest(&app, &headers, body, "elasticsearch", parse).await {
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
    let items: Vec<Value> = stored
        .extra
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let refusal = match (&item.refused, rejected.get(&(i as u64 + 1))) {
                (Some((status, kind, reason)), _) => Some((*status, *kind, reason.clone())),
                (None, Some((reason, true))) => Some((
                    StatusCode::FORBIDDEN,
                    "security_exception",
                    reason.to_string(),
                )),
                (None, Some((reason, false))) => Some((
                    StatusCode::BAD_REQUEST,
                    "document_parsing_exception",
                    reason.to_string(),
                )),
                (None, None) => None,
            };
            errors |= refusal.is_some();
            let id = item
                .id
                .clone()
                .unwrap_or_else(|| format!("{}-{i}", stored.segment.unwrap_or_default()));
            let mut result = Map::new();
            result.insert("_index".into(), item.index.clone().into());
            result.insert("_id".into(), id.into());
            match refusal {
                Some((status, kind, reason)) => {
                    result.insert("status".into(), status.as_u16().into());
                    result.insert("error".into(), json!({"type": kind, "reason": reason}));
                }
                None => {
                    result.insert("status".into(), 201.into());
                    result.insert("result".into(), "created".into());
                    result.insert("_version".into(), 1.into());
                    result.insert("_seq_no".into(), 0.into());
                    result.insert("_primary_term".into(), 1.into());
                    let shards = json!({"total": 1, "successful": 1, "failed": 0});
                    result.insert("_shards".into(), shards);
                }
            }
            json!({ item.action.clone(): result })
        })
        .collect();
    let took = started.elapsed().as_millis() as u64;
    let body = json!({"took": took, "errors": errors, "items": items});
    elastic(&headers, StatusCode::OK, body)
}

/// Splits a bulk body into its actions and, one line per action (blank
/// for a refused one), the documents as contract lines. A malformed action
/// line refuses the whole request, as Elasticsearch does: what follows it
/// can no longer be told apart.
fn parse_bulk(body: &[u8], default_index: &str) -> Result<(Vec<Item>, Vec<u8>), String> {
    let mut items = Vec::new();
    let mut out = Vec::with_capacity(body.len());
    let mut lines = body
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_ascii()))
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
        match name.as_str() {
            "index" | "create" => {
                let Some((_, doc)) = lines.next() else {
                    return Err(malformed("the action has no document line after it"));
                };
                match serde_json::from_slice::<Map<String, Value>>(doc) {
                    Ok(doc) => {
                        let event = ecs::to_contract(doc, Some(&item.index), item.id.as_deref());
                        serde_json::to_writer(&mut out, &event).expect("JSON values serialize");
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
        out.push(b'\n');
        items.push(item);
    }
    Ok((items, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_action_gets_one_line_and_refused_ones_a_blank() {
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
        let (items, lines) = parse_bulk(body, "fallback").unwrap();
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
        let lines: Vec<&str> = std::str::from_utf8(&lines).unwrap().lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(
            lines[0].contains("\"family\":\"access\"") && lines[0].contains("\"event_id\":\"a\"")
        );
        assert_eq!(&lines[1..4], ["", "", ""]);
        assert!(lines[4].contains("\"message\":\"hi\""));
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
