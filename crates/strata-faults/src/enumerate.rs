//! Interrupting a command at each of its object-store calls in turn, and
//! checking that rerunning it converges to what an uninterrupted run leaves.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_integrity::SigningKey;
use strata_store::{Archive, Missing, Opener, Stores, open_location};

use crate::{Fault, FaultyStore, Kind, copy_folder};

/// A command under test and what must be the same after any interrupted run
/// and its rerun as after an uninterrupted run.
#[allow(async_fn_in_trait)] // tests await scenarios in place; no Send bound needed
pub trait Scenario {
    /// What an uninterrupted run and every rerun must agree on.
    type Shape: PartialEq + Debug;

    /// Runs the command on `archive` (whose stores may fail), in `world`.
    async fn run(&self, archive: &Archive, world: &Path) -> Result<(), String>;

    /// The state the command leaves, read from `archive` (whose stores work),
    /// in `world`.
    async fn shape(&self, archive: &Archive, world: &Path) -> Self::Shape;
}

/// A folder holding a local archive (`archive/`) and whatever else a
/// command uses: inputs, a keyring, cold stores. Every case runs at the
/// same path, from a fresh copy of the folder as it was when saved, so that
/// the absolute paths the catalog and the policy record stay valid.
#[derive(Debug)]
pub struct World {
    path: PathBuf,
    saved: PathBuf,
    key: SigningKey,
}

impl World {
    /// A world in `dir/world`, whose writers sign with `key`.
    pub fn new(dir: &Path, key: SigningKey) -> World {
        let path = dir.join("world");
        std::fs::create_dir_all(path.join("archive")).expect("world folder");
        World {
            saved: dir.join("saved"),
            path,
            key,
        }
    }

    /// The world's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The archive, with working stores, sealed with the world's key.
    pub fn archive(&self) -> Archive {
        let location = self.path.join("archive").display().to_string();
        let mut archive = Archive::new(open_location(&location, Missing::Fail).unwrap(), &location);
        archive.catalog = archive.catalog.with_seal(self.key.clone(), None);
        archive
    }

    /// The archive with every store, the cold ones included, behind one
    /// [`FaultyStore`].
    pub fn faulty_archive(&self) -> (Archive, Arc<FaultyStore>) {
        let mut archive = self.archive();
        let store = FaultyStore::new(archive.store.clone());
        let traps = store.clone();
        let opener: Opener = Arc::new(move |location, missing| {
            Ok(traps.wrap(open_location(location, missing)?) as _)
        });
        archive.store = store.clone();
        archive.stores = Stores::with_opener(store.clone(), opener);
        archive.catalog =
            strata_store::Catalog::new(store.clone()).with_seal(self.key.clone(), None);
        (archive, store)
    }

    /// Keeps the world as it is now: every case starts from this copy.
    pub fn save(&self) {
        let _ = std::fs::remove_dir_all(&self.saved);
        copy_folder(&self.path, &self.saved).expect("saving the world");
    }

    /// Puts the saved world back in place.
    fn restore(&self) {
        let _ = std::fs::remove_dir_all(&self.path);
        copy_folder(&self.saved, &self.path).expect("restoring the world");
    }

    /// Lets the lease of every writer recorded in the archive run out, as
    /// time would after a crash.
    fn expire_leases(&self) {
        let folder = self.path.join("archive/_strata/writers");
        let Ok(records) = std::fs::read_dir(folder) else {
            return;
        };
        for record in records {
            let path = record.unwrap().path();
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(mut record) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue; // a staging file the crash left mid-write
            };
            record["lease_until"] = "2000-01-01T00:00:00Z".into();
            std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        }
    }

    /// Panics unless `verify --deep` finds nothing in the archive.
    async fn assert_verified(&self, what: &str) {
        let options = strata_verify::Options {
            key: self.key.verifier(),
            trusted: None,
            deep: true,
            sample: 0,
        };
        let archive = self.archive();
        let report = strata_verify::verify(archive.store, &options, &())
            .await
            .unwrap();
        assert!(report.findings.is_empty(), "{what}: {:?}", report.findings);
    }
}

/// What [`enumerate`] tried.
#[derive(Debug)]
pub struct Enumerated {
    /// Interruptions tried.
    pub cases: usize,
    /// Interrupted runs that failed (the others only lost best-effort calls).
    pub failed: usize,
    /// Store calls of each kind an uninterrupted run makes.
    pub calls: Vec<(Kind, usize)>,
}

/// Runs `scenario` on the saved `world` once uninterrupted, then once per
/// store call it made, interrupted there (a crash at every call, a lost
/// answer at every put and delete), each followed, once the leases have run
/// out, by a rerun. Every rerun must end in the uninterrupted run's shape
/// and verify clean.
pub async fn enumerate<S: Scenario>(world: &World, scenario: &S) -> Enumerated {
    world.restore();
    let (uninterrupted, store) = world.faulty_archive();
    store.disarm();
    scenario.run(&uninterrupted, world.path()).await.unwrap();
    let calls: Vec<(Kind, usize)> = Kind::ALL.iter().map(|&k| (k, store.calls(k))).collect();
    let expected = scenario.shape(&world.archive(), world.path()).await;
    world.assert_verified("uninterrupted").await;

    let (mut cases, mut failed) = (0, 0);
    for &(kind, count) in &calls {
        let faults: &[Fault] = match kind {
            Kind::Put | Kind::Delete => &[Fault::Crash, Fault::Lost],
            _ => &[Fault::Crash],
        };
        for n in 1..=count {
            for &fault in faults {
                let what = format!("{fault:?} at {kind:?} {n} of {count}");
                cases += 1;
                world.restore();
                let (archive, store) = world.faulty_archive();
                store.arm(kind, n, fault);
                if scenario.run(&archive, world.path()).await.is_err() {
                    failed += 1;
                }
                assert!(store.tripped(), "{what}: the call happened");
                store.disarm();
                world.expire_leases();
                let rerun = world.archive();
                (scenario.run(&rerun, world.path()).await)
                    .unwrap_or_else(|e| panic!("{what}: the rerun failed: {e}"));
                let shape = scenario.shape(&rerun, world.path()).await;
                assert_eq!(shape, expected, "{what}");
                world.assert_verified(&what).await;
            }
        }
    }
    // Best-effort calls (deleting replaced files, snapshots) may fail
    // without failing the run; most interruptions stop it.
    assert!(
        failed * 2 > cases,
        "{failed} of {cases} interrupted runs failed: {calls:?}"
    );
    eprintln!("{cases} interruptions ({failed} stopped the run): {calls:?}");
    Enumerated {
        cases,
        failed,
        calls,
    }
}
