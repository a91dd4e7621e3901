//! SQL as PostgreSQL clients write it, parsed for DataFusion.
//!
//! `datafusion-pg-catalog`'s compatibility parser makes the catalog queries
//! of drivers and tools run: it rewrites their PostgreSQL idioms and
//! replaces some whole queries DataFusion cannot plan. One of its rewrites
//! answers NULL for any correlated subquery in a projection, which is
//! harmless for a catalog lookup and a silent wrong answer for a question
//! about the archive. So a statement that reads the archive's own tables
//! gets its rewrites without that one: a correlated subquery there is
//! answered by DataFusion, or refused with its error.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{Statement, visit_relations};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall,
    FixArrayLiteral, FixVersionColumnName, PrependUnqualifiedPgTableName,
    ResolveUnqualifiedIdentifier, RewriteArrayAnyAllOperation, RewritePgCatalogOperator,
    RewriteRegCastToSubquery, SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};

/// The archive's tables and views, as every session names them.
const ARCHIVE_TABLES: [&str; 6] = [
    "events",
    "access",
    "data_usage",
    "technical",
    "strata_files",
    "strata_audit",
];

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
            _ => self.catalog.parse(&sql),
        }
    }
}

/// Whether `statement` names one of the archive's tables.
fn reads_the_archive(statement: &Statement) -> bool {
    let found = visit_relations(statement, |name| {
        let last = name.0.last().and_then(|part| part.as_ident());
        match last.map(|ident| ident.value.to_ascii_lowercase()) {
            Some(table) if ARCHIVE_TABLES.contains(&table.as_str()) => ControlFlow::Break(()),
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
    }
}
