//! The long-lived server: one archive handle, a catalog snapshot refreshed
//! every second and shared by every request, the write-ahead log, the
//! buffers, and the background tasks (group commit, write-out, refresh).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use strata_access::{Authenticated, Role};
use strata_ingest::CompactOptions;
use strata_keys::envelope::KeyProvider;
use strata_query::{Pseudonyms, QueryError, QuerySession, Scope};
use strata_store::{Archive, CatalogError, Snapshot, reconcile};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::accept::accept_logged;
use crate::buffer::Generation;
use crate::dedup::Events;
use crate::group::{self, Submission};
use crate::http::listen;
use crate::limits::QueryLimits;
use crate::merging::{Merge, Unmerged};
use crate::metrics::{Gauges, Metrics};
use crate::recorder::Recorder;
use crate::syslog::SyslogSocket;
use crate::writeout;
use strata_wal::Durability;
use strata_wal::{Wal, WalError, source_id};
use tokio_rustls::TlsAcceptor;

/// How the server runs; `strata serve`'s flags.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Names this server's write-ahead log: servers sharing an archive
    /// need distinct ids.
    pub node_id: String,
    /// Memory of the whole server (`--memory-mib`), shared as
    /// [`ServeOptions::write_out_bytes`], [`ServeOptions::refuse_bytes`]
    /// and [`ServeOptions::compaction_bytes`] say.
    pub memory_bytes: u64,
    /// At most one write-ahead segment is stored per interval: the
    /// longest a request waits for others to share its segment.
    pub wal_interval: Duration,
    /// Buffered events are written out at the latest this long after the
    /// oldest of them arrived.
    pub max_age: Duration,
    /// A partition buffered past this many bytes of memory is written out.
    pub partition_bytes: usize,
    /// The largest request body accepted, after decompression.
    pub max_body_bytes: usize,
    /// The largest syslog message accepted; longer ones are refused.
    pub syslog_max_bytes: usize,
    /// Keys to read encrypted tenants' files in queries.
    pub keys: Option<Arc<dyn KeyProvider>>,
    /// How often the catalog is re-read (principals, other writers).
    pub refresh_interval: Duration,
    /// zstd level of the Parquet files written out.
    pub zstd_level: i32,
    /// Memory one principal's queries share (beyond `memory_bytes`).
    pub query_memory_bytes: usize,
    /// Queries one principal may run at once.
    pub queries_per_principal: usize,
    /// The Ballista cluster (`df://HOST:PORT`) queries of the archive run
    /// on; `None`: in this process.
    pub cluster: Option<String>,
    /// Keys analysts' pseudonyms: the keyring's pseudonym secret, so that
    /// they last across restarts (a random one by default).
    pub pseudonyms: Arc<Pseudonyms>,
}

/// Memory the process needs whatever it holds (code, runtime, catalog,
/// the allocator's slack), not shared out by [`ServeOptions`].
const PROCESS_BYTES: u64 = 48 << 20;

impl ServeOptions {
    /// The budget left for events and compaction: `--memory-mib` less
    /// what the process needs anyway (at least a quarter of it).
    fn shared_bytes(&self) -> u64 {
        (self.memory_bytes.saturating_sub(PROCESS_BYTES)).max(self.memory_bytes / 4)
    }

    /// Buffers this large are written out: a quarter of the shared budget.
    pub fn write_out_bytes(&self) -> u64 {
        self.shared_bytes() / 4
    }

    /// Buffers plus requests in flight this large make requests wait
    /// (503/429 with `Retry-After`): half the shared budget, room for the
    /// generation being written and as much filling meanwhile.
    pub fn refuse_bytes(&self) -> u64 {
        self.shared_bytes() / 2
    }

    /// Memory of the compaction that follows a write-out: an eighth of the
    /// shared budget (the rest is the write-out's encoding and uploads).
    pub fn compaction_bytes(&self) -> u64 {
        self.shared_bytes() / 8
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            node_id: "node-1".into(),
            memory_bytes: 1 << 30,
            wal_interval: Duration::from_millis(200),
            max_age: Duration::from_secs(600),
            partition_bytes: 128 << 20,
            max_body_bytes: 64 << 20,
            syslog_max_bytes: 64 << 10,
            keys: None,
            refresh_interval: Duration::from_secs(1),
            zstd_level: strata_ingest::ZSTD_LEVEL_DEFAULT,
            query_memory_bytes: 256 << 20,
            queries_per_principal: 4,
            cluster: None,
            pseudonyms: Arc::new(Pseudonyms::new(random_secret())),
        }
    }
}

/// 32 random bytes: a pseudonym secret that lasts as long as the process.
fn random_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .expect("the system has secure randomness");
    secret
}

