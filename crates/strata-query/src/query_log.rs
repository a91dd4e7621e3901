//! The record of every query in the archive it reads: who asked, from
//! where, through what, what they asked and which tenants' data it read.
//!
//! A statement's record is made of events of the `access` family, written
//! as contract lines for the caller to store durably:
//!
//! - `archive_query`, before any answer: the statement and what its plan
//!   reads, with outcome `unknown` while it is answered, or `failure` when
//!   it was denied or failed;
//! - `archive_query_end`, once an answered statement is done: the rows
//!   returned, the bytes read, the duration, and whether it was answered
//!   whole, cut short or cancelled.
//!
//! Each is stored once in every tenant the statement read (so that a
//! client reads who looked at its data) and once in the reserved
//! [`SYSTEM_TENANT`]. Only the system copy carries the statement's text,
//! the full list of tenants read and the reason of a failure: a tenant's
//! copy carries the statement's fingerprint, in which nothing but SQL
//! keywords and the session's own names survive, because an auditor's text
//! or error may name other tenants.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use serde_json::{Map, Value, json};
use strata_schema::SYSTEM_TENANT;

use crate::session::Planned;

/// The action of a statement's first record.
pub const QUERY_ACTION: &str = "archive_query";
/// The action of an answered statement's last record.
pub const QUERY_END_ACTION: &str = "archive_query_end";

/// Who ran a statement, from where and through what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asker {
    /// The principal (or, on the command line, the OS user).
    pub user: String,
    /// Its role.
    pub role: String,
    /// The application that took the statement (`strata serve`, `strata sql`).
    pub app: String,
    /// How it came: `http`, `pg` or `cli`.
    pub interface: String,
    /// The peer's address, when it came over the network.
    pub src_ip: Option<IpAddr>,
    /// The connection or session it came in, when there is one.
    pub session_id: Option<String>,
}

/// One statement, as its records describe it.
#[derive(Debug, Clone)]
pub struct QueryRecord {
    /// Unique to the statement: the `event_id` of its first record.
    pub query_id: String,
    /// When it was received, UTC microseconds.
    pub started_at: i64,
    /// Who ran it.
    pub asker: Asker,
    /// Its text.
    pub statement: String,
    /// Its text with literals and names not of the session replaced (see
    /// [`fingerprint`]).
    pub fingerprint: String,
    /// What its plan reads (nothing when it was refused before planning).
    pub read: Planned,
}

/// How a statement's first record leaves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Planned and being answered.
    Answering,
    /// Refused: its role, its limits or a read-only session forbid it.
    Denied(String),
    /// Planning or running it failed before any answer.
    Failed(String),
}

impl Start {
    /// Why the statement was refused (nothing while it is answered).
    pub fn reason(&self) -> &str {
        match self {
            Start::Answering => "",
            Start::Denied(why) | Start::Failed(why) => why,
        }
    }
}

/// How an answered statement ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every row was sent.
    Answered,
    /// The answer stopped early (an error while running, a limit).
    CutShort(String),
    /// The client went away.
    Cancelled,
}

/// An answered statement's last record.
#[derive(Debug, Clone, PartialEq)]
pub struct End {
    /// How it ended.
    pub ending: Ending,
    /// Rows sent.
    pub rows: u64,
    /// Bytes read from storage.
    pub bytes_scanned: u64,
    /// From receipt to its end.
    pub duration_ms: f64,
}

/// The fields of one record, before it is copied per tenant.
struct Fields<'a> {
    action: &'static str,
    event_id: String,
    outcome: &'static str,
    result: &'static str,
    reason: Option<&'a str>,
    bytes: u64,
    end: Option<&'a End>,
}

impl QueryRecord {
    /// The contract lines (each ending in `\n`) of the statement's first
    /// record.
    pub fn start_lines(&self, start: &Start) -> Vec<u8> {
        let (outcome, result, reason) = match start {
            Start::Answering => ("unknown", "answering", None),
            Start::Denied(why) => ("failure", "denied", Some(why.as_str())),
            Start::Failed(why) => ("failure", "failed", Some(why.as_str())),
        };
        self.lines(&Fields {
            action: QUERY_ACTION,
            event_id: self.query_id.clone(),
            outcome,
            result,
            reason,
            bytes: self.read.bytes_in_files,
            end: None,
        })
    }

    /// The contract lines of an answered statement's last record.
    pub fn end_lines(&self, end: &End) -> Vec<u8> {
        let (outcome, result, reason) = match &end.ending {
            Ending::Answered => ("success", "answered", None),
            Ending::CutShort(why) => ("failure", "cut short", Some(why.as_str())),
            Ending::Cancelled => ("failure", "cancelled", None),
        };
        self.lines(&Fields {
            action: QUERY_END_ACTION,
            event_id: format!("{}.end", self.query_id),
            outcome,
            result,
            reason,
            bytes: end.bytes_scanned,
            end: Some(end),
        })
    }

