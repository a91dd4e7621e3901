//! `strata retention` and `strata hold`.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use strata_retention::{Action, HoldRequest, Plan, RunReport};
use strata_store::Archive;

use crate::cli::{
    CancelArgs, HoldAddArgs, HoldCommand, PlanArgs, PlanFormat, PolicyCommand, RetentionCommand,
    RunArgs,
};
use crate::ingest::human_bytes;

/// Runs `strata retention …`.
pub async fn run(archive: &Archive, command: RetentionCommand) -> anyhow::Result<ExitCode> {
    match command {
        RetentionCommand::Policy(command) => policy(archive, command).await?,
        RetentionCommand::Plan(args) => plan(archive, args).await?,
        RetentionCommand::Run(args) => run_once(archive, args).await?,
        RetentionCommand::Daemon => daemon(archive).await?,
        RetentionCommand::Cancel(args) => cancel(archive, args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn instant(given: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    Ok(match given {
        Some(text) => strata_retention::parse_instant(text)?,
        None => Utc::now(),
    })
}

fn check_family(family: Option<&str>) -> anyhow::Result<()> {
    if let Some(family) = family {
        anyhow::ensure!(
            strata_schema::Family::parse(family).is_some(),
            "unknown family {family:?}: use access, data_usage or technical"
        );
    }
    Ok(())
}

async fn policy(archive: &Archive, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Set { file, reason } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read policy file {}", file.display()))?;
            let version = strata_retention::set_policy(archive, &text, &crate::actor(), &reason)
                .await
                .with_context(|| format!("policy file {}", file.display()))?;
            println!("policy version {version} is in force; see it with `strata retention plan`");
        }
        PolicyCommand::Show => {
            let snapshot = archive.catalog.load().await?;
            match &snapshot.governance.policy {
                Some(policy) => {
                    println!(
                        "# policy version {}, set {} by {}",
                        policy.version, policy.set_at, policy.set_by
                    );
                    print!("{}", policy.text);
                }
                None => println!("no retention policy: nothing is tiered or expired"),
            }
        }
        PolicyCommand::Presets => {
            for preset in strata_policy::presets() {
                let retention = preset.retention.map_or(
                    "no default: the policy must set expire_after".to_string(),
                    |a| format!("at least {a}"),
                );
                let hot = preset
                    .hot
                    .map_or(String::new(), |h| format!("; the latest {h} never tiered"));
                println!("{:<14} {retention}{hot}", preset.name);
                println!("{:<14} {}", "", preset.source);
            }
        }
    }
    Ok(())
}

async fn plan(archive: &Archive, args: PlanArgs) -> anyhow::Result<()> {
    let now = instant(args.now.as_deref())?;
    let snapshot = archive.catalog.load().await?;
    let (version, policy) = strata_retention::current_policy(&snapshot)?;
    let plan = strata_retention::plan(&snapshot, &policy, version, now);
    match args.format {
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        PlanFormat::Table => print_plan(&plan),
    }
    Ok(())
}

fn action_line(action: &Action) -> String {
    let to = action
        .to
        .as_deref()
        .map_or(String::new(), |to| format!(" -> {to}"));
    let sweep = action
        .sweep_after
        .as_deref()
        .map_or(String::new(), |t| format!(" (deleted after {t})"));
    format!(
        "{:<7} {}{to}  {} in {} files{sweep}\n        {}",
        action.kind.to_string(),
        action.partition,
        human_bytes(action.bytes),
        action.files.len(),
        action.reason
    )
}

fn print_plan(plan: &Plan) {
    println!(
        "plan at {} under policy version {}: {} actions, {} blocked by legal holds",
        plan.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        plan.policy_version,
        plan.actions.len(),
        plan.blocked.len()
    );
    for action in &plan.actions {
        println!("{}", action_line(action));
    }
    for shred in &plan.shreds {
        match shred.held_by {
            Some(hold) => println!(
                "HELD    shred tenant {}: blocked by hold {hold}",
                shred.tenant
            ),
            None => println!(
                "shred   tenant {}: destroy its master keys (scheduled until {})",
                shred.tenant, shred.destroy_after
            ),
        }
    }
    for blocked in &plan.blocked {
        println!(
            "HELD    {} ({}): would {}, blocked by hold {} ({})",
            blocked.partition,
            human_bytes(blocked.bytes),
            blocked.kind,
            blocked.hold,
            blocked.hold_reason
        );
    }
}

struct Printer {
    quiet: bool,
}

impl strata_retention::Observer for Printer {
    fn done(&mut self, action: &Action) {
        if !self.quiet {
            println!("{}", action_line(action));
        }
    }
}

async fn run_once(archive: &Archive, args: RunArgs) -> anyhow::Result<()> {
    let now = instant(args.now.as_deref())?;
    let mut printer = Printer { quiet: args.quiet };
    let keys = crate::tenant_keys()?;
    let report =
        strata_retention::run(archive, now, &crate::actor(), Some(&keys), &mut printer).await?;
    print_summary(&report);
    Ok(())
}

fn print_summary(report: &RunReport) {
    let Some(plan) = &report.plan else { return };
    for refused in &report.shreds_refused {
        println!("HELD    shred {refused}; no key was destroyed");
    }
    println!(
        "{} actions in {} commits ({} objects deleted, {} written to cold stores, {} tenants shredded); {} blocked by legal holds",
        plan.actions.len(),
        report.commits,
        report.objects_deleted,
        human_bytes(report.bytes_tiered),
        report.tenants_shredded,
        plan.blocked.len() + plan.shreds.iter().filter(|s| s.held_by.is_some()).count()
    );
}

/// How often the daemon signs a heartbeat when nothing else is committed.
const HEARTBEAT_EVERY: chrono::TimeDelta = chrono::TimeDelta::hours(1);

async fn daemon(archive: &Archive) -> anyhow::Result<()> {
    let mut next_heartbeat = Utc::now();
    loop {
        let snapshot = archive.catalog.load().await?;
        let (version, policy) = strata_retention::current_policy(&snapshot)?;
        let next_run = policy.schedule().next_after(Utc::now());
        if Utc::now() >= next_heartbeat {
            let at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            archive.catalog.heartbeat(&snapshot, &at).await?;
            eprintln!("{at}: heartbeat signed at commit {}", snapshot.seq);
            next_heartbeat = Utc::now() + HEARTBEAT_EVERY;
        }
        let wake = next_run.min(next_heartbeat);
        if wake == next_run {
            eprintln!(
                "policy version {version}: next run at {} ({})",
                next_run.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                policy.schedule()
            );
        }
        let wait = (wake - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopped");
                return Ok(());
            }
        }
        if Utc::now() < next_run {
            continue; // woke for the heartbeat
        }
        let started = std::time::Instant::now();
        let mut printer = Printer { quiet: false };
        let (keys, actor) = (crate::tenant_keys()?, crate::actor());
        let run = strata_retention::run(archive, Utc::now(), &actor, Some(&keys), &mut printer);
        match run.await {
            Ok(report) => {
                print_summary(&report);
                eprintln!("run finished in {:.1} s", started.elapsed().as_secs_f64());
            }
            // A failed run is retried at the next slot; the archive stays consistent.
            Err(e) => eprintln!("run failed: {e:#}"),
        }
    }
}

