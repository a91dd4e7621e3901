//! An object store that fails on purpose, so that tests can enumerate every
//! point at which a command talks to storage and check what an interruption
//! there leaves behind.
//!
//! [`FaultyStore`] wraps a real store and counts its calls by [`Kind`]. Armed
//! with [`FaultyStore::arm`], the N-th call of one kind fails, either before
//! reaching the store or after it (the request landed but its answer was
//! lost), and, for a [`Fault::Crash`], every later call fails too, as if the
//! process had died there. Running a command once unarmed gives the number of
//! calls of each kind; running it again with each N in turn enumerates every
//! interruption: [`enumerate`] does that for a [`Scenario`] on a local
//! archive.
//!
//! [`FaultyStore::before_put`] interleaves instead: another writer's work runs
//! at an exact point of a command, to test how the command takes losing a race.

mod enumerate;

pub use enumerate::{Enumerated, Scenario, World, enumerate};

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// A kind of object-store call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Writes (`put`, `put_opts`, multipart uploads).
    Put,
    /// Reads (`get`, ranges, `head`).
    Get,
    /// Deletes.
    Delete,
    /// Listings.
    List,
    /// Copies and renames.
    Copy,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [Kind::Put, Kind::Get, Kind::Delete, Kind::List, Kind::Copy];

    fn index(self) -> usize {
        self as usize
    }
}

/// How the armed call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails without reaching the store; later calls work.
    Fail,
    /// The call reaches the store, then reports failure (a lost answer);
    /// later calls work.
    Lost,
    /// The call fails without reaching the store, and so does every later
    /// call: the process died there.
    Crash,
}

#[derive(Debug, Clone, Copy)]
struct Trap {
    kind: Kind,
    nth: usize,
    fault: Fault,
}

/// A store that fails its N-th call of one kind (see the module docs).
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<State>,
}

/// Work run once before the first write under `prefix` reaches the store.
struct PutHook {
    prefix: String,
    run: Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>,
}

impl fmt::Debug for PutHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PutHook({:?})", self.prefix)
    }
}

/// The trap and the counts, shared with the streams a store hands out.
#[derive(Debug, Default)]
struct State {
    trap: Mutex<Option<Trap>>,
    calls: [AtomicUsize; 5],
    crashed: AtomicBool,
    tripped: AtomicBool,
    before_put: Mutex<Option<PutHook>>,
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    /// Wraps `inner`, unarmed.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Arc<FaultyStore> {
        Arc::new(FaultyStore {
            inner,
            state: Arc::default(),
        })
    }

    /// Makes the `nth` call (from 1, counted from now) of `kind` fail with
    /// `fault`, and resets the counts and any earlier crash.
    pub fn arm(&self, kind: Kind, nth: usize, fault: Fault) {
        self.state.reset();
        *self.state.trap.lock().expect("trap lock") = Some(Trap { kind, nth, fault });
    }

    /// Removes the trap, clears a crash and resets the counts.
    pub fn disarm(&self) {
        self.state.reset();
        *self.state.trap.lock().expect("trap lock") = None;
    }

    /// `inner` behind the same trap and counts as this store: for the cold
    /// stores a command opens besides the archive's.
    pub fn wrap(&self, inner: Arc<dyn ObjectStore>) -> Arc<FaultyStore> {
        Arc::new(FaultyStore {
            inner,
            state: self.state.clone(),
        })
    }

    /// Calls of `kind` since the store was last armed or disarmed.
    pub fn calls(&self, kind: Kind) -> usize {
        self.state.calls[kind.index()].load(Ordering::SeqCst)
    }

    /// Whether the armed call has happened.
    pub fn tripped(&self) -> bool {
        self.state.tripped.load(Ordering::SeqCst)
    }

    /// Runs `hook` to its end before the first write of an object whose
    /// path starts with `prefix` reaches the store; once.
    pub fn before_put(
        &self,
        prefix: &str,
        hook: impl FnOnce() -> BoxFuture<'static, ()> + Send + 'static,
    ) {
        *self.state.before_put.lock().expect("hook lock") = Some(PutHook {
            prefix: prefix.to_string(),
            run: Box::new(hook),
        });
    }

    /// Runs the hook set by [`FaultyStore::before_put`] if a write to
    /// `location` is the one it waits for.
    async fn run_put_hook(&self, location: &Path) {
        let hook = {
            let mut slot = self.state.before_put.lock().expect("hook lock");
            match &*slot {
                Some(hook) if location.as_ref().starts_with(&hook.prefix) => slot.take(),
                _ => None,
            }
        };
        if let Some(hook) = hook {
            (hook.run)().await;
        }
    }
}