    /// One line per tenant read, then the system copy.
    fn lines(&self, fields: &Fields) -> Vec<u8> {
        let all_read = (self.read.tenants.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(",");
        let mut out = Vec::new();
        // The system copy also tells a reading of the system tenant.
        let copies = (self.read.tenants.iter())
            .filter(|tenant| *tenant != SYSTEM_TENANT)
            .map(|tenant| {
                (
                    tenant.as_str(),
                    self.fingerprint.as_str(),
                    tenant.as_str(),
                    None,
                )
            })
            .chain([(
                SYSTEM_TENANT,
                self.statement.as_str(),
                all_read.as_str(),
                fields.reason,
            )]);
        for (tenant, message, tenants, reason) in copies {
            let event = self.event(fields, tenant, message, tenants, reason);
            serde_json::to_writer(&mut out, &event).expect("a JSON value writes");
            out.push(b'\n');
        }
        out
    }

    fn event(
        &self,
        fields: &Fields,
        tenant: &str,
        message: &str,
        tenants: &str,
        reason: Option<&str>,
    ) -> Value {
        let asker = &self.asker;
        let mut attrs = Map::new();
        attrs.insert("query_id".into(), self.query_id.clone().into());
        attrs.insert("fingerprint".into(), self.fingerprint.clone().into());
        attrs.insert("interface".into(), asker.interface.clone().into());
        attrs.insert("result".into(), fields.result.into());
        attrs.insert("tenants".into(), tenants.into());
        if let Some(reason) = reason {
            attrs.insert("reason".into(), reason.into());
        }
        let failed = fields.outcome == "failure";
        let mut event = json!({
            "ts": rfc3339(self.started_at),
            "tenant": tenant,
            "family": "access",
            "action": fields.action,
            "outcome": fields.outcome,
            "severity": if failed { "warning" } else { "info" },
            "user": asker.user,
            "role": asker.role,
            "app": asker.app,
            "resource_type": "sql",
            "session_id": asker.session_id.clone().unwrap_or_else(|| self.query_id.clone()),
            "message": message,
            "bytes": fields.bytes,
            "event_id": fields.event_id,
            "attrs": attrs,
        });
        let object = event.as_object_mut().expect("an object");
        if let Some(ip) = asker.src_ip {
            object.insert("src_ip".into(), ip.to_string().into());
        }
        if let Some(end) = fields.end {
            object.insert("records".into(), end.rows.into());
            object.insert("duration_ms".into(), end.duration_ms.max(0.0).into());
        }
        event
    }
}

/// `micros` since the epoch as RFC 3339 text with microseconds.
fn rfc3339(micros: i64) -> String {
    (DateTime::from_timestamp_micros(micros).unwrap_or_default())
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A new statement's id: the time and 64 random bits, as hex.
pub fn new_query_id(now_micros: i64) -> String {
    let random = RandomState::new().hash_one(now_micros);
    format!("{now_micros:014x}{random:016x}")
}

/// `sql` with everything that could name data replaced by `?`: literals,
/// comments dropped, and every identifier that is not one of `vocabulary`
/// (the session's tables, columns and functions; see
/// [`crate::QuerySession::vocabulary`]). Keywords, operators and `$n`
/// placeholders stay, so that statements differing only in their values
/// share a fingerprint. Text that does not tokenize is `?`.
pub fn fingerprint(sql: &str, vocabulary: &HashSet<String>) -> String {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return "?".to_string();
    };
    let mut out = String::new();
    let mut space = false;
    for token in tokens {
        let text = match token {
            Token::Whitespace(_) => {
                space = !out.is_empty();
                continue;
            }
            Token::EOF => break,
            Token::Word(word) => {
                let lower = word.value.to_lowercase();
                match word.quote_style {
                    None if vocabulary.contains(&lower) => lower,
                    None if word.keyword != Keyword::NoKeyword => word.value.to_uppercase(),
                    Some(_) if vocabulary.contains(&word.value) => word.to_string(),
                    _ => "?".to_string(),
                }
            }
            Token::Placeholder(p) => p,
            Token::Comma
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::LParen
            | Token::RParen
            | Token::Period
            | Token::Colon
            | Token::DoubleColon
            | Token::SemiColon
            | Token::LBracket
            | Token::RBracket
            | Token::Arrow
            | Token::LongArrow => token.to_string(),
            // Numbers, strings of every quoting and anything unusual.
            _ => "?".to_string(),
        };
        out_word(&mut out, &mut space, &text);
    }
    out
}

fn out_word(out: &mut String, space: &mut bool, text: &str) {
    if std::mem::take(space) {
        out.push(' ');
    }
    out.push_str(text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn vocabulary() -> HashSet<String> {
        ["events", "tenant", "user", "count", "ts", "attrs"]
            .map(String::from)
            .into()
    }

    #[test]
    fn a_fingerprint_keeps_keywords_and_session_names_and_hides_values_and_other_names() {
        let sql = "select count(*) AS globex_rows, \"Globex\" -- globex here\n\
                   FROM events /* acme */ WHERE tenant = 'globex' AND ts > 1700 \
                   AND attrs['k'] = $1 AND globex.user IS NULL";
        let print = fingerprint(sql, &vocabulary());
        assert_eq!(
            print,
            "SELECT count(*) AS ?, ? FROM events WHERE tenant = ? AND ts > ? \
             AND attrs[?] = $1 AND ?.user IS NULL"
        );
        assert!(!print.to_lowercase().contains("globex"), "{print}");
        assert!(!print.contains("acme"), "{print}");
        // Values differ, the fingerprint does not.
        let other = "select count(*) AS globex_rows, \"Globex\" FROM events WHERE tenant = 'x' \
                     AND ts > 1 AND attrs['y'] = $1 AND globex.user IS NULL";
        assert_eq!(fingerprint(other, &vocabulary()), print);
        assert_eq!(fingerprint("SELECT 'unterminated", &vocabulary()), "?");
    }

    fn record(tenants: &[&str]) -> QueryRecord {
        QueryRecord {
            query_id: new_query_id(1_780_000_000_000_000),
            started_at: 1_780_000_000_000_000,
            asker: Asker {
                user: "alice".into(),
                role: "auditor".into(),
                app: "strata serve".into(),
                interface: "http".into(),
                src_ip: Some("10.0.0.7".parse().unwrap()),
                session_id: None,
            },
            statement: "SELECT * FROM events WHERE tenant IN ('acme', 'globex')".into(),
            fingerprint: "SELECT * FROM events WHERE tenant IN (?, ?)".into(),
            read: Planned {
                tenants: tenants.iter().map(|t| t.to_string()).collect(),
                bytes_in_files: 4096,
            },
        }
    }

    fn parsed(lines: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(lines).unwrap();
        for line in text.lines() {
            strata_schema::parse_line(line.as_bytes()).expect("a contract line");
        }
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn each_tenant_read_gets_a_copy_that_names_no_other_tenant() {
        let record = record(&["acme", "globex"]);
        let events = parsed(&record.start_lines(&Start::Answering));
        let tenants: Vec<&str> = events
            .iter()
            .map(|e| e["tenant"].as_str().unwrap())
            .collect();
        assert_eq!(tenants, ["acme", "globex", SYSTEM_TENANT]);
        for event in &events[..2] {
            let tenant = event["tenant"].as_str().unwrap();
            let other = if tenant == "acme" { "globex" } else { "acme" };
            assert!(!event.to_string().contains(other), "{event}");
            assert_eq!(event["message"], record.fingerprint);
            assert_eq!(event["attrs"]["tenants"], tenant);
        }
        let system = &events[2];
        assert_eq!(system["message"], record.statement);
        assert_eq!(system["attrs"]["tenants"], "acme,globex");
        for event in &events {
            assert_eq!(event["action"], QUERY_ACTION);
            assert_eq!(event["outcome"], "unknown");
            assert_eq!(event["user"], "alice");
            assert_eq!(event["src_ip"], "10.0.0.7");
            assert_eq!(event["bytes"], 4096);
            assert_eq!(event["event_id"], record.query_id);
        }
    }

    #[test]
    fn a_reading_of_the_system_tenant_has_one_system_copy() {
        let record = record(&["acme", SYSTEM_TENANT]);
        let events = parsed(&record.start_lines(&Start::Answering));
        let tenants: Vec<&str> = (events.iter())
            .map(|e| e["tenant"].as_str().unwrap())
            .collect();
        assert_eq!(tenants, ["acme", SYSTEM_TENANT]);
        assert_eq!(events[1]["message"], record.statement);
    }

    #[test]
    fn a_refusal_goes_to_the_system_tenant_alone_with_its_reason() {
        let mut record = record(&[]);
        record.read.tenants = BTreeSet::new();
        let events = parsed(&record.start_lines(&Start::Denied("DDL not supported".into())));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["tenant"], SYSTEM_TENANT);
        assert_eq!(events[0]["outcome"], "failure");
        assert_eq!(events[0]["attrs"]["result"], "denied");
        assert_eq!(events[0]["attrs"]["reason"], "DDL not supported");
    }

    #[test]
    fn the_end_carries_rows_bytes_and_duration_and_no_reason_in_tenant_copies() {
        let record = record(&["acme"]);
        let end = End {
            ending: Ending::CutShort("over 256 MiB".into()),
            rows: 12,
            bytes_scanned: 999,
            duration_ms: 3.5,
        };
        let events = parsed(&record.end_lines(&end));
        assert_eq!(events.len(), 2);
        for event in &events {
            assert_eq!(event["action"], QUERY_END_ACTION);
            assert_eq!(event["event_id"], format!("{}.end", record.query_id));
            assert_eq!(event["records"], 12);
            assert_eq!(event["bytes"], 999);
            assert_eq!(event["duration_ms"], 3.5);
            assert_eq!(event["attrs"]["result"], "cut short");
        }
        assert!(events[0]["attrs"].get("reason").is_none());
        assert_eq!(events[1]["attrs"]["reason"], "over 256 MiB");
    }
}
