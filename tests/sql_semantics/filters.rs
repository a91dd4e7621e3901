//! Random filters over the event columns, rendered for DataFusion (Strata's
//! SQL) and for DuckDB, from values that occur in the data and values at the
//! edges of its files and months.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

/// What a column holds, which decides the literals and operators used on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Text,
    Unsigned,
    Float,
    Time,
}

/// A column with the values to build literals from.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// Rendered literals (text unquoted, times as UTC nanoseconds).
    pub values: Vec<Literal>,
}

/// A literal value.
#[derive(Debug, Clone)]
pub enum Literal {
    Text(String),
    Unsigned(u64),
    Float(f64),
    /// UTC nanoseconds since the epoch.
    Time(i64),
    Null,
}

/// A filter expression.
#[derive(Debug, Clone)]
pub enum Filter {
    Compare(&'static str, &'static str, Literal),
    In(&'static str, Vec<Literal>, bool),
    Between(&'static str, Literal, Literal, bool),
    IsNull(&'static str, bool),
    Like(&'static str, String, bool),
    Attr(String, &'static str, Literal),
    AttrIsNull(String, bool),
    Hour(&'static str, i64),
    Date(&'static str, i64),
    AsText(&'static str, Kind, &'static str, String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

/// Which SQL dialect to render.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dialect {
    DataFusion,
    DuckDb,
}

const OPERATORS: [&str; 6] = ["=", "<>", "<", "<=", ">", ">="];

/// Generates filters over `columns` and the attribute keys and values in `attrs`.
pub struct Generator {
    pub columns: Vec<Column>,
    pub attrs: Vec<(String, Vec<String>)>,
}

impl Generator {
    /// A random filter, nested at most `depth` levels.
    pub fn filter(&self, rng: &mut ChaCha8Rng, depth: u32) -> Filter {
        if depth > 0 && rng.random_bool(0.35) {
            let a = Box::new(self.filter(rng, depth - 1));
            return match rng.random_range(0..5) {
                0 => Filter::Not(a),
                1 | 2 => Filter::Or(a, Box::new(self.filter(rng, depth - 1))),
                _ => Filter::And(a, Box::new(self.filter(rng, depth - 1))),
            };
        }
        let column = self.columns.choose(rng).expect("columns");
        match rng.random_range(0..12) {
            0..=2 => Filter::Compare(column.name, pick(rng, &OPERATORS), self.value(rng, column)),
            3 | 4 => {
                let len = rng.random_range(1..=9);
                let list = (0..len).map(|_| self.value(rng, column)).collect();
                Filter::In(column.name, list, rng.random_bool(0.3))
            }
            5 => {
                let (a, b) = (self.value(rng, column), self.value(rng, column));
                Filter::Between(column.name, a, b, rng.random_bool(0.2))
            }
            6 => Filter::IsNull(column.name, rng.random_bool(0.5)),
            7 if column.kind == Kind::Text => {
                Filter::Like(column.name, like_pattern(rng, column), rng.random_bool(0.2))
            }
            8 => {
                let (key, values) = self.attrs.choose(rng).expect("attribute keys");
                if rng.random_bool(0.3) {
                    Filter::AttrIsNull(key.clone(), rng.random_bool(0.5))
                } else {
                    let value = match values.choose(rng) {
                        Some(v) if rng.random_bool(0.9) => Literal::Text(v.clone()),
                        _ => Literal::Text("no-such-value".into()),
                    };
                    Filter::Attr(key.clone(), pick(rng, &OPERATORS), value)
                }
            }
            9 => Filter::Hour(pick(rng, &OPERATORS), rng.random_range(0..24)),
            10 => {
                let times = &self.time_column().values;
                let Literal::Time(t) = times.choose(rng).expect("times") else {
                    unreachable!("time columns hold times")
                };
                Filter::Date(pick(rng, &OPERATORS), t.div_euclid(86_400_000_000_000))
            }
            _ if column.kind != Kind::Text => {
                let text = match self.value(rng, column) {
                    Literal::Unsigned(v) => v.to_string(),
                    other => render_literal(&other, Dialect::DuckDb).unwrap_or_default(),
                };
                Filter::AsText(
                    column.name,
                    column.kind,
                    pick(rng, &["=", "<>", "<", ">="]),
                    text,
                )
            }
            _ => Filter::Compare(column.name, pick(rng, &OPERATORS), self.value(rng, column)),
        }
    }

    fn time_column(&self) -> &Column {
        self.columns
            .iter()
            .find(|c| c.name == "ts")
            .expect("a ts column")
    }

    /// A value of `column`: mostly one in the data, sometimes one beside it or NULL.
    fn value(&self, rng: &mut ChaCha8Rng, column: &Column) -> Literal {
        if rng.random_bool(0.03) {
            return Literal::Null;
        }
        let value = column.values.choose(rng).cloned().unwrap_or(Literal::Null);
        if rng.random_bool(0.8) {
            return value;
        }
        match value {
            Literal::Text(s) => Literal::Text(format!("{s}{}", pick(rng, &["x", " ", "-"]))),
            Literal::Unsigned(v) => Literal::Unsigned(v + rng.random_range(0..3)),
            Literal::Float(v) => Literal::Float(v + 0.5),
            // One microsecond either side, or half of one (only DataFusion takes nanoseconds).
            Literal::Time(t) => Literal::Time(t + pick(rng, &[-1_000, 1_000, 500, -500])),
            Literal::Null => Literal::Null,
        }
    }
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, options: &[T]) -> T {
    *options.choose(rng).expect("options")
}

fn like_pattern(rng: &mut ChaCha8Rng, column: &Column) -> String {
    let Some(Literal::Text(value)) = column.values.choose(rng) else {
        return "%".into();
    };
    let chars: Vec<char> = value.chars().collect();
    let cut = rng.random_range(0..=chars.len().min(6));
    let part: String = chars[..cut].iter().collect();
    let part = part.replace(['%', '_', '\\'], "");
    match rng.random_range(0..3) {
        0 => format!("{part}%"),
        1 => format!("%{part}%"),
        _ => format!("%{}", chars[chars.len() - cut..].iter().collect::<String>())
            .replace(['_', '\\'], ""),
    }
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A literal in `dialect`, or `None` when it cannot be written there exactly
/// (DuckDB's timestamps stop at microseconds).
pub fn render_literal(value: &Literal, dialect: Dialect) -> Option<String> {
    Some(match value {
        Literal::Text(s) => quote(s),
        Literal::Unsigned(v) => v.to_string(),
        Literal::Float(v) => format!("{v:?}"),
        Literal::Null => "NULL".into(),
        Literal::Time(nanos) => {
            let time = chrono::DateTime::from_timestamp_nanos(*nanos);
            match dialect {
                Dialect::DataFusion => {
                    quote(&time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                }
                Dialect::DuckDb if nanos % 1_000 == 0 => format!(
                    "TIMESTAMPTZ {}",
                    quote(&time.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string())
                ),
                Dialect::DuckDb => return None,
            }
        }
    })
}

fn column_sql(name: &str) -> String {
    format!("\"{name}\"")
}

impl Filter {
    /// The filter as SQL of `dialect`, or `None` when it cannot be written there.
    pub fn render(&self, dialect: Dialect) -> Option<String> {
        let lit = |v: &Literal| render_literal(v, dialect);
        Some(match self {
            Filter::Compare(c, op, v) => format!("{} {op} {}", column_sql(c), lit(v)?),
            Filter::In(c, list, negated) => {
                let list: Option<Vec<String>> = list.iter().map(lit).collect();
                let not = if *negated { "NOT " } else { "" };
                format!("{} {not}IN ({})", column_sql(c), list?.join(", "))
            }
            Filter::Between(c, a, b, negated) => {
                let not = if *negated { "NOT " } else { "" };
                format!("{} {not}BETWEEN {} AND {}", column_sql(c), lit(a)?, lit(b)?)
            }
            Filter::IsNull(c, negated) => {
                let not = if *negated { "NOT " } else { "" };
                format!("{} IS {not}NULL", column_sql(c))
            }
            Filter::Like(c, pattern, negated) => {
                let not = if *negated { "NOT " } else { "" };
                format!("{} {not}LIKE {}", column_sql(c), quote(pattern))
            }
            Filter::Attr(key, op, v) => format!("attrs[{}] {op} {}", quote(key), lit(v)?),
            Filter::AttrIsNull(key, negated) => {
                let not = if *negated { "NOT " } else { "" };
                format!("attrs[{}] IS {not}NULL", quote(key))
            }
            Filter::Hour(op, hour) => format!("date_part('hour', ts) {op} {hour}"),
            Filter::Date(op, day) => {
                let date = chrono::DateTime::from_timestamp(day * 86_400, 0)?.date_naive();
                format!("CAST(ts AS DATE) {op} DATE '{date}'")
            }
            // Only integers are written as text the same way by both engines.
            Filter::AsText(_, kind, ..)
                if dialect == Dialect::DuckDb && *kind != Kind::Unsigned =>
            {
                return None;
            }
            Filter::AsText(c, _, op, text) => {
                format!("CAST({} AS VARCHAR) {op} {}", column_sql(c), quote(text))
            }
            Filter::And(a, b) => format!("({}) AND ({})", a.render(dialect)?, b.render(dialect)?),
            Filter::Or(a, b) => format!("({}) OR ({})", a.render(dialect)?, b.render(dialect)?),
            Filter::Not(a) => format!("NOT ({})", a.render(dialect)?),
        })
    }
}
