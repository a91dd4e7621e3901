//! Which catalogued files a query's filters can possibly match.

use std::collections::BTreeSet;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use strata_store::FileMeta;

/// File-level constraints derived from a conjunction of filters. `None`
/// means unconstrained. Bounds are inclusive: `ts` is whole microseconds,
/// so `ts < t` is `ts <= t - 1µs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prune {
    /// Tenants the query can match.
    pub tenants: Option<BTreeSet<String>>,
    /// Tenants the query excludes (`tenant <> 'x'`, `NOT IN`): their files are
    /// never opened, so a shredded tenant does not break queries about others.
    pub excluded_tenants: BTreeSet<String>,
    /// Families the query can match.
    pub families: Option<BTreeSet<String>>,
    /// Smallest `ts` (UTC microseconds) the query can match.
    pub ts_min: Option<i64>,
    /// Largest `ts` the query can match.
    pub ts_max: Option<i64>,
}

impl Prune {
    /// Constraints implied by `filters`, all of which must hold.
    pub fn from_filters(filters: &[Expr]) -> Prune {
        let mut prune = Prune::default();
        for filter in filters {
            prune.add(filter);
        }
        prune
    }

    /// Whether `file` may hold matching rows.
    pub fn keeps(&self, file: &FileMeta) -> bool {
        self.keeps_rows(&file.tenant, &file.family, file.min_ts, file.max_ts)
    }

    /// Whether rows of `tenant` and `family` with `ts` from `min_ts` to
    /// `max_ts` may match.
    pub fn keeps_rows(&self, tenant: &str, family: &str, min_ts: i64, max_ts: i64) -> bool {
        self.tenants.as_ref().is_none_or(|t| t.contains(tenant))
            && !self.excluded_tenants.contains(tenant)
            && self.families.as_ref().is_none_or(|f| f.contains(family))
            && self.ts_min.is_none_or(|min| max_ts >= min)
            && self.ts_max.is_none_or(|max| min_ts <= max)
    }

    fn add(&mut self, filter: &Expr) {
        match filter {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                self.add(left);
                self.add(right);
            }
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => {
                let left = Prune::from_filters(std::slice::from_ref(left.as_ref()));
                let right = Prune::from_filters(std::slice::from_ref(right.as_ref()));
                self.intersect(left.union(right));
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if let (Some(column), Some(value)) = (column_name(left), literal(right)) {
                    self.compare(column, *op, value);
                } else if let (Some(value), Some(column), Some(op)) =
                    (literal(left), column_name(right), op.swap())
                {
                    self.compare(column, op, value);
                }
            }
            Expr::InList(list) => {
                let Some(column) = column_name(&list.expr) else {
                    return;
                };
                let values: Option<BTreeSet<String>> =
                    list.list.iter().map(|v| text(literal(v)?)).collect();
                match values {
                    Some(values) if !list.negated => self.restrict(column, values),
                    Some(values) if column == "tenant" => self.excluded_tenants.extend(values),
                    _ => {}
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                if let Some(column) = column_name(expr) {
                    if let Some(low) = literal(low) {
                        self.compare(column, Operator::GtEq, low);
                    }
                    if let Some(high) = literal(high) {
                        self.compare(column, Operator::LtEq, high);
                    }
                }
            }
            _ => {}
        }
    }

    /// Constraints that hold when either `self` or `other` does.
    fn union(self, other: Prune) -> Prune {
        let either = |a: Option<BTreeSet<String>>, b: Option<BTreeSet<String>>| {
            Some(a?.union(&b?).cloned().collect())
        };
        // A tenant stays excluded only if both sides exclude it and neither names it.
        let named: BTreeSet<&String> = self
            .tenants
            .iter()
            .chain(&other.tenants)
            .flatten()
            .collect();
        let excluded_tenants = self
            .excluded_tenants
            .intersection(&other.excluded_tenants)
            .filter(|t| !named.contains(t))
            .cloned()
            .collect();
        Prune {
            excluded_tenants,
            tenants: either(self.tenants, other.tenants),
            families: either(self.families, other.families),
            ts_min: self.ts_min.zip(other.ts_min).map(|(a, b)| a.min(b)),
            ts_max: self.ts_max.zip(other.ts_max).map(|(a, b)| a.max(b)),
        }
    }

