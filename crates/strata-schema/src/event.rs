//! Parsing and validating one NDJSON line against the event contract.
//!
//! A line is deserialized in one pass with a hand-written serde visitor: known
//! keys are checked against their field kind as they are met, unknown keys are
//! folded into `attrs`, and strings borrow from the line when they need no
//! unescaping. Every failure becomes a one-line human reason.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;

use chrono::{DateTime, Datelike};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::contract::{FieldKind, FieldSpec, contract};

/// The three log families of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Logins, logouts, sessions, privilege use.
    Access,
    /// Reads, queries, exports, transfers of data.
    DataUsage,
    /// Application, system, network and security events, incidents.
    Technical,
}

impl Family {
    /// Every family, in contract order.
    pub const ALL: [Family; 3] = [Family::Access, Family::DataUsage, Family::Technical];

    /// The name used in events, paths and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Access => "access",
            Family::DataUsage => "data_usage",
            Family::Technical => "technical",
        }
    }

    /// Parses a family name.
    pub fn parse(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One column value of a parsed event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Text(Cow<'a, str>),
    Timestamp(i64),
    Count(i64),
    Float(f64),
    Attrs(Vec<(Cow<'a, str>, Cow<'a, str>)>),
}

/// A validated event, borrowing its strings from the input line where it can.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Event time in UTC microseconds since the epoch.
    pub ts: i64,
    /// The event's tenant (validated for use in object paths).
    pub tenant: Cow<'a, str>,
    /// The event's log family.
    pub family: Family,
    /// Column values in contract order (system columns stay `Null`).
    pub(crate) values: Vec<Value<'a>>,
}

