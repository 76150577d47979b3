//! [`CachedProfiles`]: `cache_enabled` flags from a database ([`FlagStore`]),
//! remembered in process and kept coherent across processes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{FlagStore, ProfileError, ProfileSource};
use crate::feed::ChangeFeed;

/// Flags read from a [`FlagStore`], kept in process memory.
///
/// - A change made through nscache (this process or another one sharing the
///   Redis, via the [`ChangeFeed`]) takes effect on the next request.
/// - A change made directly in the database takes effect within `max_age`
///   (default 30 s), when the cached flag is read again.
/// - Without a live feed (Redis pub/sub down), nothing is trusted from memory:
///   every request reads the database.
/// - When the database is down, the last known flag is used; a user never
///   seen is reported as unknown, which makes the component bypass the cache.
///   A store that fails fast while its database is down makes an outage cost
///   one timeout, not one per request.
#[derive(Debug)]
pub struct CachedProfiles {
    flags: Arc<dyn FlagStore>,
    known: Arc<RwLock<HashMap<String, Known>>>,
    /// Bumped on every change heard or made, and when the database answers
    /// differently from memory: a database read that started before a change
    /// must not be remembered after it; also the [`ProfileSource::generation`].
    epoch: Arc<AtomicU64>,
    feed: Option<ChangeFeed>,
    max_age: Duration,
    database: RwLock<Option<String>>,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    enabled: bool,
    read_at: Instant,
}

impl CachedProfiles {
    /// Flags from `flags`; with a `feed`, changes are announced and heard
    /// (call [`CachedProfiles::start_feed`]).
    pub fn new(flags: Arc<dyn FlagStore>, feed: Option<ChangeFeed>) -> CachedProfiles {
        CachedProfiles {
            flags,
            known: Default::default(),
            epoch: Default::default(),
            feed,
            max_age: Duration::from_secs(30),
            database: RwLock::new(None),
        }
    }

    /// How long a flag read from the database is trusted (default 30 s).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Start listening to the feed (a background task for the life of the runtime).
    pub fn start_feed(&self) {
        if let Some(feed) = self.feed.clone() {
            let (known, epoch) = (self.known.clone(), self.epoch.clone());
            tokio::spawn(feed.run(move |user| {
                let mut known = known.write().unwrap_or_else(|p| p.into_inner());
                epoch.fetch_add(1, Ordering::SeqCst);
                match user {
                    Some(user) => {
                        known.remove(user);
                    }
                    None => known.clear(),
                }
            }));
        }
    }

    /// The store behind the flags.
    pub fn flags(&self) -> &Arc<dyn FlagStore> {
        &self.flags
    }

    /// `None` when the last database read worked; the error otherwise.
    pub fn database_error(&self) -> Option<String> {
        self.database
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether changes from other processes are being heard (`None`: no feed,
    /// a single process).
    pub fn feed_live(&self) -> Option<bool> {
        self.feed.as_ref().map(ChangeFeed::is_live)
    }

    fn note_database(&self, error: Option<String>) {
        *self.database.write().unwrap_or_else(|p| p.into_inner()) = error;
    }

    fn remember(&self, user: &str, enabled: bool) {
        self.known
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                user.to_owned(),
                Known {
                    enabled,
                    read_at: Instant::now(),
                },
            );
    }

    /// Set `user`'s flag in the database and announce it to every process.
    pub async fn set_cache_enabled(&self, user: &str, enabled: bool) -> Result<(), ProfileError> {
        let result = self.flags.set_cache_enabled(user, enabled).await;
        if let Err(ProfileError::Unavailable(e)) = &result {
            self.note_database(Some(e.clone()));
        }
        result?;
        // Database reads that started before the write are not remembered...
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.remember(user, enabled);
        // ...and answers computed with the old flag are not served again.
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(feed) = &self.feed
            && let Err(e) = feed.publish(user).await
        {
            // Other processes will see it within max_age (or at once if their
            // feed is down, since they then read the database every time).
            tracing::warn!(error = %e, user, "could not announce a profile change");
        }
        Ok(())
    }
}

#[async_trait]
impl ProfileSource for CachedProfiles {
    async fn cache_enabled(&self, user: &str) -> Result<bool, ProfileError> {
        let cached = self
            .known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .copied();
        let trusted = self.feed.as_ref().is_none_or(ChangeFeed::is_live);
        if let Some(k) = cached
            && trusted
            && k.read_at.elapsed() < self.max_age
        {
            return Ok(k.enabled);
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        match self.flags.cache_enabled(user).await {
            Ok(flag) => {
                self.note_database(None);
                let enabled = flag.unwrap_or(true); // no profile row: the column default
                if self.epoch.load(Ordering::SeqCst) == epoch {
                    self.remember(user, enabled);
                }
                if cached.is_some_and(|k| k.enabled != enabled) {
                    // Changed in the database behind nscache's back: answers
                    // computed with the old flag are not served again.
                    self.epoch.fetch_add(1, Ordering::SeqCst);
                }
                Ok(enabled)
            }
            Err(e) => {
                self.note_database(Some(e.to_string()));
                // Answers given from a fallback are not to be remembered.
                self.epoch.fetch_add(1, Ordering::SeqCst);
                match cached {
                    Some(k) => Ok(k.enabled),
                    None => Err(e),
                }
            }
        }
    }

    fn generation(&self) -> Option<u64> {
        // Without a live feed every call reads the database: nothing to trust.
        self.feed
            .as_ref()
            .is_none_or(ChangeFeed::is_live)
            .then(|| self.epoch.load(Ordering::SeqCst))
    }
}
