//! Event contents: for each timestamp, picks a tenant, an action, the actor
//! and the details, then appends one NDJSON line to a reused buffer.
//!
//! An event is first assembled in a small `Copy`-only [`Ev`] (static strings,
//! numbers, indices), then serialised field by field; the only per-event
//! text built on the fly (message, user name, ...) goes through reused
//! scratch buffers, so the steady state does not allocate.
//!
//! The writer and each event's assembly are here; `vocab` and `pieces` hold
//! what events are made of, `draws` and `actor` the field generators shared
//! by every family, `access`, `data_usage` and `technical` one family each,
//! and `line` the serialisation.

mod access;
mod actor;
mod data_usage;
mod draws;
mod line;
mod pieces;
mod technical;
mod vocab;

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::text::{DAY_MS, HOUR_MS, TsFormatter, mix};
use crate::timeline::{STREAM_EVENTS, rng_for};
use crate::{GenConfig, TsFormat, tenant_names};

use draws::{between, one, pct, pick};
use pieces::{Ctx, Ev, Incident, Kv, MAX_OPEN_INCIDENTS, Val};
use vocab::{
    ACCESS_ACTIONS, Action, CHANNELS, COUNTRIES, DATA_ACTIONS, FAMILIES, Family, SERVICE_ACCOUNTS,
    TECH_ACTIONS,
};

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
}
