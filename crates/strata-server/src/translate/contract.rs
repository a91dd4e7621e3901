//! An event in the contract's shape, as the translators make it.

use serde_json::{Map, Value};
use strata_schema::{Event, parse_fields};

/// The contract fields a translator filled, by name, `attrs` among them as
/// an object. A list, not a JSON map: building and dropping a sorted map
/// of owned keys per event was a fifth of a translated event's cost, and
/// the contract's parser finds fields in its own order fastest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContractEvent {
    fields: Vec<(&'static str, Value)>,
}

impl ContractEvent {
    /// An event with room for every contract field.
    pub fn new() -> Self {
        ContractEvent {
            fields: Vec::with_capacity(24),
        }
    }

    /// The value of `field`, if set.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, value)| value)
    }

    /// Whether `field` is set.
    pub fn contains(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value`, replacing what it held.
    pub fn set(&mut self, field: &'static str, value: Value) {
        match self.fields.iter_mut().find(|(name, _)| *name == field) {
            Some((_, slot)) => *slot = value,
            None => self.fields.push((field, value)),
        }
    }

    /// The `attrs` object, created empty if the event has none (an `attrs`
    /// that is not an object is replaced).
    pub fn attrs_mut(&mut self) -> &mut Map<String, Value> {
        let position = match self.fields.iter().position(|(name, _)| *name == "attrs") {
            Some(position) => position,
            None => {
                self.fields.push(("attrs", Value::Object(Map::new())));
                self.fields.len() - 1
            }
        };
        let slot = &mut self.fields[position].1;
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        match slot {
            Value::Object(attrs) => attrs,
            _ => unreachable!("made an object above"),
        }
    }

    /// Checks the event against the contract, as a line holding
    /// [`ContractEvent::to_json`] would be checked.
    pub fn parse(&self) -> Result<Event<'_>, String> {
        parse_fields(self.fields.iter().map(|(name, value)| (*name, value)))
    }

    /// The event as a JSON object (for quoting a refused event, and tests).
    pub fn to_json(&self) -> Value {
        let fields = self
            .fields
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()));
        Value::Object(fields.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_set_once_and_attrs_made_an_object() {
        let mut event = ContractEvent::new();
        event.set("tenant", Value::Null);
        event.set("tenant", json!("acme"));
        event.set("attrs", json!(3));
        event.attrs_mut().insert("k".into(), json!("v"));
        assert_eq!(event.get("tenant"), Some(&json!("acme")));
        assert!(!event.contains("ts"));
        assert_eq!(
            event.to_json(),
            json!({"tenant": "acme", "attrs": {"k": "v"}})
        );
        event.set("ts", json!(0));
        event.set("family", json!("access"));
        event.set("action", json!("login"));
        let parsed = event.parse().unwrap();
        assert_eq!(parsed.text("tenant"), Some("acme"));
    }
}
