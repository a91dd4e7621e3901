//! Syslog messages (RFC 5424 and RFC 3164) onto event contract v1. A
//! message becomes an Elastic Common Schema document, as Elastic's own
//! syslog input names its fields, and goes through the ECS mapping; the
//! family is access for the security facilities (auth, authpriv) and
//! technical otherwise.

use chrono::{DateTime, Datelike, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value};
use syslog_loose::{ProcId, SyslogFacility, Variant, parse_message_with_year_exact_tz};

use super::contract::ContractEvent;
use super::ecs;

/// The event-contract object of `message`, received at `received`; or why
/// it is not syslog.
///
/// RFC 3164 timestamps carry no year and no zone: the zone is taken as UTC
/// and the year as the one that puts the time no more than a day after
/// `received` (a December message read in January is last year's).
pub fn to_contract(message: &str, received: DateTime<Utc>) -> Result<ContractEvent, String> {
    if message.trim().is_empty() {
        return Err("empty syslog message".into());
    }
    let year_of = |(month, day, hour, minute, second): syslog_loose::IncompleteDate| {
        let year = received.year();
        let this_year = Utc.with_ymd_and_hms(year, month, day, hour, minute, second);
        match this_year.single() {
            Some(at) if at > received + chrono::Duration::days(1) => year - 1,
            _ => year,
        }
    };
    let parsed = parse_message_with_year_exact_tz(message, year_of, Some(Utc), Variant::Either)
        .map_err(|why| format!("{why}: {}", quote(message)))?;
    let mut doc = Map::new();
    let time = parsed.timestamp.map_or(received, |t| t.with_timezone(&Utc));
    doc.insert(
        "@timestamp".into(),
        Value::from(time.to_rfc3339_opts(SecondsFormat::Micros, true)),
    );
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(value) = value.filter(|v| !v.is_empty() && *v != "-") {
            doc.insert(key.into(), Value::from(value));
        }
    };
    put("host.hostname", parsed.hostname);
    put("process.name", parsed.appname);
    put("event.action", parsed.msgid);
    put("log.syslog.msgid", parsed.msgid);
    put(
        "log.syslog.facility.name",
        parsed.facility.map(|f| f.as_str()),
    );
    put("log.level", parsed.severity.map(|s| s.as_str()));
    put("message", Some(parsed.msg.trim_end()));
    match parsed.procid {
        Some(ProcId::PID(pid)) => {
            doc.insert("process.pid".into(), Value::from(pid));
        }
        Some(ProcId::Name(name)) => put("process.pid", Some(name)),
        None => {}
    }
    for element in &parsed.structured_data {
        for (name, value) in element.params() {
            let key = format!("log.syslog.structured_data.{}.{name}", element.id);
            doc.insert(key, Value::from(value));
        }
    }
    let family = match parsed.facility {
        Some(SyslogFacility::LOG_AUTH | SyslogFacility::LOG_AUTHPRIV) => "access",
        _ => "technical",
    };
    Ok(ecs::to_contract(doc, Some(family), None))
}

/// The start of a message refused, for its reason.
fn quote(message: &str) -> String {
    const QUOTED_CHARS: usize = 120;
    let mut quoted: String = message.chars().take(QUOTED_CHARS).collect();
    if quoted.len() < message.len() {
        quoted.push('…');
    }
    format!("{quoted:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn received() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn an_rfc5424_message_maps_header_structured_data_and_text() {
        let line = r#"<38>1 2026-03-01T10:15:00.123+01:00 vpn-1 sshd 4242 LOGIN [origin ip="10.0.0.7" user="j.doe"][meta seq="5"] Accepted password for j.doe"#;
        let event = to_contract(line, received()).unwrap().to_json();
        assert_eq!(
            event,
            json!({
                "ts": "2026-03-01T09:15:00.123000Z",
                "family": "access",
                "action": "LOGIN",
                "severity": "info",
                "host": "vpn-1",
                "app": "sshd",
                "message": "Accepted password for j.doe",
                "attrs": {
                    "log.syslog.msgid": "LOGIN",
                    "log.syslog.facility.name": "auth",
                    "process.pid": 4242,
                    "log.syslog.structured_data.origin.ip": "10.0.0.7",
                    "log.syslog.structured_data.origin.user": "j.doe",
                    "log.syslog.structured_data.meta.seq": "5"
                }
            })
        );
    }

    #[test]
    fn an_rfc3164_message_takes_the_year_before_the_time_received() {
        let line = "<13>Dec 31 23:59:58 crm-2 billing[77]: nightly export done";
        let event = to_contract(line, received()).unwrap().to_json();
        assert_eq!(event["ts"], "2025-12-31T23:59:58.000000Z");
        assert_eq!(event["family"], "technical");
        assert_eq!(event["severity"], "notice");
        assert_eq!(event["host"], "crm-2");
        assert_eq!(event["app"], "billing");
        assert_eq!(event["action"], "log");
        assert_eq!(event["message"], "nightly export done");
        let line = "<86>Mar  1 11:59:00 gw su: session opened";
        let event = to_contract(line, received()).unwrap().to_json();
        assert_eq!(event["ts"], "2026-03-01T11:59:00.000000Z");
        assert_eq!(event["family"], "access");
    }

    #[test]
    fn an_empty_message_is_refused() {
        assert!(to_contract("  \r", received()).is_err());
    }
}
