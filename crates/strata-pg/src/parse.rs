//! SQL as PostgreSQL clients write it, parsed for DataFusion.
//!
//! `datafusion-pg-catalog`'s compatibility parser makes the catalog queries
//! of drivers and tools run: it rewrites their PostgreSQL idioms and
//! replaces some whole queries DataFusion cannot plan. One of its rewrites
//! answers NULL for any correlated subquery in a projection, which is
//! harmless for a catalog lookup and a silent wrong answer for a question
//! about the archive. So a statement that reads the archive's own tables
//! gets its rewrites without that one: a correlated subquery there is
//! answered by DataFusion, or refused with its error. A catalog query, on
//! the contrary, gets that rewrite deeper: a correlated subquery anywhere
//! in its projection (inside a `CASE`, as SQLAlchemy's column reflection
//! writes them) is NULL, which is what it finds in a session without
//! column defaults, identity columns or collations; so is `ARRAY(subquery)`
//! there (psql's `\d+`: storage options, of which there are none).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    Expr, FunctionArguments, Query, SelectItem, SetExpr, Statement, TableFactor, Value, VisitMut,
    VisitorMut, visit_expressions, visit_relations,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall,
    FixArrayLiteral, FixVersionColumnName, PrependUnqualifiedPgTableName,
    ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation, RewritePgCatalogOperator,
    RewriteRegCastToSubquery, SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};

/// Parses statements (see the module).
#[derive(Debug)]
pub(crate) struct SqlParser {
    catalog: PostgresCompatibilityParser,
    archive_rules: Vec<Arc<dyn SqlStatementRewriteRule>>,
}

impl SqlParser {
    pub fn new() -> SqlParser {
        SqlParser {
            catalog: PostgresCompatibilityParser::new(),
            // The compatibility parser's rules, in its order, without
            // `RemoveSubqueryFromProjection`.
            archive_rules: vec![
                Arc::new(AliasDuplicatedProjectionRewrite),
                Arc::new(ResolveUnqualifiedIdentifier),
                Arc::new(RewriteArrayAnyAllOperation),
                Arc::new(PrependUnqualifiedPgTableName),
                Arc::new(StripCallableQualifier),
                Arc::new(FixArrayLiteral),
                Arc::new(CurrentUserVariableToSessionUserFunctionCall),
                Arc::new(StripCollate),
                Arc::new(RewritePgCatalogOperator),
                Arc::new(RewriteRegCastToSubquery::new()),
                Arc::new(FixVersionColumnName),
            ],
        }
    }

    /// The statements of `sql`.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>, ParserError> {
        let sql = crate::compat::regproc_comparisons(sql);
        match Parser::parse_sql(&PostgreSqlDialect {}, &sql) {
            Ok(statements) if statements.iter().any(reads_the_archive) => Ok(statements
                .into_iter()
                .map(|statement| {
                    (self.archive_rules.iter()).fold(statement, |s, rule| rule.rewrite(s))
                })
                .collect()),
            _ => {
                let mut statements = self.catalog.parse(&sql)?;
                for statement in &mut statements {
                    let _ = statement.visit(&mut ProjectedSubqueries);
                }
                Ok(statements)
            }
        }
    }
}

/// Replaces each correlated subquery in a projection by NULL.
struct ProjectedSubqueries;

