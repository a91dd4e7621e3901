//! Documents as flat fields under dotted names, the shape the ECS mapping
//! looks columns up in. A `_bulk` document is read straight into it
//! ([`FlatDoc`]): building the nested tree first and flattening it after
//! took a fifth of the server's CPU on `_bulk`.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A document's fields under dotted names: `{"event":{"action":"x"}}` and
/// `{"event.action":"x"}` alike give `event.action`; arrays stay values and
/// `attrs` stays an object. A hash map: every contract column is looked
/// up in it by each of its ECS names.
pub type Flat = foldhash::HashMap<String, Value>;

/// Fields a document's map is made room for at once (growing it field by
/// field rehashed it several times per document).
const FLAT_CAPACITY: usize = 32;

/// An empty [`Flat`] with room for a typical document.
pub fn new_flat() -> Flat {
    Flat::with_capacity_and_hasher(FLAT_CAPACITY, Default::default())
}

/// The field under which an object is kept whole rather than flattened.
const KEPT_WHOLE: &str = "attrs";

/// `value` under `prefix` into `out`, nested objects as dotted keys.
pub fn flatten(prefix: String, value: Value, out: &mut Flat) {
    match value {
        Value::Object(fields) if prefix != KEPT_WHOLE => {
            for (key, value) in fields {
                flatten(dotted(&prefix, key), value, out);
            }
        }
        value => {
            out.insert(prefix, value);
        }
    }
}

/// `key` under `prefix`.
fn dotted(prefix: &str, key: String) -> String {
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

/// A JSON object deserialized straight into its flat fields, as
/// [`flatten`] would give them. Anything but an object is refused.
#[derive(Debug, Default, PartialEq)]
pub struct FlatDoc(pub Flat);

impl<'de> serde::Deserialize<'de> for FlatDoc {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut flat = new_flat();
        deserializer.deserialize_map(Fields {
            prefix: "",
            out: &mut flat,
        })?;
        Ok(FlatDoc(flat))
    }
}

/// Visits an object whose fields go under `prefix`.
struct Fields<'p, 'o> {
    prefix: &'p str,
    out: &'o mut Flat,
}

impl<'de> Visitor<'de> for Fields<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let key = dotted(self.prefix, key);
            if key == KEPT_WHOLE {
                let value: Value = map.next_value()?;
                self.out.insert(key, value);
            } else {
                map.next_value_seed(Field { key, out: self.out })?;
            }
        }
        Ok(())
    }
}

/// One field's value: an object is flattened further, anything else is
/// stored under `key`.
struct Field<'o> {
    key: String,
    out: &'o mut Flat,
}

impl<'de> DeserializeSeed<'de> for Field<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Field<'_> {
    fn store(self, value: impl Into<Value>) {
        self.out.insert(self.key, value.into());
    }
}

/// `Visitor` methods storing the scalar they are given.
macro_rules! visit_scalars {
    ($($method:ident: $type:ty),* $(,)?) => {
        $(
            fn $method<E>(self, v: $type) -> Result<(), E> {
                self.store(v);
                Ok(())
            }
        )*
    };
}

impl<'de> Visitor<'de> for Field<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Fields {
            prefix: &self.key,
            out: self.out,
        }
        .visit_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        self.store(items);
        Ok(())
    }

    // Scalars are stored as they are.
    visit_scalars!(
        visit_bool: bool,
        visit_i64: i64,
        visit_u64: u64,
        visit_f64: f64,
        visit_str: &str,
        visit_string: String,
    );

    fn visit_unit<E>(self) -> Result<(), E> {
        self.store(Value::Null);
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.store(Value::Null);
        Ok(())
    }
}

/// `doc` flattened, for documents built as a tree.
pub fn flat(doc: Map<String, Value>) -> Flat {
    let mut flat = Flat::default();
    flatten(String::new(), Value::Object(doc), &mut flat);
    flat
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn read_flat_is_the_tree_flattened() {
        let docs = [
            json!({}),
            json!({"a": 1, "b": {"c": "x", "d": {"e": [1, {"f": 2}], "g": null}}, "h": {}}),
            json!({"event.action": "x", "event": {"outcome": "ok"}, "n": -3, "u": 18446744073709551615u64, "f": 1.5}),
            json!({"attrs": {"k": {"nested": true}}, "x": {"attrs": {"y": 1}}, "t": true}),
        ];
        for doc in docs {
            let read: FlatDoc = serde_json::from_str(&doc.to_string()).unwrap();
            let Value::Object(tree) = doc else { panic!() };
            assert_eq!(read.0, flat(tree));
        }
    }

    #[test]
    fn only_objects_are_documents() {
        for text in ["[1]", "\"x\"", "3", "null", "{\"a\":1} x", "{\"a\":"] {
            assert!(serde_json::from_str::<FlatDoc>(text).is_err(), "{text}");
        }
    }
}