/// Errors that stop the server from starting or finishing.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Nobody could authenticate: the server refuses to run open.
    #[error("the archive has no principals, and the server never serves without authentication")]
    NoPrincipals,
    /// The node id cannot name a folder of the archive.
    #[error(
        "invalid node id {0:?}: use 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`"
    )]
    NodeId(String),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// A write-out failed.
    #[error("write-out: {0}")]
    WriteOut(String),
    /// Listening or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What every request and task shares.
pub struct Shared {
    /// The archive, opened once.
    pub archive: Archive,
    /// The options.
    pub options: ServeOptions,
    /// How objects written become durable.
    pub durability: Durability,
    /// This node's write-ahead log.
    pub wal: Wal,
    /// The newest catalog state known.
    pub snapshot: RwLock<Arc<Snapshot>>,
    /// The events acknowledged and not yet committed.
    pub buffers: Mutex<Buffers>,
    /// Counters.
    pub metrics: Metrics,
    /// Memory of requests being parsed or waiting for their segment.
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// Held by a write-out and its compaction, so that two never overlap
    /// and a stop waits for both.
    pub writing_out: tokio::sync::Mutex<()>,
    /// The last write-ahead segment committed to the archive.
    pub committed: tokio::sync::watch::Sender<u64>,
    /// Wakes the write-out task to write out now.
    pub write_out_now: tokio::sync::Notify,
    /// Segments whose put failed (their requests were refused) but may
    /// have landed: deleted before a restart could replay them.
    pub failed_segments: Mutex<Vec<u64>>,
    /// Partitions written out and not merged since.
    pub unmerged: Mutex<Unmerged>,
}

/// The buffered generations.
#[derive(Debug, Default)]
pub struct Buffers {
    /// Filling now.
    pub live: Generation,
    /// Being written out, until its commit lands.
    pub writing: Option<Arc<Generation>>,
}

impl Shared {
    /// A context for a query session, in `runtime` if given: on the
    /// server's cluster when it has one (see `strata_cluster`).
    pub fn query_context(
        &self,
        runtime: Option<Arc<RuntimeEnv>>,
    ) -> Result<SessionContext, QueryError> {
        match &self.options.cluster {
            Some(cluster) => Ok(strata_cluster::remote_context(cluster, runtime)?),
            None => QuerySession::context(runtime),
        }
    }

    /// The current catalog snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().expect("snapshot lock").clone()
    }

    /// What `principal`'s queries see: a client its tenants only (every
    /// table of its session is built from their data alone), an analyst
    /// every tenant pseudonymised, others everything (see
    /// `strata_query::Scope`).
    pub fn scope_of(&self, principal: &Authenticated) -> Scope {
        match principal.role {
            Role::Client => Scope::tenants(principal.tenants.iter().cloned()),
            Role::Analyst => Scope::Pseudonymised(self.options.pseudonyms.clone()),
            Role::Admin | Role::Auditor => Scope::AllTenants,
            Role::Ingest => Scope::tenants(Vec::<String>::new()),
        }
    }

    /// Replaces the snapshot with `newer` if it is newer.
    pub fn publish(&self, newer: Snapshot) {
        let mut current = self.snapshot.write().expect("snapshot lock");
        if newer.seq > current.seq {
            *current = Arc::new(newer);
        }
    }

    /// Writes out now and waits until segment `seq` is committed to the
    /// archive (or `timeout` passes: false).
    pub async fn committed_through(&self, seq: u64, timeout: Duration) -> bool {
        let mut committed = self.committed.subscribe();
        self.write_out_now.notify_one();
        tokio::time::timeout(timeout, committed.wait_for(|&done| done >= seq))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    /// The catalog snapshot and the buffered events in none of its files,
    /// taken so that a generation being written out counts once: in the
    /// buffers until the snapshot holds its commit. (A write-out publishes
    /// its snapshot before it lets go of the generation, so buffers read
    /// first and a snapshot read second never both miss it.)
    pub fn query_view(&self) -> (Arc<Snapshot>, Vec<RecordBatch>) {
        let (mut rows, writing) = {
            let buffers = self.buffers.lock().expect("buffers lock");
            let live: Vec<RecordBatch> = buffers.live.batches().cloned().collect();
            (live, buffers.writing.clone())
        };
        let snapshot = self.snapshot();
        let committed = committed_segment(&snapshot, &self.options.node_id);
        if let Some(writing) = writing.filter(|w| w.through > committed) {
            rows.extend(writing.batches().cloned());
        }
        (snapshot, rows)
    }

    /// Reads what the catalog gained since the current snapshot (other
    /// writers' commits, a compaction's) and shows it to requests now.
    pub async fn refresh_now(&self) -> Result<(), CatalogError> {
        let mut snapshot = (*self.snapshot()).clone();
        self.archive.catalog.refresh(&mut snapshot).await?;
        self.publish(snapshot);
        Ok(())
    }

    /// Whether a file of `snapshot` is gone from the newest state (a
    /// compaction or expiry since): a query that failed over `snapshot`
    /// may then succeed over the newest.
    pub async fn moved_since(&self, snapshot: &Snapshot) -> Result<bool, CatalogError> {
        self.refresh_now().await?;
        let newest = self.snapshot();
        Ok((snapshot.files.keys()).any(|path| !newest.files.contains_key(path)))
    }

    /// Who holds `token`, if anyone.
    pub fn authenticate(&self, token: &str) -> Option<Authenticated> {
        strata_access::authenticate(&self.snapshot().governance, token)
    }

    /// Memory held by buffers and requests in flight.
    pub fn memory_used(&self) -> usize {
        let buffers = self.buffers.lock().expect("buffers lock");
        buffers.live.bytes
            + buffers.writing.as_ref().map_or(0, |w| w.bytes)
            + self.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether requests should wait: memory is nearly spent.
    pub fn under_pressure(&self) -> bool {
        self.memory_used() as u64 >= self.options.refuse_bytes()
    }

    /// The gauges of `/metrics`.
    pub fn gauges(&self) -> Gauges {
        let buffers = self.buffers.lock().expect("buffers lock");
        let committed = committed_segment(&self.snapshot(), &self.options.node_id);
        let writing = buffers.writing.as_ref();
        Gauges {
            buffered_events: buffers.live.events + writing.map_or(0, |w| w.events),
            buffered_bytes: (buffers.live.bytes + writing.map_or(0, |w| w.bytes)) as u64,
            wal_backlog: buffers.live.through.saturating_sub(committed),
        }
    }
}

/// The last of node `node`'s write-ahead segments committed in `snapshot`.
fn committed_segment(snapshot: &Snapshot, node: &str) -> u64 {
    snapshot
        .sources
        .get(&source_id(node))
        .map_or(0, |p| p.lines)
}

/// Resolves once `stop` turns true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stopping| stopping).await;
}