impl State {
    fn reset(&self) {
        self.calls.iter().for_each(|c| c.store(0, Ordering::SeqCst));
        self.crashed.store(false, Ordering::SeqCst);
        self.tripped.store(false, Ordering::SeqCst);
    }

    /// Counts a call of `kind` and says whether it fails before reaching
    /// the store (`Err`) or after (`Ok(true)`).
    fn enter(&self, kind: Kind, location: &Path) -> Result<bool> {
        if self.crashed.load(Ordering::SeqCst) {
            return Err(injected(kind, location, "the process is gone"));
        }
        let n = self.calls[kind.index()].fetch_add(1, Ordering::SeqCst) + 1;
        let trap = *self.trap.lock().expect("trap lock");
        match trap {
            Some(t) if t.kind == kind && t.nth == n => {
                self.tripped.store(true, Ordering::SeqCst);
                match t.fault {
                    Fault::Fail => Err(injected(kind, location, "failed")),
                    Fault::Lost => Ok(true),
                    Fault::Crash => {
                        self.crashed.store(true, Ordering::SeqCst);
                        Err(injected(kind, location, "crashed"))
                    }
                }
            }
            _ => Ok(false),
        }
    }
}

fn injected(kind: Kind, location: &Path, what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: format!("injected fault: {kind:?} of {location} {what}").into(),
    }
}

/// Runs `call` unless the fault comes first; reports a lost answer after it.
async fn guarded<T>(
    store: &FaultyStore,
    kind: Kind,
    location: &Path,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let lost = store.state.enter(kind, location)?;
    let out = call.await?;
    if lost {
        return Err(injected(kind, location, "landed, but its answer was lost"));
    }
    Ok(out)
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.run_put_hook(location).await;
        let call = self.inner.put_opts(location, payload, opts);
        guarded(self, Kind::Put, location, call).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.run_put_hook(location).await;
        let call = self.inner.put_multipart_opts(location, opts);
        guarded(self, Kind::Put, location, call).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let call = self.inner.get_opts(location, options);
        guarded(self, Kind::Get, location, call).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let call = self.inner.get_ranges(location, ranges);
        guarded(self, Kind::Get, location, call).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        // One path at a time, each through the trap.
        let (inner, state) = (self.inner.clone(), self.state.clone());
        locations
            .and_then(move |path| {
                let (inner, state) = (inner.clone(), state.clone());
                async move {
                    let lost = state.enter(Kind::Delete, &path)?;
                    inner.delete(&path).await?;
                    if lost {
                        return Err(injected(
                            Kind::Delete,
                            &path,
                            "landed, but its answer was lost",
                        ));
                    }
                    Ok(path)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let location = prefix.cloned().unwrap_or_default();
        match self.state.enter(Kind::List, &location) {
            Ok(_) => self.inner.list(prefix),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let location = prefix.cloned().unwrap_or_default();
        let call = self.inner.list_with_delimiter(prefix);
        guarded(self, Kind::List, &location, call).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let call = self.inner.copy_opts(from, to, options);
        guarded(self, Kind::Copy, to, call).await
    }
}

/// The Parquet files under the local folder `root` (an archive or a cold
/// store), as paths relative to it; none if it does not exist.
pub fn data_files(root: &std::path::Path) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a readable folder entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let relative = path.strip_prefix(root).expect("found under root");
                found.insert(relative.display().to_string());
            }
        }
    }
    found
}

/// Copies the folder `src` (a local archive) to `dst`, recursively: each
/// interruption a test tries starts from a fresh copy of the same archive.
pub fn copy_folder(src: &std::path::Path, dst: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let target = dst.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_folder(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
