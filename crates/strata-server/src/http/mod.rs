//! The HTTP listener: every HTTP protocol on one router, the health
//! endpoints and the metrics.

mod answer;
mod auth;
mod body;
mod elastic;
mod events;
mod ingest;
pub mod listen;
mod otlp;
mod query;
mod splunk;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tokio::sync::mpsc;

use crate::group::Submission;
use crate::limits::QueryLimits;
use crate::recorder::Recorder;
use crate::server::Shared;
pub use auth::{Refusal, Right, authenticate, authorize, permit};

/// How long `/health/ready` waits for its probe of the write-ahead log.
const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Seconds a client under back-pressure is told to wait.
const RETRY_AFTER_SECONDS: &str = "1";

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    /// The server's state.
    pub shared: Arc<Shared>,
    /// Where accepted events go to be made durable.
    pub submit: mpsc::Sender<Submission>,
    /// Splunk HEC acknowledgements not yet reported.
    pub acks: Arc<splunk::Acks>,
    /// What each principal's queries may take.
    pub queries: Arc<QueryLimits>,
    /// Where the record of every query goes.
    pub recorder: Arc<Recorder>,
}

/// Elasticsearch calls shippers make before sending, answered `{}`.
const ELASTIC_SETUP_CALLS: &[&str] = &[
    "/_license",
    "/_xpack",
    "/_nodes",
    "/_nodes/{*rest}",
    "/_ilm/{*rest}",
    "/_index_template/{*rest}",
    "/_component_template/{*rest}",
    "/_template/{*rest}",
    "/_ingest/{*rest}",
    "/_data_stream/{*rest}",
    "/_logstash/{*rest}",
];

/// The router of every HTTP endpoint; queries run within `queries` and are
/// recorded by `recorder`.
pub fn router(
    shared: Arc<Shared>,
    submit: mpsc::Sender<Submission>,
    queries: Arc<QueryLimits>,
    recorder: Arc<Recorder>,
) -> Router {
    let mut router = Router::new()
        .route("/v1/events", post(events::post_events))
        .route("/v1/logs", post(otlp::logs))
        .route("/v1/query", post(query::query))
        .route("/health/live", get(|| async { "live\n" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/", get(elastic::info))
        .route("/_cluster/health", get(elastic::cluster_health))
        .route("/_bulk", post(elastic::bulk).put(elastic::bulk))
        .route(
            "/{index}/_bulk",
            post(elastic::bulk_index).put(elastic::bulk_index),
        )
        .route("/services/collector/ack", post(splunk::ack));
    for version in ["", "/1.0"] {
        router = router
            .route(
                &format!("/services/collector/event{version}"),
                post(splunk::event),
            )
            .route(
                &format!("/services/collector/raw{version}"),
                post(splunk::raw),
            )
            .route(
                &format!("/services/collector/health{version}"),
                get(splunk::health),
            );
    }
    router = router.route("/services/collector", post(splunk::event));
    for path in ELASTIC_SETUP_CALLS {
        router = router.route(path, any(elastic::empty));
    }
    // Bodies are limited while they are read (`body::read`), compressed or not.
    router.layer(DefaultBodyLimit::disable()).with_state(App {
        shared,
        submit,
        recorder,
        acks: Arc::default(),
        queries,
    })
}

/// A JSON body `{"error": message}` with `status`.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// 503 with `Retry-After`: the only answer every shipper retries later.
pub fn busy(message: &str) -> Response {
    let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

/// Ready when a write-ahead segment can be stored in the archive.
async fn ready(State(app): State<App>) -> Response {
    match tokio::time::timeout(READY_PROBE_TIMEOUT, app.shared.wal.probe()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => json_error(StatusCode::SERVICE_UNAVAILABLE, &format!("not ready: {e}")),
        Err(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the archive's store did not answer within 5 s",
        ),
    }
}

/// The counters in the Prometheus text format (admin only: they name tenants).
async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refusal) = authorize(&app.shared, &headers, Right::Admin) {
        return refusal.into_response();
    }
    let text = app.shared.metrics.render(&app.shared.gauges());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
