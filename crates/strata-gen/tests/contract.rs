//! End-to-end checks of the generated NDJSON against the event contract.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeZone, Timelike, Utc};
use serde_json::{Map, Value};
use strata_gen::{GenConfig, GenSummary, TimeOrder, TsFormat, generate, tenant_names};

fn run(config: &GenConfig) -> (Vec<u8>, GenSummary) {
    let mut out = Vec::new();
    let summary = generate(config, &mut out).expect("generate");
    (out, summary)
}

fn small(events: u64) -> GenConfig {
    GenConfig {
        events,
        ..GenConfig::default()
    }
}

fn parse_lines(out: &[u8]) -> Vec<Map<String, Value>> {
    let text = std::str::from_utf8(out).expect("utf-8");
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(map)) => map,
            other => panic!("not a JSON object: {line}: {other:?}"),
        })
        .collect()
}

/// `ts` as epoch milliseconds, from an RFC 3339 string or an integer.
fn ts_millis(v: &Value) -> i64 {
    match v {
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("bad ts {s}: {e}"))
            .timestamp_millis(),
        Value::Number(n) => n.as_i64().expect("integer ts"),
        other => panic!("bad ts {other}"),
    }
}

fn valid_tenant(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 64
        && ok(b[0])
        && b[1..]
            .iter()
            .all(|&c| ok(c) || matches!(c, b'.' | b'_' | b'-'))
}

const ACCESS: &[&str] = &[
    "login",
    "logout",
    "login_failed",
    "vpn_connect",
    "vpn_disconnect",
    "session_timeout",
    "privilege_escalation",
    "admin_action",
    "db_connect",
    "app_access",
];
const DATA: &[&str] = &[
    "read", "query", "export", "download", "upload", "update", "delete", "transmit",
];
const TECH: &[&str] = &[
    "error",
    "warning",
    "service_start",
    "service_stop",
    "incident_opened",
    "incident_resolved",
    "config_change",
    "security_alert",
    "network_event",
];
const KNOWN: &[&str] = &[
    "ts",
    "tenant",
    "family",
    "action",
    "outcome",
    "severity",
    "user",
    "role",
    "host",
    "app",
    "resource",
    "resource_type",
    "session_id",
    "message",
    "src_ip",
    "bytes",
    "records",
    "duration_ms",
    "event_id",
    "attrs",
];

#[test]
fn deterministic_per_seed() {
    let config = small(5_000);
    let (a, sa) = run(&config);
    let (b, sb) = run(&config);
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    let (c, _) = run(&GenConfig {
        seed: 43,
        ..config.clone()
    });
    assert_ne!(a, c);
    // Same for the shuffled, mixed-format path.
    let shuffled = GenConfig {
        order: TimeOrder::Shuffled,
        ts_format: TsFormat::Mixed,
        ..config
    };
    assert_eq!(run(&shuffled).0, run(&shuffled).0);
}

#[test]
fn summary_matches_output() {
    let (out, summary) = run(&small(3_000));
    assert_eq!(summary.events, 3_000);
    assert_eq!(summary.bytes, out.len() as u64);
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 3_000);
}

