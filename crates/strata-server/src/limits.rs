//! What one principal's queries may take: a number running at once and a
//! memory pool they share, so that one principal's heavy or many queries
//! cannot starve the others or the server's ingest.
//!
//! The pool is DataFusion's `FairSpillPool` with spilling off: a query
//! past its share fails alone with DataFusion's "resources exhausted"
//! error rather than writing decrypted rows to the server's disk.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::error::Result;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits, and each principal's share of them once it has queried.
pub struct QueryLimits {
    memory_bytes: usize,
    concurrent: usize,
    principals: Mutex<HashMap<String, Principal>>,
}

/// One principal's running queries and their runtime.
#[derive(Clone)]
struct Principal {
    running: Arc<Semaphore>,
    runtime: Arc<RuntimeEnv>,
}

/// Leave to run one query: held until its answer is sent.
pub struct Admitted {
    /// Frees the slot when dropped.
    pub slot: OwnedSemaphorePermit,
    /// The runtime (memory pool) the query runs in.
    pub runtime: Arc<RuntimeEnv>,
}

impl QueryLimits {
    /// At most `concurrent` queries per principal at once, sharing a pool
    /// of `memory_bytes`.
    pub fn new(memory_bytes: usize, concurrent: usize) -> QueryLimits {
        QueryLimits {
            memory_bytes,
            concurrent,
            principals: Mutex::default(),
        }
    }

    /// The number of queries a principal may run at once.
    pub fn concurrent(&self) -> usize {
        self.concurrent
    }

    /// Leave for `principal` to run one more query, or `None` while it runs
    /// as many as allowed.
    pub fn admit(&self, principal: &str) -> Result<Option<Admitted>> {
        let principal = self.principal(principal)?;
        let slot = principal.running.try_acquire_owned().ok();
        Ok(slot.map(|slot| Admitted {
            slot,
            runtime: principal.runtime,
        }))
    }

    /// Leave for `principal` to run one more query, waiting up to `patience`
    /// for one of its queries to end; `None` if none did.
    pub async fn admit_within(
        &self,
        principal: &str,
        patience: std::time::Duration,
    ) -> Result<Option<Admitted>> {
        let principal = self.principal(principal)?;
        let slot = tokio::time::timeout(patience, principal.running.acquire_owned()).await;
        Ok(slot.ok().map(|slot| Admitted {
            slot: slot.expect("never closed"),
            runtime: principal.runtime,
        }))
    }

    /// `name`'s share, made at its first query.
    fn principal(&self, name: &str) -> Result<Principal> {
        let mut principals = self.principals.lock().expect("query limits lock");
        if let Some(known) = principals.get(name) {
            return Ok(known.clone());
        }
        let new = Principal {
            running: Arc::new(Semaphore::new(self.concurrent)),
            runtime: RuntimeEnvBuilder::new()
                .with_memory_pool(Arc::new(FairSpillPool::new(self.memory_bytes)))
                .with_disk_manager_builder(
                    DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
                )
                .build_arc()?,
        };
        principals.insert(name.to_string(), new.clone());
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_principal_has_its_own_slots_and_pool() {
        let limits = QueryLimits::new(1 << 20, 2);
        let first = limits.admit("a").unwrap().unwrap();
        let second = limits.admit("a").unwrap().unwrap();
        assert!(limits.admit("a").unwrap().is_none(), "a third at once");
        let other = limits.admit("b").unwrap().unwrap();
        assert!(!Arc::ptr_eq(&first.runtime, &other.runtime));
        assert!(Arc::ptr_eq(&first.runtime, &second.runtime));
        drop(first);
        assert!(limits.admit("a").unwrap().is_some(), "a slot freed");
    }
}
