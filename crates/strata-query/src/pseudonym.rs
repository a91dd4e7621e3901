//! The analyst's pseudonyms: every personal value replaced by a keyed hash
//! of it, per tenant.
//!
//! A pseudonym is HMAC-SHA-256 of the value under a key of its tenant, cut
//! to 64 bits: the same person has the same pseudonym in every column, row,
//! query, session and year (so per-user counts, top addresses and sessions
//! survive), a different one in each tenant (so tenants' pseudonyms cannot
//! be joined), and without the keyring's secret nobody can test a guess.
//! The tenant key is derived from one secret kept in the keyring apart from
//! the tenants' data keys, so rotating those changes no pseudonym.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, MapArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use ring::hmac;

/// The columns whose every value is replaced: who acted, from where, in
/// which session, on whose workstation, and the free text, which names
/// anyone (the target of an administrator's change, say). Text values of
/// `attrs` are replaced too; its keys, numbers and booleans are kept.
pub const PERSONAL_COLUMNS: [&str; 5] = ["user", "src_ip", "session_id", "host", "message"];

/// The column of free-form attributes, whose text values are replaced.
pub const ATTRS_COLUMN: &str = "attrs";

/// What every pseudonym starts with, so that nobody takes one for a name.
const PREFIX: &str = "anon-";

/// Keys pseudonyms by tenant (see the module's documentation).
pub struct Pseudonyms {
    secret: hmac::Key,
    tenant_keys: Mutex<HashMap<String, hmac::Key>>,
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(<secret>)")
    }
}

impl Pseudonyms {
    /// Pseudonyms keyed by `secret` (the keyring's pseudonym secret).
    pub fn new(secret: [u8; 32]) -> Pseudonyms {
        Pseudonyms {
            secret: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            tenant_keys: Mutex::new(HashMap::new()),
        }
    }

