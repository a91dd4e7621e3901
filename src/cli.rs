//! Command-line interface definition.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "Strata keeps compliance logs (access, data usage, technical events) as \
partitioned, zstd-compressed Parquet on a local folder or S3-compatible bucket, committed \
through a catalog in the same place, and answers audit questions over them in SQL.";

const EXAMPLES: &str = "\
Examples:
  strata demo                                   generate, ingest and query a sample year
  strata gen --events 1000000 -o events.ndjson  write synthetic BPO events
  strata ingest events.ndjson logs/*.ndjson.gz  load NDJSON (plain, gzip or zstd)
  strata sql \"SELECT tenant, count(*) FROM events GROUP BY tenant\"
  strata sql                                    interactive SQL shell
  strata verify --deep                          prove nothing was edited, dropped or added
  STRATA_ARCHIVE=s3://audit-logs/prod strata status";

/// Top-level command line.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about = ABOUT, after_help = EXAMPLES, max_term_width = 100)]
pub struct Cli {
    /// Archive location: a local folder, or s3://bucket/prefix (configured by AWS_ENDPOINT_URL,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP).
    #[arg(
        long,
        global = true,
        env = "STRATA_ARCHIVE",
        default_value = "./strata-archive"
    )]
    pub archive: String,

    /// The keyring file holding the archive signing key (made on first write, mode 0600).
    /// Keep it outside the archive. Default: ~/.config/strata/keyring.json.
    #[arg(long, global = true, env = "STRATA_KEYRING", value_name = "FILE")]
    pub keyring: Option<PathBuf>,

    /// Also copy every signed checkpoint to this folder or s3:// URL, outside the archive's
    /// reach, as <size>.note and latest.note (for `strata verify --trusted`).
    #[arg(long, global = true, env = "STRATA_WITNESS", value_name = "DIR_OR_URL")]
    pub witness: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load NDJSON events into the archive, exactly once per input file.
    #[command(after_help = INGEST_EXAMPLES)]
    Ingest(IngestArgs),
    /// Run SQL over the archive; with no query, open an interactive shell.
    #[command(after_help = SQL_EXAMPLES)]
    Sql(SqlArgs),
    /// Merge each partition's small files into larger ones.
    #[command(after_help = COMPACT_EXAMPLES)]
    Compact(CompactArgs),
    /// Prove the archive intact: catalog chain, signed checkpoints, every data object.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Check an export folder written by `strata sql --export`.
    #[command(after_help = VERIFY_EXPORT_EXAMPLES)]
    VerifyExport(VerifyExportArgs),
    /// Retention: set the policy, see what it would do, carry it out.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Legal holds: nothing they cover is expired or deleted, whatever the policy says.
    #[command(subcommand)]
    Hold(HoldCommand),
    /// Show the archive signing key, for auditors to pin.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Principals of the server: who may send events or query, with which role.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Run the ingest server: shippers send events over HTTP, acknowledged once durable.
    #[command(after_help = crate::serve::SERVE_EXAMPLES)]
    Serve(Box<crate::serve::ServeArgs>),
    /// Summarise the archive's catalog: commits, partitions, files, bytes.
    #[command(after_help = "Example:\n  strata --archive s3://audit-logs/prod status")]
    Status,
    /// Publish the catalog as a Delta Lake table (`_delta_log/`): write the versions missing.
    #[command(after_help = PUBLISH_EXAMPLES)]
    Publish,
    /// Distributed SQL: run an Apache DataFusion Ballista scheduler or executor for the archive.
    #[command(subcommand, after_help = CLUSTER_EXAMPLES)]
    Cluster(ClusterCommand),
    /// Write realistic synthetic BPO compliance events as NDJSON.
    #[command(after_help = GEN_EXAMPLES)]
    Gen(GenArgs),
    /// Generate a sample year of events, ingest it and run audit queries.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
}

const PUBLISH_EXAMPLES: &str = "\
Every commit is published as it is made: catalog entry N is Delta version N, listing the
files that became visible and those that stopped being visible (compacted, tiered, or in a
partition marked for expiry). This command writes the versions a stopped writer left
unpublished, and publishes an archive made before publication existed, in full. It is safe
to rerun and to run beside writers: a version is the same whoever writes it.
Engines that read Delta (Spark, Trino, Athena, Snowflake, DuckDB, Polars) then read the
archive root as a table; see docs/engines.md.

Example:
  strata --archive s3://audit-logs/prod publish";

const VERIFY_EXAMPLES: &str = "\
Replays the catalog from its first entry: checks the hash chain, rebuilds the Merkle tree
and compares it with every signed checkpoint and its Delta Lake publication (_delta_log/),
then lists the store and checks every object. Findings, each with the object's path:
  MODIFIED        a file's size or bytes differ from what was committed, or a Delta version
                  or checkpoint is not the publication of the catalog
  MISSING         a committed file is gone and no entry removed it, or a Delta version is
  UNSEALED        an object no entry lists, entries no signed checkpoint covers or not yet
                  published (`strata publish`), a Delta version strata did not write
  CHAIN_BROKEN    a catalog entry was edited, removed or reordered
  BAD_SIGNATURE   a checkpoint is not signed by the pinned key
  TRUNCATED       the log is shorter than a checkpoint (or --trusted) says it was
  ROLLED_BACK     the log is not an extension of the --trusted checkpoint
Exit status: 0 intact, 2 findings, 1 could not verify.

Examples:
  strata verify                                   sizes of all files, hashes of a sample
  strata verify --deep --json > verify.json       rehash every file, machine-readable
  strata verify --key \"$(cat pinned.vkey)\" --trusted /mnt/witness/latest.note";

const VERIFY_EXPORT_EXAMPLES: &str = "\
Checks the manifest's signature, the archive checkpoint it names and each file's SHA-256,
and that no file was added. Exit status: 0 intact, 2 findings, 1 could not verify.

Example:
  strata verify-export --key \"$(cat pinned.vkey)\" ./export-2025-q1";

const COMPACT_EXAMPLES: &str = "\
Ingest compacts the partitions it touched already; run this after many small ingests
(for example one per hour) to merge what they left. Merged files replace their sources
in one catalog commit, so queries never see both or neither.

Examples:
  strata compact
  strata compact --target-mib 512";

const DEMO_EXAMPLES: &str = "\
The events are generated once into the system's temporary folder and reused; rerunning
the demo on the same archive shows the input is recognised and not ingested twice.

Examples:
  strata demo
  strata --archive /tmp/demo-archive demo --events 1000000";

const INGEST_EXAMPLES: &str = "\
Each line must be a JSON object with at least ts, tenant, family and action (see README).
Bad lines are rejected with their line number and reason; the good lines are still
committed, and the exit status is 3. Rerunning the same command after a crash resumes
where the last commit stopped: no line is lost or stored twice.

Examples:
  strata ingest day1.ndjson day2.ndjson.gz
  strata ingest --rejects rejects.ndjson export.ndjson.zst
  zcat old.gz | strata ingest -          (stdin: committed, but not resumable)";

const SQL_EXAMPLES: &str = "\
Tables: events (all families), views access, data_usage, technical, and strata_files
(the catalog's files). ts is a UTC timestamp; attrs['key'] gives an attribute as text.

Examples:
  strata sql \"SELECT user, count(*) FROM access WHERE action = 'login_failed'
              AND tenant = 'acme-health' AND ts >= '2025-03-01' AND ts < '2025-04-01'
              GROUP BY user ORDER BY 2 DESC LIMIT 10\"
  strata sql --format csv --output exports.csv \"SELECT * FROM data_usage WHERE action = 'export'\"
  strata sql --stats \"SELECT count(*) FROM events WHERE tenant = 'globex-bank'\"
  strata sql --export q1-exports \"SELECT * FROM data_usage WHERE action = 'export'\"
              (result.parquet, result.csv and a signed manifest.note; see verify-export)
  strata sql --cluster df://10.0.0.1:50050 \"SELECT tenant, count(*) FROM events GROUP BY 1\"
              (on a Ballista cluster: see `strata cluster --help`)

In an archive with principals (a served one) every statement is recorded in the archive
as archive_query events, as the server records its own: who ran it (STRATA_ACTOR, else
user@host), its text, the tenants it read, rows and bytes. Without write access (no trusted
signing key, a read-only store) it runs without a record and says so. See docs/access.md.";

const CLUSTER_EXAMPLES: &str = "\
A cluster is one scheduler and any number of executors, all serving the same archive
(--archive: a folder every host mounts at the same path, or s3://...). Clients send it
queries with `strata sql --cluster df://HOST:PORT`: the plan names the archive, the catalog
entry it was made on and the tenants the session may see, never the data or keys; every
executor checks that each file it reads is in that entry and those tenants. Executors read
encrypted tenants with their own keyring (--keyring). Ballista's ports are unauthenticated:
keep a cluster on a trusted network. See docs/scale-out.md.

Examples:
  strata --archive /mnt/archive cluster scheduler --bind 10.0.0.1:50050
  strata --archive /mnt/archive --keyring /etc/strata/keyring.json \\
      cluster executor --scheduler 10.0.0.1:50050 --host 10.0.0.2
  strata --archive /mnt/archive sql --cluster df://10.0.0.1:50050 \"SELECT count(*) FROM events\"";

/// `strata cluster` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Run a scheduler: it plans clients' queries on the archive and hands tasks to executors.
    Scheduler {
        /// Address to listen on for clients and executors.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
        bind: std::net::SocketAddr,
    },
    /// Run an executor: it reads (and decrypts) the archive's files for the scheduler's tasks.
    Executor {
        /// The scheduler's address.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
        scheduler: String,
        /// The address to listen on, as the scheduler and clients reach it.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port of its Arrow Flight service (clients and other executors fetch results there).
        #[arg(long, value_name = "PORT", default_value_t = 50051)]
        flight_port: u16,
        /// Port of its gRPC service (the scheduler sends it tasks there).
        #[arg(long, value_name = "PORT", default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once (default: one per core).
        #[arg(long, value_name = "N", default_value_t = 0)]
        concurrent_tasks: usize,
        /// Folder for shuffle files (default: a new temporary folder).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
    },
}

const GEN_EXAMPLES: &str = "\
Examples:
  strata gen --events 2500000 --tenants 20 --days 365 -o year.ndjson
  strata gen --events 1000 --seed 7 --ts-format mixed | strata ingest -
  strata gen -o year.ndjson.zst        (compressed by the file extension: .gz or .zst)";

/// Default of `ingest --chunk-mib`.
pub const DEFAULT_CHUNK_MIB: u64 = 2048;
/// Default of `ingest --memory-mib`.
pub const DEFAULT_MEMORY_MIB: u64 = 512;
/// Default of `ingest --max-line-kib`.
pub const DEFAULT_MAX_LINE_KIB: u64 = 1024;

/// Options of `strata ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// NDJSON files (plain, .gz or .zst, detected from content); `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<String>,
    /// Also write every rejected line, with its file, line number and reason, as NDJSON here.
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Commit after this many MiB of (decompressed) input; smaller means less rework after a
    /// crash, and more files per partition until they are compacted.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_CHUNK_MIB)]
    pub chunk_mib: u64,
    /// Memory the ingest stays within, whatever the input's size and order. A smaller budget
    /// writes partitions out sooner, in smaller files that compaction merges afterwards.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MEMORY_MIB, value_parser = clap::value_parser!(u64).range(64..))]
    pub memory_mib: u64,
    /// The longest line accepted, in KiB. A longer line is rejected like any bad line (with
    /// its first 256 bytes in --rejects) and skipped without being held in memory, so an input
    /// without newlines, or a compressed one that expands into a huge line, stays within
    /// --memory-mib. At most 1/32 of --memory-mib (16384 KiB for 512 MiB).
    #[arg(long, value_name = "KIB", default_value_t = DEFAULT_MAX_LINE_KIB, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_line_kib: u64,
    /// Skip compacting the touched partitions after the ingest.
    #[arg(long)]
    pub no_compact: bool,
    /// No progress bar and no summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Output formats of `strata sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned table for people.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Parquet (needs --output).
    Parquet,
}

/// Options of `strata sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The query; omit it for an interactive shell.
    pub query: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the result to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// After the result, print on stderr how many files were pruned and bytes read.
    #[arg(long)]
    pub stats: bool,
    /// Write the result as result.parquet and result.csv into this new folder, with a
    /// manifest signed by the archive key naming the query and the checkpoint it ran on.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["output", "format"])]
    pub export: Option<PathBuf>,
    /// Run on the Ballista cluster whose scheduler is at df://HOST:PORT (see `strata cluster`).
    #[arg(
        long,
        value_name = "df://HOST:PORT",
        env = "STRATA_CLUSTER",
        conflicts_with = "stats"
    )]
    pub cluster: Option<String>,
}

/// Options of `strata verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Rehash every data file (default: check all sizes, rehash a random sample).
    #[arg(long)]
    pub deep: bool,
    /// Files rehashed when not --deep.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub sample: usize,
    /// A checkpoint kept outside the archive (e.g. a witness's latest.note): the log must
    /// still contain it and only have grown since.
    #[arg(long, value_name = "CHECKPOINT_FILE")]
    pub trusted: Option<PathBuf>,
    /// The verifier key checkpoints must be signed with (as `strata keys show` prints it,
    /// or a file holding it). Default: the keyring's key.
    #[arg(long, value_name = "VKEY_OR_FILE")]
    pub key: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `strata verify-export`.
#[derive(Debug, Args)]
pub struct VerifyExportArgs {
    /// The folder `strata sql --export` wrote.
    pub dir: PathBuf,
    /// The verifier key the manifest must be signed with. Default: the keyring's key.
    #[arg(long, value_name = "VKEY_OR_FILE")]
    pub key: Option<String>,
}

/// `strata retention` subcommands.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Set, show or list the policies and presets.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print every action the policy would take now, changing nothing.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(PlanArgs),
    /// Carry the plan out: one commit per action, resumable after a crash.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Run the plan on the policy's cron schedule (UTC), logging each run.
    #[command(
        after_help = "Example:\n  strata retention daemon        (stop with Ctrl-C or SIGTERM)"
    )]
    Daemon,
    /// Withdraw expiry marks before their sweep; the partitions become visible again.
    #[command(after_help = CANCEL_EXAMPLES)]
    Cancel(CancelArgs),
}

const PLAN_EXAMPLES: &str = "\
Partitions are tenant-family-months; their age counts from their newest event. Expiry is
two-phase: `expire` marks a partition (queries stop seeing it), `sweep` deletes it once the
policy's grace period (default 7 days) is over. Legal holds block both, and are listed.

Examples:
  strata retention plan
  strata retention plan --now 2027-01-01 --format json";

const RUN_EXAMPLES: &str = "\
Each action is recorded in the catalog with the policy version, actor and reason, and
shows in `SELECT * FROM strata_audit`. After a crash, run it again: it finishes the job.

Examples:
  strata retention run
  strata retention run --now 2027-01-01      (rehearse on a copy of the archive)";

const CANCEL_EXAMPLES: &str = "\
A cancelled partition is not marked again under the same policy version; change the policy
or place a hold to keep it for good.

Example:
  strata retention cancel --tenant acme-health --month 2019-03 --reason \"audit request 42\"";

/// `strata retention policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a TOML policy file and make it the archive's policy (a new version).
    #[command(after_help = POLICY_EXAMPLE)]
    Set {
        /// The policy file.
        file: PathBuf,
        /// Why the policy changes (recorded with it).
        #[arg(long, default_value = "policy updated")]
        reason: String,
    },
    /// Print the policy in force and its version.
    Show,
    /// List the built-in presets with their periods and sources.
    Presets,
}

const POLICY_EXAMPLE: &str = "\
Example policy:
  schedule = \"0 3 * * *\"            # daemon runs, UTC cron
  grace = \"7d\"                      # between expiry mark and deletion

  [cold_stores]
  cold = \"s3://audit-cold/strata\"

  [[rule]]                            # the most specific rule wins: tenant, then family
  tenant = \"*\"
  family = \"*\"
  presets = [\"pci-dss-4\"]            # 12 months, the latest 3 never tiered
  tier_after = \"3mo\"
  tier_to = \"cold\"

  [[rule]]
  tenant = \"acme-health\"
  family = \"*\"
  presets = [\"hipaa\", \"pci-dss-4\"]   # the longest retention wins: 6 years

Example:
  strata retention policy set policy.toml --reason \"CAB-1234\"";

/// Options of `strata retention plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Plan as of this instant instead of now (2027-01-01 or RFC 3339).
    #[arg(long, value_name = "TS")]
    pub now: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    pub format: PlanFormat,
}

/// Output formats of `strata retention plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// One line per action, for people.
    Table,
    /// The whole plan as JSON.
    Json,
}

/// Options of `strata retention run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run as of this instant instead of now (2027-01-01 or RFC 3339).
    #[arg(long, value_name = "TS")]
    pub now: Option<String>,
    /// Print only the summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Options of `strata retention cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Tenant whose marks to withdraw.
    #[arg(long, value_parser = tenant_name)]
    pub tenant: String,
    /// Only this family.
    #[arg(long, value_parser = family_name)]
    pub family: Option<String>,
    /// Only this month (YYYY-MM).
    #[arg(long, value_parser = month_name)]
    pub month: Option<String>,
    /// Why (recorded).
    #[arg(long)]
    pub reason: String,
}

/// `strata hold` subcommands.
#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Place a legal hold.
    #[command(after_help = HOLD_EXAMPLES)]
    Add(HoldAddArgs),
    /// List the active holds.
    List,
    /// Lift a hold; what it covered follows the policy again at the next run.
    Release {
        /// The hold's number (see `strata hold list`).
        id: u64,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
}

const HOLD_EXAMPLES: &str = "\
A hold covers every partition of the tenant (and family) that overlaps the days given. It
blocks expiry, deletion and key shredding, wins over every policy, and is recorded in
strata_audit like every change.

Examples:
  strata hold add --tenant globex-bank --reason \"SEC inquiry 2026-117\"
  strata hold add --tenant acme-health --family access --from 2025-01-01 --to 2025-06-30 \\
                  --reason \"litigation hold, matter 88\"";

/// Options of `strata hold add`.
#[derive(Debug, Args)]
pub struct HoldAddArgs {
    /// The tenant to hold.
    #[arg(long, value_parser = tenant_name)]
    pub tenant: String,
    /// Only this family.
    #[arg(long, value_parser = family_name)]
    pub family: Option<String>,
    /// First day covered (YYYY-MM-DD).
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day covered, inclusive (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// The case or matter the hold is for.
    #[arg(long)]
    pub reason: String,
}

/// `strata users` subcommands.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a principal and print its token, once, alone on the last line.
    #[command(after_help = USERS_EXAMPLES)]
    Add {
        /// Its name: 1 to 64 characters of a-z, 0-9, `.`, `_` and `-`.
        #[arg(value_parser = principal_name)]
        name: String,
        /// What it may do: admin (everything), ingest (only send events), auditor (query
        /// every tenant and the audit trail), analyst (query every tenant's events with user,
        /// address, session, host, message and text attributes pseudonymised), client (query
        /// only its --tenant's data; at least one tenant required).
        #[arg(long, value_parser = role_name)]
        role: strata_access::Role,
        /// Restrict it to this tenant (repeat for several); none: every tenant (not for a client).
        #[arg(long = "tenant", value_parser = tenant_name, value_name = "TENANT")]
        tenants: Vec<String>,
        /// Why (recorded).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// List the active principals (never their tokens).
    List,
    /// Revoke a principal: its token stops working.
    #[command(
        after_help = "Example:\n  strata users revoke vpn-gateway --reason \"gateway decommissioned\""
    )]
    Revoke {
        /// Its name.
        name: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
}

const USERS_EXAMPLES: &str = "\
Principals are recorded in the catalog like policies and holds (signed, chained, listed in
strata_audit with who granted what to whom and why); only a hash of the token is kept, so
store the token printed now: it cannot be shown again. A lost token is replaced by revoking
the principal and adding it again. The token is also the principal's password on the
PostgreSQL wire (`strata serve --pg`), checked by a SCRAM verifier kept beside its hash.
Every query a principal runs through the server is recorded in the archive.

Examples:
  strata users add ops --role admin --reason \"on-call team\"
  strata users add vpn-gateway --role ingest --tenant acme-health --reason \"VPN logs\"
  strata users add acme-portal --role client --tenant acme-health --reason \"client's own logs\"
  TOKEN=$(strata users add fluent-bit --role ingest | tail -n 1)";

/// `strata keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the verifier key and fingerprint of the signing key (made if missing).
    #[command(after_help = "Example:\n  strata keys show > pinned.txt")]
    Show,
    /// Make a new master key version for a tenant: new files use it, older files still read.
    #[command(after_help = "Example:\n  strata keys rotate --tenant acme-health")]
    Rotate {
        /// The tenant.
        #[arg(long, value_parser = tenant_name)]
        tenant: String,
    },
    /// Let the archive accept entries signed by another writer's key.
    #[command(after_help = TRUST_EXAMPLES)]
    Trust {
        /// The other writer's verifier key, as its `strata keys show` prints it.
        key: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Stop accepting entries signed by a key; what it signed before stays valid.
    #[command(
        after_help = "Example:\n  strata keys retire 'strata-host2+1a2b3c4d+AV…' --reason \"host decommissioned\""
    )]
    Retire {
        /// The verifier key to retire.
        key: String,
        /// Why (recorded).
        #[arg(long)]
        reason: String,
    },
    /// Crypto-shred a tenant (GDPR erasure): destroy its master keys after the grace period.
    #[command(after_help = SHRED_EXAMPLES)]
    Shred {
        /// The tenant.
        #[arg(long, value_parser = tenant_name)]
        tenant: String,
        /// Why (the erasure request), recorded.
        #[arg(long)]
        reason: String,
        /// Schedule as of this instant instead of now (2027-01-01 or RFC 3339).
        #[arg(long, value_name = "TS")]
        now: Option<String>,
    },
}

const TRUST_EXAMPLES: &str = "\
Every catalog entry is signed by its writer, and the archive accepts only entries signed by
a key it trusts: the first signed entry trusts its own writer's key, and any other writer
(another host, a container, a server) is refused until a trusted writer trusts its key. The
change is an entry like any other, visible in strata_audit.

Example (on the new writer, then on a trusted one):
  strata keys show                       # prints strata-host2+1a2b3c4d+AV…
  strata keys trust 'strata-host2+1a2b3c4d+AV…' --reason \"second ingest host\"";

const SHRED_EXAMPLES: &str = "\
Shredding is scheduled now and carried out by the first `strata retention run` after the
policy's grace period (7 days without a policy). Afterwards every query that reads the
tenant's encrypted files fails with \"key destroyed\"; other tenants are untouched. It is
refused while a legal hold covers the tenant, or while any of its files is not encrypted.

Example:
  strata keys shred --tenant initech-telecom --reason \"GDPR erasure request 2026-0042\"";

/// Options of `strata compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Target size of merged files in MiB; files at least half this size are left alone.
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    pub target_mib: u64,
    /// Memory the compaction stays within; merges are smaller under a smaller budget.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MEMORY_MIB, value_parser = clap::value_parser!(u64).range(64..))]
    pub memory_mib: u64,
}

/// Timestamp ordering of generated events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Order {
    /// Non-decreasing ts, like a log shipper's output.
    Sorted,
    /// Out of order, like a merge of many sources.
    Shuffled,
}

/// Timestamp format of generated events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TsFormat {
    /// "2025-03-04T09:15:02.123Z"
    Rfc3339,
    /// 1741079702123
    EpochMs,
    /// A mix of both, with some non-UTC offsets.
    Mixed,
}

/// Options of `strata gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of events.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    pub events: u64,
    /// Number of tenants (sizes are skewed).
    #[arg(long, default_value_t = 20)]
    pub tenants: u32,
    /// Days covered, starting at --start.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// First day (UTC), YYYY-MM-DD.
    #[arg(long, default_value = "2025-01-01")]
    pub start: String,
    /// Random seed: the same options and seed give the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Timestamp order.
    #[arg(long, value_enum, default_value_t = Order::Sorted)]
    pub order: Order,
    /// Timestamp format.
    #[arg(long, value_enum, default_value_t = TsFormat::Rfc3339)]
    pub ts_format: TsFormat,
    /// Output file (default stdout); a .gz or .zst extension compresses.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Options of `strata demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of events to generate.
    #[arg(long, short = 'n', default_value_t = 200_000)]
    pub events: u64,
}

/// A tenant name as the event contract allows it: a name that could never be
/// ingested would make a hold, key or cancellation that covers nothing.
fn tenant_name(name: &str) -> Result<String, String> {
    if strata_schema::valid_tenant(name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "`{name}` is not a tenant name: tenants are 1 to 64 characters of a-z, 0-9, `.`, `_` \
             and `-`, starting with a letter or digit (lowercase, as in events)"
        ))
    }
}

/// A name a principal can have.
fn principal_name(name: &str) -> Result<String, String> {
    if strata_store::valid_principal_name(name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "`{name}` is not a principal name: names are 1 to 64 characters of a-z, 0-9, `.`, \
             `_` and `-`, starting with a letter or digit"
        ))
    }
}

/// One of the roles.
fn role_name(name: &str) -> Result<strata_access::Role, String> {
    strata_access::Role::parse(name).ok_or_else(|| {
        let all: Vec<&str> = strata_access::Role::ALL
            .iter()
            .map(|r| r.as_str())
            .collect();
        format!("`{name}` is not a role: use one of {}", all.join(", "))
    })
}

/// One of the contract's families.
fn family_name(name: &str) -> Result<String, String> {
    strata_schema::Family::parse(name)
        .map(|f| f.as_str().to_string())
        .ok_or_else(|| {
            let all: Vec<&str> = strata_schema::Family::ALL
                .iter()
                .map(|f| f.as_str())
                .collect();
            format!("`{name}` is not a family: use one of {}", all.join(", "))
        })
}

/// A partition month, `YYYY-MM`.
fn month_name(month: &str) -> Result<String, String> {
    let valid = month.len() == 7
        && chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").is_ok();
    if valid {
        Ok(month.to_string())
    } else {
        Err(format!(
            "`{month}` is not a month: write YYYY-MM, e.g. 2025-03"
        ))
    }
}
