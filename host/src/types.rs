//! Small value types of the public API.

use std::time::Duration;

use crate::bindings::nscache::cache::types::{Expiry as WitExpiry, TimeToLive as WitTtl};

/// How long an entry lives (Django's `timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// The configured default (300 s unless configured otherwise).
    #[default]
    Default,
    /// Never expires (`timeout=None`).
    Never,
    /// Expires after this long; zero expires at once (`timeout=0`: the write
    /// removes the key). Durations are rounded up to whole milliseconds.
    After(Duration),
}

impl Expiry {
    /// Expire after `secs` seconds.
    pub fn secs(secs: u64) -> Expiry {
        Expiry::After(Duration::from_secs(secs))
    }

    pub(crate) fn to_wit(self) -> WitExpiry {
        match self {
            Expiry::Default => WitExpiry::Default,
            Expiry::Never => WitExpiry::Never,
            Expiry::After(d) => {
                let ms = d.as_millis();
                let ms = if ms == 0 && !d.is_zero() { 1 } else { ms };
                WitExpiry::AfterMs(u64::try_from(ms).unwrap_or(u64::MAX))
            }
        }
    }
}

impl From<Duration> for Expiry {
    fn from(d: Duration) -> Self {
        Expiry::After(d)
    }
}

/// What remains of a key's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and never expires.
    Forever,
    /// The key exists and expires in this long.
    Remaining(Duration),
}

impl From<WitTtl> for Ttl {
    fn from(t: WitTtl) -> Self {
        match t {
            WitTtl::Missing => Ttl::Missing,
            WitTtl::Forever => Ttl::Forever,
            WitTtl::RemainingMs(ms) => Ttl::Remaining(Duration::from_millis(ms)),
        }
    }
}

/// The owner token of a lock taken with [`Cache::lock`](crate::Cache::lock):
/// 128 random bits, hex-encoded. Only its holder can release the lock.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockToken(String);

impl LockToken {
    /// A fresh random token.
    pub fn random() -> LockToken {
        let mut bytes = [0u8; 16];
        // The OS random source only fails on a broken system; fall back to
        // the clock and address entropy rather than panic.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            bytes = (nanos ^ (&bytes as *const _ as u128)).to_le_bytes();
        }
        LockToken(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A token chosen by the caller (e.g. a worker name).
    pub fn from_owner(owner: impl Into<String>) -> LockToken {
        LockToken(owner.into())
    }

    /// The token as stored in the lock key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
