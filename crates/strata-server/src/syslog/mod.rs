//! Syslog listeners over TCP and UDP. Syslog has no acknowledgement, so
//! durability is the server's alone: messages are gathered in batches (what
//! a connection has sent so far, or what datagrams have queued), each batch
//! goes through the same path as an HTTP request into the write-ahead log,
//! and a store that fails is retried. Under memory pressure a TCP
//! connection stops being read (the sender's window fills and it waits);
//! UDP cannot wait, so datagrams are dropped and counted.

pub mod framing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use strata_access::{Authenticated, Role};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::accept::{Accepted, Rejection, accept_objects};
use crate::group::{self, Submission};
use crate::server::{Shared, stopped};
use crate::translate;
use framing::{Frame, next_frame};

/// The protocol name of syslog's counters.
const PROTOCOL: &str = "syslog";
/// A batch is stored once it holds this many messages...
const BATCH_MESSAGES: usize = 10_000;
/// ... or this many bytes, or once nothing more has arrived.
const BATCH_BYTES: usize = 4 << 20;
/// TCP connections served at once per listener; more wait to be accepted.
const MAX_CONNECTIONS: usize = 1024;
/// UDP batches being stored at once; datagrams beyond them are dropped.
const UDP_BATCHES_IN_FLIGHT: usize = 4;
/// How long a stopping server goes on reading connections.
const DRAIN: Duration = Duration::from_millis(500);
/// How long a reader waits before looking again at memory pressure or
/// retrying a store that failed.
const PAUSE: Duration = Duration::from_millis(100);

/// A bound syslog socket and the tenant its messages belong to.
pub struct SyslogSocket {
    /// The socket.
    pub socket: Socket,
    /// The tenant of every message received on it.
    pub tenant: String,
}

/// A syslog transport's socket.
pub enum Socket {
    /// Octet-counted or newline-framed messages on connections.
    Tcp(TcpListener),
    /// One message per datagram.
    Udp(UdpSocket),
}

impl SyslogSocket {
    /// `tcp` or `udp` and the local address, as the listener is named.
    pub fn describe(&self) -> String {
        let (transport, addr) = match &self.socket {
            Socket::Tcp(s) => ("tcp", s.local_addr()),
            Socket::Udp(s) => ("udp", s.local_addr()),
        };
        match addr {
            Ok(addr) => format!("syslog-{transport}:{addr}"),
            Err(_) => format!("syslog-{transport}"),
        }
    }
}

/// What a listener's tasks share.
struct Listener {
    shared: Arc<Shared>,
    submit: mpsc::Sender<Submission>,
    /// Who the messages are from: the listener, restricted to its tenant.
    sender: Authenticated,
    stop: watch::Receiver<bool>,
}

/// Serves `socket` until `stop` turns true, then stores what was read and
/// returns.
pub async fn run(
    socket: SyslogSocket,
    shared: Arc<Shared>,
    submit: mpsc::Sender<Submission>,
    stop: watch::Receiver<bool>,
) {
    let listener = Arc::new(Listener {
        shared,
        submit,
        sender: Authenticated {
            name: socket.describe(),
            role: Role::Ingest,
            tenants: vec![socket.tenant],
        },
        stop,
    });
    match socket.socket {
        Socket::Tcp(tcp) => serve_tcp(listener, tcp).await,
        Socket::Udp(udp) => serve_udp(listener, udp).await,
    }
}

async fn serve_tcp(listener: Arc<Listener>, tcp: TcpListener) {
    let mut stop = listener.stop.clone();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
            () = stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            accepted = tcp.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let listener = listener.clone();
                connections.spawn(async move {
                    listener.connection(stream, peer).await;
                    drop(slot);
                });
            }
            Err(e) => {
                tracing::warn!("{}: accept failed: {e}", listener.sender.name);
                tokio::time::sleep(PAUSE).await;
            }
        }
        while connections.try_join_next().is_some() {}
    }
    drop(tcp);
    connections.join_all().await;
}

async fn serve_udp(listener: Arc<Listener>, udp: UdpSocket) {
    let mut stop = listener.stop.clone();
    let max = listener.shared.options.syslog_max_bytes;
    let mut datagram = vec![0; max.min(u16::MAX as usize) + 1];
    let storing = Arc::new(Semaphore::new(UDP_BATCHES_IN_FLIGHT));
    let mut batches = JoinSet::new();
    loop {
        let mut batch = Batch::default();
        tokio::select! {
            received = udp.recv_from(&mut datagram) => match received {
                Ok((n, _)) => batch.push_datagram(&datagram[..n], max),
                Err(e) => tracing::warn!("{}: receive failed: {e}", listener.sender.name),
            },
            () = stopped(&mut stop) => {
                // What has already arrived is stored, not lost to the shutdown.
                batch.drain(&udp, &mut datagram, max);
                listener.store(batch, "udp").await;
                break;
            }
        }
        batch.drain(&udp, &mut datagram, max);
        let permit = storing.clone().try_acquire_owned();
        match permit {
            Ok(permit) if !listener.shared.under_pressure() => {
                let listener = listener.clone();
                batches.spawn(async move {
                    listener.store(batch, "udp").await;
                    drop(permit);
                });
            }
            _ => listener.shared.metrics.syslog_dropped(batch.len()),
        }
        while batches.try_join_next().is_some() {}
    }
    batches.join_all().await;
}

