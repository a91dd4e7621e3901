//! Hostile and careless clients against `strata serve`: TLS refusing
//! plaintext and bad certificates stopping the start, clients stalling in
//! their headers, and an endless body; the good requests around them are
//! answered and stored. Included by tests/serve.rs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use super::*;

/// A self-signed certificate for 127.0.0.1 and its key, made by `openssl`.
pub(super) fn self_signed(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=strata-test",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

#[test]
fn tls_serves_a_trusting_client_refuses_plaintext_and_bad_files_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "shipper", "ingest", &["acme"]);
    let (cert, key) = self_signed(dir.path(), "good");
    let (other_cert, _) = self_signed(dir.path(), "other");
    let tls = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let server = ServerProcess::start(&archive, &[&["--node-id", "n1"][..], &tls].concat());
    assert!(
        server.banner.contains("listening on https://"),
        "{}",
        server.banner
    );

    let events = dir.path().join("events.ndjson");
    std::fs::write(&events, batch("tls", 10)).unwrap();
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--fail-with-body", "--cacert"])
        .arg(&cert)
        .args([
            "-H",
            &format!("Authorization: Bearer {shipper}"),
            "--data-binary",
        ])
        .arg(format!("@{}", events.display()))
        .arg(format!("https://{}/v1/events", server.addr))
        .output()
        .expect("curl is installed");
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{answer} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(answer.contains(r#""accepted":10"#), "{answer}");
    // A client that does not trust the certificate is refused by its own check.
    let untrusting = Command::new("curl")
        .args(["--silent", "--cacert"])
        .arg(&other_cert)
        .arg(format!("https://{}/health/live", server.addr))
        .status()
        .unwrap();
    assert!(!untrusting.success());
    // Plaintext on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(&server.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    plain
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("live"),
        "{answer:?}"
    );
    assert!(server.terminate().success());
    assert_eq!(count(&archive, "SELECT count(*) AS n FROM events"), 10);

    // A certificate that is not PEM, or a key of another certificate:
    // the server does not start, and says which file is wrong.
    let other_key = dir.path().join("other.key");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    for (cert, key, expected) in [
        (&garbage, &key, "garbage.pem holds no PEM certificate"),
        (&cert, &other_key, "does not serve the certificate"),
        (
            &cert,
            &dir.path().join("missing.key"),
            "cannot read the key",
        ),
    ] {
        let out = run_expect(
            strata(&archive)
                .args(["serve", "--http", "127.0.0.1:0", "--tls-cert"])
                .arg(cert)
                .arg("--tls-key")
                .arg(key),
            1,
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}

#[test]
fn stalled_headers_and_an_endless_body_leave_good_requests_served() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let shipper = add_user(&archive, "shipper", "ingest", &["acme"]);
    let server = ServerProcess::start(&archive, &["--node-id", "n1", "--max-body-mib", "1"]);
    // Slowloris: many connections that never finish their headers.
    let stalled: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = TcpStream::connect(&server.addr).unwrap();
            stream
                .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Le")
                .unwrap();
            stream
        })
        .collect();
    let response = server.post("/v1/events", &shipper, batch("good", 5).as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());

    // An endless body: refused once past the limit, not read to its end.
    let mut endless = TcpStream::connect(&server.addr).unwrap();
    endless
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {shipper}\r\nContent-Length: {}\r\n\r\n",
        100 << 20
    );
    endless.write_all(head.as_bytes()).unwrap();
    endless
        .write_all(&vec![b'x'; (1 << 20) + (64 << 10)])
        .unwrap();
    let mut answer = Vec::new();
    let _ = endless.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let response = server.post("/v1/events", &shipper, batch("after", 5).as_bytes());
    assert_eq!(response.status, 200, "{}", response.text());
    drop(stalled);
    assert!(server.terminate().success());
    assert_eq!(count(&archive, "SELECT count(*) AS n FROM events"), 10);
}
