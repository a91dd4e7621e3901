//! Running one statement for a logged-in connection: admitted against its
//! principal's limits, refused unless it only reads, planned over the
//! newest state its role may see, recorded before its first row is sent,
//! and recorded again when its rows are done.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow_pg::datatypes::arrow_schema_to_pg_fields;
use datafusion::common::DFSchema;
use datafusion::common::ParamValues;
use datafusion::logical_expr::{EmptyRelation, LogicalPlan};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::arrow_pg;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::hooks::QueryHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use pgwire::api::portal::Format;
use pgwire::api::results::{QueryResponse, Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use strata_query::query_log::{Asker, End, Ending, QueryRecord, Start, new_query_id};
use strata_query::{Planned, QuerySession, Running, verify_read_only};

use crate::answer::{Finish, Started, answer};
use crate::cursors::{self, Cursors};
use crate::{Backend, Login};

/// Runs of a statement whose files a compaction removed under it.
const ATTEMPTS: usize = 3;
/// The longest a statement runs, whatever `statement_timeout` says.
const QUERY_TIMEOUT: Duration = Duration::from_secs(300);
/// Where `statement_timeout` is kept (by `datafusion-postgres`'s SET hook).
const STATEMENT_TIMEOUT_KEY: &str = "statement_timeout_ms";

/// A connection's statements.
pub(crate) struct Statements {
    pub backend: Arc<dyn Backend>,
    pub login: Arc<OnceLock<Login>>,
    /// The connection's context, made at its first statement (in its
    /// principal's runtime); each statement registers the newest tables in it.
    context: Mutex<Option<SessionContext>>,
    /// Its open SQL cursors.
    cursors: Cursors,
}

/// A statement refused or failed: the SQLSTATE and what the client is told.
struct Refusal {
    code: &'static str,
    start: Start,
    read: Planned,
}

impl Refusal {
    fn denied(code: &'static str, why: String) -> Refusal {
        Refusal {
            code,
            start: Start::Denied(why),
            read: Planned::default(),
        }
    }

    fn failed(code: &'static str, why: String) -> Refusal {
        Refusal {
            code,
            start: Start::Failed(why),
            read: Planned::default(),
        }
    }
}

pub(crate) fn pg_error(code: &str, message: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message.into(),
    )))
}

/// The SQLSTATE of a DataFusion error.
pub(crate) fn code_of(error: &datafusion::error::DataFusionError) -> &'static str {
    use datafusion::error::DataFusionError as E;
    match error.find_root() {
        E::ResourcesExhausted(_) => "53200",
        E::SQL(..) => "42601",
        E::Plan(_) | E::SchemaError(..) => "42P01",
        E::NotImplemented(_) => "0A000",
        _ => "XX000",
    }
}

/// Client settings a session may change; anything else (`SET datafusion.…`
/// changes the engine) is refused.
const CLIENT_SETTINGS: &[&str] = &[
    "statement_timeout",
    "datestyle",
    "bytea_output",
    "intervalstyle",
    "application_name",
    "extra_float_digits",
    "search_path",
    "client_encoding",
    "client_min_messages",
    "timezone",
];

/// Why `statement` may not run, when it changes more than the client's own
/// settings.
fn forbidden_setting(statement: &Statement) -> Option<String> {
    let Statement::Set(set) = statement else {
        return None;
    };
    let variable = match set {
        Set::SingleAssignment { variable, .. } => variable.to_string().to_lowercase(),
        Set::SetTimeZone { .. } => return None,
        Set::SetSessionParam(_) | Set::SetTransaction { .. } => return None,
        other => {
            return Some(format!(
                "`{other}` is not allowed: only client settings may be set"
            ));
        }
    };
    (!CLIENT_SETTINGS.contains(&variable.as_str())).then(|| {
        format!(
            "`SET {variable}` is not allowed: only client settings ({}) may be set",
            CLIENT_SETTINGS.join(", ")
        )
    })
}

