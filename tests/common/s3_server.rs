//! A real S3 server for tests and benches: `s3s-fs` serving a folder over
//! HTTP on loopback, in the calling process. Included by path
//! (`#[path = ...] mod s3_server;`) from `tests/s3.rs` and
//! `benches/s3_ingest.rs`.

use std::net::SocketAddr;
use std::path::Path;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

/// Serves `root` (one folder per bucket) as S3 on a free loopback port,
/// accepting only the credentials `key` and `secret`.
pub async fn start_s3(root: &Path, key: &str, secret: &str) -> SocketAddr {
    let mut builder = S3ServiceBuilder::new(s3s_fs::FileSystem::new(root).expect("s3s-fs root"));
    builder.set_auth(SimpleAuth::from_single(key, secret));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("listener address");
    tokio::spawn(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(conn);
        }
    });
    addr
}
