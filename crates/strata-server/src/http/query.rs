//! `POST /v1/query`: SQL over the archive and the events the server holds
//! in memory, so that an acknowledged event is queryable at once. Admins
//! and auditors see every tenant, a client only its own. The answer is
//! streamed in the format of `Accept`: a JSON array of row objects (the
//! default), NDJSON, CSV or an Arrow IPC stream, for `{"sql": "…"}`. Only
//! queries run: DDL, DML and statements (`SET`, `COPY`, `CREATE EXTERNAL
//! TABLE`) are refused, since in stock DataFusion they read and write
//! server files. Every statement of an authenticated principal, answered
//! or not, is recorded in the archive before its answer is sent
//! (`strata_query::query_log`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;
use strata_query::query_log::{Asker, End, Ending, QueryRecord, Start, new_query_id};
use strata_query::{Planned, QuerySession, Running, Viewer, verify_read_only};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::answer::{Encoder, Format};
use super::{App, Right, authenticate, body, busy, json_error, permit};

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

pub(super) async fn query(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = Instant::now();
    let started_at = chrono::Utc::now().timestamp_micros();
    let principal = match authenticate(&app.shared, &headers) {
        Ok(principal) => principal,
        Err(refusal) => return refusal.into_response(),
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
    // From here on the statement is recorded, whatever becomes of it.
    let mut record = QueryRecord {
        query_id: new_query_id(started_at),
        started_at,
        asker: Asker {
            user: principal.name.clone(),
            role: principal.role.as_str().to_string(),
            app: "strata serve".to_string(),
            interface: "http".to_string(),
            src_ip: Some(peer.ip()),
            session_id: None,
        },
        fingerprint: app.recorder.fingerprint(&app.shared, &statement.sql).await,
        statement: statement.sql.clone(),
        read: Planned::default(),
    };
    if let Err(refusal) = permit(&principal, Right::Query) {
        let denied = Start::Denied(refusal.message());
        return recorded(&app, &record, &denied, refusal.into_response()).await;
    }
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
            return recorded(&app, &record, &Start::Denied(why), response).await;
        }
        Err(e) => {
            let failed = Start::Failed(e.to_string());
            let response = json_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
            return recorded(&app, &record, &failed, response).await;
        }
    };
    let viewer = Viewer {
        scope: app.shared.scope_of(&principal),
        runtime: Some(admitted.runtime),
    };
    let deadline = Instant::now() + QUERY_TIMEOUT;
    let started = start_on_newest(&app, &statement, &viewer);
    let started = match tokio::time::timeout_at(deadline.into(), started).await {
        Ok(Ok(started)) => started,
        Ok(Err(refused)) => {
            record.read = refused.read;
            let response = json_error(refused.status, refused.start.reason());
            return recorded(&app, &record, &refused.start, response).await;
        }
        Err(_) => {
            let response = json_error(StatusCode::GATEWAY_TIMEOUT, &past_timeout());
            let failed = Start::Failed(past_timeout());
            return recorded(&app, &record, &failed, response).await;
        }
    };
    record.read = started.session.planned();
    if let Err(why) = app
        .recorder
        .store(record.start_lines(&Start::Answering))
        .await
    {
        return not_recorded(&why);
    }
    let answer = Answer {
        started,
        format,
        deadline,
        received,
        record,
    };
    stream(app, answer, admitted.slot)
}

/// `response`, once the record of the statement's refusal is durable.
async fn recorded(app: &App, record: &QueryRecord, start: &Start, response: Response) -> Response {
    match app.recorder.store(record.start_lines(start)).await {
        Ok(()) => response,
        Err(why) => not_recorded(&why),
    }
}

/// No answer without its record.
fn not_recorded(why: &str) -> Response {
    busy(&format!(
        "the query was not answered: its record could not be stored ({why}); retry"
    ))
}

fn past_timeout() -> String {
    format!("the query ran past {} s", QUERY_TIMEOUT.as_secs())
}

/// Why a statement has no answer, and what it would have read.
struct Refused {
    status: StatusCode,
    start: Start,
    read: Planned,
}

impl Refused {
    fn new(status: StatusCode, start: Start) -> Refused {
        Refused {
            status,
            start,
            read: Planned::default(),
        }
    }
}

/// Starts `statement` (see `start`), again on the newest snapshot when it failed
/// after files of its snapshot were removed: compaction deletes a merged
/// file's sources right after its commit, under queries already planned.
async fn start_on_newest(
    app: &App,
    statement: &Statement,
    viewer: &Viewer,
) -> Result<Started, Refused> {
    let internal = |e: &dyn std::fmt::Display| {
        Refused::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Start::Failed(e.to_string()),
        )
    };
    let mut attempts = 1;
    loop {
        let (error, session) = match start(app, statement, viewer).await {
            Ok(started) => return Ok(started),
            Err(Failure::Refused(refused)) => return Err(refused),
            Err(Failure::Query(error, session)) => (error, session),
        };
        let moved = app.shared.moved_since(&session.snapshot).await;
        if !moved.map_err(|e| internal(&e))? || attempts == ATTEMPTS {
            return Err(Refused {
                status: StatusCode::BAD_REQUEST,
                start: Start::Failed(error.to_string()),
                read: session.planned(),
            });
        }
        attempts += 1;
    }
}

