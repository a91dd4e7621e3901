//! Events built from JSON objects already in memory, and events written
//! back as contract lines. The server's protocol translators (ECS, OTLP,
//! HEC, syslog) produce objects; checking those in place, rather than
//! writing each as a line and parsing the line again, spares a third of
//! their CPU. The write-ahead log still stores lines: [`Event::write_line`]
//! writes the one that parses back to the same event.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value as JsonValue};

use crate::contract::contract;
use crate::event::{Event, Fields, Json, Value};

/// Checks the JSON object `object` against the contract, as
/// [`crate::parse_line`] checks a line: the same event or the same reason.
/// The event borrows its strings from `object`.
pub fn parse_object(object: &Map<String, JsonValue>) -> Result<Event<'_>, String> {
    parse_fields(object.iter().map(|(key, value)| (key.as_str(), value)))
}

/// [`parse_object`] of an object given as its fields, for translators that
/// build events as a list rather than a map. Fields in the contract's
/// order are found fastest.
pub fn parse_fields<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a JsonValue)>,
) -> Result<Event<'a>, String> {
    let mut event = Fields::new();
    for (key, value) in fields {
        event.set(Cow::Borrowed(key), json(value))?;
    }
    event.finish()
}

/// `value` as the parser's JSON, borrowing its strings.
fn json(value: &JsonValue) -> Json<'_> {
    match value {
        JsonValue::Null => Json::Null,
        JsonValue::Bool(b) => Json::Bool(*b),
        // As the line parser reads numbers: non-negative integers unsigned.
        JsonValue::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Json::UInt(u),
            (None, Some(i)) => Json::Int(i),
            _ => Json::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        JsonValue::String(s) => Json::Str(Cow::Borrowed(s)),
        JsonValue::Array(items) => Json::Array(items.iter().map(json).collect()),
        JsonValue::Object(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), json(v)))
                .collect(),
        ),
    }
}

impl Event<'_> {
    /// Appends the event as one contract line (without `\n`) to `out`:
    /// every field it holds, `ts` as RFC 3339 in UTC to the microsecond.
    /// [`crate::parse_line`] gives this event back from it.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        let fields = &contract().fields;
        out.push(b'{');
        let mut first = true;
        for (spec, value) in fields.iter().zip(&self.values) {
            if matches!(value, Value::Null) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, &spec.name);
            out.push(b':');
            match value {
                Value::Null => unreachable!("skipped above"),
                Value::Text(text) => write_str(out, text),
                Value::Timestamp(micros) => {
                    let time = DateTime::from_timestamp_micros(*micros)
                        .expect("parsed timestamps are within the supported years");
                    write_str(out, &time.to_rfc3339_opts(SecondsFormat::AutoSi, true));
                }
                Value::Count(n) => out.extend_from_slice(n.to_string().as_bytes()),
                Value::Float(n) => {
                    serde_json::to_writer(&mut *out, n).expect("parsed numbers are finite")
                }
                Value::Attrs(entries) => {
                    out.push(b'{');
                    for (i, (key, value)) in entries.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        write_str(out, key);
                        out.push(b':');
                        write_str(out, value);
                    }
                    out.push(b'}');
                }
            }
        }
        out.push(b'}');
    }
}