impl Statements {
    pub fn new(backend: Arc<dyn Backend>, login: Arc<OnceLock<Login>>) -> Statements {
        Statements {
            backend,
            login,
            context: Mutex::new(None),
            cursors: Cursors::default(),
        }
    }

    fn login(&self) -> PgWireResult<&Login> {
        (self.login.get()).ok_or_else(|| pg_error("28000", "the connection has not logged in"))
    }

    /// The connection's context, made in `runtime` at its first statement.
    fn context(
        &self,
        runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    ) -> Result<SessionContext, Refusal> {
        let mut context = self.context.lock().expect("context lock");
        if let Some(ctx) = context.as_ref() {
            return Ok(ctx.clone());
        }
        let internal = |e: &dyn std::fmt::Display| Refusal::failed("XX000", e.to_string());
        let ctx = self.backend.context(runtime).map_err(|e| internal(&e))?;
        // `pg_catalog` is derived from the context's own tables: `\d`
        // lists what this principal's session holds.
        setup_pg_catalog(&ctx, "datafusion", EmptyContextProvider).map_err(|e| internal(&e))?;
        crate::no_indexes::register(&ctx).map_err(|e| internal(&e))?;
        datafusion_postgres::datafusion_pg_functions::register_all(&mut *ctx.state_ref().write());
        crate::compat::register(&ctx);
        *context = Some(ctx.clone());
        Ok(ctx)
    }

    /// The record of `sql` run by `login`.
    async fn record(&self, login: &Login, sql: &str) -> QueryRecord {
        let started_at = chrono::Utc::now().timestamp_micros();
        QueryRecord {
            query_id: new_query_id(started_at),
            started_at,
            asker: Asker {
                user: login.principal.name.clone(),
                role: login.principal.role.as_str().to_string(),
                app: "strata serve".to_string(),
                interface: "pg".to_string(),
                src_ip: Some(login.peer.ip()),
                session_id: Some(login.session_id.clone()),
            },
            fingerprint: self.backend.fingerprint(sql).await,
            statement: sql.to_string(),
            read: Planned::default(),
        }
    }

    /// Stores `lines`; an error the client is told when they cannot be.
    async fn store(&self, lines: Vec<u8>) -> PgWireResult<()> {
        self.backend.record(lines).await.map_err(|why| {
            pg_error(
                "58000",
                &format!("the statement was not run: its record could not be stored ({why})"),
            )
        })
    }

    /// Plans `statement` (for the extended protocol's Parse) as the session
    /// would run it, so that its parameters and columns can be described.
    pub async fn describe(
        &self,
        client: &(dyn pgwire::api::ClientInfo + Send + Sync),
        (sql, statement): (&str, &Statement),
    ) -> PgWireResult<LogicalPlan> {
        let login = self.login()?.clone();
        let described = async {
            if let Some(why) = forbidden_setting(statement) {
                return Err(Refusal::denied("42501", why));
            }
            let admission = self.admit(&login, QUERY_TIMEOUT).await?;
            let ctx = self.context(admission.runtime)?;
            // FETCH and CLOSE are described as having no rows (a FETCH's
            // come in the simple protocol, as drivers send it); a DECLARE
            // as its query, for its parameters.
            let cursor = matches!(statement, Statement::Fetch { .. } | Statement::Close { .. });
            if savepoint(statement).is_some() || cursor {
                return Ok(LogicalPlan::EmptyRelation(EmptyRelation {
                    produce_one_row: false,
                    schema: Arc::new(DFSchema::empty()),
                }));
            }
            for hook in hooks() {
                if let Some(plan) = hook
                    .handle_extended_parse_query(statement, &ctx, client)
                    .await
                {
                    return plan.map_err(|e| Refusal::failed("42601", e.to_string()));
                }
            }
            let session = self.session(&login, ctx).await?;
            let declared = cursors::declared(statement);
            let query = declared.as_ref().map_or(statement, |(_, query)| query);
            self.logical_plan(&session, query).await
        };
        match described.await {
            Ok(plan) => Ok(plan),
            Err(refusal) => Err(self.refused(&login, sql, refusal).await),
        }
    }