async fn cancel(archive: &Archive, args: CancelArgs) -> anyhow::Result<()> {
    check_family(args.family.as_deref())?;
    let partitions = strata_retention::cancel_expiry(
        archive,
        &args.tenant,
        args.family.as_deref(),
        args.month.as_deref(),
        &args.reason,
        &crate::actor(),
    )
    .await?;
    for partition in &partitions {
        println!("cancelled expiry of {partition}");
    }
    Ok(())
}

/// Runs `strata keys rotate`.
pub async fn rotate(archive: &Archive, tenant: &str) -> anyhow::Result<ExitCode> {
    let keys = crate::tenant_keys()?;
    let version =
        strata_retention::rotate_key(archive, keys.as_ref(), tenant, &crate::actor()).await?;
    println!("tenant {tenant}: new files are encrypted under master key version {version}");
    Ok(ExitCode::SUCCESS)
}

/// Runs `strata keys trust`.
pub async fn trust(archive: &Archive, key: &str, reason: &str) -> anyhow::Result<ExitCode> {
    strata_retention::trust_key(archive, key, reason, &crate::actor()).await?;
    println!("the archive now accepts entries signed by {key}");
    Ok(ExitCode::SUCCESS)
}

/// Runs `strata keys retire`.
pub async fn retire(archive: &Archive, key: &str, reason: &str) -> anyhow::Result<ExitCode> {
    strata_retention::retire_key(archive, key, reason, &crate::actor()).await?;
    println!("the archive no longer accepts entries signed by {key}");
    Ok(ExitCode::SUCCESS)
}

/// Runs `strata keys shred`.
pub async fn shred(
    archive: &Archive,
    tenant: &str,
    reason: &str,
    now: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let now = instant(now)?;
    let after =
        strata_retention::schedule_shred(archive, tenant, reason, &crate::actor(), now).await?;
    println!(
        "tenant {tenant}: keys are destroyed by the first `strata retention run` after {after}"
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `strata hold …`.
pub async fn hold(archive: &Archive, command: HoldCommand) -> anyhow::Result<ExitCode> {
    match command {
        HoldCommand::Add(HoldAddArgs {
            tenant,
            family,
            from,
            to,
            reason,
        }) => {
            check_family(family.as_deref())?;
            let request = HoldRequest {
                tenant,
                family,
                from,
                to,
                reason,
            };
            let hold = strata_retention::add_hold(archive, request, &crate::actor()).await?;
            println!("hold {} placed: {}", hold.id, hold.scope());
        }
        HoldCommand::List => {
            let snapshot = archive.catalog.load().await?;
            if snapshot.governance.holds.is_empty() {
                println!("no active holds");
            }
            for hold in snapshot.governance.holds.values() {
                println!(
                    "{:>4}  {}  placed {} by {}: {}",
                    hold.id,
                    hold.scope(),
                    hold.added_at,
                    hold.added_by,
                    hold.reason
                );
            }
        }
        HoldCommand::Release { id, reason } => {
            let hold =
                strata_retention::release_hold(archive, id, &reason, &crate::actor()).await?;
            println!("hold {id} released: {}", hold.scope());
        }
    }
    Ok(ExitCode::SUCCESS)
}
