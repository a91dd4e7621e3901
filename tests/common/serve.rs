//! Running `strata serve` as a child process and talking HTTP/1.1 to it
//! over a plain socket: the tests see exactly the bytes a shipper would,
//! and can send what no well-behaved client library would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::Duration;

use super::strata;

/// A running server.
pub struct ServerProcess {
    child: Child,
    /// `host:port` it listens on for HTTP.
    pub addr: String,
    /// Every listener it named, as `(scheme, host:port)`: `http`,
    /// `syslog-tcp`, `syslog-udp`.
    pub listeners: Vec<(String, String)>,
    /// What it printed on start.
    pub banner: String,
}

impl ServerProcess {
    /// Starts `strata serve` on `archive` on a free loopback port, with
    /// `args` added, and waits until it listens.
    pub fn start(archive: &Path, args: &[&str]) -> ServerProcess {
        ServerProcess::start_with(strata(archive), args)
    }

    /// [`ServerProcess::start`] with `command` (a `strata` command set up
    /// for its archive, such as one on S3).
    pub fn start_with(mut command: std::process::Command, args: &[&str]) -> ServerProcess {
        let mut child = command
            .args(["serve", "--http", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("strata serve starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut banner = String::new();
        stdout.read_line(&mut banner).expect("banner");
        let Some((_, listening)) = banner.trim().rsplit_once("listening on ") else {
            let status = child.wait().expect("exits");
            panic!("strata serve did not start ({status}): {banner}");
        };
        let listeners: Vec<(String, String)> = listening
            .split(", ")
            .map(|listener| {
                let (scheme, rest) = listener.split_once("://").expect("scheme://address");
                let addr = rest.split(' ').next().expect("address");
                (scheme.to_string(), addr.to_string())
            })
            .collect();
        let addr = listeners[0].1.clone();
        // Keep draining stdout so that the server never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        ServerProcess {
            child,
            addr,
            listeners,
            banner,
        }
    }

    /// The address of the listener named `scheme` (`syslog-tcp`, ...).
    pub fn listener(&self, scheme: &str) -> &str {
        let found = self.listeners.iter().find(|(s, _)| s == scheme);
        &found
            .unwrap_or_else(|| panic!("no {scheme} listener in {}", self.banner))
            .1
    }

    /// Sends a request and returns the response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        request(&self.addr, method, path, headers, body)
    }

    /// Posts `body` to `path` with `token` as a bearer token.
    pub fn post(&self, path: &str, token: &str, body: &[u8]) -> Response {
        let auth = format!("Bearer {token}");
        self.request("POST", path, &[("Authorization", &auth)], body)
    }

    /// Stops the server with SIGTERM and returns how it exited.
    pub fn terminate(mut self) -> ExitStatus {
        signal(&self.child, "TERM");
        self.child.wait().expect("server exits")
    }

    /// Sends SIGKILL now, while others may still be talking to the server.
    pub fn crash(&self) {
        signal(&self.child, "KILL");
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("server exits");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request on a new connection and reads the response.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    try_request(addr, method, path, headers, body).expect("a response")
}

/// [`request`], or the error of a connection that failed (a server killed
/// in the middle of it).
pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return Err(std::io::Error::other(
            "the connection closed before a response",
        ));
    }
    Ok(parse_response(&raw))
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    if chunked {
        body = unchunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[end + 2..end + 2 + size]);
        raw = &raw[end + 4 + size..];
    }
}
