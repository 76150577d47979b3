//! [`StaticProfiles`]: `cache_enabled` flags kept in process memory.

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{ProfileError, ProfileSource};

/// Flags kept in memory: every user is enabled unless disabled here. For
/// applications that keep the flag themselves, and for tests.
#[derive(Debug, Default)]
pub struct StaticProfiles {
    disabled: RwLock<HashSet<String>>,
    /// Bumped on every change.
    generation: AtomicU64,
}

impl StaticProfiles {
    /// Every user enabled.
    pub fn new() -> StaticProfiles {
        StaticProfiles::default()
    }

    /// Set `user`'s flag. Takes effect on the next cache call.
    pub fn set_cache_enabled(&self, user: &str, enabled: bool) {
        let mut disabled = self.disabled.write().unwrap_or_else(|p| p.into_inner());
        if enabled {
            disabled.remove(user);
        } else {
            disabled.insert(user.to_owned());
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl ProfileSource for StaticProfiles {
    async fn cache_enabled(&self, user: &str) -> Result<bool, ProfileError> {
        Ok(!self
            .disabled
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(user))
    }

    fn generation(&self) -> Option<u64> {
        Some(self.generation.load(Ordering::SeqCst))
    }
}