impl Event<'_> {
    /// The value of a text column (`action`, `user`, ...), if present.
    pub fn text(&self, column: &str) -> Option<&str> {
        match self.values.get(contract().index_of(column)?)? {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// Parses one NDJSON line into an event, or gives the reason it is rejected.
///
/// Lines of the usual shape go through a fast scanner ([`crate::scan`]);
/// any other line, and every line the scanner finds malformed, goes through
/// serde_json, which also words syntax errors. Both feed the same
/// [`Fields`], so a line gives the same event, or the same reason, either way.
pub fn parse_line(line: &[u8]) -> Result<Event<'_>, String> {
    if let Some(parsed) = crate::scan::parse_plain(line) {
        return parsed;
    }
    let mut de = serde_json::Deserializer::from_slice(line);
    let event = de.deserialize_map(LineVisitor).map_err(describe)?;
    de.end().map_err(describe)?;
    Ok(event)
}

/// Turns a serde_json error into a reason: contract violations lose serde's
/// position suffix (the field is named instead), syntax errors keep the column.
pub(crate) fn describe(err: serde_json::Error) -> String {
    let text = err.to_string();
    match err.classify() {
        serde_json::error::Category::Data => match text.rfind(" at line ") {
            Some(pos) => text[..pos].to_string(),
            None => text,
        },
        serde_json::error::Category::Eof => {
            "truncated JSON: the line ends inside a value".to_string()
        }
        _ => format!(
            "invalid JSON: {}",
            text.replace(" at line 1 column", " at column")
        ),
    }
}

/// Per-column parsing facts of the input fields, in contract order.
struct ColumnIndex {
    inputs: Vec<(usize, &'static FieldSpec)>,
    attrs: usize,
    required: Vec<(usize, &'static str)>,
    defaults: Vec<(usize, &'static str)>,
    width: usize,
}

fn column_index() -> &'static ColumnIndex {
    static INDEX: OnceLock<ColumnIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let c = contract();
        let input = || c.fields.iter().enumerate().filter(|(_, f)| !f.system);
        ColumnIndex {
            inputs: input().collect(),
            attrs: c.index_of("attrs").expect("contract has attrs"),
            required: input()
                .filter(|(_, f)| f.required)
                .map(|(i, f)| (i, f.name.as_str()))
                .collect(),
            defaults: input()
                .filter_map(|(i, f)| Some((i, f.default.as_deref()?)))
                .collect(),
            width: c.fields.len(),
        }
    })
}

/// The fields of one line as they are met, checked against the contract.
pub(crate) struct Fields<'a> {
    index: &'static ColumnIndex,
    values: Vec<Value<'a>>,
    /// Unknown top-level keys, for `attrs`.
    extra: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Where in `index.inputs` the next key is looked for first: producers
    /// write keys in a fixed order, mostly the contract's.
    next: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new() -> Self {
        let index = column_index();
        Fields {
            index,
            values: vec![Value::Null; index.width],
            extra: Vec::new(),
            next: 0,
        }
    }

    /// The input field named `key`, searched from where the last one was found.
    fn find(&mut self, key: &str) -> Option<(usize, &'static FieldSpec)> {
        let inputs = &self.index.inputs;
        let start = self.next.min(inputs.len());
        let position = (start..inputs.len())
            .chain(0..start)
            .find(|&i| same_text(inputs[i].1.name.as_bytes(), key.as_bytes()))?;
        self.next = position + 1;
        Some(inputs[position])
    }

    /// Takes one key and its value; a known field must satisfy its rule.
    pub(crate) fn set(&mut self, key: Cow<'a, str>, json: Json<'a>) -> Result<(), String> {
        match self.find(&key) {
            Some((column, spec)) => self.values[column] = convert(spec, json)?,
            None if matches!(json, Json::Null) => {}
            None => self.extra.push((key, json.into_text())),
        }
        Ok(())
    }

    /// The event, once every key is in: required fields present, defaults filled.
    pub(crate) fn finish(mut self) -> Result<Event<'a>, String> {
        let index = self.index;
        if !self.extra.is_empty() {
            match &mut self.values[index.attrs] {
                Value::Attrs(entries) => entries.append(&mut self.extra),
                slot => *slot = Value::Attrs(self.extra),
            }
        }
        for &(column, name) in &index.required {
            if matches!(self.values[column], Value::Null) {
                return Err(format!("missing required field `{name}`"));
            }
        }
        for &(column, default) in &index.defaults {
            if matches!(self.values[column], Value::Null) {
                self.values[column] = Value::Text(Cow::Borrowed(default));
            }
        }
        let values = self.values;
        let ts = match values[0] {
            Value::Timestamp(ts) => ts,
            _ => unreachable!("column 0 is the required timestamp"),
        };
        let tenant = match &values[1] {
            Value::Text(t) => t.clone(),
            _ => unreachable!("column 1 is the required tenant"),
        };
        let family = match &values[2] {
            Value::Text(f) => Family::parse(f).expect("validated against the contract"),
            _ => unreachable!("column 2 is the required family"),
        };
        Ok(Event {
            ts,
            tenant,
            family,
            values,
        })
    }
}

pub(crate) struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = Event<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with the event fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event<'de>, A::Error> {
        let mut fields = Fields::new();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let json: Json<'de> = map.next_value()?;
            fields.set(key.0, json).map_err(de::Error::custom)?;
        }
        fields.finish().map_err(de::Error::custom)
    }
}

