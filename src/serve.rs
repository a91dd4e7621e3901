//! `strata serve`: the ingest server.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use strata_query::Pseudonyms;
use strata_server::http::listen::{HTTP_ALPN, POSTGRESQL_ALPN, tls_acceptor};
use strata_server::syslog::{Socket, SyslogSocket};
use strata_server::{Listeners, ServeError, ServeOptions, Server, valid_node_id};
use strata_store::Archive;

/// Exit code when the server refuses to start for lack of principals.
const EXIT_NO_PRINCIPALS: u8 = 2;

/// `strata serve` flags; each also read from its `STRATA_*` variable.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file of these flags without their dashes (`http = "0.0.0.0:9200"`,
    /// `syslog-tcp = ["acme@0.0.0.0:5514"]`); flags and variables win over it.
    #[arg(long, env = "STRATA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address of the HTTP listener (every HTTP protocol). Loopback by default: bind
    /// 0.0.0.0 deliberately, behind TLS or a trusted network.
    #[arg(
        long,
        env = "STRATA_HTTP",
        value_name = "ADDR",
        default_value = "127.0.0.1:9200"
    )]
    pub http: SocketAddr,
    /// Address of a PostgreSQL wire listener (psql, DBeaver, Grafana, Python drivers): log
    /// in with a principal's name as user and its token as password (SCRAM-SHA-256, or
    /// cleartext over TLS); admin, auditor and client principals may query.
    #[arg(long, env = "STRATA_PG", value_name = "ADDR")]
    pub pg: Option<SocketAddr>,
    /// PEM certificate chain: HTTP (and --pg) are then served over TLS only. With --tls-key.
    #[arg(
        long,
        env = "STRATA_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "STRATA_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// A syslog listener over TCP (RFC 5424 or 3164, octet-counted or newline-framed,
    /// detected per message): ADDR or TENANT@ADDR, the tenant of every message received
    /// there. Repeatable.
    #[arg(long, env = "STRATA_SYSLOG_TCP", value_name = "[TENANT@]ADDR", value_delimiter = ',', value_parser = syslog_listener)]
    pub syslog_tcp: Vec<SyslogListener>,
    /// A syslog listener over UDP, one message per datagram: ADDR or TENANT@ADDR.
    /// Repeatable. Under memory pressure datagrams are dropped and counted.
    #[arg(long, env = "STRATA_SYSLOG_UDP", value_name = "[TENANT@]ADDR", value_delimiter = ',', value_parser = syslog_listener)]
    pub syslog_udp: Vec<SyslogListener>,
    /// The tenant of syslog listeners that name none.
    #[arg(long, env = "STRATA_SYSLOG_TENANT", value_name = "TENANT", value_parser = tenant)]
    pub syslog_tenant: Option<String>,
    /// The longest syslog message kept, in bytes; longer ones are refused and counted.
    #[arg(long, env = "STRATA_SYSLOG_MAX_BYTES", value_name = "BYTES", default_value_t = 65536, value_parser = clap::value_parser!(u64).range(480..=(1 << 20)))]
    pub syslog_max_bytes: u64,
    /// Names this server's write-ahead log in the archive; servers sharing an archive need
    /// distinct ids, and a restarted server must keep its id to replay its log. Default:
    /// the host name.
    #[arg(long, env = "STRATA_NODE_ID", value_name = "ID", value_parser = node_id)]
    pub node_id: Option<String>,
    /// Memory of the whole server: buffered events, requests in flight, write-outs and
    /// compaction (docs/serve.md says how it is shared). When buffers and requests reach
    /// half of what is left after 48 MiB for the process, requests get 503 (429 for _bulk)
    /// with Retry-After until buffered events are written out.
    #[arg(long, env = "STRATA_MEMORY_MIB", value_name = "MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(64..))]
    pub memory_mib: u64,
    /// Group commit: at most one write-ahead segment is stored per interval, and a request
    /// is answered once its segment is durable.
    #[arg(long, env = "STRATA_WAL_INTERVAL_MS", value_name = "MS", default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub wal_interval_ms: u64,
    /// Buffered events are written out to Parquet at the latest this many seconds after
    /// the oldest arrived (sooner when a partition or the memory budget fills).
    #[arg(long, env = "STRATA_WRITE_OUT_SECS", value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub write_out_secs: u64,
    /// The largest request body, after decompression; larger ones get 413.
    #[arg(long, env = "STRATA_MAX_BODY_MIB", value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_body_mib: u64,
    /// Memory the queries of one principal share, beyond --memory-mib (which bounds ingest).
    /// A query past it fails alone ("resources exhausted"); nothing spills to disk.
    #[arg(long, env = "STRATA_QUERY_MEMORY_MIB", value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub query_memory_mib: u64,
    /// Queries one principal may run at once; more get 429 with Retry-After.
    #[arg(long, env = "STRATA_QUERIES_PER_PRINCIPAL", value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub queries_per_principal: u64,
    /// Run queries of the archive on this Ballista cluster (its scheduler, `df://HOST:PORT`;
    /// see `strata cluster`). Analysts' queries stay here: their pseudonym secret never leaves.
    #[arg(long, env = "STRATA_CLUSTER", value_name = "df://HOST:PORT")]
    pub cluster: Option<String>,
}

