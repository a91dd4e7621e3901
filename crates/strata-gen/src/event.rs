//! Event contents: for each timestamp, picks a tenant, an action, the actor
//! and the details, then appends one NDJSON line to a reused buffer.
//!
//! An event is first assembled in a small `Copy`-only [`Ev`] (static strings,
//! numbers, indices), then serialised field by field; the only per-event
//! text built on the fly (message, user name, ...) goes through reused
//! scratch buffers, so the steady state does not allocate.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::text::{DAY_MS, HOUR_MS, TsFormatter, civil_from_days, mix, push_json_str};
use crate::timeline::{STREAM_EVENTS, rng_for};
use crate::{GenConfig, TsFormat, tenant_names};

// ---------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Access,
    DataUsage,
    Technical,
}

impl Family {
    fn as_str(self) -> &'static str {
        match self {
            Family::Access => "access",
            Family::DataUsage => "data_usage",
            Family::Technical => "technical",
        }
    }
}

const FAMILIES: [(Family, u32); 3] = [
    (Family::Access, 40),
    (Family::DataUsage, 45),
    (Family::Technical, 15),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Action {
    Login,
    Logout,
    LoginFailed,
    VpnConnect,
    VpnDisconnect,
    SessionTimeout,
    PrivilegeEscalation,
    AdminOp,
    DbConnect,
    AppAccess,
    Read,
    Query,
    Export,
    Download,
    Upload,
    Update,
    Delete,
    Transmit,
    Error,
    Warning,
    ServiceStart,
    ServiceStop,
    IncidentOpened,
    IncidentResolved,
    ConfigChange,
    SecurityAlert,
    NetworkEvent,
}

impl Action {
    fn as_str(self) -> &'static str {
        use Action::*;
        match self {
            Login => "login",
            Logout => "logout",
            LoginFailed => "login_failed",
            VpnConnect => "vpn_connect",
            VpnDisconnect => "vpn_disconnect",
            SessionTimeout => "session_timeout",
            PrivilegeEscalation => "privilege_escalation",
            AdminOp => "admin_action",
            DbConnect => "db_connect",
            AppAccess => "app_access",
            Read => "read",
            Query => "query",
            Export => "export",
            Download => "download",
            Upload => "upload",
            Update => "update",
            Delete => "delete",
            Transmit => "transmit",
            Error => "error",
            Warning => "warning",
            ServiceStart => "service_start",
            ServiceStop => "service_stop",
            IncidentOpened => "incident_opened",
            IncidentResolved => "incident_resolved",
            ConfigChange => "config_change",
            SecurityAlert => "security_alert",
            NetworkEvent => "network_event",
        }
    }
}

const ACCESS_ACTIONS: [(Action, u32); 10] = [
    (Action::Login, 28),
    (Action::Logout, 24),
    (Action::LoginFailed, 8),
    (Action::VpnConnect, 8),
    (Action::VpnDisconnect, 7),
    (Action::SessionTimeout, 5),
    (Action::PrivilegeEscalation, 1),
    (Action::AdminOp, 3),
    (Action::DbConnect, 6),
    (Action::AppAccess, 10),
];

const DATA_ACTIONS: [(Action, u32); 8] = [
    (Action::Read, 35),
    (Action::Query, 25),
    (Action::Export, 6),
    (Action::Download, 6),
    (Action::Upload, 4),
    (Action::Update, 16),
    (Action::Delete, 3),
    (Action::Transmit, 5),
];

const TECH_ACTIONS: [(Action, u32); 9] = [
    (Action::Error, 25),
    (Action::Warning, 30),
    (Action::ServiceStart, 6),
    (Action::ServiceStop, 6),
    (Action::IncidentOpened, 4),
    // Most resolutions are scheduled by their opening (see `due_incident`);
    // these few close incidents opened before the generated range.
    (Action::IncidentResolved, 1),
    (Action::ConfigChange, 8),
    (Action::SecurityAlert, 5),
    (Action::NetworkEvent, 12),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Agent,
    Supervisor,
    QaAnalyst,
    Admin,
    Dba,
    Service,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::QaAnalyst => "qa_analyst",
            Role::Admin => "admin",
            Role::Dba => "dba",
            Role::Service => "service",
        }
    }

    /// Prefix of the user names in this role's pool (service accounts are
    /// named from `SERVICE_ACCOUNTS` instead).
    fn prefix(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "sup",
            Role::QaAnalyst => "qa",
            Role::Admin => "admin",
            Role::Dba => "dba",
            Role::Service => "svc",
        }
    }
}

const SERVICE_ACCOUNTS: [&str; 6] = [
    "svc-etl",
    "svc-crm-sync",
    "svc-backup",
    "svc-ivr",
    "svc-report",
    "svc-monitor",
];

/// Who performs interactive sign-ins and everyday record work.
const INTERACTIVE_ROLES: [(Role, u32); 5] = [
    (Role::Agent, 76),
    (Role::Supervisor, 10),
    (Role::QaAnalyst, 8),
    (Role::Admin, 3),
    (Role::Dba, 3),
];
const BULK_ROLES: [(Role, u32); 5] = [
    (Role::Agent, 50),
    (Role::Supervisor, 25),
    (Role::QaAnalyst, 10),
    (Role::Admin, 5),
    (Role::Dba, 10),
];
const DB_ROLES: [(Role, u32); 3] = [(Role::Dba, 50), (Role::Service, 40), (Role::Admin, 10)];
const DELETE_ROLES: [(Role, u32); 4] = [
    (Role::Agent, 40),
    (Role::Supervisor, 20),
    (Role::Admin, 20),
    (Role::Dba, 20),
];
/// A share of escalations by agents is what an auditor wants to find.
const ESCALATION_ROLES: [(Role, u32); 2] = [(Role::Admin, 70), (Role::Agent, 30)];
const CONFIG_ROLES: [(Role, u32); 3] = [(Role::Admin, 60), (Role::Dba, 20), (Role::Service, 20)];

const APPS: [&str; 8] = [
    "crm",
    "ivr",
    "billing",
    "claims",
    "hr-portal",
    "vpn",
    "sso",
    "warehouse",
];
const DATA_APPS: [(&str, u32); 6] = [
    ("crm", 35),
    ("claims", 20),
    ("billing", 15),
    ("hr-portal", 8),
    ("warehouse", 12),
    ("ivr", 10),
];
const USER_APPS: [&str; 5] = ["crm", "claims", "billing", "hr-portal", "ivr"];
const TABLES: [&str; 8] = [
    "payments",
    "customers",
    "call_records",
    "claims",
    "agent_kpi",
    "pii_contacts",
    "invoices",
    "audit_log",
];
const DATABASES: [&str; 4] = ["dwh-prod", "billing-db", "claims-db", "crm-replica"];
const COUNTRIES: [&str; 8] = ["IN", "PH", "US", "GB", "ZA", "MX", "PL", "CO"];
const CHANNELS: [&str; 4] = ["voice", "chat", "email", "sms"];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }

    /// One level up, used when an action fails.
    fn bump(self) -> Severity {
        match self {
            Severity::Debug => Severity::Info,
            Severity::Info => Severity::Notice,
            Severity::Notice => Severity::Warning,
            Severity::Warning => Severity::Error,
            Severity::Error | Severity::Critical => Severity::Critical,
        }
    }
}

