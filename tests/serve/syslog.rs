//! Syslog shippers against `strata serve`: util-linux `logger` over TCP
//! (octet-counted RFC 5424, newline-framed RFC 3164) and UDP, a raw stream
//! with an oversized and a non-UTF-8 message, and rsyslog reading a file
//! and forwarding it both with `omelasticsearch` (`_bulk`) and `omfwd`
//! (octet-counted RFC 5424 over TCP). Included by tests/serve.rs.

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// Waits until each metric series in `expected` has its value, and
/// returns the metrics.
fn wait_for_counts(server: &ServerProcess, admin: &str, expected: &[(&str, u64)]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = server
            .request(
                "GET",
                "/metrics",
                &[("Authorization", &format!("Bearer {admin}"))],
                b"",
            )
            .text();
        if expected
            .iter()
            .all(|(series, n)| metric(&text, series) == *n)
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "counts never reached {expected:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn logger(addr: &str, args: &[&str], stdin: &str) {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut child = Command::new("logger")
        .args(["-n", host, "-P", port])
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("logger (util-linux) is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "logger {args:?}");
}

fn host_name() -> String {
    run_ok(&mut Command::new("hostname")).trim().to_string()
}

const ACCEPTED: &str = "strata_events_accepted_total{protocol=\"syslog\",tenant=\"acme\"}";
const REJECTED: &str = "strata_events_rejected_total{protocol=\"syslog\",tenant=\"\"}";

#[test]
fn logger_over_tcp_and_udp_is_stored_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let admin = add_user(&archive, "admin", "admin", &[]);
    let server = ServerProcess::start(
        &archive,
        &[
            "--node-id",
            "n1",
            "--syslog-tcp",
            "acme@127.0.0.1:0",
            "--syslog-udp",
            "127.0.0.1:0",
            "--syslog-tenant",
            "acme",
            "--syslog-max-bytes",
            "2048",
        ],
    );
    let (tcp, udp) = (server.listener("syslog-tcp"), server.listener("syslog-udp"));
    let started = chrono::Utc::now();
    logger(
        tcp,
        &[
            "--tcp",
            "--octet-count",
            "--rfc5424",
            "-t",
            "sshd",
            "--id=4242",
            "-p",
            "auth.warning",
            "--msgid",
            "LOGIN",
            "--sd-id",
            "origin@32473",
            "--sd-param",
            "ip=\"10.0.0.7\"",
            "Failed password for j.doe",
        ],
        "",
    );
    logger(
        tcp,
        &["--tcp", "--rfc3164", "-t", "billing", "-p", "local0.err"],
        "export 1 failed\nexport 2 failed\nexport 3 failed\n",
    );
    logger(
        udp,
        &[
            "--udp",
            "--rfc5424",
            "-t",
            "vpnd",
            "-p",
            "authpriv.info",
            "--msgid",
            "VPN_CONNECT",
            "tunnel up for m.roe",
        ],
        "",
    );
    logger(
        udp,
        &[
            "--udp",
            "--rfc3164",
            "-t",
            "cron",
            "-p",
            "cron.notice",
            "job ran",
        ],
        "",
    );
    // A stream no logger would send: counted and newline framing mixed, a
    // message over the limit between good ones, bytes that are not UTF-8.
    let mut raw = TcpStream::connect(tcp).unwrap();
    let counted = "<14>1 2026-03-01T10:00:00Z gw raw 1 - - first";
    raw.write_all(format!("{} {counted}", counted.len()).as_bytes())
        .unwrap();
    raw.write_all(format!("<14>1 - gw raw 2 - - {}\n", "x".repeat(3000)).as_bytes())
        .unwrap();
    raw.write_all(b"<14>1 2026-03-01T10:00:02Z gw raw 3 - - caf\xe9 au lait\n")
        .unwrap();
    drop(raw);
    let datagram = UdpSocket::bind("127.0.0.1:0").unwrap();
    datagram.connect(udp).unwrap();
    datagram
        .send(b"<14>1 2026-03-01T10:00:03Z gw raw 4 - - over udp\n")
        .unwrap();

    wait_for_counts(&server, &admin, &[(ACCEPTED, 9), (REJECTED, 1)]);
    assert!(server.terminate().success());

    let host = host_name();
    let sshd = query(
        &archive,
        "SELECT tenant, family, action, severity, host, app, message, \
         attrs['log.syslog.structured_data.origin@32473.ip'] AS ip, attrs['process.pid'] AS pid, \
         attrs['log.syslog.facility.name'] AS facility, CAST(ts AS VARCHAR) AS ts FROM events WHERE app = 'sshd'",
    );
    assert_eq!(sshd.len(), 1, "{sshd:?}");
    let row = &sshd[0];
    for (column, value) in [
        ("tenant", "acme"),
        ("family", "access"),
        ("action", "LOGIN"),
        ("severity", "warning"),
        ("host", host.as_str()),
        ("message", "Failed password for j.doe"),
        ("ip", "10.0.0.7"),
        ("pid", "4242"),
        ("facility", "auth"),
    ] {
        assert_eq!(row[column], value, "{column} in {row:?}");
    }
    let ts: chrono::DateTime<chrono::Utc> = row["ts"].as_str().unwrap().parse().unwrap();
    assert!((ts - started).num_seconds().abs() < 60, "{ts} vs {started}");

    let billing = query(
        &archive,
        "SELECT family, action, severity, host, message FROM events WHERE app = 'billing' ORDER BY message",
    );
    let messages: Vec<_> = billing
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        ["export 1 failed", "export 2 failed", "export 3 failed"]
    );
    for row in &billing {
        assert_eq!(
            (
                &row["family"],
                &row["action"],
                &row["severity"],
                &row["host"]
            ),
            (
                &"technical".into(),
                &"log".into(),
                &"error".into(),
                &host.as_str().into()
            ),
        );
    }
    let vpn = query(
        &archive,
        "SELECT family, action, severity, message FROM events WHERE app = 'vpnd'",
    );
    assert_eq!(vpn.len(), 1, "{vpn:?}");
    assert_eq!(
        (
            &vpn[0]["family"],
            &vpn[0]["action"],
            &vpn[0]["severity"],
            &vpn[0]["message"]
        ),
        (
            &"access".into(),
            &"VPN_CONNECT".into(),
            &"info".into(),
            &"tunnel up for m.roe".into()
        )
    );
    let cron = query(
        &archive,
        "SELECT family, severity, message FROM events WHERE app = 'cron'",
    );
    assert_eq!(cron.len(), 1, "{cron:?}");
    assert_eq!(
        (
            &cron[0]["family"],
            &cron[0]["severity"],
            &cron[0]["message"]
        ),
        (&"technical".into(), &"notice".into(), &"job ran".into())
    );
    let raw = query(
        &archive,
        "SELECT CAST(ts AS VARCHAR) AS ts, message FROM events WHERE app = 'raw' ORDER BY ts",
    );
    let raw: Vec<_> = raw
        .iter()
        .map(|r| (r["ts"].as_str().unwrap(), r["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        raw,
        [
            ("2026-03-01T10:00:00Z", "first"),
            ("2026-03-01T10:00:02Z", "caf\u{fffd} au lait"),
            ("2026-03-01T10:00:03Z", "over udp"),
        ]
    );
    verify_deep(&archive);
}

/// An rsyslog configuration reading `input` and forwarding every line to
/// Elasticsearch `_bulk` and to syslog over TCP.
fn rsyslog_config(work: &Path, input: &Path, http: &str, syslog: &str, token: &str) -> String {
    let (es_host, es_port) = http.rsplit_once(':').unwrap();
    let (syslog_host, syslog_port) = syslog.rsplit_once(':').unwrap();
    format!(
        r#"global(workDirectory="{work}")
module(load="imfile")
module(load="omelasticsearch")
template(name="ecs" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host.name" name="hostname" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
  constant(outname="event.action" value="record_read" format="jsonf")
  constant(outname="service.name" value="crm" format="jsonf")
}}
input(type="imfile" File="{input}" Tag="crm:" Severity="info" Facility="local3" ruleset="ship")
ruleset(name="ship") {{
  action(type="omelasticsearch" server="{es_host}" serverport="{es_port}" template="ecs"
         searchIndex="data_usage-crm" bulkmode="on" uid="rsyslog" pwd="{token}"
         errorFile="{work}/es-errors.json")
  action(type="omfwd" target="{syslog_host}" port="{syslog_port}" protocol="tcp"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}}
"#,
        work = work.display(),
        input = input.display(),
    )
}

#[test]
fn rsyslog_forwards_a_file_by_omelasticsearch_and_omfwd() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let admin = add_user(&archive, "admin", "admin", &[]);
    let shipper = add_user(&archive, "rsyslog", "ingest", &["globex"]);
    let server = ServerProcess::start(
        &archive,
        &["--node-id", "n1", "--syslog-tcp", "acme@127.0.0.1:0"],
    );
    let work = dir.path().join("rsyslog");
    std::fs::create_dir(&work).unwrap();
    let input = work.join("crm.log");
    let lines: Vec<String> = (0..50)
        .map(|i| format!("agent{} opened record {i}", i % 4))
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let config = work.join("rsyslog.conf");
    let syslog = server.listener("syslog-tcp");
    std::fs::write(
        &config,
        rsyslog_config(&work, &input, &server.addr, syslog, &shipper),
    )
    .unwrap();
    let mut rsyslogd = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(&config)
        .arg("-i")
        .arg(work.join("rsyslogd.pid"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("rsyslogd (Debian rsyslog) is installed");
    let bulk = "strata_events_accepted_total{protocol=\"elasticsearch\",tenant=\"globex\"}";
    let counts = [(bulk, 50), (ACCEPTED, 50)];
    let waited = std::panic::catch_unwind(|| wait_for_counts(&server, &admin, &counts));
    rsyslogd.kill().unwrap();
    let output = rsyslogd.wait_with_output().unwrap();
    if let Err(panic) = waited {
        let errors = std::fs::read_to_string(work.join("es-errors.json")).unwrap_or_default();
        eprintln!(
            "rsyslogd: {}\nerror file: {errors}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::panic::resume_unwind(panic);
    }
    assert!(server.terminate().success());

    let bulk = query(
        &archive,
        "SELECT family, action, app, count(*) AS n, count(DISTINCT message) AS messages, \
         min(message) AS first FROM events WHERE tenant = 'globex' GROUP BY ALL",
    );
    assert_eq!(bulk.len(), 1, "{bulk:?}");
    let row = &bulk[0];
    assert_eq!(
        (&row["family"], &row["action"], &row["app"]),
        (&"data_usage".into(), &"record_read".into(), &"crm".into())
    );
    assert_eq!((&row["n"], &row["messages"]), (&50.into(), &50.into()));
    assert_eq!(row["first"], "agent0 opened record 0");
    let forwarded = query(
        &archive,
        "SELECT family, app, severity, attrs['log.syslog.facility.name'] AS facility, count(*) AS n, \
         count(DISTINCT message) AS messages FROM events WHERE tenant = 'acme' GROUP BY ALL",
    );
    assert_eq!(forwarded.len(), 1, "{forwarded:?}");
    let row = &forwarded[0];
    assert_eq!(
        (&row["family"], &row["app"], &row["severity"]),
        (&"technical".into(), &"crm".into(), &"info".into())
    );
    assert_eq!(
        (&row["facility"], &row["n"], &row["messages"]),
        (&"local3".into(), &50.into(), &50.into())
    );
    verify_deep(&archive);
}
