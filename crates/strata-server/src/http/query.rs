//! `POST /v1/query`: SQL over the archive and the events the server holds
//! in memory, so that an acknowledged event is queryable at once. Admins
//! and auditors see every tenant, a client only its own. The answer is
//! streamed in the format of `Accept`: a JSON array of row objects (the
//! default), NDJSON, CSV or an Arrow IPC stream, for `{"sql": "…"}`. Only
//! queries run: DDL, DML and statements (`SET`, `COPY`, `CREATE EXTERNAL
//! TABLE`) are refused, since in stock DataFusion they read and write
//! server files.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::SQLOptions;
use futures::StreamExt;
use strata_access::Role;
use strata_query::{QuerySession, Scope, Viewer};
use strata_store::Snapshot;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::answer::{Encoder, Format};
use super::{App, Right, authorize, body, busy, json_error};

/// The largest query request.
const REQUEST_BYTES: usize = 1 << 20;
/// The longest a query runs.
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Runs of a query whose files were compacted away under it.
const ATTEMPTS: usize = 3;
/// The largest answer; beyond it the answer is cut short (add a LIMIT).
const ANSWER_BYTES: usize = 256 << 20;
/// Encoded batches waiting for a slow client before the query pauses.
const STREAMED_CHUNKS: usize = 4;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    sql: String,
    /// Values of `$1`, `$2`, …: bound into the plan, never spliced into
    /// the text.
    #[serde(default)]
    params: Vec<serde_json::Value>,
}

/// A statement and the values of its parameters.
struct Statement {
    sql: String,
    params: Vec<ScalarValue>,
}

impl Statement {
    fn of(request: QueryRequest) -> Result<Statement, String> {
        let params = (request.params.into_iter().enumerate())
            .map(|(i, value)| param(i + 1, value))
            .collect::<Result<_, _>>()?;
        Ok(Statement {
            sql: request.sql,
            params,
        })
    }
}

/// A JSON parameter value as SQL: null, a boolean, a number or text.
fn param(number: usize, value: serde_json::Value) -> Result<ScalarValue, String> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => ScalarValue::Null,
        Value::Bool(b) => ScalarValue::Boolean(Some(b)),
        Value::String(text) => ScalarValue::Utf8(Some(text)),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => ScalarValue::Int64(Some(i)),
            (None, Some(u), _) => ScalarValue::UInt64(Some(u)),
            (None, None, f) => ScalarValue::Float64(f),
        },
        other => {
            return Err(format!(
                "parameter ${number} is {other}: give null, a boolean, a number or text"
            ));
        }
    })
}