/// Whether `id` can name this node's folder of write-ahead segments.
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A started server: recovered, its background tasks running, not yet
/// listening.
pub struct Server {
    shared: Arc<Shared>,
    submit: mpsc::Sender<Submission>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Events replayed from the write-ahead log at start.
    pub replayed: u64,
}

impl Server {
    /// Opens the server on `archive`: cleans up after crashed writers,
    /// replays this node's write-ahead segments not yet committed, and
    /// starts the background tasks.
    pub async fn start(archive: Archive, options: ServeOptions) -> Result<Server, ServeError> {
        if !valid_node_id(&options.node_id) {
            return Err(ServeError::NodeId(options.node_id));
        }
        let snapshot = archive.catalog.load().await?;
        if snapshot.governance.principals.is_empty() {
            return Err(ServeError::NoPrincipals);
        }
        archive.catalog.check_writer(&snapshot)?;
        reconcile(&archive.stores, &archive.catalog).await?;
        let durability = Durability::of(&archive.location)?;
        let wal = Wal::new(archive.store.clone(), durability.clone(), &options.node_id);
        let staged = wal.remove_staging()?;
        if staged > 0 {
            tracing::info!("removed {staged} write-ahead files a crash left half-written");
        }
        let committed = committed_segment(&snapshot, &options.node_id);
        let merging = CompactOptions::default();
        let small = |size| merging.is_small(size);
        let unmerged = Unmerged::of(&snapshot, small, std::time::Instant::now());
        let shared = Arc::new(Shared {
            archive,
            options,
            durability,
            wal,
            snapshot: RwLock::new(Arc::new(snapshot)),
            buffers: Mutex::default(),
            metrics: Metrics::default(),
            in_flight: Default::default(),
            writing_out: Default::default(),
            committed: tokio::sync::watch::Sender::new(committed),
            write_out_now: Default::default(),
            failed_segments: Mutex::default(),
            unmerged: Mutex::new(unmerged),
        });
        let (replayed, last) = replay(&shared, committed).await?;
        let (submit, submissions) = mpsc::channel(1024);
        let tasks = vec![
            tokio::spawn(group::run(shared.clone(), submissions, last + 1)),
            tokio::spawn(refresh(shared.clone())),
            tokio::spawn(writeout::run(shared.clone())),
        ];
        Ok(Server {
            shared,
            submit,
            tasks,
            replayed,
        })
    }

