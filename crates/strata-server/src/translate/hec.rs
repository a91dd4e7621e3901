//! Splunk HTTP Event Collector events onto event contract v1. A HEC event
//! is an envelope (`time` in epoch seconds, `host`, `source`,
//! `sourcetype`, `index`, indexed `fields`) around `event`, which is a
//! string or an object. An object goes through the ECS mapping (so contract
//! and ECS field names both work); a string becomes the message.

use serde_json::{Map, Value};

use super::contract::ContractEvent;
use super::ecs;

/// The events of a HEC body: JSON objects one after another (whitespace
/// between them or not), or arrays of them. Each is the event or why it is
/// refused; a body that stops being JSON ends the list with its error.
pub fn split_events(body: &[u8]) -> Vec<Result<Map<String, Value>, String>> {
    let mut events = Vec::new();
    for value in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
        match value {
            Ok(Value::Array(values)) => events.extend(values.into_iter().map(object)),
            Ok(value) => events.push(object(value)),
            Err(e) => {
                events.push(Err(format!("invalid JSON: {e}")));
                break;
            }
        }
    }
    events
}

fn object(value: Value) -> Result<Map<String, Value>, String> {
    match value {
        Value::Object(fields) => Ok(fields),
        other => Err(format!("an event must be a JSON object, not {other}")),
    }
}

/// `envelope` as an event-contract object, or why it is refused. An event
/// without a time takes `received_ms` (epoch milliseconds), as Splunk does.
pub fn to_contract(
    mut envelope: Map<String, Value>,
    received_ms: i64,
) -> Result<ContractEvent, String> {
    let event = envelope
        .remove("event")
        .ok_or_else(|| "Event field is required".to_string())?;
    let mut doc = match event {
        Value::Object(doc) => doc,
        Value::String(text) if text.is_empty() => return Err("Event field cannot be blank".into()),
        Value::String(text) => Map::from_iter([("message".to_string(), Value::from(text))]),
        other => Map::from_iter([("message".to_string(), Value::from(other.to_string()))]),
    };
    let time = match envelope.remove("time") {
        Some(time) => epoch_millis(&time)?,
        None => Value::from(received_ms),
    };
    if !doc.contains_key("@timestamp") {
        doc.entry("ts").or_insert(time);
    }
    for (field, column) in [("host", "host"), ("source", "app")] {
        if let Some(value) = envelope.remove(field) {
            doc.entry(column).or_insert(value);
        }
    }
    if let Some(Value::String(sourcetype)) = envelope.get("sourcetype") {
        doc.entry("action")
            .or_insert(Value::from(sourcetype.clone()));
    }
    let index = envelope.remove("index");
    if let Some(Value::Object(fields)) = envelope.remove("fields") {
        for (key, value) in fields {
            doc.entry(key).or_insert(value);
        }
    }
    let index_name = index.as_ref().and_then(Value::as_str);
    let mut event = ecs::to_contract(doc, index_name, None);
    // What the envelope carries besides (its index, sourcetype, ...) is kept.
    let mut extra = envelope;
    if let Some(index) = index {
        extra.insert("index".into(), index);
    }
    if !extra.is_empty() {
        let attrs = event.attrs_mut();
        for (key, value) in extra {
            attrs.entry(key).or_insert(value);
        }
    }
    Ok(event)
}

/// HEC `time` (epoch seconds, fractional, as a number or a string) as
/// epoch milliseconds.
fn epoch_millis(time: &Value) -> Result<Value, String> {
    let seconds = match time {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match seconds {
        Some(s) if s.is_finite() => Ok(Value::from((s * 1000.0).round() as i64)),
        _ => Err(format!("`time` must be epoch seconds, got {time}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn concatenated_objects_and_arrays_split_into_events() {
        let body = br#"{"event":"a"}{"event":"b"}
 [{"event":"c"},{"event":"d"}] 7 {"event":"e"} {"event":"#;
        let events = split_events(body);
        let shown: Vec<String> = events
            .iter()
            .map(|e| match e {
                Ok(fields) => fields["event"].as_str().unwrap().to_string(),
                Err(why) => why.split(':').next().unwrap().to_string(),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "a",
                "b",
                "c",
                "d",
                "an event must be a JSON object, not 7",
                "e",
                "invalid JSON"
            ]
        );
    }

    #[test]
    fn the_envelope_fills_the_contract_around_the_event() {
        let envelope = json!({
            "time": "1772359200.25", "host": "crm-1", "source": "crm", "sourcetype": "crm:audit",
            "index": "data_usage", "fields": {"tenant": "acme", "user": "a.b"},
            "event": {"action": "export", "records": 12}
        });
        let Value::Object(envelope) = envelope else {
            panic!()
        };
        let event = to_contract(envelope, 0).unwrap().to_json();
        assert_eq!(
            event,
            json!({
                "ts": 1772359200250i64, "tenant": "acme", "family": "data_usage", "action": "export",
                "user": "a.b", "host": "crm-1", "app": "crm", "records": 12,
                "attrs": {"index": "data_usage", "sourcetype": "crm:audit"}
            })
        );
        let Value::Object(plain) = json!({"event": "disk full", "sourcetype": "syslog"}) else {
            panic!()
        };
        let event = to_contract(plain, 5).unwrap().to_json();
        assert_eq!(
            (&event["message"], &event["action"]),
            (&json!("disk full"), &json!("syslog"))
        );
        let Value::Object(empty) = json!({"time": 1}) else {
            panic!()
        };
        assert_eq!(
            to_contract(empty, 0).unwrap_err(),
            "Event field is required"
        );
        let Value::Object(bad) = json!({"event": "x", "time": "soon"}) else {
            panic!()
        };
        assert!(to_contract(bad, 0).unwrap_err().contains("epoch seconds"));
    }
}
