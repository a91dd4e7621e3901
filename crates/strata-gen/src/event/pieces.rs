//! The pieces an event is assembled from before it is written: users,
//! hosts, resources, tickets, scalar values, the event itself ([`Ev`]), its
//! time facts and the incidents waiting for their resolution.

use std::fmt;
use std::net::IpAddr;

use super::vocab::{Action, Family, Role, SERVICE_ACCOUNTS, Severity};
use crate::text::mix;

/// A user of a tenant: a role and an index into that role's pool.
#[derive(Clone, Copy)]
pub(super) struct User {
    pub(super) role: Role,
    pub(super) idx: u32,
}

impl User {
    pub(super) fn key(self, seed: u64, tenant: u32) -> u64 {
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
pub(super) struct Qualified<'a>(pub(super) User, pub(super) &'a str);

impl fmt::Display for Qualified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.0, self.1)
    }
}

#[derive(Clone, Copy)]
pub(super) enum Host {
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
pub(super) enum Resource {
    Record(&'static str, u32),
    Table(&'static str),
    File(&'static str, u32, &'static str),
    Database(&'static str),
}

impl Resource {
    pub(super) fn type_name(self) -> &'static str {
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
pub(super) struct Ticket {
    pub(super) prefix: &'static str,
    pub(super) date: u32,
    pub(super) seq: u32,
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:04}", self.prefix, self.date, self.seq % 10_000)
    }
}

/// A scalar value of `attrs` or of an extra top-level key.
#[derive(Clone, Copy)]
pub(super) enum Val {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    Ticket(Ticket),
}

/// Up to four distinct keys with scalar values, without allocating.
#[derive(Clone, Copy)]
pub(super) struct Kv {
    items: [(&'static str, Val); 4],
    pub(super) len: usize,
}

impl Kv {
    pub(super) const EMPTY: Kv = Kv {
        items: [("", Val::Bool(false)); 4],
        len: 0,
    };

    pub(super) fn push(&mut self, key: &'static str, val: Val) {
        let taken = self.items[..self.len].iter().any(|(k, _)| *k == key);
        if !taken && self.len < self.items.len() {
            self.items[self.len] = (key, val);
            self.len += 1;
        }
    }

    pub(super) fn as_slice(&self) -> &[(&'static str, Val)] {
        &self.items[..self.len]
    }
}

#[derive(Clone, Copy)]
pub(super) enum Duration {
    /// Whole milliseconds, written as an integer.
    Millis(u64),
    /// Microseconds, written as milliseconds with three decimals.
    Micros(u64),
}

/// Everything about one event except its message, which goes straight into
/// the writer's message buffer.
pub(super) struct Ev {
    /// `None` means integer epoch milliseconds.
    pub(super) ts_offset: Option<i32>,
    pub(super) tenant: u32,
    pub(super) family: Family,
    pub(super) action: Action,
    pub(super) outcome: Option<&'static str>,
    pub(super) severity: Option<Severity>,
    pub(super) user: Option<User>,
    pub(super) show_role: bool,
    pub(super) host: Option<Host>,
    pub(super) app: Option<&'static str>,
    pub(super) resource: Option<Resource>,
    pub(super) show_resource_type: bool,
    pub(super) session: Option<u64>,
    pub(super) ip: Option<IpAddr>,
    pub(super) bytes: Option<u64>,
    pub(super) records: Option<u64>,
    pub(super) duration: Option<Duration>,
    pub(super) show_message: bool,
    pub(super) attrs: Kv,
    pub(super) extras: Kv,
}

/// Time facts the content depends on.
#[derive(Clone, Copy)]
pub(super) struct Ctx {
    pub(super) ts: i64,
    pub(super) hour: u32,
    pub(super) off_hours: bool,
    pub(super) want_attrs: bool,
}

/// An opened incident waiting for its resolution (for MTTR pairs).
pub(super) struct Incident {
    pub(super) tenant: u32,
    pub(super) opened_ms: i64,
    /// When the resolution is emitted: the first event at or after it.
    pub(super) due_ms: i64,
    pub(super) ticket: Ticket,
    pub(super) app: &'static str,
}

/// At most this many incidents wait for resolution; older ones stay open.
pub(super) const MAX_OPEN_INCIDENTS: usize = 64;
