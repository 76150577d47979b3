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

/// A TTL that is not a number of seconds (at least zero), `none` or `default`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a number of seconds (>= 0), \"none\" or \"default\"")]
pub struct InvalidExpiry(pub String);

impl Expiry {
    /// Expire after `secs` seconds (fractions allowed): the one TTL parser
    /// behind the CLI's `--ttl`, the HTTP API's `ttl` and the settings.
    pub fn from_secs_f64(secs: f64) -> Result<Expiry, InvalidExpiry> {
        crate::settings::parse_seconds(&secs.to_string())
            .map(Expiry::After)
            .map_err(|_| InvalidExpiry(secs.to_string()))
    }
}

/// `none` (never expires), `default`, or a number of seconds.
impl std::str::FromStr for Expiry {
    type Err = InvalidExpiry;

    fn from_str(s: &str) -> Result<Expiry, InvalidExpiry> {
        match s.trim() {
            w if w.eq_ignore_ascii_case("none") => Ok(Expiry::Never),
            w if w.eq_ignore_ascii_case("default") => Ok(Expiry::Default),
            secs => crate::settings::parse_seconds(secs)
                .map(Expiry::After)
                .map_err(|_| InvalidExpiry(s.to_owned())),
        }
    }
}

/// As JSON: a number of seconds, `"none"` or `"default"` (what the HTTP API
/// takes in `ttl`).
impl serde::Serialize for Expiry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Expiry::Default => s.serialize_str("default"),
            Expiry::Never => s.serialize_str("none"),
            Expiry::After(d) => s.serialize_f64(d.as_secs_f64()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Expiry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Expiry, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Seconds(f64),
            Word(String),
        }
        match Wire::deserialize(d)? {
            Wire::Seconds(secs) => Expiry::from_secs_f64(secs),
            Wire::Word(word) => word.parse(),
        }
        .map_err(serde::de::Error::custom)
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
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
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