impl Listener {
    /// Reads `stream` until it ends or the server stops, storing a batch
    /// whenever the messages received so far have all been read. A
    /// stopping server goes on reading for `DRAIN`, so that what a sender
    /// has already sent is not lost to the shutdown.
    async fn connection(&self, stream: TcpStream, peer: SocketAddr) {
        let max = self.shared.options.syslog_max_bytes;
        let mut stop = self.stop.clone();
        let drained = async move {
            stopped(&mut stop).await;
            tokio::time::sleep(DRAIN).await;
        };
        tokio::pin!(drained);
        let mut reader = BufReader::with_capacity(64 << 10, stream);
        let mut batch = Batch::default();
        loop {
            while self.shared.under_pressure() && !*self.stop.borrow() {
                tokio::time::sleep(PAUSE).await;
            }
            let frame = tokio::select! {
                frame = next_frame(&mut reader, max) => frame,
                () = &mut drained => break,
            };
            match frame {
                Ok(Some(Frame::Message(message))) => batch.push(message),
                Ok(Some(Frame::Oversized(length))) => batch.oversized(length, max),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("{} from {peer}: {e}", self.sender.name);
                    break;
                }
            }
            if reader.buffer().is_empty() || batch.is_full() {
                self.store(std::mem::take(&mut batch), &peer.to_string())
                    .await;
            }
        }
        self.store(batch, &peer.to_string()).await;
    }

    /// Makes `batch`'s messages durable, retrying while the store fails
    /// and the server runs.
    async fn store(&self, batch: Batch, peer: &str) {
        if batch.len() == 0 {
            return;
        }
        let shared = &self.shared;
        shared.metrics.bytes(PROTOCOL, batch.bytes);
        let received = Utc::now();
        let sender = self.sender.clone();
        let accepted = tokio::task::spawn_blocking(move || batch.accept(&sender, received))
            .await
            .expect("parsing a batch does not panic");
        if let Some(first) = accepted.rejected.first() {
            tracing::warn!(
                "{} from {peer}: {} messages refused, the first: {}",
                self.sender.name,
                accepted.rejected.len(),
                first.reason
            );
        }
        let rejected: Vec<_> = accepted.rejected.iter().map(|r| r.tenant.clone()).collect();
        let ingested_at = received.timestamp_micros();
        loop {
            let mut attempt = accepted.clone();
            let stored = group::submit(
                &self.submit,
                &self.sender.name,
                ingested_at,
                &mut attempt,
                false,
            )
            .await;
            match stored {
                Ok(_) => break,
                Err(why) if *self.stop.borrow() => {
                    tracing::error!(
                        "{}: {} messages dropped at shutdown: {why}",
                        self.sender.name,
                        accepted.events()
                    );
                    shared.metrics.syslog_dropped(accepted.events() as usize);
                    return;
                }
                Err(why) => {
                    tracing::warn!("{}: storing failed, retrying: {why}", self.sender.name);
                    tokio::time::sleep(PAUSE).await;
                }
            }
        }
        let per_tenant = &accepted.per_tenant;
        shared.metrics.events(PROTOCOL, per_tenant, &rejected);
    }
}

/// Messages read and not yet stored.
#[derive(Debug, Default)]
struct Batch {
    messages: Vec<Vec<u8>>,
    /// Messages refused before parsing (over the size limit).
    refused: Vec<String>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, message: Vec<u8>) {
        self.bytes += message.len();
        self.messages.push(message);
    }

    fn oversized(&mut self, length: u64, max: usize) {
        self.bytes += length as usize;
        self.refused.push(format!(
            "a message of {length} bytes is over the limit of {max} bytes (--syslog-max-bytes)"
        ));
    }

    /// One datagram, one message; trailing newlines and NULs are framing.
    fn push_datagram(&mut self, datagram: &[u8], max: usize) {
        let end = datagram
            .iter()
            .rposition(|b| !matches!(b, b'\n' | b'\r' | b'\0'))
            .map_or(0, |last| last + 1);
        if datagram.len() > max {
            self.oversized(datagram.len() as u64, max);
        } else {
            self.push(datagram[..end].to_vec());
        }
    }

    /// Adds the datagrams already queued on `udp`, until the batch is full.
    fn drain(&mut self, udp: &UdpSocket, datagram: &mut [u8], max: usize) {
        while !self.is_full() {
            match udp.try_recv_from(datagram) {
                Ok((n, _)) => self.push_datagram(&datagram[..n], max),
                Err(_) => break,
            }
        }
    }

    fn len(&self) -> usize {
        self.messages.len() + self.refused.len()
    }

    fn is_full(&self) -> bool {
        self.len() >= BATCH_MESSAGES || self.bytes >= BATCH_BYTES
    }

    /// The batch's events accepted and refused. Bytes that are not UTF-8
    /// become U+FFFD rather than costing the message.
    fn accept(self, sender: &Authenticated, received: DateTime<Utc>) -> Accepted {
        let mut events = Vec::with_capacity(self.messages.len());
        let mut refused: Vec<String> = self.refused;
        for message in &self.messages {
            let text = String::from_utf8_lossy(message);
            match translate::syslog::to_contract(&text, received) {
                Ok(event) => events.push(Some(event)),
                Err(reason) => refused.push(reason),
            }
        }
        let mut accepted = accept_objects(events, sender, received.timestamp_micros());
        let parsed = self.messages.len() as u64;
        accepted.rejected.extend(
            refused
                .into_iter()
                .enumerate()
                .map(|(i, reason)| Rejection {
                    line: parsed + i as u64 + 1,
                    reason,
                    tenant: None,
                }),
        );
        accepted
    }
}