// ---------------------------------------------------------------------------
// Event pieces
// ---------------------------------------------------------------------------

/// A user of a tenant: a role and an index into that role's pool.
#[derive(Clone, Copy)]
struct User {
    role: Role,
    idx: u32,
}

impl User {
    fn key(self, seed: u64, tenant: u32) -> u64 {
        mix(seed ^ (u64::from(tenant) << 40) ^ ((self.role as u64) << 32) ^ u64::from(self.idx))
    }
}

/// Local part of the user name, e.g. `agent0042` or `svc-etl`.
impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.role == Role::Service {
            f.write_str(SERVICE_ACCOUNTS[self.idx as usize % SERVICE_ACCOUNTS.len()])
        } else {
            write!(f, "{}{:04}", self.role.prefix(), self.idx)
        }
    }
}

/// Full user id, e.g. `agent0042@acme-health`.
struct Qualified<'a>(User, &'a str);

impl fmt::Display for Qualified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.0, self.1)
    }
}

#[derive(Clone, Copy)]
enum Host {
    Workstation(u32),
    Server(&'static str, u32),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Workstation(n) => write!(f, "ws-{n:04}"),
            Host::Server(kind, n) => write!(f, "srv-{kind}-{n:02}"),
        }
    }
}

#[derive(Clone, Copy)]
enum Resource {
    Record(&'static str, u32),
    Table(&'static str),
    File(&'static str, u32, &'static str),
    Database(&'static str),
}

impl Resource {
    fn type_name(self) -> &'static str {
        match self {
            Resource::Record(kind, _) => kind,
            Resource::Table(_) => "table",
            Resource::File(..) => "file",
            Resource::Database(_) => "database",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Record(kind, id) => write!(f, "{kind}/{id}"),
            Resource::Table(name) => write!(f, "table/{name}"),
            Resource::File(stem, month, ext) => write!(f, "file/{stem}-{month}.{ext}"),
            Resource::Database(name) => write!(f, "database/{name}"),
        }
    }
}

/// Ticket id such as `INC-20250304-0012`.
#[derive(Clone, Copy)]
struct Ticket {
    prefix: &'static str,
    date: u32,
    seq: u32,
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:04}", self.prefix, self.date, self.seq % 10_000)
    }
}

/// A scalar value of `attrs` or of an extra top-level key.
#[derive(Clone, Copy)]
enum Val {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    Ticket(Ticket),
}