pub const SERVE_EXAMPLES: &str = "\
The server acknowledges a request only once its events are in a write-ahead segment stored in
the archive (fsynced on a local folder), writes buffered events out as Parquet through the
catalog, and replays what was not yet written out after a crash. It never serves without
authentication: create a principal first with `strata users add`.

Endpoints (docs/protocols.md has the field mappings):
  POST /v1/events       event-contract NDJSON (gzip or zstd with Content-Encoding)
  POST /_bulk           Elasticsearch bulk (with the handshake shippers make; token as password)
  POST /services/collector[/event|/raw]   Splunk HEC, with indexer acknowledgement
  POST /v1/logs         OTLP/HTTP logs, protobuf or JSON
  POST /v1/query        {\"sql\": \"...\"} over the archive and the events in memory (admin, auditor
                        or client token; a client sees its tenants); JSON, NDJSON, CSV or Arrow by Accept
  --pg ADDR             the PostgreSQL wire (psql, DBeaver, Grafana, psycopg): user = principal,
                        password = its token (SCRAM-SHA-256, or cleartext inside TLS)
  --syslog-tcp/--syslog-udp   syslog RFC 5424 and 3164; facilities auth and authpriv are access
  GET  /health/live     200 while the process runs
  GET  /health/ready    200 when the write-ahead log is writable
  GET  /metrics         Prometheus text (admin token)

Examples:
  TOKEN=$(strata users add vpn-gateway --role ingest --tenant acme | tail -n 1)
  strata serve --http 127.0.0.1:9200
  strata serve --syslog-tcp acme@127.0.0.1:5514 --syslog-udp acme@127.0.0.1:5514
  strata serve --pg 127.0.0.1:5432   # then: PGPASSWORD=$TOKEN psql \"host=127.0.0.1 user=auditor\"
  curl -H \"Authorization: Bearer $TOKEN\" --data-binary @events.ndjson http://127.0.0.1:9200/v1/events";

/// A syslog listener's address and the tenant it names, if any.
#[derive(Debug, Clone)]
pub struct SyslogListener {
    tenant: Option<String>,
    addr: SocketAddr,
}

fn syslog_listener(spec: &str) -> Result<SyslogListener, String> {
    let (tenant, addr) = match spec.split_once('@') {
        Some((tenant, addr)) => (Some(self::tenant(tenant)?), addr),
        None => (None, spec),
    };
    let addr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an address such as 127.0.0.1:5514"))?;
    Ok(SyslogListener { tenant, addr })
}

fn tenant(name: &str) -> Result<String, String> {
    if strata_schema::valid_tenant(name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "`{name}` is not a tenant id: use [a-z0-9][a-z0-9._-]{{0,63}}"
        ))
    }
}

fn node_id(id: &str) -> Result<String, String> {
    if valid_node_id(id) {
        Ok(id.to_string())
    } else {
        Err(format!(
            "`{id}` is not a node id: use 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`"
        ))
    }
}

/// The host name made into a node id.
fn default_node_id() -> String {
    let id: String = strata_store::host_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if valid_node_id(&id) {
        id
    } else {
        "node-1".into()
    }
}

