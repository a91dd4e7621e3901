//! Client retries are not stored twice. A shipper that lost an answer sends
//! the same events again; an event carrying an `event_id` (Elasticsearch's
//! `_id` fills it) whose `(tenant, event_id)` is already buffered, or
//! waiting in the same write-ahead segment, is dropped before its segment
//! is stored, and acknowledged like the first copy. Once the first copy is
//! committed to the archive its id is forgotten: the guarantee covers the
//! window in which a retry is likely, not the archive's whole history.

use std::hash::Hasher;
use std::sync::OnceLock;

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use bytes::Bytes;
use siphasher::sip128::{Hasher128, SipHasher24};

use crate::rows::Rows;

/// An event's identity: its tenant and its producer's event id, as the
/// 128-bit SipHash-2-4 keyed with a secret drawn when the process starts
/// (a keyed pseudo-random function like a keyed BLAKE3, at a third of its
/// cost on ids this short).
/// Sixteen bytes instead of two strings per event held; keyed with a
/// secret so that no sender can make its event's key equal to another
/// tenant's event (which would drop that event as a repeat). The keys
/// live only in memory, so the secret never needs to outlive the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventKey(u128);

impl EventKey {
    /// The key of `event_id` in `tenant`.
    pub fn of(tenant: &str, event_id: &str) -> Self {
        static SECRET: OnceLock<[u8; 16]> = OnceLock::new();
        let secret = SECRET.get_or_init(|| {
            let mut secret = [0; 16];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
                .expect("the system's random source works");
            secret
        });
        let mut hasher = SipHasher24::new_with_key(secret);
        // The tenant's length first: ("ab", "c") and ("a", "bc") differ.
        hasher.write(&(tenant.len() as u64).to_le_bytes());
        hasher.write(tenant.as_bytes());
        hasher.write(event_id.as_bytes());
        EventKey(hasher.finish128().into())
    }
}

/// A set of keys. foldhash rather than the default SipHash: every event
/// of a busy server is looked up and inserted, and its seed is random too,
/// so senders cannot aim at collisions.
pub type KeySet<K = EventKey> = foldhash::HashSet<K>;

/// Events of one request or segment: its contract lines, each line's key
/// (none without an `event_id`) and the same events as rows.
pub struct Events<'a> {
    /// Contract lines, each ending in `\n`.
    pub lines: &'a mut Bytes,
    /// The key of each line, in order.
    pub keys: &'a mut Vec<Option<EventKey>>,
    /// The same events as rows.
    pub rows: &'a mut Rows,
}

impl Events<'_> {
    /// The keys of these events that `held` says are already stored.
    pub fn repeats(&self, held: impl Fn(&EventKey) -> bool) -> KeySet {
        self.keys
            .iter()
            .flatten()
            .filter(|k| held(k))
            .copied()
            .collect()
    }

    /// Removes the events whose key is in `repeats`; returns how many.
    pub fn remove(&mut self, repeats: &KeySet) -> usize {
        if repeats.is_empty() {
            return 0;
        }
        let repeated = |key: &Option<EventKey>| key.as_ref().is_some_and(|k| repeats.contains(k));
        let mut kept = Vec::with_capacity(self.lines.len());
        let lines = self.lines.split_inclusive(|&b| b == b'\n');
        for (line, key) in lines.zip(self.keys.iter()) {
            if !repeated(key) {
                kept.extend_from_slice(line);
            }
        }
        let before = self.keys.len();
        self.keys.retain(|key| !repeated(key));
        *self.lines = kept.into();
        if let Some(batch) = self.rows.batch() {
            let keep = unrepeated(batch, repeats);
            self.rows.retain(&keep);
        }
        before - self.keys.len()
    }
}

/// Which rows of `batch` have no (tenant, event_id) in `repeats`.
fn unrepeated(batch: &RecordBatch, repeats: &KeySet) -> BooleanArray {
    let column = |name| batch.column_by_name(name).expect("contract column");
    let (tenants, ids) = (column("tenant").as_string::<i32>(), column("event_id"));
    let ids = ids.as_string::<i32>();
    (0..batch.num_rows())
        .map(|row| {
            let repeated = ids.is_valid(row)
                && repeats.contains(&EventKey::of(tenants.value(row), ids.value(row)));
            Some(!repeated)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_access::{Authenticated, Role};

    #[test]
    fn keys_tell_tenants_and_ids_apart() {
        assert_eq!(EventKey::of("ab", "c"), EventKey::of("ab", "c"));
        assert_ne!(EventKey::of("ab", "c"), EventKey::of("a", "bc"));
        assert_ne!(EventKey::of("a", "1"), EventKey::of("b", "1"));
        assert_ne!(EventKey::of("a", "1"), EventKey::of("a", "2"));
    }

    #[test]
    fn repeated_events_leave_lines_and_rows_alike() {
        let sender = Authenticated {
            name: "s".into(),
            role: Role::Ingest,
            tenants: vec![],
        };
        let lines = r#"{"ts":"2026-03-01T10:00:00Z","tenant":"a","family":"access","action":"x","event_id":"1"}
{"ts":"2026-04-01T10:00:00Z","tenant":"a","family":"access","action":"x","event_id":"2"}
{"ts":"2026-04-01T10:00:00Z","tenant":"b","family":"access","action":"x","event_id":"2"}
{"ts":"2026-04-01T10:00:00Z","tenant":"a","family":"access","action":"x"}"#;
        let mut accepted = crate::accept::accept_lines(&bytes::Bytes::from(lines), &sender, 1);
        let mut events = Events {
            lines: &mut accepted.lines,
            keys: &mut accepted.event_ids,
            rows: &mut accepted.rows,
        };
        let held: KeySet = [EventKey::of("a", "2"), EventKey::of("a", "1")]
            .into_iter()
            .collect();
        let repeats = events.repeats(|k| *k == EventKey::of("a", "2"));
        assert_eq!(repeats.len(), 1);
        assert_eq!(events.remove(&repeats), 1);
        assert_eq!(events.keys.len(), 3);
        let text = String::from_utf8(events.lines.to_vec()).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(!text.contains(r#""tenant":"a","family":"access","action":"x","event_id":"2""#));
        assert_eq!(
            (events.rows.len(), events.rows.partitions().count()),
            (3, 3)
        );
        assert_eq!(events.remove(&held), 1);
        assert_eq!(
            events.rows.partitions().count(),
            2,
            "the emptied March partition is gone"
        );
        assert_eq!(events.keys, &[Some(EventKey::of("b", "2")), None]);
    }
}
