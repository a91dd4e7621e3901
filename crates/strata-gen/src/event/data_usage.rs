//! Events of the `data_usage` family: reads, queries, exports, downloads,
//! uploads, updates, deletes and transmissions of records, tables and files.

use std::io::Write;

use rand::Rng;

use super::EventWriter;
use super::draws::{between, month_stamp, one, pct, pick, records_tiered, skewed};
use super::pieces::{Ctx, Duration, Ev, Qualified, Resource, Val};
use super::vocab::{
    Action, BULK_ROLES, CHANNELS, DATA_APPS, DELETE_ROLES, INTERACTIVE_ROLES, Role, Severity,
    TABLES,
};

impl EventWriter {
    pub(super) fn data_usage(&mut self, ev: &mut Ev, ctx: Ctx) {
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
}