pub(super) async fn query(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let principal = match authorize(&app.shared, &headers, Right::Query) {
        Ok(principal) => principal,
        Err(refusal) => return refusal.into_response(),
    };
    // A client sees its tenants only; every table of its session is built
    // from their data alone (see `strata_query::Scope`).
    let scope = match principal.role {
        Role::Client => Scope::tenants(principal.tenants.iter().cloned()),
        _ => Scope::AllTenants,
    };
    let format = match Format::accepted(&headers) {
        Ok(format) => format,
        Err(why) => return json_error(StatusCode::NOT_ACCEPTABLE, &why),
    };
    let request = match body::read(body, REQUEST_BYTES).await {
        Ok(bytes) => serde_json::from_slice::<QueryRequest>(&bytes),
        Err(e) => return e.into_response(),
    };
    let request = request.map_err(|e| {
        format!("the body must be {{\"sql\": \"…\", \"params\": [values of $1, $2, …]}}: {e}")
    });
    let statement = match request.and_then(Statement::of) {
        Ok(statement) => statement,
        Err(why) => return json_error(StatusCode::BAD_REQUEST, &why),
    };
    // Admitted once the request is read: a slow sender holds no slot.
    let admitted = match app.queries.admit(&principal.name) {
        Ok(Some(admitted)) => admitted,
        Ok(None) => {
            let why = format!(
                "principal `{}` already runs {} queries, as many as it may at once; retry when one has answered",
                principal.name,
                app.queries.concurrent()
            );
            let mut response = busy(&why);
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            return response;
        }
        Err(e) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let viewer = Viewer {
        scope,
        runtime: Some(admitted.runtime),
    };
    let deadline = Instant::now() + QUERY_TIMEOUT;
    let started = start_on_newest(&app, &statement, &viewer);
    match tokio::time::timeout_at(deadline.into(), started).await {
        Ok(Ok(started)) => stream(started, format, deadline, admitted.slot),
        Ok(Err(response)) => response,
        Err(_) => json_error(StatusCode::GATEWAY_TIMEOUT, &past_timeout()),
    }
}

fn past_timeout() -> String {
    format!("the query ran past {} s", QUERY_TIMEOUT.as_secs())
}

/// Starts `statement` (see `start`), again on the newest snapshot when it failed
/// after files of its snapshot were removed: compaction deletes a merged
/// file's sources right after its commit, under queries already planned.
async fn start_on_newest(
    app: &App,
    statement: &Statement,
    viewer: &Viewer,
) -> Result<Started, Response> {
    let internal =
        |e: &dyn std::fmt::Display| json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    let mut attempts = 1;
    loop {
        let (error, used) = match start(app, statement, viewer).await {
            Ok(started) => return Ok(started),
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

/// A query running, its first batch already taken: a query that fails
/// before its first rows is answered with an error status (and retried on a
/// newer snapshot), one that fails later cuts its streamed answer short.
struct Started {
    schema: SchemaRef,
    first: Option<RecordBatch>,
    rest: SendableRecordBatchStream,
}

/// Plans `statement` over a consistent view of the archive and the
/// buffers, as much of it as `viewer` sees, and runs it up to its first batch.
async fn start(app: &App, statement: &Statement, viewer: &Viewer) -> Result<Started, Failure> {
    let shared = &app.shared;
    let (snapshot, buffered) = shared.query_view();
    let keys = shared.options.keys.clone();
    let session = QuerySession::at(&shared.archive, snapshot, keys, buffered, viewer.clone())
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
        .sql_with_options(&statement.sql, read_only)
        .await
        .and_then(|frame| frame.with_param_values(statement.params.clone()))
        .map_err(refused)?;
    let mut rest = frame.execute_stream().await.map_err(refused)?;
    let schema = rest.schema();
    let first = rest.next().await.transpose().map_err(refused)?;
    Ok(Started {
        schema,
        first,
        rest,
    })
}

/// The answer of `started` in `format`, streamed as its batches come; the
/// query stops when the client goes away, and holds its `slot` until then.
fn stream(
    started: Started,
    format: Format,
    deadline: Instant,
    slot: OwnedSemaphorePermit,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(STREAMED_CHUNKS);
    tokio::spawn(async move {
        let _slot = slot;
        let why = match tokio::time::timeout_at(deadline.into(), send(started, format, &tx)).await {
            Ok(Ok(())) => return,
            Ok(Err(why)) => why,
            Err(_) => past_timeout(),
        };
        tracing::warn!("a query's answer was cut short: {why}");
        let _ = tx.send(Err(std::io::Error::other(why))).await;
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk, rx))
    });
    (
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// Encodes and sends `started`'s batches, then the answer's end; an error
/// says why the answer stops short.
async fn send(
    mut started: Started,
    format: Format,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), String> {
    let schema = started.schema.clone();
    let mut encoder = Encoder::new(format, &schema).map_err(|e| e.to_string())?;
    let mut sent = 0;
    let mut next = started.first.take();
    while let Some(batch) = next {
        let bytes = encoder.batch(&batch).map_err(|e| e.to_string())?;
        sent += bytes.len();
        if sent > ANSWER_BYTES {
            return Err(format!(
                "the answer is over {} MiB: narrow the query or add a LIMIT",
                ANSWER_BYTES >> 20
            ));
        }
        if tx.send(Ok(bytes)).await.is_err() {
            return Ok(()); // the client went away
        }
        next = started
            .rest
            .next()
            .await
            .transpose()
            .map_err(|e| e.to_string())?;
    }
    let end = encoder.finish(&schema).map_err(|e| e.to_string())?;
    let _ = tx.send(Ok(end)).await;
    Ok(())
}
