//! The event contract as data: `schemas/event-v1.json` is compiled in and
//! parsed once, and the Arrow schema is derived from it.

use std::sync::{Arc, OnceLock};

use arrow::array::MapFieldNames;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use serde::Deserialize;

const CONTRACT_V1: &str = include_str!("../../../schemas/event-v1.json");

/// The type family of a contract field, which decides both validation and Arrow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    /// RFC 3339 or epoch milliseconds in, UTC microseconds stored.
    Timestamp,
    /// A tenant id (restricted charset, used in object paths).
    Tenant,
    /// One of a fixed list of strings.
    Enum,
    /// Free text.
    String,
    /// An IPv4 or IPv6 address, stored as canonical text.
    Ip,
    /// A non-negative integer of at most 2^63 − 1, stored as Int64: every
    /// engine reads it as a 64-bit integer (Spark, Trino and Athena have no
    /// unsigned types, and read UInt64 as `decimal(20,0)`; Polars refuses it
    /// under a Delta `long`). `uint64` is the contract's name for it.
    #[serde(rename = "uint64")]
    Count,
    /// A non-negative number.
    Float64,
    /// A map of text keys to text values.
    Attrs,
}

/// One field of the contract.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldSpec {
    /// Column name, also the JSON key.
    pub name: String,
    /// Type family.
    pub kind: FieldKind,
    /// Whether every event must carry it.
    #[serde(default)]
    pub required: bool,
    /// Allowed values of an enum field.
    #[serde(default)]
    pub values: Vec<String>,
    /// Value stored when an optional enum field is absent.
    #[serde(default)]
    pub default: Option<String>,
    /// Set by strata rather than read from the input.
    #[serde(default)]
    pub system: bool,
    /// Human description.
    #[serde(default)]
    pub doc: String,
}

/// The versioned event contract.
#[derive(Debug, Clone, Deserialize)]
pub struct EventContract {
    /// Contract name.
    pub name: String,
    /// Contract version; stored in every Parquet file's metadata.
    pub version: u32,
    /// Fields in column order.
    pub fields: Vec<FieldSpec>,
    #[serde(skip)]
    arrow: OnceLock<SchemaRef>,
}

impl EventContract {
    /// The field called `name`.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The column index of `name` in the Arrow schema.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The Arrow schema of archived events, derived from the contract.
    pub fn arrow_schema(&self) -> SchemaRef {
        self.arrow
            .get_or_init(|| {
                let fields: Vec<Field> = self
                    .fields
                    .iter()
                    .map(|f| Field::new(&f.name, arrow_type(f.kind), !f.required))
                    .collect();
                Arc::new(Schema::new(fields))
            })
            .clone()
    }
}

/// Arrow type stored for a field kind.
fn arrow_type(kind: FieldKind) -> DataType {
    match kind {
        FieldKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        FieldKind::Tenant | FieldKind::Enum | FieldKind::String | FieldKind::Ip => DataType::Utf8,
        FieldKind::Count => DataType::Int64,
        FieldKind::Float64 => DataType::Float64,
        FieldKind::Attrs => attrs_type(),
    }
}

/// `Map<Utf8, Utf8>` with the field names arrow's `MapBuilder` produces.
pub(crate) fn attrs_type() -> DataType {
    text_map_type(&MapFieldNames::default())
}

/// `Map<Utf8, Utf8>` (keys not null, values nullable) with its parts named `names`.
pub(crate) fn text_map_type(names: &MapFieldNames) -> DataType {
    let entries = Fields::from(vec![
        Field::new(&names.key, DataType::Utf8, false),
        Field::new(&names.value, DataType::Utf8, true),
    ]);
    DataType::Map(
        Arc::new(Field::new(&names.entry, DataType::Struct(entries), false)),
        false,
    )
}

/// The current event contract (v1), parsed once from `schemas/event-v1.json`.
pub fn contract() -> &'static EventContract {
    static CONTRACT: OnceLock<EventContract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        serde_json::from_str(CONTRACT_V1)
            .expect("schemas/event-v1.json is valid (checked by tests)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_file_parses_and_has_the_required_fields() {
        let c = contract();
        assert_eq!(c.version, 1);
        for name in ["ts", "tenant", "family", "action", "ingested_at"] {
            assert!(c.field(name).unwrap().required, "{name} must be required");
        }
        let schema = c.arrow_schema();
        assert_eq!(schema.fields().len(), c.fields.len());
        assert_eq!(schema.field(0).name(), "ts");
        assert!(!schema.field(0).is_nullable());
        assert!(schema.field_with_name("user").unwrap().is_nullable());
    }

    #[test]
    fn family_enum_matches_the_contract() {
        let values = &contract().field("family").unwrap().values;
        let names: Vec<&str> = crate::Family::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(values, &names);
    }
}