/// Runs the server until SIGTERM or Ctrl-C, then writes out and exits 0.
pub async fn run(mut archive: Archive, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if let Some(cluster) = &args.cluster {
        // Plans name the archive as the cluster's processes do.
        strata_cluster::scheduler_url(cluster)?;
        archive.location = strata_cluster::canonical_location(&archive.location)?;
    }
    let location = archive.location.clone();
    let syslog_specs = syslog_specs(&args)?;
    // A bad certificate stops the server here, never a silent plaintext fallback.
    let (tls, pg_tls) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => (
            Some(tls_acceptor(cert, key, HTTP_ALPN)?),
            Some(tls_acceptor(cert, key, POSTGRESQL_ALPN)?),
        ),
        _ => (None, None),
    };
    let options = ServeOptions {
        node_id: args.node_id.unwrap_or_else(default_node_id),
        memory_bytes: args.memory_mib << 20,
        wal_interval: Duration::from_millis(args.wal_interval_ms),
        max_age: Duration::from_secs(args.write_out_secs),
        max_body_bytes: (args.max_body_mib << 20) as usize,
        query_memory_bytes: (args.query_memory_mib << 20) as usize,
        queries_per_principal: args.queries_per_principal as usize,
        syslog_max_bytes: args.syslog_max_bytes as usize,
        keys: Some(crate::tenant_keys()?),
        pseudonyms: Arc::new(Pseudonyms::new(crate::pseudonym_secret()?)),
        cluster: args.cluster,
        ..ServeOptions::default()
    };
    let node = options.node_id.clone();
    let server = match Server::start(archive, options).await {
        Ok(server) => server,
        Err(ServeError::NoPrincipals) => {
            eprintln!(
                "error: the archive at {location} has no principals, and strata serve never \
                 serves without authentication. Create the first one with:\n  \
                 strata --archive {location} users add admin --role admin --reason \"first administrator\""
            );
            return Ok(ExitCode::from(EXIT_NO_PRINCIPALS));
        }
        Err(e) => return Err(e.into()),
    };
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.http))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut listening = vec![format!("{scheme}://{}", listener.local_addr()?)];
    let pg = match args.pg {
        Some(addr) => {
            let pg = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for PostgreSQL on {addr}: {e}"))?;
            let tls_only = if pg_tls.is_some() { " (TLS only)" } else { "" };
            listening.push(format!("postgresql://{}{tls_only}", pg.local_addr()?));
            Some(pg)
        }
        None => None,
    };
    let mut syslog = Vec::new();
    for (transport, spec, tenant) in syslog_specs {
        let socket = bind_syslog(transport, spec.addr).await?;
        let addr = match &socket {
            Socket::Tcp(s) => s.local_addr()?,
            Socket::Udp(s) => s.local_addr()?,
        };
        listening.push(format!("syslog-{transport}://{addr} (tenant {tenant})"));
        syslog.push(SyslogSocket { socket, tenant });
    }
    // Handlers first: a SIGTERM right after the banner must stop the server cleanly.
    let stop = stop_signal()?;
    println!(
        "strata serve: node {node}, archive {location}, {} events replayed; listening on {}",
        server.replayed,
        listening.join(", ")
    );
    std::io::stdout().flush()?;
    let listeners = Listeners {
        http: listener,
        http_tls: tls,
        pg,
        pg_tls,
        syslog,
    };
    server.serve(listeners, stop).await?;
    println!("strata serve: stopped; everything acknowledged is committed");
    Ok(ExitCode::SUCCESS)
}

/// Each syslog listener asked for, with its transport and tenant.
fn syslog_specs(args: &ServeArgs) -> anyhow::Result<Vec<(&'static str, SyslogListener, String)>> {
    let tcp = args.syslog_tcp.iter().map(|spec| ("tcp", spec));
    let udp = args.syslog_udp.iter().map(|spec| ("udp", spec));
    tcp.chain(udp)
        .map(|(transport, spec)| {
            let tenant = spec.tenant.clone().or_else(|| args.syslog_tenant.clone());
            let tenant = tenant.ok_or_else(|| {
                anyhow::anyhow!(
                    "--syslog-{transport} {}: syslog carries no tenant; name one as \
                     TENANT@{} or with --syslog-tenant",
                    spec.addr,
                    spec.addr
                )
            })?;
            Ok((transport, spec.clone(), tenant))
        })
        .collect()
}

async fn bind_syslog(transport: &str, addr: SocketAddr) -> anyhow::Result<Socket> {
    let cannot =
        |e: std::io::Error| anyhow::anyhow!("cannot listen for syslog on {transport} {addr}: {e}");
    Ok(match transport {
        "tcp" => Socket::Tcp(tokio::net::TcpListener::bind(addr).await.map_err(cannot)?),
        _ => Socket::Udp(tokio::net::UdpSocket::bind(addr).await.map_err(cannot)?),
    })
}

/// A future that completes on SIGTERM or Ctrl-C, its handlers installed now.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let interrupt = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt => {}
        }
        #[cfg(not(unix))]
        let _ = interrupt.await;
    })
}