/// Checks one known field and converts it to its column value.
fn convert<'a>(spec: &'static FieldSpec, json: Json<'a>) -> Result<Value<'a>, String> {
    if matches!(json, Json::Null) {
        return Ok(Value::Null);
    }
    let name = spec.name.as_str();
    match spec.kind {
        FieldKind::Timestamp => parse_ts(&json)
            .map(Value::Timestamp)
            .map_err(|why| format!("field `{name}`: {why}")),
        FieldKind::Tenant => {
            let tenant = expect_text(name, json)?;
            if valid_tenant(&tenant) {
                Ok(Value::Text(tenant))
            } else {
                Err(format!(
                    "field `{name}`: {tenant:?} is not a valid tenant id (lowercase letters, digits, '.', '_', '-'; starts with a letter or digit; at most 64 characters)"
                ))
            }
        }
        FieldKind::Enum => {
            let text = expect_text(name, json)?;
            match spec
                .values
                .iter()
                .find(|v| same_text(v.as_bytes(), text.as_bytes()))
            {
                Some(v) => Ok(Value::Text(Cow::Borrowed(v.as_str()))),
                None => Err(format!(
                    "field `{name}`: unknown value {text:?} (expected one of {})",
                    spec.values.join(", ")
                )),
            }
        }
        FieldKind::String => {
            let text = expect_text(name, json)?;
            if text.is_empty() && spec.required {
                return Err(format!("field `{name}` must not be empty"));
            }
            Ok(Value::Text(text))
        }
        FieldKind::Ip => {
            let text = expect_text(name, json)?;
            match text.parse::<IpAddr>() {
                // IPv4 text that parses is canonical already: leading zeros are refused.
                Ok(IpAddr::V4(_)) => Ok(Value::Text(text)),
                Ok(ip) => Ok(Value::Text(match ip.to_string() {
                    canonical if canonical == text => text,
                    canonical => Cow::Owned(canonical),
                })),
                Err(_) => Err(format!(
                    "field `{name}`: {text:?} is not an IPv4 or IPv6 address"
                )),
            }
        }
        FieldKind::Count => match json {
            Json::UInt(n) => match i64::try_from(n) {
                Ok(n) => Ok(Value::Count(n)),
                Err(_) => Err(format!(
                    "field `{name}` must be at most 9223372036854775807 (2^63 - 1), got {n}"
                )),
            },
            Json::Int(n) => Err(format!(
                "field `{name}` must be a non-negative integer, got {n}"
            )),
            other => Err(format!(
                "field `{name}` must be a non-negative integer, got {}",
                other.describe()
            )),
        },
        FieldKind::Float64 => {
            let n = match json {
                Json::UInt(n) => n as f64,
                Json::Int(n) => n as f64,
                Json::Float(n) => n,
                other => {
                    return Err(format!(
                        "field `{name}` must be a number, got {}",
                        other.describe()
                    ));
                }
            };
            if n >= 0.0 && n.is_finite() {
                Ok(Value::Float(n))
            } else {
                Err(format!(
                    "field `{name}` must be a non-negative number, got {n}"
                ))
            }
        }
        FieldKind::Attrs => match json {
            Json::Object(entries) => {
                // Sized up front: collecting through the filter would grow it.
                let mut attrs = Vec::with_capacity(entries.len());
                let present = entries
                    .into_iter()
                    .filter(|(_, v)| !matches!(v, Json::Null));
                attrs.extend(present.map(|(k, v)| (k, v.into_text())));
                Ok(Value::Attrs(attrs))
            }
            other => Err(format!(
                "field `{name}` must be an object, got {}",
                other.describe()
            )),
        },
    }
}

/// Whether two short byte strings are equal, compared in at most two
/// overlapping word loads each: field names and enum values are a few bytes
/// long, and a call to `memcmp` per candidate cost more than the comparison
/// (`memcmp` was 4% of parsing the benchmark's `long` blocks; net saving about 2%).
fn same_text(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    match n {
        0..4 => a == b,
        4..8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

fn expect_text<'a>(name: &str, json: Json<'a>) -> Result<Cow<'a, str>, String> {
    match json {
        Json::Str(s) => Ok(s),
        other => Err(format!(
            "field `{name}` must be a string, got {}",
            other.describe()
        )),
    }
}

/// The tenant holding the server's records of queries that read no
/// tenant's data or were refused: no principal may be given it and no
/// shipper may send events for it (see `docs/access.md`).
pub const SYSTEM_TENANT: &str = "strata-system";

/// Whether `t` is a tenant name of the contract: `[a-z0-9][a-z0-9._-]{0,63}`,
/// checked by hand (it is on the hot path).
pub fn valid_tenant(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// Earliest and latest accepted event years: four-digit years keep partition
/// paths well-formed, and anything earlier than 1900 is a producer bug.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

fn parse_ts(json: &Json) -> Result<i64, String> {
    let parsed = match json {
        Json::Str(s) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.to_utc())
            .map_err(|e| format!("{s:?} is not an RFC 3339 timestamp ({e})"))?,
        Json::Int(ms) => DateTime::from_timestamp_millis(*ms)
            .ok_or_else(|| format!("epoch milliseconds {ms} out of range"))?,
        Json::UInt(ms) => i64::try_from(*ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| format!("epoch milliseconds {ms} out of range"))?,
        other => {
            return Err(format!(
                "expected an RFC 3339 string or integer epoch milliseconds, got {}",
                other.describe()
            ));
        }
    };
    if !YEARS.contains(&parsed.year()) {
        return Err(format!(
            "{} is outside the supported years {}..={}",
            parsed.to_rfc3339(),
            YEARS.start(),
            YEARS.end()
        ));
    }
    Ok(parsed.timestamp_micros())
}