    /// Adds `other`'s constraints to these.
    fn intersect(&mut self, other: Prune) {
        if let Some(tenants) = other.tenants {
            self.restrict("tenant", tenants);
        }
        if let Some(families) = other.families {
            self.restrict("family", families);
        }
        self.excluded_tenants.extend(other.excluded_tenants);
        if let Some(min) = other.ts_min {
            self.ts_min = Some(self.ts_min.map_or(min, |m| m.max(min)));
        }
        if let Some(max) = other.ts_max {
            self.ts_max = Some(self.ts_max.map_or(max, |m| m.min(max)));
        }
    }

    fn compare(&mut self, column: &str, op: Operator, value: &ScalarValue) {
        match (column, op) {
            ("tenant" | "family", Operator::Eq) => {
                if let Some(v) = text(value) {
                    self.restrict(column, BTreeSet::from([v]));
                }
            }
            ("tenant", Operator::NotEq) => {
                if let Some(v) = text(value) {
                    self.excluded_tenants.insert(v);
                }
            }
            // Timestamps are whole microseconds: `ts > v` is `ts >= v + 1`.
            ("ts", Operator::Gt | Operator::GtEq) => {
                if let Some((v, exact)) = micros(value) {
                    let v = if op == Operator::GtEq && exact {
                        v
                    } else {
                        v.saturating_add(1)
                    };
                    self.ts_min = Some(self.ts_min.map_or(v, |m| m.max(v)));
                }
            }
            ("ts", Operator::Lt | Operator::LtEq) => {
                if let Some((v, exact)) = micros(value) {
                    let v = if op == Operator::Lt && exact {
                        v.saturating_sub(1)
                    } else {
                        v
                    };
                    self.ts_max = Some(self.ts_max.map_or(v, |m| m.min(v)));
                }
            }
            ("ts", Operator::Eq) => {
                self.compare(column, Operator::GtEq, value);
                self.compare(column, Operator::LtEq, value);
            }
            _ => {}
        }
    }

    /// Narrows the tenants or families the query can match to `values`. The
    /// catalog records no other column's values, so any other restricts nothing.
    fn restrict(&mut self, column: &str, values: BTreeSet<String>) {
        let slot = match column {
            "tenant" => &mut self.tenants,
            "family" => &mut self.families,
            _ => return,
        };
        *slot = Some(match slot.take() {
            Some(existing) => existing.intersection(&values).cloned().collect(),
            None => values,
        });
    }
}

fn column_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(c) => Some(c.name.as_str()),
        _ => None,
    }
}

fn literal(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Some(v),
        _ => None,
    }
}

fn text(value: &ScalarValue) -> Option<String> {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s.clone()),
        _ => None,
    }
}

