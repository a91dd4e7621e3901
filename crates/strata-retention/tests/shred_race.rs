//! A legal hold placed while a retention run is about to shred a tenant's
//! keys wins: the run commits no receipt and destroys no key.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use strata_integrity::SigningKey;
use strata_keys::KeyError;
use strata_keys::envelope::{KeyProvider, LocalKeys};
use strata_retention::{HoldRequest, add_hold, rotate_key, run, schedule_shred, set_policy};
use strata_store::{Archive, Missing, open_archive};

/// Keys whose `live_versions`, the run's last look before its shred
/// receipt, first has another writer place a hold on the tenant.
#[derive(Debug)]
struct HoldPlacedMeanwhile {
    keys: LocalKeys,
    archive: Archive,
}

impl KeyProvider for HoldPlacedMeanwhile {
    fn current(&self, tenant: &str) -> Result<(u32, [u8; 32]), KeyError> {
        self.keys.current(tenant)
    }
    fn get(&self, tenant: &str, version: u32) -> Result<[u8; 32], KeyError> {
        self.keys.get(tenant, version)
    }
    fn rotate(&self, tenant: &str) -> Result<u32, KeyError> {
        self.keys.rotate(tenant)
    }
    fn destroy(&self, tenant: &str) -> Result<Vec<u32>, KeyError> {
        self.keys.destroy(tenant)
    }
    fn live_versions(&self, tenant: &str) -> Result<Vec<u32>, KeyError> {
        let archive = self.archive.clone();
        let tenant_held = tenant.to_string();
        std::thread::spawn(move || {
            let request = HoldRequest {
                tenant: tenant_held,
                family: None,
                from: None,
                to: None,
                reason: "litigation hold placed during the run".into(),
            };
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(add_hold(&archive, request, "counsel"))
                .unwrap();
        })
        .join()
        .unwrap();
        self.keys.live_versions(tenant)
    }
}

#[tokio::test]
async fn a_hold_placed_during_a_run_wins_over_a_due_shred() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().join("archive").display().to_string();
    let key = SigningKey::generate("strata-test").unwrap();
    let mut archive = open_archive(&location, Missing::Create).unwrap();
    archive.catalog = archive.catalog.with_seal(key, None);
    let keyring = dir.path().join("keyring.json");
    let keys = LocalKeys::open(&keyring).unwrap();
    let policy = "[[rule]]\ntenant = \"*\"\nfamily = \"*\"\npresets = [\"pci-dss-4\"]\n";
    set_policy(&archive, policy, "test", "policy")
        .await
        .unwrap();
    rotate_key(&archive, &keys, "initech", "test")
        .await
        .unwrap();
    let scheduled: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    schedule_shred(&archive, "initech", "erasure 7", "test", scheduled)
        .await
        .unwrap();

    let racing: Arc<dyn KeyProvider> = Arc::new(HoldPlacedMeanwhile {
        keys: LocalKeys::open(&keyring).unwrap(),
        archive: archive.clone(),
    });
    let after_grace = scheduled + Duration::days(8);
    let report = run(&archive, after_grace, "test", Some(&racing), &mut ())
        .await
        .unwrap();
    assert_eq!(report.tenants_shredded, 0);
    assert_eq!(
        report.shreds_refused.len(),
        1,
        "{:?}",
        report.shreds_refused
    );
    assert_eq!(
        keys.live_versions("initech").unwrap(),
        [1],
        "no key destroyed"
    );
    let snapshot = archive.catalog.load().await.unwrap();
    assert!(snapshot.governance.shredded.is_empty(), "no receipt");
    assert_eq!(snapshot.governance.holds.len(), 1);
}