    /// Runs `statement` (written `sql`) with `params` (`$1`, … of the
    /// extended protocol), its rows encoded in `format`.
    pub async fn run<C>(
        &self,
        client: &mut C,
        (sql, statement): (&str, &Statement),
        params: Option<ParamValues>,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: HookClient,
    {
        let received = Instant::now();
        let login = self.login()?.clone();
        if let Some(answer) = self.cursors.answer(statement).await {
            return answer;
        }
        // A cursor's query runs as any query; its rows wait in the cursor, as text.
        let declared = cursors::declared(statement);
        if let Some((name, _)) = &declared {
            self.cursors.check_free(name)?;
        }
        let (query, format) = match &declared {
            Some((_, query)) => (query, &Format::UnifiedText),
            None => (statement, format),
        };
        let mut record = self.record(&login, sql).await;
        if let Some(why) = forbidden_setting(statement) {
            return Err(self.refuse(record, Refusal::denied("42501", why)).await);
        }
        // Like a PostgreSQL server busy with other sessions, a statement
        // waits for its principal's slot (within its timeout).
        let deadline = received + statement_timeout(client);
        let admission = match self.admit(&login, deadline - Instant::now()).await {
            Ok(admission) => admission,
            Err(refusal) => return Err(self.refuse(record, refusal).await),
        };
        let ctx = match self.context(admission.runtime.clone()) {
            Ok(ctx) => ctx,
            Err(refusal) => return Err(self.refuse(record, refusal).await),
        };
        // Client settings, transactions and savepoints (read-only: nothing
        // to commit or roll back): answered at once, recorded with their end.
        let mut answered = savepoint(statement).map(|tag| Ok(Response::Execution(tag)));
        for hook in hooks() {
            if answered.is_some() {
                break;
            }
            answered = hook.handle_simple_query(statement, &ctx, client).await;
        }
        if let Some(answer) = answered {
            let end = End {
                ending: match &answer {
                    Ok(_) => Ending::Answered,
                    Err(e) => Ending::CutShort(e.to_string()),
                },
                rows: 0,
                bytes_scanned: 0,
                duration_ms: received.elapsed().as_secs_f64() * 1e3,
            };
            let mut lines = record.start_lines(&Start::Answering);
            lines.extend(record.end_lines(&end));
            self.store(lines).await?;
            return answer;
        }
        let started =
            tokio::time::timeout_at(deadline.into(), self.start(&login, ctx, query, params));
        let started = match started.await {
            Ok(Ok(started)) => started,
            Ok(Err(refusal)) => return Err(self.refuse(record, refusal).await),
            Err(_) => {
                let why = "canceling statement due to statement timeout".to_string();
                return Err(self.refuse(record, Refusal::failed("57014", why)).await);
            }
        };
        record.read = started.session.planned();
        self.store(record.start_lines(&Start::Answering)).await?;
        let fields = arrow_schema_to_pg_fields(&started.rest.schema(), format, None)?;
        let rows = answer(
            Arc::new(fields.clone()),
            started,
            deadline,
            Finish {
                backend: self.backend.clone(),
                record,
                received,
                _slot: admission.slot,
            },
        );
        match declared {
            Some((name, _)) => Ok(self.cursors.open(name, Arc::new(fields), rows)),
            None => Ok(Response::Query(QueryResponse::new(Arc::new(fields), rows))),
        }
    }

    async fn admit(&self, login: &Login, patience: Duration) -> Result<crate::Admission, Refusal> {
        match self.backend.admit(&login.principal.name, patience).await {
            Ok(Some(admission)) => Ok(admission),
            Ok(None) => Err(Refusal::denied(
                "57014",
                format!(
                    "canceling statement due to statement timeout: principal `{}` ran {} \
                     statements, as many as it may at once, all that time",
                    login.principal.name,
                    self.backend.concurrent()
                ),
            )),
            Err(e) => Err(Refusal::failed("XX000", e)),
        }
    }

    /// The session of `login`'s principal over the newest state, in `ctx`.
    async fn session(&self, login: &Login, ctx: SessionContext) -> Result<QuerySession, Refusal> {
        (self.backend.session(ctx, &login.principal).await)
            .map_err(|e| Refusal::failed("XX000", e.to_string()))
    }

    /// `statement`'s plan in `session`, refused unless it only reads.
    async fn logical_plan(
        &self,
        session: &QuerySession,
        statement: &Statement,
    ) -> Result<LogicalPlan, Refusal> {
        let state = session.ctx.state();
        let plan = (state.statement_to_plan(DfStatement::Statement(Box::new(statement.clone()))))
            .await
            .map_err(|e| Refusal::failed(code_of(&e), e.to_string()))?;
        verify_read_only(&plan).map_err(|e| Refusal::denied("42501", e.to_string()))?;
        Ok(plan)
    }

    /// Plans and starts `statement`, up to its first batch, over the newest
    /// state; again (up to [`ATTEMPTS`] times) when it failed because a
    /// file it read was compacted or expired meanwhile.
    async fn start(
        &self,
        login: &Login,
        ctx: SessionContext,
        statement: &Statement,
        params: Option<ParamValues>,
    ) -> Result<Started, Refusal> {
        let mut attempts = 1;
        loop {
            let session = self.session(login, ctx.clone()).await?;
            let plan = self.logical_plan(&session, statement).await?;
            let error = match session.start(plan, params.clone()).await {
                Ok(Running { plan, first, rest }) => {
                    return Ok(Started {
                        session,
                        plan,
                        first,
                        rest,
                    });
                }
                Err(e) => e,
            };
            if attempts == ATTEMPTS || !self.backend.moved_since(&session).await {
                return Err(Refusal {
                    code: code_of(&error),
                    start: Start::Failed(error.to_string()),
                    read: session.planned(),
                });
            }
            attempts += 1;
        }
    }

    /// Records text that does not parse as SQL, and tells `error`.
    pub async fn unparsed(&self, sql: &str, error: PgWireError) -> PgWireError {
        let Ok(login) = self.login() else {
            return error;
        };
        let login = login.clone();
        let why = Refusal::failed("42601", error.to_string());
        self.refused(&login, sql, why).await
    }

    /// Records a statement refused before planning and tells why.
    async fn refused(&self, login: &Login, sql: &str, refusal: Refusal) -> PgWireError {
        let record = self.record(login, sql).await;
        self.refuse(record, refusal).await
    }

    /// Records `record`'s refusal and tells why.
    async fn refuse(&self, mut record: QueryRecord, refusal: Refusal) -> PgWireError {
        record.read = refusal.read;
        if let Err(e) = self.store(record.start_lines(&refusal.start)).await {
            return e;
        }
        pg_error(refusal.code, refusal.start.reason())
    }
}

/// The answer to a savepoint statement, which a read-only session
/// accepts (SQLAlchemy nests its transactions in them).
fn savepoint(statement: &Statement) -> Option<Tag> {
    match statement {
        Statement::Savepoint { .. } => Some(Tag::new("SAVEPOINT")),
        Statement::ReleaseSavepoint { .. } => Some(Tag::new("RELEASE")),
        Statement::Rollback {
            savepoint: Some(_), ..
        } => Some(Tag::new("ROLLBACK")),
        _ => None,
    }
}

/// The statements answered without DataFusion: client settings, `SHOW`,
/// and transaction control (every session reads only).
fn hooks() -> [Box<dyn QueryHook>; 2] {
    [Box::new(SetShowHook), Box::new(TransactionStatementHook)]
}

/// The client's `statement_timeout`, at most [`QUERY_TIMEOUT`].
fn statement_timeout(client: &impl pgwire::api::ClientInfo) -> Duration {
    (client.metadata().get(STATEMENT_TIMEOUT_KEY))
        .and_then(|ms| ms.parse().ok())
        .map(Duration::from_millis)
        .map_or(QUERY_TIMEOUT, |asked| asked.min(QUERY_TIMEOUT))
}
