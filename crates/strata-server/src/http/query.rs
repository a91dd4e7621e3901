//! `POST /v1/query` (admin only): SQL over the archive and the events the
//! server holds in memory, so that an acknowledged event is queryable at
//! once. `{"sql": "…"}` in, a JSON array of row objects out. Only queries
//! run: DDL, DML and statements (`SET`, `COPY`, `CREATE EXTERNAL TABLE`)
//! are refused, since in stock DataFusion they read and write server files.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use strata_query::QuerySession;
use strata_store::Snapshot;

use super::{App, Right, authorize, body, json_error};

/// The largest query request.
const REQUEST_BYTES: usize = 1 << 20;
/// The longest a query runs.
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Runs of a query whose files were compacted away under it.
const ATTEMPTS: usize = 3;
/// The largest answer; beyond it the query is refused (add a LIMIT).
const ANSWER_BYTES: usize = 256 << 20;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    sql: String,
}

pub(super) async fn query(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    if let Err(refusal) = authorize(&app.shared, &headers, Right::Admin) {
        return refusal.into_response();
    }
    let request = match body::read(body, REQUEST_BYTES).await {
        Ok(bytes) => serde_json::from_slice::<QueryRequest>(&bytes),
        Err(e) => return e.into_response(),
    };
    let sql = match request {
        Ok(request) => request.sql,
        Err(e) => {
            let message = format!("the body must be {{\"sql\": \"…\"}}: {e}");
            return json_error(StatusCode::BAD_REQUEST, &message);
        }
    };
    match tokio::time::timeout(QUERY_TIMEOUT, run_on_newest(&app, &sql)).await {
        Ok(Ok(json)) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Ok(Err(response)) => response,
        Err(_) => json_error(
            StatusCode::GATEWAY_TIMEOUT,
            &format!("the query ran past {} s", QUERY_TIMEOUT.as_secs()),
        ),
    }
}

/// Runs `sql` (see `run`), again on the newest snapshot when it failed
/// after files of its snapshot were removed: compaction deletes a merged
/// file's sources right after its commit, under queries already planned.
async fn run_on_newest(app: &App, sql: &str) -> Result<Vec<u8>, Response> {
    let internal =
        |e: &dyn std::fmt::Display| json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    let mut attempts = 1;
    loop {
        let (error, used) = match run(app, sql).await {
            Ok(json) => return Ok(json),
            Err(Failure::Answer(response)) => return Err(response),
            Err(Failure::Query(error, used)) => (error, used),
        };
        app.shared.refresh_now().await.map_err(|e| internal(&e))?;
        let newest = app.shared.snapshot();
        let moved = used
            .files
            .keys()
            .any(|path| !newest.files.contains_key(path));
        if !moved || attempts == ATTEMPTS {
            return Err(json_error(StatusCode::BAD_REQUEST, &error.to_string()));
        }
        attempts += 1;
    }
}

/// Why a query gave no answer.
enum Failure {
    /// Planning or running failed on this snapshot.
    Query(DataFusionError, Arc<Snapshot>),
    /// Any other failure, answered as is.
    Answer(Response),
}

impl From<Response> for Failure {
    fn from(response: Response) -> Self {
        Failure::Answer(response)
    }
}

/// Runs `sql` over a consistent view of the archive and the buffers; the
/// rows as a JSON array.
async fn run(app: &App, sql: &str) -> Result<Vec<u8>, Failure> {
    let shared = &app.shared;
    let (snapshot, buffered) = shared.query_view();
    let keys = shared.options.keys.clone();
    let session = QuerySession::at(&shared.archive, snapshot, keys, buffered)
        .await
        .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let used = session.snapshot.clone();
    let refused = |e: DataFusionError| Failure::Query(e, used.clone());
    let frame = session
        .ctx
        .sql_with_options(sql, read_only)
        .await
        .map_err(refused)?;
    let batches = frame.collect().await.map_err(refused)?;
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    for batch in &batches {
        writer
            .write(batch)
            .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
        if writer.get_ref().len() > ANSWER_BYTES {
            let message = format!(
                "the answer is over {} MiB: narrow the query or add a LIMIT",
                ANSWER_BYTES >> 20
            );
            return Err(json_error(StatusCode::PAYLOAD_TOO_LARGE, &message).into());
        }
    }
    writer
        .finish()
        .map_err(|e| json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    Ok(writer.into_inner())
}