/// Up to four distinct keys with scalar values, without allocating.
#[derive(Clone, Copy)]
struct Kv {
    items: [(&'static str, Val); 4],
    len: usize,
}

impl Kv {
    const EMPTY: Kv = Kv {
        items: [("", Val::Bool(false)); 4],
        len: 0,
    };

    fn push(&mut self, key: &'static str, val: Val) {
        let taken = self.items[..self.len].iter().any(|(k, _)| *k == key);
        if !taken && self.len < self.items.len() {
            self.items[self.len] = (key, val);
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[(&'static str, Val)] {
        &self.items[..self.len]
    }
}

#[derive(Clone, Copy)]
enum Duration {
    /// Whole milliseconds, written as an integer.
    Millis(u64),
    /// Microseconds, written as milliseconds with three decimals.
    Micros(u64),
}

/// Everything about one event except its message, which goes straight into
/// the writer's message buffer.
struct Ev {
    /// `None` means integer epoch milliseconds.
    ts_offset: Option<i32>,
    tenant: u32,
    family: Family,
    action: Action,
    outcome: Option<&'static str>,
    severity: Option<Severity>,
    user: Option<User>,
    show_role: bool,
    host: Option<Host>,
    app: Option<&'static str>,
    resource: Option<Resource>,
    show_resource_type: bool,
    session: Option<u64>,
    ip: Option<IpAddr>,
    bytes: Option<u64>,
    records: Option<u64>,
    duration: Option<Duration>,
    show_message: bool,
    attrs: Kv,
    extras: Kv,
}

/// Time facts the content depends on.
#[derive(Clone, Copy)]
struct Ctx {
    ts: i64,
    hour: u32,
    off_hours: bool,
    want_attrs: bool,
}

/// An opened incident waiting for its resolution (for MTTR pairs).
struct Incident {
    tenant: u32,
    opened_ms: i64,
    /// When the resolution is emitted: the first event at or after it.
    due_ms: i64,
    ticket: Ticket,
    app: &'static str,
}

/// At most this many incidents wait for resolution; older ones stay open.
const MAX_OPEN_INCIDENTS: usize = 64;

// ---------------------------------------------------------------------------
// Random helpers (integer draws where it matters, so output is portable)
// ---------------------------------------------------------------------------

/// True with probability `p` percent.
fn pct(r: &mut ChaCha8Rng, p: u32) -> bool {
    r.random_range(0..100u32) < p
}

/// Weighted choice.
fn pick<T: Copy>(r: &mut ChaCha8Rng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|e| e.1).sum();
    let mut x = r.random_range(0..total);
    for &(v, w) in table {
        if x < w {
            return v;
        }
        x -= w;
    }
    table[table.len() - 1].0
}

/// Uniform choice.
fn one<T: Copy>(r: &mut ChaCha8Rng, items: &[T]) -> T {
    items[r.random_range(0..items.len() as u32) as usize]
}

/// Index in `0..n` skewed towards 0 (density ~ 1/sqrt(x)), so a few users or
/// records are far more active than the rest.
fn skewed(r: &mut ChaCha8Rng, n: u32) -> u32 {
    let f: f64 = r.random();
    (((f * f) * f64::from(n)) as u32).min(n.saturating_sub(1))
}

fn between(r: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    r.random_range(lo..=hi)
}

/// Log-ish distributed record count: mostly small, a long tail of bulk ops.
fn records_tiered(r: &mut ChaCha8Rng, min_tier: u32) -> u64 {
    const TIERS: [(u32, u32); 6] = [(0, 30), (1, 30), (2, 20), (3, 12), (4, 6), (5, 2)];
    let tier = pick(r, &TIERS[min_tier as usize..]);
    let lo = 10u64.pow(tier);
    between(r, lo, lo * 10 - 1)
}

fn public_v4(h: u64) -> IpAddr {
    const FIRST: [u8; 12] = [49, 103, 117, 122, 152, 175, 182, 203, 34, 52, 81, 185];
    IpAddr::V4(Ipv4Addr::new(
        FIRST[(h % 12) as usize],
        (h >> 16) as u8,
        (h >> 24) as u8,
        ((h >> 32) % 254 + 1) as u8,
    ))
}

fn ipv6(h: u64) -> IpAddr {
    const PREFIXES: [(u16, u16); 4] = [
        (0x2401, 0x4900),
        (0x2001, 0x0db8),
        (0x2a02, 0x26f0),
        (0x2600, 0x1f18),
    ];
    let (a, b) = PREFIXES[(h % 4) as usize];
    let g = |shift: u32| ((h >> shift) as u16).max(1);
    // Display of Ipv6Addr is the canonical RFC 5952 text form.
    IpAddr::V6(Ipv6Addr::new(a, b, g(8), g(24), 0, 0, g(40), g(48)))
}

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

struct Tenant {
    name: String,
    /// Pool size per role, indexed by `Role as usize`.
    pools: [u32; 6],
    /// Index of the office network layout (10/8, 172.16/12, 192.168/16).
    net: u32,
}

/// Generates event contents and serialises them into `buf`.
pub(crate) struct EventWriter {
    /// Output not yet handed to the writer.
    pub(crate) buf: Vec<u8>,
    rng: ChaCha8Rng,
    seed: u64,
    ts_format: TsFormat,
    ts_fmt: TsFormatter,
    tenants: Vec<Tenant>,
    /// Cumulative Zipf weights of the tenants.
    tenant_cum: Vec<u64>,
    msg: Vec<u8>,
    scratch: Vec<u8>,
    id_prefix: u64,
    counter: u64,
    incidents: VecDeque<Incident>,
    /// Smallest `due_ms` in `incidents` (`i64::MAX` if none), so the common
    /// case is one comparison per event.
    next_due: i64,
    incident_seq: u32,
}

impl EventWriter {
    pub(crate) fn new(config: &GenConfig) -> Self {
        let tenants: Vec<Tenant> = tenant_names(config.tenants)
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                // ~1000 users for the biggest tenant, tapering off.
                let users = (4000 / (i as u64 + 4)).max(10) as u32;
                Tenant {
                    name,
                    pools: [
                        (users * 78 / 100).max(1),
                        (users / 12).max(1),
                        (users / 15).max(1),
                        (users / 60).max(2),
                        (users / 100).max(1),
                        SERVICE_ACCOUNTS.len() as u32,
                    ],
                    net: (mix(config.seed ^ i as u64) % 3) as u32,
                }
            })
            .collect();
        // Zipf with exponent 1: tenant i weighs 1/(i+1).
        let mut acc = 0u64;
        let tenant_cum = (0..u64::from(config.tenants))
            .map(|i| {
                acc += 1_000_000_000 / (i + 1);
                acc
            })
            .collect();
        EventWriter {
            buf: Vec::with_capacity(crate::FLUSH_AT + 4096),
            rng: rng_for(config.seed, STREAM_EVENTS),
            seed: config.seed,
            ts_format: config.ts_format,
            ts_fmt: TsFormatter::new(),
            tenants,
            tenant_cum,
            msg: Vec::with_capacity(256),
            scratch: Vec::with_capacity(64),
            id_prefix: mix(config.seed ^ 0x5EED) >> 16,
            counter: 0,
            incidents: VecDeque::with_capacity(MAX_OPEN_INCIDENTS),
            next_due: i64::MAX,
            incident_seq: 0,
        }
    }

    /// Appends one event with timestamp `ts` (epoch ms) as a line to `buf`.
    pub(crate) fn write_event(&mut self, ts: i64) {
        self.msg.clear();
        let ev = self.build(ts);
        self.write_line(&ev, ts);
        self.counter += 1;
    }

    fn pick_tenant(&mut self) -> u32 {
        let total = *self.tenant_cum.last().expect("at least one tenant");
        let x = self.rng.random_range(0..total);
        self.tenant_cum.partition_point(|&c| c <= x) as u32
    }

    fn pick_user(&mut self, tenant: u32, roles: &[(Role, u32)]) -> User {
        let role = pick(&mut self.rng, roles);
        let pool = self.tenants[tenant as usize].pools[role as usize];
        User {
            role,
            idx: skewed(&mut self.rng, pool),
        }
    }

    /// Address a user's events come from: stable per user (office network of
    /// the tenant, or a public address when remote), ~5 % IPv6.
    fn user_ip(&mut self, tenant: u32, user: User, remote: bool) -> IpAddr {
        let h = user.key(self.seed, tenant);
        if pct(&mut self.rng, 5) {
            return ipv6(h);
        }
        if remote {
            return public_v4(h);
        }
        let (x, y) = ((h >> 8) as u8, ((h >> 16) % 254 + 1) as u8);
        let t = self.tenants[tenant as usize].net;
        IpAddr::V4(match t {
            0 => Ipv4Addr::new(10, (tenant % 250 + 1) as u8, x, y),
            1 => Ipv4Addr::new(172, 16 + (tenant % 16) as u8, x, y),
            _ => Ipv4Addr::new(192, 168, x, y),
        })
    }

    /// Random address on the internet (attackers, partners).
    fn random_public_ip(&mut self) -> IpAddr {
        let h: u64 = self.rng.random();
        if pct(&mut self.rng, 5) {
            ipv6(h)
        } else {
            public_v4(h)
        }
    }

    fn build(&mut self, ts: i64) -> Ev {
        let hour = ts.div_euclid(HOUR_MS).rem_euclid(24) as u32;
        let weekend = (ts.div_euclid(DAY_MS) + 3).rem_euclid(7) >= 5;
        let off_hours = weekend || !(8..19).contains(&hour);
        let ctx = Ctx {
            ts,
            hour,
            off_hours,
            want_attrs: pct(&mut self.rng, 28),
        };

        let ts_offset = match self.ts_format {
            TsFormat::Rfc3339 => Some(0),
            TsFormat::EpochMillis => None,
            TsFormat::Mixed => match self.rng.random_range(0..100u32) {
                0..75 => Some(0),
                75..92 => Some(one(&mut self.rng, &[330, 330, 480, -300, 60, 120])),
                _ => None,
            },
        };

        // An incident whose repair time has elapsed resolves now, so MTTR
        // looks realistic whatever the event density.
        let due = self.due_incident(ts);
        let family = match due {
            Some(_) => Family::Technical,
            None => pick(&mut self.rng, &FAMILIES),
        };
        let mut action = match family {
            _ if due.is_some() => Action::IncidentResolved,
            Family::Access => pick(&mut self.rng, &ACCESS_ACTIONS),
            Family::DataUsage => pick(&mut self.rng, &DATA_ACTIONS),
            Family::Technical => pick(&mut self.rng, &TECH_ACTIONS),
        };
        // Out-of-hours exports exist, but are rarer than in office hours.
        if action == Action::Export && off_hours && pct(&mut self.rng, 60) {
            action = Action::Read;
        }
        let tenant = self.pick_tenant();

        let mut ev = Ev {
            ts_offset,
            tenant,
            family,
            action,
            outcome: None,
            severity: None,
            user: None,
            show_role: true,
            host: None,
            app: None,
            resource: None,
            show_resource_type: true,
            session: None,
            ip: None,
            bytes: None,
            records: None,
            duration: None,
            show_message: true,
            attrs: Kv::EMPTY,
            extras: Kv::EMPTY,
        };
        match family {
            Family::Access => self.access(&mut ev, ctx),
            Family::DataUsage => self.data_usage(&mut ev, ctx),
            Family::Technical => self.technical(&mut ev, ctx, due),
        }
        self.finish(&mut ev, ctx);
        ev
    }

    /// Session id: stable for a user within a four-hour block.
    fn session_for(&self, tenant: u32, user: User, ts: i64) -> u64 {
        let block = ts.div_euclid(4 * HOUR_MS) as u64;
        mix(user.key(self.seed, tenant) ^ block.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Workstation of a user (stable), or a batch server for service accounts.
    fn user_host(&self, tenant: u32, user: User) -> Host {
        let h = user.key(self.seed, tenant);
        if user.role == Role::Service {
            Host::Server("batch", (h % 6 + 1) as u32)
        } else {
            Host::Workstation((h >> 40) as u32 % 4000)
        }
    }

    /// Fills in actor, host, session and address for a user-driven event.
    fn actor(&mut self, ev: &mut Ev, ctx: Ctx, roles: &[(Role, u32)], remote_pct: u32) -> User {
        let user = self.pick_user(ev.tenant, roles);
        ev.user = Some(user);
        ev.host = Some(self.user_host(ev.tenant, user));
        if user.role != Role::Service {
            ev.session = Some(self.session_for(ev.tenant, user, ctx.ts));
        }
        let remote = pct(&mut self.rng, remote_pct);
        ev.ip = Some(self.user_ip(ev.tenant, user, remote));
        user
    }

    fn access(&mut self, ev: &mut Ev, ctx: Ctx) {
        use Action::*;
        let t = ev.tenant;
        let roles: &[(Role, u32)] = match ev.action {
            PrivilegeEscalation => &ESCALATION_ROLES,
            AdminOp => &[(Role::Admin, 1)],
            DbConnect => &DB_ROLES,
            _ => &INTERACTIVE_ROLES,
        };
        let remote = if matches!(ev.action, VpnConnect | VpnDisconnect) {
            100
        } else {
            12
        };
        let user = self.actor(ev, ctx, roles, remote);
        let ip = ev.ip.expect("actor sets ip");
        let outside_ip = self.random_public_ip();
        let r = &mut self.rng;
        let name = self.tenants[t as usize].name.as_str();
        let q = Qualified(user, name);
        let msg = &mut self.msg;
        let app = match ev.action {
            VpnConnect | VpnDisconnect => "vpn",
            DbConnect => {
                if pct(r, 70) {
                    "warehouse"
                } else {
                    "billing"
                }
            }
            Login | Logout | LoginFailed | SessionTimeout if pct(r, 70) => "sso",
            _ => one(r, &USER_APPS),
        };
        ev.app = Some(app);
        let mut outcome = "success";
        let mut severity = Severity::Info;
        let session_minutes = between(r, 5, 600);
        match ev.action {
            Login => {
                let _ = write!(msg, "User {q} logged in to {app} from {ip}");
                if ctx.want_attrs {
                    ev.attrs.push("mfa", Val::Bool(pct(r, 85)));
                    ev.attrs.push("country", Val::Str(one(r, &COUNTRIES)));
                }
            }
            Logout => {
                let ms = session_minutes * 60_000 + between(r, 0, 59_999);
                ev.duration = Some(Duration::Millis(ms));
                let _ = write!(
                    msg,
                    "User {q} logged out of {app} after {session_minutes} min"
                );
            }
            LoginFailed => {
                outcome = "failure";
                severity = if pct(r, 70) {
                    Severity::Warning
                } else {
                    Severity::Notice
                };
                if pct(r, 8) {
                    // Guessing attack on a non-existent account from outside.
                    let bogus = one(r, &["admin", "root", "test", "guest", "support"]);
                    ev.user = None;
                    ev.host = None;
                    ev.session = None;
                    ev.ip = Some(outside_ip);
                    let _ = write!(
                        msg,
                        "Failed password for invalid user {bogus} from {outside_ip}"
                    );
                    if ctx.want_attrs {
                        ev.attrs.push("retry", Val::Int(between(r, 1, 20) as i64));
                    }
                } else {
                    let _ = write!(msg, "Failed password for {user} from {ip}");
                    if ctx.want_attrs {
                        ev.attrs.push("retry", Val::Int(between(r, 1, 5) as i64));
                        let reason = one(r, &["bad_password", "locked", "expired", "mfa_timeout"]);
                        ev.attrs.push("reason", Val::Str(reason));
                    }
                }
            }
            VpnConnect => {
                let _ = write!(msg, "VPN tunnel established for {q} from {ip}");
                if ctx.want_attrs {
                    ev.attrs.push("mfa", Val::Bool(pct(r, 90)));
                    ev.attrs.push("country", Val::Str(one(r, &COUNTRIES)));
                }
            }
            VpnDisconnect => {
                let ms = session_minutes * 60_000 + between(r, 0, 59_999);
                ev.duration = Some(Duration::Millis(ms));
                let _ = write!(msg, "VPN tunnel closed for {q} after {session_minutes} min");
            }
            SessionTimeout => {
                let idle = one(r, &[15u64, 15, 30, 60]);
                ev.duration = Some(Duration::Millis(idle * 60_000));
                severity = Severity::Notice;
                let _ = write!(
                    msg,
                    "Session of {q} on {app} timed out after {idle} min idle"
                );
            }
            PrivilegeEscalation => {
                // Agents escalating is suspicious: mostly denied, always loud.
                let denied = if user.role == Role::Agent {
                    pct(r, 60)
                } else {
                    pct(r, 5)
                };
                severity = if user.role == Role::Agent {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                if denied {
                    outcome = "failure";
                    let _ = write!(msg, "Privilege escalation denied for {q} on {app}");
                } else {
                    let _ = write!(msg, "User {q} elevated to admin on {app}");
                }
            }
            AdminOp => {
                severity = Severity::Notice;
                let verb = one(
                    r,
                    &[
                        "reset password for",
                        "unlocked account",
                        "disabled account",
                        "changed role of",
                        "granted export rights to",
                    ],
                );
                let target = User {
                    role: Role::Agent,
                    idx: skewed(r, self.tenants[t as usize].pools[0]),
                };
                let _ = write!(msg, "Admin {q} {verb} {}", Qualified(target, name));
                if ctx.want_attrs {
                    let seq = r.random_range(0..10_000u32);
                    let ticket = Ticket {
                        prefix: "REQ",
                        date: yyyymmdd(ctx.ts),
                        seq,
                    };
                    ev.attrs.push("ticket", Val::Ticket(ticket));
                }
            }
            DbConnect => {
                let db = one(r, &DATABASES);
                ev.resource = Some(Resource::Database(db));
                ev.duration = Some(Duration::Micros(between(r, 200, 50_000)));
                if pct(r, 3) {
                    outcome = "failure";
                }
                let _ = write!(msg, "Database connection to {db} by {q} from {ip}");
            }
            AppAccess => {
                let module = one(
                    r,
                    &[
                        "dashboard",
                        "case-view",
                        "reports",
                        "settings",
                        "search",
                        "queue",
                    ],
                );
                ev.duration = Some(Duration::Micros(between(r, 50_000, 3_000_000)));
                let _ = write!(msg, "User {q} opened {app} module {module}");
                if ctx.want_attrs {
                    ev.attrs.push("channel", Val::Str(one(r, &CHANNELS)));
                }
            }
            _ => unreachable!("not an access action"),
        }
        if outcome == "success" && ev.action != AdminOp {
            match r.random_range(0..100u32) {
                0..2 => outcome = "failure",
                2..3 => outcome = "unknown",
                _ => {}
            }
        }
        if outcome == "failure" && ev.action != LoginFailed {
            severity = severity.bump();
        }
        ev.outcome = Some(outcome);
        ev.severity = Some(severity);
    }

    fn data_usage(&mut self, ev: &mut Ev, ctx: Ctx) {
        use Action::*;
        let t = ev.tenant;
        let roles: &[(Role, u32)] = match ev.action {
            Export | Download => &BULK_ROLES,
            Delete => &DELETE_ROLES,
            Transmit => &[(Role::Service, 1)],
            Upload => &[
                (Role::Agent, 60),
                (Role::Supervisor, 20),
                (Role::Service, 20),
            ],
            _ => &INTERACTIVE_ROLES,
        };
        let user = self.actor(ev, ctx, roles, 12);
        let r = &mut self.rng;
        let q = Qualified(user, self.tenants[t as usize].name.as_str());
        let msg = &mut self.msg;
        let app = if ev.action == Transmit {
            one(r, &["billing", "claims", "warehouse"])
        } else {
            pick(r, &DATA_APPS)
        };
        ev.app = Some(app);
        let resource = if matches!(ev.action, Download | Upload) {
            let (stem, ext) = match app {
                "crm" => ("customer-list", "csv"),
                "claims" => ("claims-report", "pdf"),
                "billing" => ("invoice-batch", "xlsx"),
                "hr-portal" => ("payroll", "xlsx"),
                "ivr" => ("call-audio", "zip"),
                _ => ("extract", "csv"),
            };
            Resource::File(stem, month_stamp(ctx.ts, r), ext)
        } else {
            match app {
                // Queries run against tables, the app's own or the warehouse.
                "crm" if ev.action == Query => Resource::Table("customers"),
                "claims" if ev.action == Query => Resource::Table("claims"),
                "hr-portal" if ev.action == Query => Resource::Table("employees"),
                "ivr" if ev.action == Query => Resource::Table("call_records"),
                "crm" => Resource::Record("customer", skewed(r, 200_000)),
                "claims" => Resource::Record("claim", skewed(r, 60_000)),
                "billing" if matches!(ev.action, Query | Export | Transmit) => {
                    Resource::Table(one(r, &["payments", "invoices"]))
                }
                "billing" => Resource::Record("invoice", skewed(r, 500_000)),
                "hr-portal" => Resource::Record("employee", skewed(r, 8_000)),
                "ivr" => Resource::Record("recording", skewed(r, 2_000_000)),
                _ => Resource::Table(TABLES[skewed(r, TABLES.len() as u32) as usize]),
            }
        };
        ev.resource = Some(resource);
        let mut severity = Severity::Info;
        match ev.action {
            Read => {
                severity = if pct(r, 60) {
                    Severity::Debug
                } else {
                    Severity::Info
                };
                ev.records = Some(1);
                ev.bytes = Some(between(r, 500, 40_000));
                ev.duration = Some(Duration::Micros(between(r, 1_000, 400_000)));
                let _ = write!(msg, "User {q} viewed {resource}");
            }
            Query => {
                let records = records_tiered(r, 0);
                ev.records = Some(records);
                ev.bytes = Some(records * between(r, 120, 900));
                let micros = between(r, 2_000, 200_000) + records * between(r, 5, 60);
                ev.duration = Some(Duration::Micros(micros));
                let _ = write!(
                    msg,
                    "User {q} queried {resource}: {records} {} in {} ms",
                    if records == 1 { "row" } else { "rows" },
                    micros / 1000
                );
            }
            Export => {
                let records = records_tiered(r, 1);
                let format = one(r, &["csv", "csv", "xlsx", "pdf", "json"]);
                ev.records = Some(records);
                ev.bytes = Some(records * between(r, 100, 600));
                ev.duration = Some(Duration::Micros(
                    between(r, 50_000, 2_000_000) + records * 20,
                ));
                severity = if records >= 50_000 || ctx.off_hours {
                    Severity::Warning
                } else {
                    Severity::Notice
                };
                let _ = write!(
                    msg,
                    "User {q} exported {records} records from {resource} to {format}"
                );
                if ctx.want_attrs {
                    ev.attrs.push("format", Val::Str(format));
                    ev.attrs.push("approved", Val::Bool(pct(r, 80)));
                    if pct(r, 50) {
                        let scan = if pct(r, 95) { "clean" } else { "flagged" };
                        ev.attrs.push("dlp_scan", Val::Str(scan));
                    }
                }
            }
            Download => {
                let bytes = between(r, 10_000, 50_000_000);
                ev.bytes = Some(bytes);
                if pct(r, 50) {
                    ev.records = Some(records_tiered(r, 1));
                }
                ev.duration = Some(Duration::Micros(between(r, 100_000, 30_000_000)));
                severity = Severity::Notice;
                let _ = write!(msg, "User {q} downloaded {resource} ({bytes} bytes)");
            }
            Upload => {
                let bytes = between(r, 5_000, 20_000_000);
                ev.bytes = Some(bytes);
                ev.duration = Some(Duration::Micros(between(r, 100_000, 20_000_000)));
                let _ = write!(msg, "User {q} uploaded {resource} to {app} ({bytes} bytes)");
            }
            Update => {
                let field = one(r, &["address", "phone", "email", "status", "plan", "notes"]);
                ev.records = Some(between(r, 1, 5));
                ev.bytes = Some(between(r, 100, 5_000));
                let _ = write!(msg, "User {q} updated {field} on {resource}");
                if ctx.want_attrs {
                    ev.attrs.push("channel", Val::Str(one(r, &CHANNELS)));
                }
            }
            Delete => {
                let records = if pct(r, 85) { 1 } else { between(r, 2, 500) };
                ev.records = Some(records);
                severity = if records > 1 {
                    Severity::Warning
                } else {
                    Severity::Notice
                };
                let noun = if records == 1 { "record" } else { "records" };
                let _ = write!(msg, "User {q} deleted {records} {noun} from {resource}");
                if ctx.want_attrs {
                    let reason = one(r, &["gdpr_request", "duplicate", "retention", "test_data"]);
                    ev.attrs.push("reason", Val::Str(reason));
                }
            }
            Transmit => {
                let records = records_tiered(r, 2);
                let bytes = records * between(r, 200, 1_000);
                let dest = one(
                    r,
                    &["client-sftp", "partner-api", "s3-archive", "bank-gateway"],
                );
                let proto = one(r, &["sftp", "https", "as2"]);
                ev.records = Some(records);
                ev.bytes = Some(bytes);
                ev.duration = Some(Duration::Micros(between(r, 200_000, 60_000_000)));
                let _ = write!(
                    msg,
                    "Transmitted {records} records ({bytes} bytes) from {resource} to {dest} via {proto}"
                );
            }
            _ => unreachable!("not a data_usage action"),
        }
        let outcome = match r.random_range(0..100u32) {
            0..4 => "failure",
            4..5 => "unknown",
            _ => "success",
        };
        if outcome == "failure" {
            severity = severity.bump();
            let why = one(r, &["permission denied", "timeout", "quota exceeded"]);
            let _ = write!(msg, " - failed: {why}");
        }
        ev.outcome = Some(outcome);
        ev.severity = Some(severity);
    }

    /// Removes and returns the open incident with the earliest `due_ms` if
    /// that is at or before `ts`.
    fn due_incident(&mut self, ts: i64) -> Option<Incident> {
        if self.next_due > ts {
            return None;
        }
        let pos = (0..self.incidents.len()).min_by_key(|&i| self.incidents[i].due_ms)?;
        let inc = self.incidents.remove(pos);
        self.next_due = min_due(&self.incidents);
        inc
    }

    /// `resolved` is a due incident this event resolves (it fixes the
    /// tenant and app so the pair matches).
    fn technical(&mut self, ev: &mut Ev, ctx: Ctx, resolved: Option<Incident>) {
        use Action::*;
        if let Some(inc) = &resolved {
            ev.tenant = inc.tenant;
        }
        let t = ev.tenant;
        let app = match &resolved {
            Some(inc) => inc.app,
            None => one(&mut self.rng, &APPS),
        };
        ev.app = Some(app);
        let kind = match app {
            "ivr" => "ivr",
            "hr-portal" => "web",
            "vpn" => "vpn",
            "sso" => "idp",
            "warehouse" => "db",
            _ => "app",
        };
        let host = Host::Server(kind, skewed(&mut self.rng, 12) + 1);
        ev.host = Some(host);
        let user = if ev.action == ConfigChange {
            Some(self.pick_user(t, &CONFIG_ROLES))
        } else if pct(&mut self.rng, 35) {
            Some(self.pick_user(t, &[(Role::Service, 1)]))
        } else {
            None
        };
        ev.user = user;
        let alert_ip = self.random_public_ip();
        let r = &mut self.rng;
        let name = self.tenants[t as usize].name.as_str();
        let msg = &mut self.msg;
        let outcome;
        let mut severity;
        match ev.action {
            Error => {
                outcome = pick(r, &[("failure", 75), ("unknown", 15), ("success", 10)]);
                severity = if pct(r, 12) {
                    Severity::Critical
                } else {
                    Severity::Error
                };
                match r.random_range(0..4u32) {
                    0 => {
                        let ms = between(r, 1_000, 60_000);
                        ev.duration = Some(Duration::Millis(ms));
                        let _ = write!(msg, "{app}: upstream timeout after {ms} ms");
                    }
                    1 => {
                        let n = between(r, 5, 400);
                        let _ = write!(msg, "{app}: connection pool exhausted ({n} waiting)");
                    }
                    2 => {
                        let dep = one(
                            r,
                            &["payment gateway", "CTI server", "LDAP", "SMS provider"],
                        );
                        let _ = write!(msg, "{app}: HTTP 502 from {dep}");
                    }
                    _ => {
                        let n = between(r, 90, 100);
                        let _ = write!(msg, "{app}: disk usage at {n}% on /var on {host}");
                    }
                }
            }
            Warning => {
                outcome = pick(r, &[("unknown", 55), ("success", 35), ("failure", 10)]);
                severity = Severity::Warning;
                match r.random_range(0..4u32) {
                    0 => {
                        let n = between(r, 800, 9_000);
                        let _ = write!(msg, "High latency on {app}: p95 {n} ms");
                    }
                    1 => {
                        let n = between(r, 1, 30);
                        let _ = write!(msg, "Certificate for {app} expires in {n} days");
                    }
                    2 => {
                        let n = between(r, 50, 900);
                        let _ = write!(msg, "Queue depth {n} above threshold on {app}");
                    }
                    _ => {
                        let _ = write!(msg, "Retrying {app} job on {host} after transient error");
                    }
                }
            }
            ServiceStart | ServiceStop => {
                outcome = if pct(r, 95) { "success" } else { "failure" };
                severity = if pct(r, 50) {
                    Severity::Notice
                } else {
                    Severity::Info
                };
                let verb = if ev.action == ServiceStart {
                    ev.duration = Some(Duration::Micros(between(r, 300_000, 45_000_000)));
                    "started"
                } else {
                    "stopped"
                };
                let _ = write!(msg, "Service {app} {verb} on {host}");
            }
            IncidentOpened => {
                outcome = "unknown";
                severity = pick(
                    r,
                    &[
                        (Severity::Error, 50),
                        (Severity::Critical, 30),
                        (Severity::Warning, 20),
                    ],
                );
                let symptom = one(
                    r,
                    &[
                        "degraded",
                        "unavailable",
                        "slow for agents",
                        "returning errors",
                    ],
                );
                let priority = one(r, &["P1", "P2", "P2", "P3", "P3", "P4"]);
                self.incident_seq = self.incident_seq.wrapping_add(1);
                let ticket = Ticket {
                    prefix: "INC",
                    date: yyyymmdd(ctx.ts),
                    seq: self.incident_seq,
                };
                // Time to repair: mostly minutes to hours, a few take days.
                let mttr_min = if pct(r, 90) {
                    between(r, 10, 480)
                } else {
                    between(r, 480, 4_320)
                };
                if self.incidents.len() == MAX_OPEN_INCIDENTS {
                    // Too many open: the oldest is never closed.
                    self.incidents.pop_front();
                }
                self.incidents.push_back(Incident {
                    tenant: t,
                    opened_ms: ctx.ts,
                    due_ms: ctx.ts + (mttr_min * 60_000 + between(r, 0, 59_999)) as i64,
                    ticket,
                    app,
                });
                self.next_due = min_due(&self.incidents);
                let _ = write!(msg, "Incident {ticket} opened: {app} {symptom}");
                // Incidents always carry their ticket, for MTTR queries.
                ev.attrs.push("ticket", Val::Ticket(ticket));
                ev.attrs.push("priority", Val::Str(priority));
            }
            IncidentResolved => {
                outcome = "success";
                severity = Severity::Notice;
                let (ticket, mttr_ms) = match resolved {
                    Some(inc) => (inc.ticket, (ctx.ts - inc.opened_ms) as u64),
                    None => {
                        // No matching opening in the stream: an older one.
                        let mttr = between(r, 10, 2_880) * 60_000;
                        let opened = ctx.ts - mttr as i64;
                        let seq = r.random_range(0..10_000u32);
                        let ticket = Ticket {
                            prefix: "INC",
                            date: yyyymmdd(opened),
                            seq,
                        };
                        (ticket, mttr)
                    }
                };
                ev.duration = Some(Duration::Millis(mttr_ms));
                let _ = write!(
                    msg,
                    "Incident {ticket} resolved after {} min",
                    mttr_ms / 60_000
                );
                ev.attrs.push("ticket", Val::Ticket(ticket));
            }
            ConfigChange => {
                outcome = if pct(r, 97) { "success" } else { "failure" };
                severity = Severity::Notice;
                let who = Qualified(user.expect("config changes have a user"), name);
                let (key, value) = match r.random_range(0..4u32) {
                    0 => ("max_sessions", between(r, 50, 5_000)),
                    1 => ("timeout_s", between(r, 30, 3_600)),
                    2 => ("retention_days", one(r, &[30, 90, 365, 2_555])),
                    _ => ("pool_size", between(r, 4, 256)),
                };
                let _ = write!(
                    msg,
                    "Configuration of {app} changed by {who}: {key} set to {value}"
                );
                if ctx.want_attrs {
                    let seq = r.random_range(0..10_000u32);
                    let ticket = Ticket {
                        prefix: "CHG",
                        date: yyyymmdd(ctx.ts),
                        seq,
                    };
                    ev.attrs.push("ticket", Val::Ticket(ticket));
                }
            }
            SecurityAlert => {
                outcome = if pct(r, 70) { "unknown" } else { "failure" };
                severity = pick(
                    r,
                    &[
                        (Severity::Critical, 40),
                        (Severity::Error, 40),
                        (Severity::Warning, 20),
                    ],
                );
                match r.random_range(0..4u32) {
                    0 => {
                        ev.ip = Some(alert_ip);
                        let _ = write!(msg, "Possible brute force against {app} from {alert_ip}");
                    }
                    1 => {
                        let _ = write!(msg, "Malware signature detected on {host}");
                    }
                    2 => {
                        ev.ip = Some(alert_ip);
                        let _ = write!(msg, "Unusual data volume from {host} to {alert_ip}");
                    }
                    _ => {
                        let who = User {
                            role: Role::Agent,
                            idx: skewed(r, self.tenants[t as usize].pools[0]),
                        };
                        let _ = write!(msg, "Impossible travel for {}", Qualified(who, name));
                    }
                }
                if ctx.want_attrs {
                    ev.attrs.push(
                        "rule",
                        Val::Str(one(r, &["SA-0012", "SA-0031", "SA-0107", "SA-0220"])),
                    );
                    ev.attrs.push("score", Val::Int(between(r, 50, 100) as i64));
                }
            }
            NetworkEvent => {
                outcome = if pct(r, 80) { "success" } else { "unknown" };
                severity = if pct(r, 60) {
                    Severity::Info
                } else {
                    Severity::Warning
                };
                match r.random_range(0..3u32) {
                    0 => {
                        let n = r.random_range(0..4u32);
                        let state = if pct(r, 50) { "down" } else { "up" };
                        let _ = write!(msg, "Interface eth{n} on {host} changed state to {state}");
                    }
                    1 => {
                        let n = between(r, 1, 40);
                        ev.ip = Some(alert_ip);
                        let _ = write!(msg, "Packet loss {n}% to {alert_ip}");
                    }
                    _ => {
                        let ms = between(r, 200, 5_000);
                        ev.duration = Some(Duration::Millis(ms));
                        let _ = write!(msg, "DNS lookup for {app}.internal took {ms} ms");
                    }
                }
            }
            _ => unreachable!("not a technical action"),
        }
        if outcome == "failure" && matches!(ev.action, ServiceStart | ServiceStop | ConfigChange) {
            severity = severity.bump();
        }
        ev.outcome = Some(outcome);
        ev.severity = Some(severity);
    }

    /// Generic attrs, extra top-level keys and realistic omissions.
    fn finish(&mut self, ev: &mut Ev, ctx: Ctx) {
        let r = &mut self.rng;
        if (ctx.want_attrs && ev.attrs.len == 0) || (ev.attrs.len > 0 && pct(r, 20)) {
            match r.random_range(0..3u32) {
                0 => ev.attrs.push("channel", Val::Str(one(r, &CHANNELS))),
                1 => ev.attrs.push("country", Val::Str(one(r, &COUNTRIES))),
                _ => ev.attrs.push(
                    "campaign",
                    Val::Str(one(
                        r,
                        &["retention-q1", "collections", "onboarding", "renewals"],
                    )),
                ),
            }
        }
        if pct(r, 10) {
            for _ in 0..between(r, 1, 2) {
                match r.random_range(0..6u32) {
                    0 => ev.extras.push(
                        "client_version",
                        Val::Str(one(r, &["5.2.1", "5.2.3", "5.3.0", "6.0.0-rc1"])),
                    ),
                    1 => {
                        let shift = match ctx.hour {
                            6..14 => "day",
                            14..22 => "swing",
                            _ => "night",
                        };
                        ev.extras.push("shift", Val::Str(shift));
                    }
                    2 => ev
                        .extras
                        .push("queue_depth", Val::Int(between(r, 0, 60) as i64)),
                    3 => ev.extras.push(
                        "site",
                        Val::Str(one(
                            r,
                            &["manila-2", "pune-1", "cebu-3", "bogota-1", "krakow-1"],
                        )),
                    ),
                    4 => ev.extras.push(
                        "agent_state",
                        Val::Str(one(r, &["available", "on_call", "wrap_up", "break"])),
                    ),
                    _ => ev.extras.push("trace_sampled", Val::Bool(pct(r, 10))),
                }
            }
        }
        // Sparsity: optional fields are sometimes simply absent.
        if pct(r, 3) {
            ev.outcome = None;
        }
        if pct(r, 6) {
            ev.severity = None;
        }
        ev.show_role = !pct(r, 4);
        if pct(r, 3) {
            ev.host = None;
        }
        if pct(r, 8) {
            ev.session = None;
        }
        if pct(r, 5) {
            ev.ip = None;
        }
        ev.show_resource_type = !pct(r, 5);
        ev.show_message = !pct(r, 2);
    }

    fn write_line(&mut self, ev: &Ev, ts: i64) {
        let buf = &mut self.buf;
        let scratch = &mut self.scratch;
        buf.extend_from_slice(b"{\"ts\":");
        match ev.ts_offset {
            Some(offset) => self.ts_fmt.write(buf, ts, offset),
            None => {
                let _ = write!(buf, "{ts}");
            }
        }
        let tenant = self.tenants[ev.tenant as usize].name.as_str();
        key(buf, "tenant");
        push_json_str(buf, tenant.as_bytes());
        key(buf, "family");
        push_json_str(buf, ev.family.as_str().as_bytes());
        key(buf, "action");
        push_json_str(buf, ev.action.as_str().as_bytes());
        if let Some(outcome) = ev.outcome {
            key(buf, "outcome");
            push_json_str(buf, outcome.as_bytes());
        }
        if let Some(severity) = ev.severity {
            key(buf, "severity");
            push_json_str(buf, severity.as_str().as_bytes());
        }
        if let Some(user) = ev.user {
            key(buf, "user");
            push_display(buf, scratch, Qualified(user, tenant));
            if ev.show_role {
                key(buf, "role");
                push_json_str(buf, user.role.as_str().as_bytes());
            }
        }
        if let Some(host) = ev.host {
            key(buf, "host");
            push_display(buf, scratch, host);
        }
        if let Some(app) = ev.app {
            key(buf, "app");
            push_json_str(buf, app.as_bytes());
        }
        if let Some(resource) = ev.resource {
            key(buf, "resource");
            push_display(buf, scratch, resource);
            if ev.show_resource_type {
                key(buf, "resource_type");
                push_json_str(buf, resource.type_name().as_bytes());
            }
        }
        if let Some(session) = ev.session {
            key(buf, "session_id");
            let _ = write!(buf, "\"{session:016x}\"");
        }
        if ev.show_message && !self.msg.is_empty() {
            key(buf, "message");
            push_json_str(buf, &self.msg);
        }
        if let Some(ip) = ev.ip {
            key(buf, "src_ip");
            push_display(buf, scratch, ip);
        }
        if let Some(bytes) = ev.bytes {
            key(buf, "bytes");
            let _ = write!(buf, "{bytes}");
        }
        if let Some(records) = ev.records {
            key(buf, "records");
            let _ = write!(buf, "{records}");
        }
        match ev.duration {
            Some(Duration::Millis(ms)) => {
                key(buf, "duration_ms");
                let _ = write!(buf, "{ms}");
            }
            Some(Duration::Micros(us)) => {
                key(buf, "duration_ms");
                let _ = write!(buf, "{}.{:03}", us / 1000, us % 1000);
            }
            None => {}
        }
        key(buf, "event_id");
        let _ = write!(buf, "\"evt-{:012x}-{}\"", self.id_prefix, self.counter);
        for &(k, v) in ev.extras.as_slice() {
            key(buf, k);
            push_val(buf, scratch, v);
        }
        if ev.attrs.len > 0 {
            key(buf, "attrs");
            buf.push(b'{');
            for (i, &(k, v)) in ev.attrs.as_slice().iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                push_json_str(buf, k.as_bytes());
                buf.push(b':');
                push_val(buf, scratch, v);
            }
            buf.push(b'}');
        }
        buf.extend_from_slice(b"}\n");
    }
}

/// Appends `,"name":`; keys are fixed identifiers that need no escaping.
fn key(buf: &mut Vec<u8>, name: &str) {
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\":");
}

/// Formats `value` into `scratch`, then appends it as an escaped string.
fn push_display(buf: &mut Vec<u8>, scratch: &mut Vec<u8>, value: impl fmt::Display) {
    scratch.clear();
    let _ = write!(scratch, "{value}");
    push_json_str(buf, scratch);
}

fn push_val(buf: &mut Vec<u8>, scratch: &mut Vec<u8>, v: Val) {
    match v {
        Val::Str(s) => push_json_str(buf, s.as_bytes()),
        Val::Int(n) => {
            let _ = write!(buf, "{n}");
        }
        Val::Bool(b) => buf.extend_from_slice(if b { b"true" } else { b"false" }),
        Val::Ticket(t) => push_display(buf, scratch, t),
    }
}

fn min_due(incidents: &VecDeque<Incident>) -> i64 {
    incidents.iter().map(|i| i.due_ms).min().unwrap_or(i64::MAX)
}

/// UTC calendar date of `ts` as a number like 20250304.
fn yyyymmdd(ts: i64) -> u32 {
    let (y, m, d) = civil_from_days(ts.div_euclid(DAY_MS));
    y.clamp(0, 9999) as u32 * 10_000 + m * 100 + d
}

/// Year and month of `ts`, sometimes of a month or two earlier, like
/// 202503 (monthly report files).
fn month_stamp(ts: i64, r: &mut ChaCha8Rng) -> u32 {
    let back = i64::from(r.random_range(0..3u32)) * 30 * DAY_MS;
    yyyymmdd(ts - back) / 100
}
