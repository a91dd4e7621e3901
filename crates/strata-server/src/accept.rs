//! Taking events in: each line of event-contract NDJSON is parsed,
//! checked against the sender's tenants, and either accepted (kept as the
//! line for the write-ahead log and as rows for the buffers) or rejected
//! alone with its reason. Every protocol ends here: NDJSON as lines, the
//! others as the contract events their translators make.

use std::collections::BTreeMap;

use crate::dedup::EventKey;
use crate::rows::Rows;
use crate::translate::contract::ContractEvent;
use bytes::Bytes;
use serde_json::Value;
use strata_access::Authenticated;
use strata_ingest::block::lines;
use strata_schema::{Event, SYSTEM_TENANT, parse_line};

/// The reason `parse_line` gives a line without a tenant.
const NO_TENANT: &str = "missing required field `tenant`";

/// Bytes of a rejected line quoted back to the sender.
const QUOTED_BYTES: usize = 256;

/// A line refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    /// 1-based number of the line (or item) in the request.
    pub line: u64,
    /// Why it was refused.
    pub reason: String,
    /// The tenant it named, when it named one.
    #[serde(skip)]
    pub tenant: Option<String>,
}

/// What a request's events became.
#[derive(Debug, Default, Clone)]
pub struct Accepted {
    /// The accepted events as contract lines, each ending in `\n`: what the
    /// write-ahead log stores and a replay parses again.
    pub lines: Bytes,
    /// The key of each line, for deduplication (none without `event_id`).
    pub event_ids: Vec<Option<EventKey>>,
    /// The accepted events as rows.
    pub rows: Rows,
    /// Events accepted per tenant.
    pub per_tenant: BTreeMap<String, u64>,
    /// Lines refused, in order.
    pub rejected: Vec<Rejection>,
}

impl Accepted {
    /// Events accepted.
    pub fn events(&self) -> u64 {
        self.per_tenant.values().sum()
    }
}

/// Parses the NDJSON `body` sent by `sender`, stamping `ingested_at`.
///
/// An event naming a tenant the sender is restricted from is refused; an
/// event without a tenant takes the sender's only tenant, when it has
/// exactly one.
pub fn accept_lines(body: &Bytes, sender: &Authenticated, ingested_at: i64) -> Accepted {
    accept(body, Some(sender), ingested_at)
}

/// Parses lines this server accepted before (its write-ahead log's, its
/// own query records), stamping `ingested_at`: every tenant, the reserved
/// one included.
pub fn accept_logged(body: &Bytes, ingested_at: i64) -> Accepted {
    accept(body, None, ingested_at)
}

/// [`accept_lines`], checking tenants against `sender` when there is one.
fn accept(body: &Bytes, sender: Option<&Authenticated>, ingested_at: i64) -> Accepted {
    let default_tenant = match sender.map(|s| s.tenants.as_slice()) {
        Some([only]) => Some(only.as_str()),
        _ => None,
    };
    let mut rejected = Vec::new();
    let mut kept: Vec<&[u8]> = Vec::new();
    // Lines given the sender's tenant, with their numbers: parsed after the
    // others, once this list no longer grows.
    let mut completed: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    for (index, (_, line)) in lines(body).enumerate() {
        let line = line.trim_ascii();
        let number = index as u64 + 1;
        if line.is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(event) => {
                if let Some(refusal) = sender.and_then(|s| refuse(&event, s, number)) {
                    rejected.push(refusal);
                } else {
                    kept.push(line);
                    events.push(event);
                }
            }
            Err(reason) if reason == NO_TENANT && default_tenant.is_some() => {
                completed.push((number, with_tenant(line, default_tenant.expect("some"))));
            }
            Err(reason) => rejected.push(Rejection {
                line: number,
                reason: quote(reason, line),
                tenant: None,
            }),
        }
    }
    let mut completed_kept = Vec::new();
    for (number, line) in &completed {
        match parse_line(line) {
            Ok(event) => {
                completed_kept.push(line.as_slice());
                events.push(event);
            }
            Err(reason) => rejected.push(Rejection {
                line: *number,
                reason: quote(reason, line),
                tenant: None,
            }),
        }
    }
    let size: usize = kept
        .iter()
        .chain(&completed_kept)
        .map(|l| l.len() + 1)
        .sum();
    // A body of accepted lines only, each as sent and ending in `\n` (what
    // shippers send), is stored as it came rather than copied: every byte
    // of it counted above, so nothing was trimmed, skipped or completed.
    let lines = if completed.is_empty() && size == body.len() && body.ends_with(b"\n") {
        body.clone()
    } else {
        let mut lines = Vec::with_capacity(size);
        for line in kept.iter().chain(&completed_kept) {
            lines.extend_from_slice(line);
            lines.push(b'\n');
        }
        lines.into()
    };
    // Lines and events are in the same order.
    finish(&events, lines, rejected, ingested_at)
}

