//! Elastic Common Schema documents (what Elasticsearch shippers send) onto
//! event contract v1. The table is documented in docs/protocols.md; fields
//! that map nowhere keep their dotted ECS names in `attrs`.

use serde_json::{Map, Value};

use super::contract::ContractEvent;
use super::flat::{Flat, flat};

/// Contract columns filled from ECS fields, in the contract's order: the
/// first present wins.
const COLUMNS: &[(&str, &[&str])] = &[
    ("ts", &["@timestamp", "timestamp", "ts"]),
    ("tenant", &["organization.id", "tenant"]),
    // Else from the index or `event.category` (see `family`).
    ("family", &["family"]),
    ("action", &["event.action", "action"]),
    ("outcome", &["event.outcome", "outcome"]),
    ("severity", &["log.level", "severity"]),
    ("user", &["user.name", "user.id", "user"]),
    ("role", &["user.roles", "role"]),
    ("host", &["host.name", "host.hostname", "host"]),
    ("app", &["service.name", "process.name", "app"]),
    (
        "resource",
        &["url.path", "file.path", "url.original", "resource"],
    ),
    ("resource_type", &["resource_type"]),
    ("session_id", &["session.id", "session_id"]),
    ("message", &["message"]),
    ("src_ip", &["source.ip", "client.ip", "src_ip"]),
    ("bytes", &["network.bytes", "source.bytes", "bytes"]),
    ("records", &["records"]),
    ("duration_ms", &["duration_ms"]),
    ("event_id", &["event.id", "event_id"]),
];

/// ECS `event.category` values and the family they fall in.
const CATEGORIES: &[(&str, &str)] = &[
    ("authentication", "access"),
    ("iam", "access"),
    ("session", "access"),
    ("database", "data_usage"),
    ("file", "data_usage"),
    ("web", "data_usage"),
];

/// The family of an event that names none: from the index name
/// (`access-*`, `data_usage-*`, `technical-*`), else `event.category`,
/// else technical.
fn family(flat: &Flat, index: Option<&str>) -> &'static str {
    if let Some(family) = index.and_then(index_family) {
        return family;
    }
    let categories = match flat.get("event.category") {
        Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(value)) => vec![value.as_str()],
        _ => vec![],
    };
    for category in categories {
        if let Some((_, family)) = CATEGORIES.iter().find(|(c, _)| *c == category) {
            return family;
        }
    }
    "technical"
}

/// The family an index name contains, in any case and with `-` for `_`
/// (compared in place: this runs once per document).
fn index_family(index: &str) -> Option<&'static str> {
    let normal = |b: u8| {
        if b == b'-' {
            b'_'
        } else {
            b.to_ascii_lowercase()
        }
    };
    ["data_usage", "access", "technical"]
        .into_iter()
        .find(|family| {
            index
                .as_bytes()
                .windows(family.len())
                .any(|window| window.iter().map(|&b| normal(b)).eq(family.bytes()))
        })
}

/// ECS `log.level` spellings onto the contract's severities.
fn severity(level: &str) -> String {
    match level.to_ascii_lowercase().as_str() {
        "trace" | "debug" => "debug",
        "info" | "information" | "informational" => "info",
        "notice" => "notice",
        "warn" | "warning" => "warning",
        "err" | "error" => "error",
        "crit" | "critical" | "alert" | "emerg" | "emergency" | "fatal" => "critical",
        other => return other.to_string(),
    }
    .to_string()
}

/// `doc` as a contract event. `index` is the document's index (for the
/// family), `id` its `_id` (the event id when the document has none).
pub fn to_contract(
    doc: Map<String, Value>,
    index: Option<&str>,
    id: Option<&str>,
) -> ContractEvent {
    flat_to_contract(flat(doc), index, id)
}