/// Why a query gave no answer.
enum Failure {
    /// Planning or running failed in this session.
    Query(DataFusionError, QuerySession),
    /// Any other refusal, answered as is.
    Refused(Refused),
}

/// A query running, its first batch already taken: a query that fails
/// before its first rows is answered with an error status (and retried on a
/// newer snapshot), one that fails later cuts its streamed answer short.
struct Started {
    session: QuerySession,
    plan: Arc<dyn ExecutionPlan>,
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
    let session = async {
        let ctx = shared.query_context(viewer.runtime.clone())?;
        let scope = viewer.scope.clone();
        QuerySession::within(ctx, &shared.archive, snapshot, keys, buffered, scope).await
    }
    .await
    .map_err(|e| {
        let failed = Start::Failed(e.to_string());
        Failure::Refused(Refused::new(StatusCode::INTERNAL_SERVER_ERROR, failed))
    })?;
    let plan = match session
        .ctx
        .state()
        .create_logical_plan(&statement.sql)
        .await
    {
        Ok(plan) => plan,
        Err(e) => return Err(Failure::Query(e, session)),
    };
    if let Err(e) = verify_read_only(&plan) {
        let denied = Start::Denied(e.to_string());
        return Err(Failure::Refused(Refused::new(
            StatusCode::BAD_REQUEST,
            denied,
        )));
    }
    let params = Some(statement.params.clone().into());
    match session.start(plan, params).await {
        Ok(Running { plan, first, rest }) => Ok(Started {
            session,
            plan,
            schema: rest.schema(),
            first,
            rest,
        }),
        Err(e) => Err(Failure::Query(e, session)),
    }
}

/// An answer to send, and what its last record needs.
struct Answer {
    started: Started,
    format: Format,
    deadline: Instant,
    received: Instant,
    record: QueryRecord,
}

/// The answer in its format, streamed as its batches come; the query stops
/// when the client goes away, and holds its `slot` until then. Its last
/// record is stored once it is done.
fn stream(app: App, answer: Answer, slot: OwnedSemaphorePermit) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(STREAMED_CHUNKS);
    let content_type = answer.format.content_type();
    tokio::spawn(async move {
        let _slot = slot;
        let Answer {
            mut started,
            format,
            deadline,
            received,
            record,
        } = answer;
        let mut rows = 0;
        let sent = send(&mut started, format, &tx, &mut rows);
        let ending = match tokio::time::timeout_at(deadline.into(), sent).await {
            Ok(ending) => ending,
            Err(_) => Ending::CutShort(past_timeout()),
        };
        if let Ending::CutShort(why) = &ending {
            tracing::warn!("a query's answer was cut short: {why}");
            let _ = tx.send(Err(std::io::Error::other(why.clone()))).await;
        }
        let end = End {
            ending,
            rows,
            bytes_scanned: started.session.stats(&started.plan).bytes_scanned as u64,
            duration_ms: received.elapsed().as_secs_f64() * 1e3,
        };
        // The answer ends once its last record is stored (`tx` dropped): a
        // stopping server waits for both.
        if let Err(why) = app.recorder.store(record.end_lines(&end)).await {
            tracing::error!(
                "the end of query {} was not recorded: {why}",
                record.query_id
            );
        }
        drop(tx);
    });
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk, rx))
    });
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// Encodes and sends `started`'s batches, then the answer's end, counting
/// the rows sent in `rows`; how the answer ended.
async fn send(
    started: &mut Started,
    format: Format,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    rows: &mut u64,
) -> Ending {
    let schema = started.schema.clone();
    let cut = |e: &dyn std::fmt::Display| Ending::CutShort(e.to_string());
    let mut encoder = match Encoder::new(format, &schema) {
        Ok(encoder) => encoder,
        Err(e) => return cut(&e),
    };
    let mut sent = 0;
    let mut next = started.first.take();
    while let Some(batch) = next {
        let bytes = match encoder.batch(&batch) {
            Ok(bytes) => bytes,
            Err(e) => return cut(&e),
        };
        sent += bytes.len();
        if sent > ANSWER_BYTES {
            return Ending::CutShort(format!(
                "the answer is over {} MiB: narrow the query or add a LIMIT",
                ANSWER_BYTES >> 20
            ));
        }
        if tx.send(Ok(bytes)).await.is_err() {
            return Ending::Cancelled; // the client went away
        }
        *rows += batch.num_rows() as u64;
        next = match started.rest.next().await.transpose() {
            Ok(next) => next,
            Err(e) => return cut(&e),
        };
    }
    let end = match encoder.finish(&schema) {
        Ok(end) => end,
        Err(e) => return cut(&e),
    };
    match tx.send(Ok(end)).await {
        Ok(()) => Ending::Answered,
        Err(_) => Ending::Cancelled,
    }
}