    /// What requests share.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serves every listener of `listening` until `shutdown` completes,
    /// then stops accepting, answers the requests in flight, stores the
    /// syslog messages read, writes out and commits everything buffered,
    /// and returns.
    pub async fn serve(
        self,
        listening: Listeners,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let stop = watch::Sender::new(false);
        let mut listeners = JoinSet::new();
        for socket in listening.syslog {
            let (shared, submit) = (self.shared.clone(), self.submit.clone());
            listeners.spawn(crate::syslog::run(socket, shared, submit, stop.subscribe()));
        }
        // Both query surfaces share each principal's limits and the record.
        let options = &self.shared.options;
        let queries = Arc::new(QueryLimits::new(
            options.query_memory_bytes,
            options.queries_per_principal,
        ));
        let recorder = Arc::new(Recorder::new(self.submit.clone(), &options.node_id));
        if let Some(pg) = listening.pg {
            let backend = crate::pg::PgBackend::shared(&self.shared, &queries, &recorder);
            listeners.spawn(strata_pg::serve(
                pg,
                listening.pg_tls,
                backend,
                stop.subscribe(),
            ));
        }
        let router =
            crate::http::router(self.shared.clone(), self.submit.clone(), queries, recorder);
        listeners.spawn(listen::serve(
            listening.http,
            listening.http_tls,
            router,
            stop.subscribe(),
        ));
        shutdown.await;
        stop.send_replace(true);
        listeners.join_all().await;
        self.finish().await
    }

    /// Writes out everything buffered and stops the background tasks.
    pub async fn finish(self) -> Result<(), ServeError> {
        // Every request has been answered: nothing waits for a segment.
        drop(self.submit);
        {
            // A write-out or compaction under way finishes before its
            // task is stopped.
            let _wait = self.shared.writing_out.lock().await;
            for task in &self.tasks {
                task.abort();
            }
        }
        writeout::write_out_and_compact(&self.shared, Merge::All).await
    }
}

/// What a server listens on.
pub struct Listeners {
    /// Every HTTP protocol.
    pub http: TcpListener,
    /// TLS of the HTTP listener (plaintext is then refused).
    pub http_tls: Option<TlsAcceptor>,
    /// The PostgreSQL wire, when asked for.
    pub pg: Option<TcpListener>,
    /// TLS of the PostgreSQL listener (a client without it is then refused).
    pub pg_tls: Option<TlsAcceptor>,
    /// Syslog listeners.
    pub syslog: Vec<SyslogSocket>,
}

/// Replays this node's segments after `committed` into the buffers and
/// deletes those up to it; returns the events replayed and the last
/// segment number in use.
async fn replay(shared: &Shared, committed: u64) -> Result<(u64, u64), ServeError> {
    let seqs = shared.wal.list().await?;
    let (done, pending): (Vec<u64>, Vec<u64>) = seqs.iter().partition(|&&seq| seq <= committed);
    shared.wal.delete(&done).await?;
    let mut events = 0;
    let mut buffers = Generation::after(committed);
    for &seq in &pending {
        for record in shared.wal.read(seq).await? {
            let mut accepted = accept_logged(&record.lines, record.ingested_at);
            if let Some(bad) = accepted.rejected.first() {
                // Only accepted lines are logged, so this is a bug or damage.
                tracing::error!(
                    "{}: line {} no longer parses ({}); it is left out",
                    shared.wal.segment_path(seq),
                    bad.line,
                    bad.reason
                );
            }
            // A segment whose store failed may have landed all the same,
            // beside the retry that followed: its repeats count once.
            let mut replayed = Events {
                lines: &mut accepted.lines,
                keys: &mut accepted.event_ids,
                rows: &mut accepted.rows,
            };
            let repeats = replayed.repeats(|key| buffers.ids.contains(key));
            replayed.remove(&repeats);
            events += accepted.rows.len() as u64;
            let keys = accepted.event_ids.into_iter().flatten();
            buffers.add(seq, &record.principal, accepted.rows, keys);
        }
        buffers.through = seq;
    }
    if events > 0 {
        tracing::info!(
            "replayed {events} events from {} write-ahead segments",
            pending.len()
        );
    }
    shared.buffers.lock().expect("buffers lock").live = buffers;
    Ok((events, seqs.last().copied().unwrap_or(0).max(committed)))
}

/// Re-reads the catalog every `refresh_interval`: new principals and
/// revocations take effect within it.
async fn refresh(shared: Arc<Shared>) {
    let mut snapshot = (*shared.snapshot()).clone();
    loop {
        tokio::time::sleep(shared.options.refresh_interval).await;
        let current = shared.snapshot();
        if current.seq > snapshot.seq {
            snapshot = (*current).clone();
        }
        let before = snapshot.seq;
        match shared.archive.catalog.refresh(&mut snapshot).await {
            Ok(()) if snapshot.seq > before => shared.publish(snapshot.clone()),
            Ok(()) => {}
            Err(e) => tracing::warn!("cannot refresh the catalog: {e}"),
        }
    }
}