/// [`to_contract`] of a document already flat. Fields are set in the
/// contract's order (see [`ContractEvent`]).
pub fn flat_to_contract(mut flat: Flat, index: Option<&str>, id: Option<&str>) -> ContractEvent {
    let mut event = ContractEvent::new();
    for (column, sources) in COLUMNS {
        match sources.iter().find_map(|s| flat.remove(*s)) {
            Some(value) => {
                let value = match (*column, value) {
                    ("severity", Value::String(level)) => Value::String(severity(&level)),
                    ("role", Value::Array(roles)) => {
                        roles.into_iter().next().unwrap_or(Value::Null)
                    }
                    (_, value) => value,
                };
                event.set(column, value);
            }
            None if *column == "family" => event.set("family", Value::from(family(&flat, index))),
            None => {}
        }
    }
    // ECS durations are nanoseconds.
    if let Some(ns) = flat.get("event.duration").and_then(Value::as_f64)
        && !event.contains("duration_ms")
    {
        flat.remove("event.duration");
        event.set("duration_ms", Value::from(ns / 1e6));
    }
    if !event.contains("event_id")
        && let Some(id) = id
    {
        event.set("event_id", Value::from(id));
    }
    if !event.contains("action") {
        let fallback = flat.get("event.type").or(flat.get("event.kind"));
        let action = match fallback {
            Some(Value::Array(types)) => types.first().cloned(),
            Some(value) => Some(value.clone()),
            None => None,
        };
        event.set("action", action.unwrap_or_else(|| Value::from("log")));
    }
    // A document's own `attrs` object wins over its unmapped fields of the
    // same name; it is taken whole, not entry by entry.
    let mut attrs = match flat.remove("attrs") {
        Some(Value::Object(attrs)) => attrs,
        _ => Map::new(),
    };
    for (key, value) in flat {
        attrs.entry(key).or_insert(value);
    }
    if !attrs.is_empty() {
        event.set("attrs", Value::Object(attrs));
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn translate(doc: Value, index: Option<&str>, id: Option<&str>) -> Value {
        let Value::Object(doc) = doc else { panic!() };
        to_contract(doc, index, id).to_json()
    }

    #[test]
    fn ecs_fields_fill_the_contract_nested_or_dotted() {
        let doc = json!({
            "@timestamp": "2026-03-01T10:00:00Z",
            "organization": {"id": "acme"},
            "event": {"action": "user_login", "outcome": "failure", "category": ["authentication"], "duration": 1500000},
            "user.name": "j.doe",
            "source": {"ip": "10.1.2.3", "port": 5000},
            "host": {"name": "vpn1"},
            "log": {"level": "WARN"},
            "message": "bad password",
            "labels": {"shift": "night"}
        });
        let event = translate(doc, Some("logs-2026"), Some("abc"));
        assert_eq!(
            event,
            json!({
                "ts": "2026-03-01T10:00:00Z", "tenant": "acme", "family": "access",
                "action": "user_login", "outcome": "failure", "severity": "warning",
                "user": "j.doe", "src_ip": "10.1.2.3", "host": "vpn1", "message": "bad password",
                "duration_ms": 1.5, "event_id": "abc",
                "attrs": {"event.category": ["authentication"], "source.port": 5000, "labels.shift": "night"}
            })
        );
    }

    #[test]
    fn the_family_comes_from_the_index_then_the_category_then_defaults() {
        let doc = |category: &str| json!({"@timestamp": 0, "event": {"category": category}});
        let family = |doc: Value, index| translate(doc, index, None)["family"].clone();
        assert_eq!(family(doc("web"), Some("strata-access-2026")), "access");
        assert_eq!(family(doc("web"), Some("data-usage")), "data_usage");
        assert_eq!(family(doc("database"), None), "data_usage");
        assert_eq!(family(doc("process"), None), "technical");
        assert_eq!(
            family(json!({"family": "access"}), Some("technical")),
            "access"
        );
    }

    #[test]
    fn an_event_without_an_action_takes_its_type_or_log() {
        let typed = translate(json!({"event": {"type": ["start"]}}), None, None);
        assert_eq!(typed["action"], "start");
        assert_eq!(translate(json!({}), None, None)["action"], "log");
    }
}
