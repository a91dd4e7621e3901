//! Events of the `access` family: sign-ins and -outs, VPN, privilege
//! escalations, admin actions and connections.

use std::io::Write;

use rand::Rng;

use super::EventWriter;
use super::draws::{between, one, pct, skewed, yyyymmdd};
use super::pieces::{Ctx, Duration, Ev, Qualified, Resource, Ticket, User, Val};
use super::vocab::{
    Action, CHANNELS, COUNTRIES, DATABASES, DB_ROLES, ESCALATION_ROLES, INTERACTIVE_ROLES, Role,
    Severity, USER_APPS,
};

impl EventWriter {
    pub(super) fn access(&mut self, ev: &mut Ev, ctx: Ctx) {
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
}