/// A JSON string that borrows from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Any JSON value, with borrowed strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// The JSON type name, for error messages.
    fn describe(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Int(_) | Json::UInt(_) => "an integer",
            Json::Float(_) => "a number",
            Json::Str(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The value as attrs text: scalars as written (`true`, `42`), nested values as compact JSON.
    fn into_text(self) -> Cow<'a, str> {
        match self {
            Json::Str(s) => s,
            // The common scalars without the formatting machinery.
            Json::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
            Json::UInt(n) => Cow::Owned(n.to_string()),
            Json::Int(n) => Cow::Owned(n.to_string()),
            other => {
                let mut out = String::new();
                other.write_json(&mut out);
                Cow::Owned(out)
            }
        }
    }

    fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => write!(out, "{b}").unwrap(),
            Json::Int(n) => write!(out, "{n}").unwrap(),
            Json::UInt(n) => write!(out, "{n}").unwrap(),
            Json::Float(n) => write!(out, "{n}").unwrap(),
            Json::Str(s) => out.push_str(&serde_json::to_string(s).expect("strings serialize")),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Json::Object(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    Json::Str(k.clone()).write_json(out);
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(if v >= 0 {
            Json::UInt(v as u64)
        } else {
            Json::Int(v)
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(Json::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_string())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(JsonSeed)? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            entries.push((key.0, map.next_value_seed(JsonSeed)?));
        }
        Ok(Json::Object(entries))
    }
}

struct JsonSeed;

impl<'de> DeserializeSeed<'de> for JsonSeed {
    type Value = Json<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a valid line; the line is leaked so tests can build it inline.
    fn ok(line: &str) -> Event<'static> {
        let line: &'static str = Box::leak(line.to_string().into_boxed_str());
        parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn rejected(line: &str) -> String {
        parse_line(line.as_bytes()).expect_err(line)
    }

    const BASE: &str = r#""tenant":"acme","family":"access","action":"login""#;

    #[test]
    fn accepts_rfc3339_with_offset_and_epoch_millis_as_the_same_instant() {
        let a = ok(&format!(r#"{{"ts":"2025-03-04T10:00:00+02:00",{BASE}}}"#));
        let b = ok(&format!(r#"{{"ts":"2025-03-04T08:00:00Z",{BASE}}}"#));
        let c = ok(&format!(r#"{{"ts":1741075200000,{BASE}}}"#));
        assert_eq!(a.ts, b.ts);
        assert_eq!(b.ts, c.ts);
        assert_eq!(c.ts, 1_741_075_200_000_000);
    }

    #[test]
    fn optional_fields_default_and_unknown_keys_fold_into_attrs() {
        let e = ok(&format!(
            r#"{{"ts":0,{BASE},"attrs":{{"mfa":true,"n":42,"x":null}},"shift":"night","depth":1.5,"tags":["a",1]}}"#
        ));
        assert_eq!(e.text("outcome"), Some("unknown"));
        assert_eq!(e.text("severity"), None);
        let Value::Attrs(attrs) = &e.values[contract().index_of("attrs").unwrap()] else {
            panic!("attrs missing")
        };
        let attrs: Vec<(&str, &str)> = attrs
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        assert_eq!(
            attrs,
            [
                ("mfa", "true"),
                ("n", "42"),
                ("shift", "night"),
                ("depth", "1.5"),
                ("tags", r#"["a",1]"#)
            ]
        );
    }

    #[test]
    fn ip_addresses_are_stored_canonically() {
        let e = ok(&format!(
            r#"{{"ts":0,{BASE},"src_ip":"2001:0db8:0000:0000:0000:0000:0000:0001"}}"#
        ));
        assert_eq!(e.text("src_ip"), Some("2001:db8::1"));
        let e = ok(&format!(r#"{{"ts":0,{BASE},"src_ip":"10.1.20.3"}}"#));
        assert_eq!(e.text("src_ip"), Some("10.1.20.3"));
        assert!(
            rejected(&format!(r#"{{"ts":0,{BASE},"src_ip":"10.01.20.3"}}"#)).contains("src_ip")
        );
    }

    #[test]
    fn rejects_each_contract_violation_with_a_reason_naming_the_field() {
        let cases = [
            (
                r#"{"ts":"2025-02-30T00:00:00Z","tenant":"acme","family":"access","action":"x"}"#,
                "field `ts`",
            ),
            (
                r#"{"ts":"yesterday","tenant":"acme","family":"access","action":"x"}"#,
                "field `ts`",
            ),
            (
                r#"{"ts":1.5,"tenant":"acme","family":"access","action":"x"}"#,
                "field `ts`",
            ),
            (
                r#"{"ts":0,"tenant":"Acme","family":"access","action":"x"}"#,
                "field `tenant`",
            ),
            (
                r#"{"ts":0,"tenant":"../etc","family":"access","action":"x"}"#,
                "field `tenant`",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"billing","action":"x"}"#,
                "field `family`",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"access"}"#,
                "missing required field `action`",
            ),
            (
                r#"{"tenant":"acme","family":"access","action":"x"}"#,
                "missing required field `ts`",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"access","action":"x","bytes":-5}"#,
                "field `bytes`",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"access","action":"x","bytes":9223372036854775808}"#,
                "field `bytes` must be at most 9223372036854775807",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"access","action":"x","records":"7"}"#,
                "field `records`",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"access","action":"x","duration_ms":-1}"#,
                "field `duration_ms`",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"access","action":"x","src_ip":"10.0.0.256"}"#,
                "field `src_ip`",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"access","action":"x","outcome":"ok"}"#,
                "field `outcome`",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"access","action":"x","user":42}"#,
                "field `user`",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"access","action":""}"#,
                "field `action`",
            ),
            (
                r#"{"ts":0,"tenant":"acme","family":"access","action":"x""#,
                "truncated JSON",
            ),
            (r#"[1,2,3]"#, "expected a JSON object"),
            (r#""just a string""#, "expected a JSON object"),
            (
                r#"{"ts":0,"tenant":"acme","family":"access","action":"x"} trailing"#,
                "invalid JSON",
            ),
        ];
        for (line, expected) in cases {
            let reason = rejected(line);
            assert!(
                reason.contains(expected),
                "{line}\n  gave {reason:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn tenant_rule_matches_the_documented_regex() {
        assert!(valid_tenant("a"));
        assert!(valid_tenant("0acme.eu_2-x"));
        assert!(valid_tenant(&"a".repeat(64)));
        assert!(!valid_tenant(&"a".repeat(65)));
        assert!(!valid_tenant(""));
        assert!(!valid_tenant("-acme"));
        assert!(!valid_tenant(".acme"));
        assert!(!valid_tenant("acme/x"));
        assert!(!valid_tenant("acmé"));
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse_line(&bytes);
        }

        #[test]
        fn same_text_agrees_with_equality(
            a in proptest::collection::vec(b'a'..=b'c', 0..24),
            other in proptest::collection::vec(b'a'..=b'c', 0..24),
            (at, byte) in (0..24usize, b'a'..=b'c'),
        ) {
            // Another string, and the same one changed in one place (or not).
            let mut changed = a.clone();
            if let Some(slot) = changed.get_mut(at) {
                *slot = byte;
            }
            proptest::prop_assert_eq!(same_text(&a, &other), a == other);
            proptest::prop_assert_eq!(same_text(&a, &changed), a == changed);
        }

        #[test]
        fn epoch_millis_round_trip(ms in -2_208_988_800_000i64..253_402_300_799_000) {
            let line = format!(r#"{{"ts":{ms},"tenant":"t","family":"technical","action":"a"}}"#);
            let e = parse_line(line.as_bytes()).unwrap();
            proptest::prop_assert_eq!(e.ts, ms * 1000);
        }
    }
}
