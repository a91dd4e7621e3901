//! SQL cursors: `DECLARE name CURSOR FOR query`, `FETCH`, `CLOSE`, as psql
//! uses them for large results (`\set FETCH_COUNT 1000`) and psycopg's
//! named cursors (which also describe the cursor as a portal: see
//! `wire.rs`).
//!
//! A `DECLARE` is the statement that looks at the data: it is admitted,
//! planned, refused or recorded like any query, and its rows wait in the
//! connection, encoded as text, until `FETCH` takes them. `FETCH` and
//! `CLOSE` only read or drop what the `DECLARE` started, so they are not
//! recorded again: the `DECLARE`'s end record says how many rows were
//! fetched, `answered` once the last row was fetched or `cancelled` when the
//! cursor was closed (or the connection ended) before. Cursors move forward
//! only, and an open one holds its principal's query slot.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use datafusion::sql::sqlparser::ast::{
    CloseCursor, Declare, FetchDirection, Ident, Statement, Value,
};
use futures::stream::{BoxStream, Peekable};
use futures::{Stream, StreamExt, stream};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;

/// The open cursors of one connection.
#[derive(Default)]
pub(crate) struct Cursors {
    open: Mutex<HashMap<String, Cursor>>,
}

/// An open cursor: its columns and the rows not fetched yet.
struct Cursor {
    fields: Arc<Vec<FieldInfo>>,
    rows: Pin<Box<Peekable<BoxStream<'static, PgWireResult<DataRow>>>>>,
}

fn pg_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}

/// A cursor's name as PostgreSQL folds it.
fn name_of(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The name and query of a `DECLARE name CURSOR FOR query`.
pub(crate) fn declared(statement: &Statement) -> Option<(String, Statement)> {
    let Statement::Declare { stmts } = statement else {
        return None;
    };
    let [
        Declare {
            names,
            for_query: Some(query),
            ..
        },
    ] = stmts.as_slice()
    else {
        return None;
    };
    let [name] = names.as_slice() else {
        return None;
    };
    Some((name_of(name), Statement::Query(query.clone())))
}

impl Cursors {
    /// Refuses a `DECLARE` of a name already open.
    pub fn check_free(&self, name: &str) -> PgWireResult<()> {
        match self.open.lock().expect("cursors lock").contains_key(name) {
            true => Err(pg_error(
                "42P03",
                format!("cursor \"{name}\" already exists"),
            )),
            false => Ok(()),
        }
    }

    /// Opens cursor `name` over `rows`.
    pub fn open<S>(&self, name: String, fields: Arc<Vec<FieldInfo>>, rows: S) -> Response
    where
        S: Stream<Item = PgWireResult<DataRow>> + Send + 'static,
    {
        let rows = Box::pin(rows.boxed().peekable());
        let cursor = Cursor { fields, rows };
        self.open.lock().expect("cursors lock").insert(name, cursor);
        Response::Execution(Tag::new("DECLARE CURSOR"))
    }

    /// Answers `FETCH` and `CLOSE`; `None` for any other statement.
    pub async fn answer(&self, statement: &Statement) -> Option<PgWireResult<Response>> {
        match statement {
            Statement::Fetch {
                name, direction, ..
            } => Some(self.fetch(&name_of(name), direction).await),
            Statement::Close { cursor } => Some(self.close(cursor)),
            _ => None,
        }
    }

    async fn fetch(&self, name: &str, direction: &FetchDirection) -> PgWireResult<Response> {
        let count = |limit: &Value| match limit {
            Value::Number(n, _) => n.parse::<usize>().ok(),
            _ => None,
        };
        let wanted = match direction {
            FetchDirection::Next | FetchDirection::Forward { limit: None } => Some(1),
            FetchDirection::Count { limit } | FetchDirection::Forward { limit: Some(limit) } => {
                Some(count(&limit.value).ok_or_else(|| {
                    pg_error("22023", format!("FETCH count {limit} is not a row count"))
                })?)
            }
            FetchDirection::All | FetchDirection::ForwardAll => None,
            other => {
                return Err(pg_error(
                    "55000",
                    format!(
                        "cursor \"{name}\" moves forward only (FETCH NEXT, n, FORWARD n or ALL), \
                         not {other}"
                    ),
                ));
            }
        };
        let taken = self.open.lock().expect("cursors lock").remove(name);
        let mut cursor =
            taken.ok_or_else(|| pg_error("34000", format!("cursor \"{name}\" does not exist")))?;
        let mut rows = Vec::new();
        while wanted.is_none_or(|n| rows.len() < n) {
            match cursor.rows.next().await {
                Some(Ok(row)) => rows.push(row),
                // A failed cursor is closed; its end is recorded as cut short.
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        // Looking past the rows taken lets a finished answer record its end now.
        cursor.rows.as_mut().peek().await;
        let fields = cursor.fields.clone();
        self.open
            .lock()
            .expect("cursors lock")
            .insert(name.to_string(), cursor);
        let mut response = QueryResponse::new(fields, stream::iter(rows.into_iter().map(Ok)));
        response.set_command_tag("FETCH");
        Ok(Response::Query(response))
    }

    fn close(&self, cursor: &CloseCursor) -> PgWireResult<Response> {
        let mut open = self.open.lock().expect("cursors lock");
        match cursor {
            CloseCursor::All => open.clear(),
            CloseCursor::Specific { name } => {
                let name = name_of(name);
                if open.remove(&name).is_none() {
                    return Err(pg_error(
                        "34000",
                        format!("cursor \"{name}\" does not exist"),
                    ));
                }
            }
        }
        Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
    }
}