/// Checks the events a protocol translator made, one per item of the
/// request (`None` for an item it refused itself, so that the others keep
/// their numbers), as [`accept_lines`] checks lines: without writing each
/// as a line and parsing it again. The write-ahead log's lines are written
/// from the accepted events.
pub fn accept_objects(
    mut objects: Vec<Option<ContractEvent>>,
    sender: &Authenticated,
    ingested_at: i64,
) -> Accepted {
    if let [only] = sender.tenants.as_slice() {
        for object in objects.iter_mut().flatten() {
            if object.get("tenant").is_none_or(Value::is_null) {
                object.set("tenant", Value::from(only.as_str()));
            }
        }
    }
    let mut rejected = Vec::new();
    let mut events = Vec::with_capacity(objects.len());
    for (index, object) in objects.iter().enumerate() {
        let number = index as u64 + 1;
        let Some(object) = object else { continue };
        match object.parse() {
            Ok(event) => match refuse(&event, sender, number) {
                Some(refusal) => rejected.push(refusal),
                None => events.push(event),
            },
            Err(reason) => {
                let text = object.to_json().to_string();
                rejected.push(Rejection {
                    line: number,
                    reason: quote(reason, text.as_bytes()),
                    tenant: None,
                });
            }
        }
    }
    let mut lines = Vec::new();
    for event in &events {
        event.write_line(&mut lines);
        lines.push(b'\n');
    }
    finish(&events, lines.into(), rejected, ingested_at)
}

/// What `events` (accepted, written as `lines` in the same order) and the
/// `rejected` items of a request become.
fn finish(
    events: &[Event],
    lines: Bytes,
    mut rejected: Vec<Rejection>,
    ingested_at: i64,
) -> Accepted {
    rejected.sort_by_key(|r| r.line);
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for event in events {
        *counts.entry(&event.tenant).or_insert(0) += 1;
    }
    let per_tenant = counts
        .into_iter()
        .map(|(t, n)| (t.to_string(), n))
        .collect();
    let rows = Rows::of(events, ingested_at)
        .expect("batches of validated events build: their values fit the contract's types");
    let event_ids = events
        .iter()
        .map(|e| Some(EventKey::of(&e.tenant, e.text("event_id")?)))
        .collect();
    Accepted {
        lines,
        event_ids,
        rows,
        per_tenant,
        rejected,
    }
}

/// Why `sender` may not store `event`, if it may not.
fn refuse(event: &Event, sender: &Authenticated, line: u64) -> Option<Rejection> {
    if event.tenant == SYSTEM_TENANT {
        return Some(Rejection {
            line,
            reason: format!(
                "tenant `{SYSTEM_TENANT}` is reserved for the server's own records of queries"
            ),
            tenant: None,
        });
    }
    if sender.covers(&event.tenant) {
        return None;
    }
    Some(Rejection {
        line,
        reason: format!(
            "tenant `{}` is outside the tenants of principal `{}` ({})",
            event.tenant,
            sender.name,
            sender.tenants.join(", ")
        ),
        tenant: Some(event.tenant.to_string()),
    })
}

