//! The protocol's handlers for one connection: login, the simple query
//! protocol (psql), and the extended one (prepared statements with
//! parameters, portals with row limits: JDBC, psycopg, ADBC).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use arrow_pg::datatypes::df::deserialize_parameters_with_server_types;
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, into_pg_type};
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg;
use futures::Sink;
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, ConnectionManager, PgWireServerHandlers,
    RandomPidSecretKeyGenerator, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;

use crate::Backend;
use crate::login::Startup;
use crate::parse::SqlParser;
use crate::statements::Statements;

/// One connection's handlers.
pub(crate) struct Handlers {
    startup: Arc<Startup>,
    queries: Arc<Queries>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    pub fn new(
        backend: Arc<dyn Backend>,
        connections: Arc<ConnectionManager>,
        pids: Arc<RandomPidSecretKeyGenerator>,
        tls_required: bool,
    ) -> Handlers {
        let login = Arc::new(OnceLock::new());
        let statements = Arc::new(Statements::new(backend.clone(), login.clone()));
        Handlers {
            startup: Arc::new(Startup::new(
                backend,
                connections.clone(),
                pids,
                tls_required,
                login,
            )),
            queries: Arc::new(Queries {
                parser: Arc::new(Parser {
                    statements: statements.clone(),
                    sql: SqlParser::new(),
                }),
                statements,
            }),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}

/// A prepared statement: its text, and its plan when it was parsed (for
/// describing its parameters and columns; it is planned again when run).
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// As the client wrote it (what its record holds).
    sql: String,
    statement: Statement,
    plan: LogicalPlan,
}

/// Both query protocols of a connection.
pub(crate) struct Queries {
    statements: Arc<Statements>,
    parser: Arc<Parser>,
}

/// Parses SQL as PostgreSQL clients write it, and describes it.
pub(crate) struct Parser {
    statements: Arc<Statements>,
    sql: SqlParser,
}

impl Parser {
    fn parse(&self, sql: &str) -> PgWireResult<Vec<Statement>> {
        self.sql.parse(sql).map_err(|e| {
            PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".into(),
                "42601".into(),
                e.to_string(),
            )))
        })
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statements = match self.parser.parse(query) {
            Ok(statements) => statements,
            Err(e) => return Err(self.statements.unparsed(query, e).await),
        };
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut answers = Vec::with_capacity(statements.len());
        // A statement's record holds it as written; of several in one
        // query, each as the parser prints it.
        let single = statements.len() == 1;
        for statement in &statements {
            let text = if single {
                query.trim().to_string()
            } else {
                statement.to_string()
            };
            // As PostgreSQL does: the answers so far, then the error, and
            // the rest of the statements not run.
            let run = (self.statements).run(client, (&text, statement), None, &Format::UnifiedText);
            match run.await {
                Ok(answer) => answers.push(answer),
                Err(e) => {
                    answers.push(Response::Error(Box::new(ErrorInfo::from(e))));
                    break;
                }
            }
        }
        Ok(answers)
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let statement = match self.parse(sql) {
            Ok(statements) if statements.is_empty() => return Ok(None),
            Ok(mut statements) => statements.remove(0),
            Err(e) => return Err(self.statements.unparsed(sql, e).await),
        };
        let plan = self.statements.describe(client, (sql, &statement)).await?;
        let sql = sql.to_string();
        Ok(Some(Prepared {
            sql,
            statement,
            plan,
        }))
    }

    fn get_parameter_types(&self, prepared: &Prepared) -> PgWireResult<Vec<Type>> {
        let types = parameter_types(&prepared.plan)?;
        (types.iter())
            .map(|t| t.as_ref().map_or(Ok(Type::UNKNOWN), into_pg_type))
            .collect()
    }

    fn get_result_schema(
        &self,
        prepared: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        // A DECLARE answers no rows: its query's come with FETCH.
        if matches!(prepared.statement, Statement::Declare { .. }) {
            return Ok(Vec::new());
        }
        let format = format.unwrap_or(&Format::UnifiedText);
        arrow_schema_to_pg_fields(prepared.plan.schema().as_arrow(), format, None)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let types = parameter_types(&prepared.plan)?;
        let wire: Vec<Type> = (types.iter())
            .map(|t| t.as_ref().map_or(Ok(Type::UNKNOWN), into_pg_type))
            .collect::<PgWireResult<_>>()?;
        let types: Vec<Option<&DataType>> = types.iter().map(Option::as_ref).collect();
        let wire: Vec<Option<&Type>> = wire.iter().map(Some).collect();
        let params = deserialize_parameters_with_server_types(portal, &types, &wire)?;
        // Rows past `max_rows` wait in the portal (pgwire suspends it).
        let format = &portal.result_column_format;
        let answer = (self.statements)
            .run(
                client,
                (&prepared.sql, &prepared.statement),
                Some(params),
                format,
            )
            .await?;
        // A cursor declared this way is also a portal of its name, which
        // drivers describe to learn its columns (psycopg's named cursors).
        if let Some((name, query)) = crate::cursors::declared(&prepared.statement) {
            let described = Prepared {
                sql: prepared.sql.clone(),
                statement: query,
                plan: prepared.plan.clone(),
            };
            let statement = Arc::new(StoredStatement::new(name.clone(), described, Vec::new()));
            client
                .portal_store()
                .put_portal(Arc::new(Portal::new_cursor(name, statement)));
        }
        Ok(answer)
    }
}

/// The types of `plan`'s parameters `$1`, `$2`, … in order: as DataFusion
/// infers them, or as a cast of the parameter says.
fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
    let api = |e: datafusion::error::DataFusionError| PgWireError::ApiError(Box::new(e));
    let mut types = plan.get_parameter_types().map_err(api)?;
    let mut cast: HashMap<String, DataType> = HashMap::new();
    plan.apply(|node| {
        for expr in node.expressions() {
            expr.apply(|e| {
                if let Expr::Cast(c) = e
                    && let Expr::Placeholder(p) = c.expr.as_ref()
                {
                    cast.insert(p.id.clone(), c.field.data_type().clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(api)?;
    for (id, t) in &mut types {
        if t.is_none() {
            *t = cast.get(id).cloned();
        }
    }
    // By position: a parameter the plan no longer uses (the compatibility
    // parser dropped its subquery) keeps its place, without a type.
    let numbered: HashMap<usize, Option<DataType>> = (types.into_iter())
        .filter_map(|(id, t)| Some((id.trim_start_matches('$').parse().ok()?, t)))
        .collect();
    let count = numbered.keys().copied().max().unwrap_or(0);
    Ok((1..=count)
        .map(|n| numbered.get(&n).cloned().flatten())
        .collect())
}