#[test]
fn every_line_honours_the_contract() {
    for (order, ts_format) in [
        (TimeOrder::Sorted, TsFormat::Rfc3339),
        (TimeOrder::Sorted, TsFormat::Mixed),
        (TimeOrder::Sorted, TsFormat::EpochMillis),
        (TimeOrder::Shuffled, TsFormat::Mixed),
    ] {
        let config = GenConfig {
            events: 20_000,
            tenants: 30,
            order,
            ts_format,
            ..GenConfig::default()
        };
        let (out, _) = run(&config);
        let lines = parse_lines(&out);
        assert_eq!(lines.len(), 20_000);

        let tenants: HashSet<String> = tenant_names(30).into_iter().collect();
        let start = config.start.timestamp_millis();
        let end = start + i64::from(config.days) * 86_400_000;
        let mut ids = HashSet::new();
        let mut last = i64::MIN;
        let mut sorted = true;
        for line in &lines {
            for key in ["ts", "tenant", "family", "action"] {
                assert!(line.contains_key(key), "missing {key}: {line:?}");
            }
            let ts = ts_millis(&line["ts"]);
            assert!((start..end).contains(&ts), "ts out of range: {line:?}");
            sorted &= ts >= last;
            last = ts;

            let tenant = line["tenant"].as_str().unwrap();
            assert!(valid_tenant(tenant) && tenants.contains(tenant), "{tenant}");

            let action = line["action"].as_str().unwrap();
            let family = line["family"].as_str().unwrap();
            let actions = match family {
                "access" => ACCESS,
                "data_usage" => DATA,
                "technical" => TECH,
                other => panic!("bad family {other}"),
            };
            assert!(actions.contains(&action), "{family}/{action}");

            if let Some(o) = line.get("outcome") {
                assert!(["success", "failure", "unknown"].contains(&o.as_str().unwrap()));
            }
            if action == "login_failed" {
                assert!(line.get("outcome").is_none_or(|o| o == "failure"));
            }
            if let Some(s) = line.get("severity") {
                let levels = ["debug", "info", "notice", "warning", "error", "critical"];
                assert!(levels.contains(&s.as_str().unwrap()));
            }
            if let Some(ip) = line.get("src_ip") {
                let text = ip.as_str().unwrap();
                let parsed: std::net::IpAddr = text.parse().expect("valid ip");
                assert_eq!(parsed.to_string(), text, "canonical ip");
            }
            if let Some(user) = line.get("user") {
                assert!(user.as_str().unwrap().ends_with(&format!("@{tenant}")));
            }
            for key in ["bytes", "records"] {
                if let Some(v) = line.get(key) {
                    assert!(v.is_u64(), "{key}: {v}");
                }
            }
            if let Some(d) = line.get("duration_ms") {
                assert!(d.as_f64().unwrap() >= 0.0);
            }
            if let Some(attrs) = line.get("attrs") {
                let attrs = attrs.as_object().expect("attrs object");
                assert!(!attrs.is_empty());
                assert!(
                    attrs
                        .values()
                        .all(|v| v.is_string() || v.is_number() || v.is_boolean())
                );
            }
            for (k, v) in line {
                assert!(!v.is_null(), "null {k}");
                if !KNOWN.contains(&k.as_str()) {
                    assert!(v.is_string() || v.is_number() || v.is_boolean());
                }
            }
            let id = line["event_id"].as_str().expect("event_id");
            assert!(ids.insert(id.to_string()), "duplicate {id}");
        }
        match order {
            TimeOrder::Sorted => assert!(sorted, "{ts_format:?} not sorted"),
            TimeOrder::Shuffled => assert!(!sorted, "shuffled output is sorted"),
        }
    }
}

#[test]
fn mixed_format_has_strings_offsets_and_integers() {
    let config = GenConfig {
        events: 5_000,
        ts_format: TsFormat::Mixed,
        ..GenConfig::default()
    };
    let lines = parse_lines(&run(&config).0);
    let strings: Vec<&str> = lines.iter().filter_map(|l| l["ts"].as_str()).collect();
    let ints = lines.iter().filter(|l| l["ts"].is_i64()).count();
    assert!(ints > 0 && !strings.is_empty());
    assert!(strings.len() > ints, "mostly strings");
    assert!(strings.iter().any(|s| s.ends_with('Z')));
    assert!(strings.iter().any(|s| s.ends_with("+05:30")));

    let epoch = GenConfig {
        ts_format: TsFormat::EpochMillis,
        ..config
    };
    assert!(parse_lines(&run(&epoch).0).iter().all(|l| l["ts"].is_i64()));
}

