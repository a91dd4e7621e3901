//! Serialising an assembled event as one NDJSON line.

use std::fmt;
use std::io::Write;

use super::EventWriter;
use super::pieces::{Duration, Ev, Qualified, Val};
use crate::text::push_json_str;

impl EventWriter {
    pub(super) fn write_line(&mut self, ev: &Ev, ts: i64) {
        let buf = &mut self.buf;
        let scratch = &mut self.scratch;
        buf.extend_from_slice(b"{\"ts\":");
        match ev.ts_offset {
            Some(offset) => self.ts_fmt.write(buf, ts, offset),
            None => {
                let _ = write!(buf, "{ts}");
            }
        }
        let tenant = self.tenants[ev.tenant as usize].name.as_str();
        key(buf, "tenant");
        push_json_str(buf, tenant.as_bytes());
        key(buf, "family");
        push_json_str(buf, ev.family.as_str().as_bytes());
        key(buf, "action");
        push_json_str(buf, ev.action.as_str().as_bytes());
        if let Some(outcome) = ev.outcome {
            key(buf, "outcome");
            push_json_str(buf, outcome.as_bytes());
        }
        if let Some(severity) = ev.severity {
            key(buf, "severity");
            push_json_str(buf, severity.as_str().as_bytes());
        }
        if let Some(user) = ev.user {
            key(buf, "user");
            push_display(buf, scratch, Qualified(user, tenant));
            if ev.show_role {
                key(buf, "role");
                push_json_str(buf, user.role.as_str().as_bytes());
            }
        }
        if let Some(host) = ev.host {
            key(buf, "host");
            push_display(buf, scratch, host);
        }
        if let Some(app) = ev.app {
            key(buf, "app");
            push_json_str(buf, app.as_bytes());
        }
        if let Some(resource) = ev.resource {
            key(buf, "resource");
            push_display(buf, scratch, resource);
            if ev.show_resource_type {
                key(buf, "resource_type");
                push_json_str(buf, resource.type_name().as_bytes());
            }
        }
        if let Some(session) = ev.session {
            key(buf, "session_id");
            let _ = write!(buf, "\"{session:016x}\"");
        }
        if ev.show_message && !self.msg.is_empty() {
            key(buf, "message");
            push_json_str(buf, &self.msg);
        }
        if let Some(ip) = ev.ip {
            key(buf, "src_ip");
            push_display(buf, scratch, ip);
        }
        if let Some(bytes) = ev.bytes {
            key(buf, "bytes");
            let _ = write!(buf, "{bytes}");
        }
        if let Some(records) = ev.records {
            key(buf, "records");
            let _ = write!(buf, "{records}");
        }
        match ev.duration {
            Some(Duration::Millis(ms)) => {
                key(buf, "duration_ms");
                let _ = write!(buf, "{ms}");
            }
            Some(Duration::Micros(us)) => {
                key(buf, "duration_ms");
                let _ = write!(buf, "{}.{:03}", us / 1000, us % 1000);
            }
            None => {}
        }
        key(buf, "event_id");
        let _ = write!(buf, "\"evt-{:012x}-{}\"", self.id_prefix, self.counter);
        for &(k, v) in ev.extras.as_slice() {
            key(buf, k);
            push_val(buf, scratch, v);
        }
        if ev.attrs.len > 0 {
            key(buf, "attrs");
            buf.push(b'{');
            for (i, &(k, v)) in ev.attrs.as_slice().iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                push_json_str(buf, k.as_bytes());
                buf.push(b':');
                push_val(buf, scratch, v);
            }
            buf.push(b'}');
        }
        buf.extend_from_slice(b"}\n");
    }
}

/// Appends `,"name":`; keys are fixed identifiers that need no escaping.
fn key(buf: &mut Vec<u8>, name: &str) {
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\":");
}

/// Formats `value` into `scratch`, then appends it as an escaped string.
fn push_display(buf: &mut Vec<u8>, scratch: &mut Vec<u8>, value: impl fmt::Display) {
    scratch.clear();
    let _ = write!(scratch, "{value}");
    push_json_str(buf, scratch);
}

fn push_val(buf: &mut Vec<u8>, scratch: &mut Vec<u8>, v: Val) {
    match v {
        Val::Str(s) => push_json_str(buf, s.as_bytes()),
        Val::Int(n) => {
            let _ = write!(buf, "{n}");
        }
        Val::Bool(b) => buf.extend_from_slice(if b { b"true" } else { b"false" }),
        Val::Ticket(t) => push_display(buf, scratch, t),
    }
}
