//! The per-process state behind a Python `Cache`: a tokio runtime and the
//! library's `Cache`, built on first use in each process.
//!
//! A multi-thread tokio runtime does not survive `fork()` (its worker threads
//! are not copied; using or dropping it in the child hangs), and the parent's
//! sockets must not be used or closed by the child. So the state records the
//! pid that built it; a call from another pid builds a new runtime and cache,
//! and leaks the stale ones with `mem::forget` (never dropping them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use nscache::query::TableWatcher;
use nscache::{CacheError, Settings};
use tokio::runtime::Runtime;

/// What one Python `Cache` is configured with, and its state in this process.
#[derive(Debug)]
pub(crate) struct Shared {
    settings: Settings,
    /// `ttl=DEFAULT` means never expires (`default_ttl=None`).
    pub(crate) default_never: bool,
    /// The state of the process that built it (maybe a parent's, after fork).
    slot: Mutex<Option<Arc<Process>>>,
    /// The database whose table changes invalidate queries (`watch_tables`),
    /// kept to start the watcher again in a forked child.
    watch_url: Mutex<Option<String>>,
}

impl Drop for Shared {
    /// In a forked child, a `Cache` the parent used still holds the parent's
    /// state: dropping it (a worker exiting normally, the garbage collector)
    /// would drop the parent's runtime, which hangs in the child. Leak it.
    fn drop(&mut self) {
        let slot = self
            .slot
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot
            .as_ref()
            .is_some_and(|process| process.pid != std::process::id())
        {
            std::mem::forget(slot.take());
        }
    }
}

/// One process's runtime and cache.
#[derive(Debug)]
pub(crate) struct Process {
    pid: u32,
    /// The table watcher, with the database URL it listens on.
    watcher: Mutex<Option<(String, TableWatcher)>>,
    pub(crate) cache: nscache::Cache,
    /// Caches for other global key versions (`global_(version=)`), on the
    /// same store and profile source.
    versions: Mutex<HashMap<u64, nscache::Cache>>,
    settings: Settings,
    runtime: Runtime,
}

/// A lock that a panicking holder did not leave unusable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(crate) fn new(settings: Settings, default_never: bool) -> Shared {
        Shared {
            settings,
            default_never,
            slot: Mutex::new(None),
            watch_url: Mutex::new(None),
        }
    }

    /// This process's state, built if this process has none yet. The lock
    /// is held only to read or install it, never while building or running.
    pub(crate) fn process(&self) -> Result<Arc<Process>, CacheError> {
        let pid = std::process::id();
        {
            let mut slot = lock(&self.slot);
            match slot.as_ref() {
                Some(current) if current.pid == pid => return Ok(current.clone()),
                Some(_) => {
                    // Built by the parent: its threads are gone and its sockets
                    // are the parent's. Neither use nor drop it.
                    std::mem::forget(slot.take());
                }
                None => {}
            }
        }
        let built = Arc::new(Process::build(&self.settings, pid)?);
        let process = {
            let mut slot = lock(&self.slot);
            match slot.as_ref() {
                // Another thread built one meanwhile: use it, drop ours.
                Some(current) if current.pid == pid => current.clone(),
                _ => {
                    *slot = Some(built.clone());
                    built
                }
            }
        };
        let watch_url = lock(&self.watch_url).clone();
        if let Some(url) = watch_url {
            process.watch(&url)?;
        }
        Ok(process)
    }

    /// Run the table watcher on `url` in this process, and in every process
    /// forked from it from now on.
    pub(crate) fn watch(&self, url: &str) -> Result<(), CacheError> {
        *lock(&self.watch_url) = Some(url.to_owned());
        self.process()?.watch(url)
    }

    /// Drop this process's state (if it built one); the next call builds anew.
    pub(crate) fn close(&self) {
        let taken = lock(&self.slot).take();
        match taken {
            Some(process) if process.pid == std::process::id() => drop(process),
            stale => std::mem::forget(stale),
        }
    }
}

impl Process {
    fn build(settings: &Settings, pid: u32) -> Result<Process, CacheError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("nscache")
            .enable_all()
            .build()
            .map_err(|e| CacheError::Internal(format!("cannot start the runtime: {e}")))?;
        let cache =
            runtime.block_on(nscache::Cache::builder().settings(settings.clone()).build())?;
        Ok(Process {
            pid,
            watcher: Mutex::new(None),
            cache,
            versions: Mutex::new(HashMap::new()),
            settings: settings.clone(),
            runtime,
        })
    }

    /// The cache whose global keys carry key version `version` (`None`: the
    /// configured one): this process's cache, or one sharing its store (and
    /// L1) and profile source, built on first use.
    pub(crate) fn cache_for(&self, version: Option<u64>) -> Result<nscache::Cache, CacheError> {
        let Some(version) = version else {
            return Ok(self.cache.clone());
        };
        if self.cache.resolved_settings().key_version == Some(version) {
            return Ok(self.cache.clone());
        }
        if let Some(cache) = lock(&self.versions).get(&version) {
            return Ok(cache.clone());
        }
        let settings = Settings {
            key_version: Some(version),
            // The shared store is already behind the L1, if any.
            l1: false,
            ..self.settings.clone()
        };
        let built = self.runtime.block_on(
            nscache::Cache::builder()
                .settings(settings)
                .store(self.cache.store().clone())
                .profiles(self.cache.profiles().clone())
                .build(),
        )?;
        Ok(lock(&self.versions).entry(version).or_insert(built).clone())
    }

    /// Run `future` to completion on this process's runtime (the caller has
    /// released the GIL).
    pub(crate) fn run<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Start `future` on the runtime's workers.
    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.runtime.spawn(future);
    }

    /// Start the table watcher on `url`, unless it already runs there.
    fn watch(&self, url: &str) -> Result<(), CacheError> {
        let mut watcher = lock(&self.watcher);
        if matches!(&*watcher, Some((current, _)) if current == url) {
            return Ok(());
        }
        let _context = self.runtime.enter();
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_lazy(url)
            .map_err(|e| CacheError::Config(format!("database URL: {e}")))?;
        *watcher = Some((
            url.to_owned(),
            TableWatcher::spawn(pool, self.cache.clone()),
        ));
        Ok(())
    }
}
