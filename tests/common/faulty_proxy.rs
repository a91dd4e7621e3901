//! A TCP proxy in front of the test S3 server that misbehaves on demand,
//! the way S3 does on a bad day: answering 503 SlowDown, going silent
//! until the client times out, resetting connections, or carrying a
//! request out and losing its answer. The fault in
//! force applies to every request a client starts, on new and pooled
//! connections alike. Included by path from tests/serve.rs.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the proxy treats a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded to the S3 server.
    None,
    /// Answered `503 Slow Down` with S3's error body.
    SlowDown,
    /// Never answered; the connection is dropped when the fault ends.
    Silence,
    /// The connection is reset (TCP RST).
    Reset,
    /// Forwarded and carried out, but the connection is reset instead of
    /// answering: the client cannot tell whether it happened.
    LostAnswer,
}

const SLOW_DOWN_BODY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

/// The proxy's address and its fault switch.
pub struct FaultyProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    fault: Arc<watch::Sender<Fault>>,
}

impl FaultyProxy {
    /// Proxies a free loopback port to `upstream`, without faults.
    pub async fn start(upstream: SocketAddr) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("proxy address");
        let fault = Arc::new(watch::Sender::new(Fault::None));
        let switch = fault.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(proxy(client, upstream, switch.subscribe()));
            }
        });
        FaultyProxy { addr, fault }
    }

    /// Puts `fault` in force for the requests that start from now on.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }
}

/// Copies bytes both ways, applying the fault in force whenever the
/// client sends.
async fn proxy(mut client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut from_server) = (vec![0; 64 << 10], vec![0; 64 << 10]);
    loop {
        tokio::select! {
            read = client.read(&mut from_client) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let now = *fault.borrow_and_update();
                match now {
                    Fault::None | Fault::LostAnswer => {
                        if server.write_all(&from_client[..n]).await.is_err() {
                            return;
                        }
                    }
                    Fault::SlowDown => {
                        let response = format!(
                            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{SLOW_DOWN_BODY}",
                            SLOW_DOWN_BODY.len()
                        );
                        let _ = client.write_all(response.as_bytes()).await;
                        return;
                    }
                    Fault::Silence => {
                        let _ = fault.wait_for(|f| *f != Fault::Silence).await;
                        return;
                    }
                    Fault::Reset => {
                        let _ = client.set_zero_linger();
                        return;
                    }
                }
            }
            read = server.read(&mut from_server) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if *fault.borrow() == Fault::LostAnswer {
                    let _ = client.set_zero_linger();
                    return;
                }
                if client.write_all(&from_server[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