impl VisitorMut for ProjectedSubqueries {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item
                {
                    let _ = expr.visit(&mut CorrelatedToNull);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Replaces each correlated scalar subquery it meets by NULL, and each
/// `ARRAY(subquery)`, which DataFusion does not plan (psql's `\d+` reads a
/// table's storage options so: it has none).
struct CorrelatedToNull;

impl VisitorMut for CorrelatedToNull {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let unplannable = match expr {
            Expr::Subquery(query) => is_correlated(query),
            Expr::Function(function) => {
                function.name.to_string().eq_ignore_ascii_case("array")
                    && matches!(function.args, FunctionArguments::Subquery(_))
            }
            _ => false,
        };
        if unplannable {
            *expr = Expr::Value(Value::Null.with_empty_span());
        }
        ControlFlow::Continue(())
    }
}

/// Whether `query` names a column of a table it does not read itself.
fn is_correlated(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    // The names a column of its own tables may be qualified by: a table's
    // alias, its name, or its schema and name.
    let mut own: Vec<Vec<String>> = Vec::new();
    let factors = (select.from.iter())
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for factor in factors {
        if let TableFactor::Table { name, alias, .. } = factor {
            let parts: Vec<String> = (name.0.iter())
                .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
                .collect();
            for start in 0..parts.len() {
                own.push(parts[start..].to_vec());
            }
            if let Some(alias) = alias {
                own.push(vec![alias.name.value.to_ascii_lowercase()]);
            }
        }
    }
    let outside = visit_expressions(query, |e: &Expr| match e {
        Expr::CompoundIdentifier(parts) if parts.len() > 1 => {
            let qualifier: Vec<String> = (parts[..parts.len() - 1].iter())
                .map(|p| p.value.to_ascii_lowercase())
                .collect();
            if own.contains(&qualifier) {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        }
        _ => ControlFlow::Continue(()),
    });
    outside.is_break()
}

/// Whether `statement` names one of the archive's tables.
fn reads_the_archive(statement: &Statement) -> bool {
    let found = visit_relations(statement, |name| {
        let last = name.0.last().and_then(|part| part.as_ident());
        match last.map(|ident| ident.value.to_ascii_lowercase()) {
            Some(table) if strata_query::is_archive_table(&table) => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    });
    found.is_break()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correlated_subquery_over_the_archive_is_kept_and_a_catalog_one_nulled() {
        let parser = SqlParser::new();
        let over_events = "SELECT tenant, (SELECT count(*) FROM events e2 \
                           WHERE e2.tenant = e.tenant) AS n FROM events e";
        let parsed = parser.parse(over_events).unwrap()[0].to_string();
        assert!(
            parsed.contains("SELECT count(*) FROM events e2"),
            "{parsed}"
        );
        let over_catalog = "SELECT c.relname, (SELECT d.description FROM pg_description d \
                            WHERE d.objoid = c.oid) AS comment FROM pg_class c";
        let parsed = parser.parse(over_catalog).unwrap()[0].to_string();
        assert!(parsed.contains("NULL AS comment"), "{parsed}");
        // Deeper in a catalog query's projection too; not its own columns.
        let in_case = "SELECT pg_catalog.pg_attribute.attname, CASE WHEN \
                       pg_catalog.pg_attribute.atthasdef THEN (SELECT pg_catalog.pg_attrdef.adbin \
                       FROM pg_catalog.pg_attrdef WHERE pg_catalog.pg_attrdef.adrelid = \
                       pg_catalog.pg_attribute.attrelid) ELSE NULL END AS d, \
                       (SELECT max(t.oid) FROM pg_catalog.pg_type t WHERE t.typname = 'int4') AS o \
                       FROM pg_catalog.pg_attribute";
        let parsed = parser.parse(in_case).unwrap()[0].to_string();
        assert!(parsed.contains("THEN NULL ELSE NULL END AS d"), "{parsed}");
        assert!(parsed.contains("SELECT max(t.oid)"), "{parsed}");
        let options = "SELECT array_to_string(c.reloptions || array(SELECT 'toast.' || x \
                       FROM pg_catalog.unnest(tc.reloptions) x), ', ') FROM pg_catalog.pg_class c \
                       LEFT JOIN pg_catalog.pg_class tc ON c.reltoastrelid = tc.oid";
        let parsed = parser.parse(options).unwrap()[0].to_string();
        assert!(parsed.contains("c.reloptions || NULL"), "{parsed}");
    }
}
