//! `POST /v1/logs`: OTLP/HTTP logs, protobuf or JSON (gzip allowed),
//! answered in the request's encoding. Records refused by the contract or
//! the sender's tenants are counted in `partial_success`; pressure gets
//! 503 with `Retry-After`, which OTLP exporters retry.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;

use super::ingest::{ingest, plain_refusal};
use super::{App, json_error};
use crate::accept::accept_objects;
use crate::translate::otlp;

/// Reasons quoted in `partial_success.error_message`.
const QUOTED_REASONS: usize = 5;

/// How a request (and so its answer) is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

pub(super) async fn logs(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let encoding = if content_type.starts_with("application/x-protobuf") {
        Encoding::Protobuf
    } else if content_type.starts_with("application/json") {
        Encoding::Json
    } else {
        return json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!(
                "Content-Type `{content_type}` is not OTLP: send application/x-protobuf or application/json"
            ),
        );
    };
    let parse = move |body: &Bytes, sender: &_, at: i64| {
        let request = match encoding {
            Encoding::Protobuf => {
                ExportLogsServiceRequest::decode(&body[..]).map_err(|e| e.to_string())
            }
            Encoding::Json => serde_json::from_slice(body).map_err(|e| e.to_string()),
        };
        let request = request.map_err(|why| {
            let message = format!("not an OTLP logs export ({encoding:?}): {why}");
            Box::new(json_error(StatusCode::BAD_REQUEST, &message))
        })?;
        let events = otlp::to_contract(request, at.saturating_mul(1000))
            .into_iter()
            .map(Some)
            .collect();
        Ok(((), accept_objects(events, sender, at)))
    };
    let stored = match ingest(&app, &headers, body, "otlp", plain_refusal, parse).await {
        Ok(stored) => stored,
        Err(response) => return response,
    };
    let rejected = &stored.accepted.rejected;
    let partial_success = (!rejected.is_empty()).then(|| {
        let reasons: Vec<String> = rejected
            .iter()
            .take(QUOTED_REASONS)
            .map(|r| format!("record {}: {}", r.line, r.reason))
            .collect();
        ExportLogsPartialSuccess {
            rejected_log_records: rejected.len() as i64,
            error_message: reasons.join("; "),
        }
    });
    let answer = ExportLogsServiceResponse { partial_success };
    let bytes = match encoding {
        Encoding::Protobuf => answer.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&answer).expect("JSON serializes"),
    };
    let mut response = (StatusCode::OK, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    response
}
