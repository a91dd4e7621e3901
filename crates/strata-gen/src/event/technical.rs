//! Events of the `technical` family: errors, warnings, service starts and
//! stops, configuration changes, security alerts, network events, and
//! incidents opened and resolved in pairs.

use std::collections::VecDeque;
use std::io::Write;

use rand::Rng;

use super::EventWriter;
use super::draws::{between, one, pct, pick, skewed, yyyymmdd};
use super::pieces::{
    Ctx, Duration, Ev, Host, Incident, MAX_OPEN_INCIDENTS, Qualified, Ticket, User, Val,
};
use super::vocab::{APPS, Action, CONFIG_ROLES, Role, Severity};

impl EventWriter {
    /// Removes and returns the open incident with the earliest `due_ms` if
    /// that is at or before `ts`.
    pub(super) fn due_incident(&mut self, ts: i64) -> Option<Incident> {
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
    pub(super) fn technical(&mut self, ev: &mut Ev, ctx: Ctx, resolved: Option<Incident>) {
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
}

fn min_due(incidents: &VecDeque<Incident>) -> i64 {
    incidents.iter().map(|i| i.due_ms).min().unwrap_or(i64::MAX)
}