/// `text` as a JSON string. Most need no escape and are copied whole
/// (serde_json's writer, byte by byte, was a tenth of a translated event's
/// cost); the rest are escaped as serde_json does.
fn write_str(out: &mut Vec<u8>, text: &str) {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        serde_json::to_writer(&mut *out, text).expect("strings serialize");
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_line;
    use proptest::prelude::*;
    use serde_json::json;

    fn object(value: JsonValue) -> Map<String, JsonValue> {
        match value {
            JsonValue::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn an_object_gives_the_event_or_the_reason_its_line_gives() {
        let cases = [
            json!({"ts": "2026-03-01T10:00:00.5+02:00", "tenant": "acme", "family": "access",
                   "action": "login", "bytes": 12, "duration_ms": 3, "src_ip": "2001:db8:0::1",
                   "attrs": {"mfa": true, "n": null, "nested": {"a": [1, "x"]}}, "shift": "night",
                   "user": "zoë \"q\"", "message": null}),
            json!({"ts": 1741075200000u64, "tenant": "acme", "family": "data_usage", "action": "read"}),
            json!({"ts": 0, "tenant": "acme", "family": "access"}),
            json!({"ts": 0, "tenant": "Acme", "family": "access", "action": "x"}),
            json!({"ts": 0, "tenant": "acme", "family": "access", "action": "x", "bytes": -5}),
            json!({"ts": 0, "tenant": "acme", "family": "access", "action": "x", "bytes": u64::MAX}),
            json!({"ts": 1.5, "tenant": "acme", "family": "access", "action": "x"}),
            json!({"ts": 0, "tenant": "acme", "family": "access", "action": "x", "attrs": 3}),
        ];
        for case in cases {
            let line = serde_json::to_vec(&case).unwrap();
            let map = object(case);
            assert_eq!(parse_object(&map), parse_line(&line), "{map:?}");
        }
    }

    #[test]
    fn a_written_line_parses_back_to_its_event() {
        let line = br#"{"ts":"2026-03-01T10:00:00.123456+02:00","tenant":"acme","family":"technical","action":"x\ny","severity":"error","src_ip":"::ffff:10.0.0.1","records":9223372036854775807,"duration_ms":0.1,"attrs":{"k":"v","k":"w","n":1},"extra":["a"]}"#;
        let event = parse_line(line).unwrap();
        let mut written = Vec::new();
        event.write_line(&mut written);
        assert_eq!(parse_line(&written).unwrap(), event);
    }

    /// JSON values of every shape, with strings that need escaping.
    fn any_json() -> impl Strategy<Value = JsonValue> {
        let leaf = prop_oneof![
            Just(JsonValue::Null),
            any::<bool>().prop_map(JsonValue::from),
            any::<i64>().prop_map(JsonValue::from),
            any::<u64>().prop_map(JsonValue::from),
            (0.0..1e9f64).prop_map(JsonValue::from),
            "\\PC{0,8}".prop_map(JsonValue::from),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(JsonValue::from),
                prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| JsonValue::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn objects_and_lines_agree_and_lines_round_trip(
            ts in prop_oneof![
                (0i64..4_000_000_000_000).prop_map(JsonValue::from),
                (0i64..4_000_000_000_000_000, -2i32..3).prop_map(|(micros, hours)| {
                    let offset = chrono::FixedOffset::east_opt(hours * 3600).unwrap();
                    let time = DateTime::from_timestamp_micros(micros).unwrap().with_timezone(&offset);
                    JsonValue::from(time.to_rfc3339())
                }),
            ],
            family in prop::sample::select(vec!["access", "data_usage", "technical"]),
            action in "\\PC{1,12}",
            user in prop::option::of("(\\PC|[\\x00-\\x1f]){0,12}"),
            bytes in prop::option::of(0..=i64::MAX as u64),
            duration in prop::option::of(0.0..1e7f64),
            ip in prop::option::of(any::<std::net::IpAddr>()),
            attrs in prop::option::of(prop::collection::btree_map("\\PC{1,6}", any_json(), 0..4)),
            extra in prop::collection::btree_map("x_[a-z]{1,4}", any_json(), 0..3),
        ) {
            let mut map = Map::new();
            map.insert("ts".into(), ts);
            map.insert("tenant".into(), "acme".into());
            map.insert("family".into(), family.into());
            map.insert("action".into(), action.into());
            if let Some(user) = user { map.insert("user".into(), user.into()); }
            if let Some(bytes) = bytes { map.insert("bytes".into(), bytes.into()); }
            if let Some(ms) = duration { map.insert("duration_ms".into(), ms.into()); }
            if let Some(ip) = ip { map.insert("src_ip".into(), ip.to_string().into()); }
            if let Some(attrs) = attrs {
                map.insert("attrs".into(), JsonValue::Object(attrs.into_iter().collect()));
            }
            map.extend(extra);
            let line = serde_json::to_vec(&map).unwrap();
            let from_line = parse_line(&line);
            prop_assert_eq!(&parse_object(&map), &from_line);
            let event = from_line.unwrap();
            let mut written = Vec::new();
            event.write_line(&mut written);
            prop_assert_eq!(parse_line(&written).unwrap(), event);
        }
    }
}
