//! OpenTelemetry log records onto event contract v1. A record's resource
//! attributes, then its own attributes (which win), are gathered under
//! their semantic-convention names, a few conventions are spelled as their
//! Elastic Common Schema equivalents, and the result goes through the ECS
//! mapping, so that both vocabularies land in the same columns.

use chrono::{DateTime, SecondsFormat};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use serde_json::Value;

use super::contract::ContractEvent;
use super::ecs;
use super::flat::{flatten, new_flat};

/// OpenTelemetry semantic-convention names and the ECS names the mapping knows.
const ALIASES: &[(&str, &str)] = &[
    ("tenant.id", "tenant"),
    ("enduser.id", "user.id"),
    ("client.address", "client.ip"),
    ("source.address", "source.ip"),
    ("url.full", "url.original"),
    ("event.name", "event.action"),
];

/// Every log record of `request` as an event-contract object, in order.
/// A record without a time takes its observed time, else `received_ns`.
pub fn to_contract(request: ExportLogsServiceRequest, received_ns: i64) -> Vec<ContractEvent> {
    let mut events = Vec::new();
    for resource_logs in request.resource_logs {
        let resource = resource_logs
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.map(|s| s.name).filter(|n| !n.is_empty());
            for record in scope_logs.log_records {
                events.push(record_to_contract(
                    &resource,
                    scope.as_deref(),
                    record,
                    received_ns,
                ));
            }
        }
    }
    events
}

fn record_to_contract(
    resource: &[KeyValue],
    scope: Option<&str>,
    mut record: LogRecord,
    received_ns: i64,
) -> ContractEvent {
    let mut doc = new_flat();
    // The record's own attributes are moved, not copied: most of its strings.
    let attributes = std::mem::take(&mut record.attributes);
    for attribute in resource.iter().cloned().chain(attributes) {
        flatten(attribute.key, json_of(attribute.value), &mut doc);
    }
    for (otel, ecs) in ALIASES {
        if let Some(value) = doc.remove(*otel) {
            doc.entry(ecs.to_string()).or_insert(value);
        }
    }
    if let Some(scope) = scope {
        doc.insert("otel.scope.name".into(), Value::from(scope));
    }
    if !record.event_name.is_empty() {
        doc.entry("event.action".into())
            .or_insert(Value::from(record.event_name));
    }
    let nanos = [record.time_unix_nano, record.observed_time_unix_nano]
        .into_iter()
        .find(|&t| t > 0)
        .map_or(received_ns, |t| t.min(i64::MAX as u64) as i64);
    let time = DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(SecondsFormat::Nanos, true);
    doc.entry("@timestamp".into()).or_insert(Value::from(time));
    let level = match record.severity_text.as_str() {
        "" => severity_name(record.severity_number).map(str::to_string),
        text => Some(text.to_string()),
    };
    if let Some(level) = level {
        doc.entry("log.level".into()).or_insert(Value::from(level));
    }
    match record.body.take().map(|body| json_of(Some(body))) {
        Some(Value::String(text)) => {
            doc.entry("message".into()).or_insert(Value::from(text));
        }
        Some(Value::Null) | None => {}
        Some(body) => flatten("body".into(), body, &mut doc),
    }
    for (name, id) in [("trace.id", &record.trace_id), ("span.id", &record.span_id)] {
        if !id.is_empty() {
            doc.insert(name.into(), Value::from(hex::encode(id)));
        }
    }
    ecs::flat_to_contract(doc, None, None)
}

/// The ECS level of an OpenTelemetry severity number (1-24).
fn severity_name(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warning",
        17..=20 => "error",
        21..=24 => "critical",
        _ => return None,
    })
}

/// An attribute value as JSON, its strings moved: bytes as hex, lists and
/// maps nested.
fn json_of(value: Option<AnyValue>) -> Value {
    use any_value::Value as V;
    match value.and_then(|v| v.value) {
        // A string-table index means something only in profiles, never in logs.
        None | Some(V::StringValueStrindex(_)) => Value::Null,
        Some(V::StringValue(s)) => Value::String(s),
        Some(V::BoolValue(b)) => Value::from(b),
        Some(V::IntValue(i)) => Value::from(i),
        Some(V::DoubleValue(d)) => Value::from(d),
        Some(V::BytesValue(bytes)) => Value::from(hex::encode(bytes)),
        Some(V::ArrayValue(array)) => array.values.into_iter().map(|v| json_of(Some(v))).collect(),
        Some(V::KvlistValue(list)) => Value::Object(
            list.values
                .into_iter()
                .map(|kv| (kv.key, json_of(kv.value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_json_export_maps_resource_record_and_body() {
        let request = json!({"resourceLogs": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "crm"}},
                {"key": "host.name", "value": {"stringValue": "crm-1"}},
                {"key": "tenant.id", "value": {"stringValue": "acme"}}
            ]},
            "scopeLogs": [{"scope": {"name": "audit"}, "logRecords": [{
                "timeUnixNano": "1772359200123456789",
                "severityNumber": 17,
                "body": {"stringValue": "export refused"},
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
                "attributes": [
                    {"key": "event.name", "value": {"stringValue": "export"}},
                    {"key": "enduser.id", "value": {"stringValue": "a.b"}},
                    {"key": "client.address", "value": {"stringValue": "10.0.0.9"}},
                    {"key": "records", "value": {"intValue": "12"}},
                    {"key": "family", "value": {"stringValue": "data_usage"}},
                    {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}}
                ]
            }]}]
        }]});
        let request: ExportLogsServiceRequest = serde_json::from_value(request).unwrap();
        let events: Vec<Value> = to_contract(request, 0)
            .iter()
            .map(ContractEvent::to_json)
            .collect();
        assert_eq!(
            events,
            vec![json!({
                "ts": "2026-03-01T10:00:00.123456789Z", "tenant": "acme", "family": "data_usage",
                "action": "export", "severity": "error", "user": "a.b", "host": "crm-1",
                "app": "crm", "message": "export refused", "src_ip": "10.0.0.9", "records": 12,
                "attrs": {"otel.scope.name": "audit", "tags": ["x"],
                          "trace.id": "5b8efff798038103d269b633813fc60c", "span.id": "eee19b7ec3c1b174"}
            })]
        );
    }

    #[test]
    fn a_record_without_time_or_body_still_makes_an_event() {
        let request: ExportLogsServiceRequest = serde_json::from_value(json!({"resourceLogs": [{
            "scopeLogs": [{"logRecords": [
                {"observedTimeUnixNano": "1000000", "body": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": true}}]}}},
                {}
            ]}]
        }]}))
        .unwrap();
        let events: Vec<Value> = to_contract(request, 5_000_000)
            .iter()
            .map(ContractEvent::to_json)
            .collect();
        assert_eq!(events[0]["ts"], "1970-01-01T00:00:00.001000000Z");
        assert_eq!(events[0]["attrs"]["body.k"], true);
        assert_eq!(
            (&events[1]["ts"], &events[1]["action"]),
            (&json!("1970-01-01T00:00:00.005000000Z"), &json!("log"))
        );
    }
}