/// A timestamp literal in UTC microseconds, rounded down, and whether that is exact.
fn micros(value: &ScalarValue) -> Option<(i64, bool)> {
    match value {
        ScalarValue::TimestampSecond(Some(v), _) => Some((v.checked_mul(1_000_000)?, true)),
        ScalarValue::TimestampMillisecond(Some(v), _) => Some((v.checked_mul(1_000)?, true)),
        ScalarValue::TimestampMicrosecond(Some(v), _) => Some((*v, true)),
        ScalarValue::TimestampNanosecond(Some(v), _) => {
            Some((v.div_euclid(1_000), v.rem_euclid(1_000) == 0))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::in_list;

    fn file(tenant: &str, family: &str, min_ts: i64, max_ts: i64) -> FileMeta {
        FileMeta {
            path: String::new(),
            tenant: tenant.into(),
            family: family.into(),
            month: "2025-01".into(),
            size: 0,
            sha256: String::new(),
            rows: 0,
            min_ts,
            max_ts,
            location: None,
            key_version: None,
            shredded: Vec::new(),
        }
    }

    fn ts(v: i64) -> Expr {
        lit(ScalarValue::TimestampMicrosecond(
            Some(v),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn tenant_family_and_time_filters_prune() {
        let prune = Prune::from_filters(&[
            col("tenant").eq(lit("acme")),
            lit("access").eq(col("family")),
            col("ts").gt_eq(ts(100)).and(col("ts").lt(ts(200))),
        ]);
        assert!(prune.keeps(&file("acme", "access", 150, 160)));
        assert!(prune.keeps(&file("acme", "access", 50, 100)));
        assert!(prune.keeps(&file("acme", "access", 199, 300)));
        assert!(
            !prune.keeps(&file("acme", "access", 200, 300)),
            "a file starting at the exclusive upper bound is skipped"
        );
        assert!(!prune.keeps(&file("acme", "access", 0, 99)));
        let after = Prune::from_filters(&[col("ts").gt(ts(100))]);
        assert!(!after.keeps(&file("acme", "access", 0, 100)));
        assert!(after.keeps(&file("acme", "access", 0, 101)));
        // Nanosecond bounds between two microseconds round inwards.
        let nanos = |v| lit(ScalarValue::TimestampNanosecond(Some(v), None));
        let between =
            Prune::from_filters(&[col("ts").gt(nanos(1_500)), col("ts").lt(nanos(3_500))]);
        assert!(!between.keeps(&file("acme", "access", 0, 1)));
        assert!(between.keeps(&file("acme", "access", 2, 2)));
        assert!(between.keeps(&file("acme", "access", 3, 3)));
        assert!(!between.keeps(&file("acme", "access", 4, 9)));
        assert!(!prune.keeps(&file("acme", "access", 201, 300)));
        assert!(!prune.keeps(&file("globex", "access", 150, 160)));
        assert!(!prune.keeps(&file("acme", "technical", 150, 160)));
    }

    #[test]
    fn in_lists_between_and_contradictions() {
        let prune = Prune::from_filters(&[
            in_list(col("tenant"), vec![lit("a"), lit("b")], false),
            col("ts").between(ts(10), ts(20)),
        ]);
        assert!(prune.keeps(&file("b", "x", 20, 30)));
        assert!(!prune.keeps(&file("c", "x", 10, 20)));
        assert!(!prune.keeps(&file("a", "x", 21, 30)));
        let none = Prune::from_filters(&[col("tenant").eq(lit("a")), col("tenant").eq(lit("b"))]);
        assert!(!none.keeps(&file("a", "x", 0, 0)));
    }

    #[test]
    fn in_lists_on_columns_the_catalog_does_not_know_prune_nothing() {
        for column in ["user", "action", "host", "src_ip", "outcome"] {
            for len in 1..=6 {
                let values = (0..len).map(|i| lit(format!("v{i}"))).collect();
                let prune = Prune::from_filters(&[in_list(col(column), values, false)]);
                assert_eq!(prune, Prune::default(), "{column} IN ({len} values)");
                assert!(prune.keeps(&file("acme", "access", 0, 0)));
            }
        }
    }

    #[test]
    fn only_tenant_exclusions_prune_among_negations() {
        let prune = Prune::from_filters(&[
            in_list(col("family"), vec![lit("access")], true),
            !col("ts").gt(ts(5)),
        ]);
        assert_eq!(prune, Prune::default());
        let prune = Prune::from_filters(&[
            col("tenant").not_eq(lit("z")),
            in_list(col("tenant"), vec![lit("y")], true),
        ]);
        assert!(!prune.keeps(&file("z", "access", 0, 0)));
        assert!(!prune.keeps(&file("y", "access", 0, 0)));
        assert!(prune.keeps(&file("a", "access", 0, 0)));
        // Either side may keep z: kept.
        let either = Prune::from_filters(&[col("tenant")
            .not_eq(lit("z"))
            .or(col("tenant").eq(lit("z")))]);
        assert!(either.keeps(&file("z", "access", 0, 0)));
        let both = Prune::from_filters(&[col("tenant").not_eq(lit("z")).or(col("tenant")
            .not_eq(lit("z"))
            .and(col("family").eq(lit("access"))))]);
        assert!(!both.keeps(&file("z", "access", 0, 0)));
    }

    #[test]
    fn disjunctions_keep_what_either_side_keeps() {
        let prune =
            Prune::from_filters(&[col("tenant").eq(lit("a")).or(col("tenant").eq(lit("b")))]);
        assert_eq!(
            prune.tenants,
            Some(BTreeSet::from(["a".to_string(), "b".to_string()]))
        );
        let ranges = Prune::from_filters(&[col("ts")
            .between(ts(10), ts(20))
            .or(col("ts").between(ts(40), ts(50)))
            .and(col("family").eq(lit("access")))]);
        assert_eq!((ranges.ts_min, ranges.ts_max), (Some(10), Some(50)));
        assert!(
            ranges.keeps(&file("t", "access", 30, 35)),
            "a hull, not exact ranges: kept"
        );
        assert!(!ranges.keeps(&file("t", "access", 51, 60)));
        assert!(!ranges.keeps(&file("t", "technical", 10, 20)));
        // One side unconstrained: the disjunction constrains nothing.
        let open = Prune::from_filters(&[col("tenant")
            .eq(lit("a"))
            .or(col("action").eq(lit("login")))]);
        assert_eq!(open, Prune::default());
    }
}