    fn tenant_key(&self, tenant: &str) -> hmac::Key {
        let mut keys = self.tenant_keys.lock().expect("tenant key lock");
        (keys.entry(tenant.to_string()).or_insert_with(|| {
            let mut label = b"strata pseudonym v1\0".to_vec();
            label.extend_from_slice(tenant.as_bytes());
            hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&self.secret, &label).as_ref())
        }))
        .clone()
    }

    /// The pseudonym of `value` in `tenant`.
    pub fn of(&self, tenant: &str, value: &str) -> String {
        keyed_hash(&self.tenant_key(tenant), value)
    }

    /// `batch` with every value of its [`PERSONAL_COLUMNS`] and the text
    /// values of its `attrs` replaced by their pseudonyms in the row's
    /// tenant; `batch` has a text `tenant` column when it has any of them.
    pub fn replace(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let schema = batch.schema();
        let personal = |name: &str| PERSONAL_COLUMNS.contains(&name) || name == ATTRS_COLUMN;
        if !schema.fields().iter().any(|f| personal(f.name())) {
            return Ok(batch.clone());
        }
        let tenants = (batch.column_by_name("tenant"))
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| DataFusionError::Internal("personal columns without `tenant`".into()))?;
        let mut rows = RowKeys::new(self, tenants);
        let columns = (schema.fields().iter().zip(batch.columns()))
            .map(|(field, column)| match field.name().as_str() {
                ATTRS_COLUMN => rows.replace_attrs(column),
                name if personal(name) => rows.replace_text(column),
                _ => Ok(column.clone()),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

fn keyed_hash(key: &hmac::Key, value: &str) -> String {
    let tag = hmac::sign(key, value.as_bytes());
    let mut out = String::with_capacity(PREFIX.len() + 16);
    out.push_str(PREFIX);
    for byte in &tag.as_ref()[..8] {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The tenant key of each row of one batch, and the pseudonyms made so far
/// in each tenant (a batch repeats its users and addresses).
struct RowKeys<'a> {
    tenants: &'a StringArray,
    pseudonyms: &'a Pseudonyms,
    by_tenant: HashMap<&'a str, (hmac::Key, HashMap<String, String>)>,
}

impl<'a> RowKeys<'a> {
    fn new(pseudonyms: &'a Pseudonyms, tenants: &'a StringArray) -> RowKeys<'a> {
        RowKeys {
            tenants,
            pseudonyms,
            by_tenant: HashMap::new(),
        }
    }

    /// The pseudonym of `value` in `row`'s tenant.
    fn of(&mut self, row: usize, value: &str) -> String {
        let tenant = self.tenants.value(row);
        let (key, made) = (self.by_tenant.entry(tenant))
            .or_insert_with(|| (self.pseudonyms.tenant_key(tenant), HashMap::new()));
        if let Some(pseudonym) = made.get(value) {
            return pseudonym.clone();
        }
        let pseudonym = keyed_hash(key, value);
        made.insert(value.to_string(), pseudonym.clone());
        pseudonym
    }

    /// A text column with each value replaced; nulls stay null.
    fn replace_text(&mut self, column: &ArrayRef) -> Result<ArrayRef> {
        let text = cast(column, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let replaced: StringArray = (0..text.len())
            .map(|row| text.is_valid(row).then(|| self.of(row, text.value(row))))
            .collect();
        Ok(cast(&replaced, column.data_type())?)
    }

    /// The `attrs` map with its text values replaced, each in its row's
    /// tenant; keys, numbers and booleans kept.
    fn replace_attrs(&mut self, column: &ArrayRef) -> Result<ArrayRef> {
        let map = column
            .as_map_opt()
            .ok_or_else(|| DataFusionError::Internal("`attrs` is not a map".into()))?;
        let values = cast(map.values(), &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let mut replaced: Vec<Option<String>> = Vec::with_capacity(values.len());
        for row in 0..map.len() {
            let (start, end) = (map.value_offsets()[row], map.value_offsets()[row + 1]);
            for entry in start as usize..end as usize {
                replaced.push(values.is_valid(entry).then(|| {
                    let value = values.value(entry);
                    if is_number_or_boolean(value) {
                        value.to_string()
                    } else {
                        self.of(row, value)
                    }
                }));
            }
        }
        let replaced = cast(&StringArray::from(replaced), map.values().data_type())?;
        let entries = map.entries();
        let mut columns = entries.columns().to_vec();
        columns[1] = replaced;
        let entries = datafusion::arrow::array::StructArray::try_new(
            entries.fields().clone(),
            columns,
            entries.nulls().cloned(),
        )?;
        let field = match map.data_type() {
            DataType::Map(field, _) => field.clone(),
            _ => unreachable!("a map array has a map type"),
        };
        let ordered = matches!(map.data_type(), DataType::Map(_, true));
        let offsets = map.offsets().clone();
        let map = MapArray::try_new(field, offsets, entries, map.nulls().cloned(), ordered)?;
        Ok(Arc::new(map))
    }
}

/// Numbers and booleans name nobody: an analyst may sum and compare them.
fn is_number_or_boolean(value: &str) -> bool {
    matches!(value, "true" | "false")
        || (value.parse::<f64>().is_ok_and(f64::is_finite)
            && value
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{MapBuilder, StringBuilder, UInt64Array};
    use datafusion::arrow::datatypes::{Field, Schema};

    fn batch() -> RecordBatch {
        let mut attrs = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for entries in [
            &[("target", "bob"), ("retry", "3")][..],
            &[("mfa", "true"), ("target", "bob")],
            &[],
        ] {
            for (k, v) in entries {
                attrs.keys().append_value(k);
                attrs.values().append_value(v);
            }
            attrs.append(true).unwrap();
        }
        let attrs = attrs.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("tenant", DataType::Utf8, false),
            Field::new("user", DataType::Utf8, true),
            Field::new("bytes", DataType::UInt64, true),
            Field::new("attrs", attrs.data_type().clone(), true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["acme", "acme", "globex"])),
                Arc::new(StringArray::from(vec![Some("bob"), None, Some("bob")])),
                Arc::new(UInt64Array::from(vec![1, 2, 3])),
                Arc::new(attrs),
            ],
        )
        .unwrap()
    }

    #[test]
    fn personal_values_become_stable_per_tenant_pseudonyms() {
        let pseudonyms = Pseudonyms::new([7; 32]);
        let replaced = pseudonyms.replace(&batch()).unwrap();
        let users = replaced.column(1).as_string::<i32>();
        let bob_at_acme = pseudonyms.of("acme", "bob");
        assert!(bob_at_acme.starts_with("anon-") && bob_at_acme.len() == 21);
        assert_eq!(users.value(0), bob_at_acme);
        assert!(users.is_null(1));
        assert_eq!(users.value(2), pseudonyms.of("globex", "bob"));
        assert_ne!(users.value(0), users.value(2), "tenants' pseudonyms differ");
        assert_eq!(replaced.column(2), batch().column(2), "bytes are kept");
        let attrs = replaced.column(3).as_map();
        let values = attrs.values().as_string::<i32>();
        let kept: Vec<&str> = (0..values.len()).map(|i| values.value(i)).collect();
        assert_eq!(kept, [&*bob_at_acme, "3", "true", &*bob_at_acme]);
        assert_eq!(attrs.keys(), batch().column(3).as_map().keys());
        // Another secret, other pseudonyms; the same secret, the same ones.
        assert_ne!(Pseudonyms::new([8; 32]).of("acme", "bob"), bob_at_acme);
        assert_eq!(Pseudonyms::new([7; 32]).of("acme", "bob"), bob_at_acme);
    }

    #[test]
    fn only_plain_numbers_and_booleans_are_kept() {
        for kept in ["3", "-2.5", "1e3", "true", "false"] {
            assert!(is_number_or_boolean(kept), "{kept}");
        }
        for replaced in ["10.0.0.1", "inf", "NaN", "alice", "1 2", "", "0x10"] {
            assert!(!is_number_or_boolean(replaced), "{replaced}");
        }
    }
}