#[test]
fn distributions_are_skewed_and_seasonal() {
    let config = GenConfig {
        events: 50_000,
        ..GenConfig::default()
    };
    let lines = parse_lines(&run(&config).0);
    let names = tenant_names(config.tenants);

    let mut per_tenant: HashMap<&str, usize> = HashMap::new();
    let mut per_family: HashMap<&str, usize> = HashMap::new();
    let mut per_hour = [0usize; 24];
    let mut out_of_hours_exports = 0;
    let mut with_attrs = 0;
    let mut with_extras = 0;
    let mut without_outcome = 0;
    let mut ipv6 = 0;
    let mut users: HashMap<&str, usize> = HashMap::new();
    for line in &lines {
        *per_tenant
            .entry(line["tenant"].as_str().unwrap())
            .or_default() += 1;
        *per_family
            .entry(line["family"].as_str().unwrap())
            .or_default() += 1;
        let ts = Utc.timestamp_millis_opt(ts_millis(&line["ts"])).unwrap();
        per_hour[ts.hour() as usize] += 1;
        if line["action"] == "export" && !(8..19).contains(&ts.hour()) {
            out_of_hours_exports += 1;
        }
        with_attrs += usize::from(line.contains_key("attrs"));
        with_extras += usize::from(line.keys().any(|k| !KNOWN.contains(&k.as_str())));
        without_outcome += usize::from(!line.contains_key("outcome"));
        ipv6 += usize::from(
            line.get("src_ip")
                .is_some_and(|ip| ip.as_str().unwrap().contains(':')),
        );
        if let Some(u) = line.get("user") {
            *users.entry(u.as_str().unwrap()).or_default() += 1;
        }
    }
    let n = lines.len();

    let first = per_tenant[names[0].as_str()];
    let last = per_tenant
        .get(names[names.len() - 1].as_str())
        .copied()
        .unwrap_or(0);
    assert!(first > 5 * last, "top tenant {first} vs last {last}");

    let office: usize = per_hour[9..17].iter().sum();
    assert!(office * 2 > n, "office hours hold {office} of {n}");
    let night: usize = per_hour[0..6].iter().sum();
    assert!(night > 0 && night * 10 < n, "night share {night}");

    let share = |f: &str| per_family[f] as f64 / n as f64;
    assert!((0.35..0.45).contains(&share("access")));
    assert!((0.40..0.50).contains(&share("data_usage")));
    assert!((0.11..0.19).contains(&share("technical")));

    assert!(out_of_hours_exports > 0, "someone must export out of hours");
    let attrs_share = with_attrs as f64 / n as f64;
    assert!((0.2..0.4).contains(&attrs_share), "attrs {attrs_share}");
    let extras_share = with_extras as f64 / n as f64;
    assert!(
        (0.05..0.15).contains(&extras_share),
        "extras {extras_share}"
    );
    let missing = without_outcome as f64 / n as f64;
    assert!((0.01..0.06).contains(&missing), "outcome missing {missing}");
    assert!(ipv6 > 0);

    // Some users are far more active than the typical one.
    let mut counts: Vec<usize> = users.values().copied().collect();
    counts.sort_unstable();
    let median = counts[counts.len() / 2];
    assert!(counts[counts.len() - 1] > 10 * median, "user skew");
}

#[test]
fn incidents_pair_through_tickets() {
    let lines = parse_lines(&run(&small(40_000)).0);
    let mut opened = HashMap::new();
    let mut paired = 0;
    for line in &lines {
        let ticket = line
            .get("attrs")
            .and_then(|a| a.get("ticket"))
            .and_then(Value::as_str);
        match (line["action"].as_str().unwrap(), ticket) {
            ("incident_opened", Some(t)) => {
                opened.insert(t.to_string(), ts_millis(&line["ts"]));
            }
            ("incident_resolved", Some(t)) => {
                if let Some(&open) = opened.get(t) {
                    paired += 1;
                    let ts = ts_millis(&line["ts"]);
                    assert!(ts >= open);
                    assert_eq!(line["duration_ms"].as_i64().unwrap(), ts - open);
                }
            }
            ("incident_opened" | "incident_resolved", None) => panic!("incident without ticket"),
            _ => {}
        }
    }
    assert!(paired > 10, "paired {paired}");
}

#[test]
fn sub_millisecond_start_and_tiny_runs() {
    let start =
        Utc.with_ymd_and_hms(2024, 2, 29, 13, 7, 0).unwrap() + chrono::Duration::microseconds(1500);
    let config = GenConfig {
        events: 500,
        tenants: 1,
        days: 1,
        start,
        ..GenConfig::default()
    };
    let lines = parse_lines(&run(&config).0);
    assert_eq!(lines.len(), 500);
    let end = start + chrono::Duration::days(1);
    for line in &lines {
        let ts = Utc.timestamp_millis_opt(ts_millis(&line["ts"])).unwrap();
        assert!(ts >= start && ts < end);
        assert_eq!(line["tenant"], "acme-health");
    }
    assert_eq!(parse_lines(&run(&small(1)).0).len(), 1);
    assert!(run(&small(0)).0.is_empty());
}