/// `line` (a JSON object without `tenant`) with `tenant` added first.
fn with_tenant(line: &[u8], tenant: &str) -> Vec<u8> {
    let rest = line[1..].trim_ascii_start();
    let field = format!("{{\"tenant\":{}", serde_json::Value::from(tenant));
    let mut out = Vec::with_capacity(line.len() + field.len() + 1);
    out.extend_from_slice(field.as_bytes());
    if !rest.starts_with(b"}") {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

/// The reason with the start of the line, so that the sender can find it.
fn quote(reason: String, line: &[u8]) -> String {
    let shown = &line[..line.len().min(QUOTED_BYTES)];
    let ellipsis = if line.len() > QUOTED_BYTES { "…" } else { "" };
    format!(
        "{reason}: {}{ellipsis}",
        String::from_utf8_lossy(shown).trim_end()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_access::Role;

    fn sender(tenants: &[&str]) -> Authenticated {
        Authenticated {
            name: "shipper".into(),
            role: Role::Ingest,
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
        }
    }

    const GOOD: &str =
        r#"{"ts":"2026-03-01T10:00:00Z","tenant":"acme","family":"access","action":"login"}"#;

    #[test]
    fn each_bad_line_is_refused_alone_with_its_number_and_reason() {
        let body = format!("{GOOD}\n\nnot json\n{{\"ts\":1}}\n{GOOD}");
        let accepted = accept_lines(&Bytes::from(body), &sender(&[]), 7);
        assert_eq!(accepted.events(), 2);
        assert_eq!(accepted.lines, format!("{GOOD}\n{GOOD}\n").as_bytes());
        let lines: Vec<u64> = accepted.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4]);
        assert!(accepted.rejected[0].reason.contains("not json"));
        assert_eq!(accepted.rows.partitions().count(), 1);
        assert_eq!(accepted.rows.len(), 2);
    }

    #[test]
    fn a_body_of_good_lines_is_kept_as_sent_and_any_other_is_rewritten() {
        let body = Bytes::from(format!("{GOOD}\n{GOOD}\n"));
        let accepted = accept_lines(&body, &sender(&[]), 7);
        assert_eq!(accepted.lines, body);
        assert_eq!(accepted.lines.as_ptr(), body.as_ptr(), "not copied");
        let clean = format!("{GOOD}\n{GOOD}\n");
        for sent in [
            format!("{GOOD}\n{GOOD}"),
            format!("{GOOD} \n{GOOD}"),
            format!("{GOOD}\r\n{GOOD}\n"),
            format!(" {GOOD}\n{GOOD}\n"),
            format!("{GOOD}\n\n{GOOD}\n"),
        ] {
            let accepted = accept_lines(&Bytes::from(sent.clone()), &sender(&[]), 7);
            assert_eq!(accepted.lines, clean.as_bytes(), "{sent:?}");
        }
    }

    #[test]
    fn a_restricted_sender_keeps_to_its_tenants_and_fills_in_its_only_one() {
        let other = GOOD.replace("acme", "globex");
        let untenanted = r#"{ "ts":"2026-03-01T10:00:00Z","family":"access","action":"login"}"#;
        let body = format!("{GOOD}\n{other}\n{untenanted}\n");
        let accepted = accept_lines(&Bytes::from(body), &sender(&["acme"]), 7);
        assert_eq!(accepted.per_tenant, BTreeMap::from([("acme".into(), 2)]));
        assert_eq!(accepted.rejected.len(), 1);
        let refusal = &accepted.rejected[0];
        assert_eq!(
            (refusal.line, refusal.tenant.as_deref()),
            (2, Some("globex"))
        );
        assert!(
            refusal.reason.contains("outside the tenants"),
            "{refusal:?}"
        );
        // The stored line names the tenant, so a replay gives the same event.
        let stored = String::from_utf8(accepted.lines.to_vec()).unwrap();
        assert!(stored.ends_with(
            "{\"tenant\":\"acme\",\"ts\":\"2026-03-01T10:00:00Z\",\"family\":\"access\",\"action\":\"login\"}\n"
        ));
        // With two tenants there is no default.
        let accepted = accept_lines(&Bytes::from(untenanted), &sender(&["a", "b"]), 7);
        assert_eq!(accepted.events(), 0);
        assert!(accepted.rejected[0].reason.contains("tenant"));
    }

    #[test]
    fn the_tenant_goes_first_in_any_object() {
        assert_eq!(with_tenant(b"{}", "acme"), b"{\"tenant\":\"acme\"}");
        assert_eq!(with_tenant(b"{ }", "acme"), b"{\"tenant\":\"acme\"}");
        assert_eq!(
            with_tenant(b"{ \"a\":1}", "acme"),
            b"{\"tenant\":\"acme\",\"a\":1}"
        );
        // A line still missing a field after that is refused for it.
        let accepted = accept_lines(&Bytes::from_static(b"{\"ts\":1}"), &sender(&["acme"]), 7);
        assert_eq!(accepted.events(), 0);
        assert!(
            accepted.rejected[0].reason.contains("`family`"),
            "{:?}",
            accepted.rejected
        );
    }
}
